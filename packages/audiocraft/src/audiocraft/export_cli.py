"""``audiocraft-export``: export any XP (by signature) or training checkpoint to the inference layout.

Part of the ``audiocraft`` meta-package. The exporter is chosen from the ``solver`` stored in the checkpoint's
config (EnCodec for ``compression``, language models for ``musicgen`` / ``audiogen``; see
`audiocraft.models.export.export_model`); the package is loaded back strictly before it is kept, and it loads with
audiocraft-models alone (``CompressionModel.get_pretrained(path)``, ...). The checkpoint of a LoRA run
(``lora.use=true``) is exported with its adapters merged, as a plain LM.

``--push-to-hub OWNER/NAME`` (extra ``[hub]``) then uploads the package to a Hugging Face model repo in the layout
the loaders read from a repo id (`audiocraft.models.hub`), with a model card (`audiocraft.models.model_card`):
the architecture, the training config, the metrics of the XP (last epoch of its history, and
``exported/export_metrics.json`` when the XP wrote one), its ``datasource.*`` manifests and the license. A language
model is uploaded with the compression model it was trained on (``--compression-model``, default the XP's
``exported/compression_state_dict.bin``), so that ``MusicGen.get_pretrained(OWNER/NAME)`` loads it.

Usage::

    audiocraft-export 1a2b3c4d exported/encodec.bin          # XP signature (in the Dora dir)
    audiocraft-export //sig/1a2b3c4d exported/encodec.bin
    audiocraft-export outputs/xps/1a2b3c4d/checkpoint.th exported/encodec.bin
    audiocraft-export 1a2b3c4d exported/encodec.bin --push-to-hub my-user/my-encodec
"""

from __future__ import annotations

import argparse
import importlib
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import torch

from audiocraft.environment import AudioCraftEnvironment
from audiocraft.models import loaders
from audiocraft.models.export import SOLVER_KINDS
from audiocraft.models.hub import HubPushError, check_repo_id, push_files_to_hub
from audiocraft.models.model_card import build_model_card
from audiocraft.solvers.lora import merged_lora_checkpoint
from audiocraft.utils.checkpoint import resolve_checkpoint_path
from audiocraft.utils.export import export_checkpoint


def _xp_metrics(checkpoint: Path) -> dict[str, dict[str, float]]:
    """The metrics to show in the card: the last epoch of the XP's history, then ``exported/export_metrics.json``."""
    metrics: dict[str, dict[str, float]] = {}
    pkg = torch.load(checkpoint, map_location="cpu", weights_only=True)
    history = pkg.get("history") if isinstance(pkg, dict) else None
    if isinstance(history, list) and history:
        for stage, values in history[-1].items():
            if isinstance(values, dict):
                numbers = {k: float(v) for k, v in values.items() if isinstance(v, (int, float))}
                if numbers:
                    metrics[f"{stage} (epoch {len(history)})"] = numbers
    export_metrics = checkpoint.parent / "exported" / "export_metrics.json"
    if export_metrics.is_file():
        metrics["export (evaluate split)"] = {k: float(v) for k, v in json.loads(export_metrics.read_text()).items()}
    return metrics


def _push(args: argparse.Namespace, checkpoint: Path, out: Path) -> str:
    """Upload the exported package ``out`` (and its compression model, for an LM) with its card; return the URL."""
    pkg = loaders.load_checkpoint_file(out)
    cfg = loaders.config_from_package(pkg, str(out))
    kind = SOLVER_KINDS[str(cfg.get("solver"))]
    files: dict[str, Path | bytes] = {}
    lm: Any = None
    if kind == "lm":
        lm = loaders.load_lm_model(out)
        default = checkpoint.parent / "exported" / loaders.COMPRESSION_FILENAME
        source = Path(args.compression_model) if args.compression_model else default
        if source.is_dir():
            source = source / loaders.COMPRESSION_FILENAME
        if not source.is_file():
            raise HubPushError(
                f"--push-to-hub of a language model uploads the compression model it was trained on: {source} does "
                "not exist (pass --compression-model <exported compression_state_dict.bin or its folder>)"
            )
        compression = loaders.load_compression_model(source)
        files = {loaders.LM_FILENAME: out, loaders.COMPRESSION_FILENAME: source}
    else:
        compression = loaders.load_compression_model(out)
        files = {loaders.COMPRESSION_FILENAME: out}
    signature = checkpoint.parent.name if checkpoint.parent.parent.name == "xps" else None
    card = build_model_card(
        cfg,
        compression,
        lm,
        metrics=_xp_metrics(checkpoint),
        signature=signature,
        license=args.license,
        repo_id=args.push_to_hub,
    )
    if args.card_only:  # refresh the card of a repo that already holds these weights
        files = {}
    files["README.md"] = card.encode()
    return push_files_to_hub(
        files,
        args.push_to_hub,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        token=args.token,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audiocraft-export", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="XP signature, //sig/<SIG>, XP folder or training checkpoint file")
    parser.add_argument("out_file", type=Path, help="package to write (.bin/.th, or .safetensors for EnCodec)")
    parser.add_argument(
        "--dora-dir",
        type=Path,
        default=None,
        help="Dora directory holding xps/ (default: AUDIOCRAFT_DORA_DIR or the team file)",
    )
    parser.add_argument(
        "--checkpoint-name",
        default=None,
        help="epoch checkpoint to export instead of the last one, e.g. 25 for checkpoint_25.th",
    )
    hub = parser.add_argument_group("sharing on the Hugging Face hub (extra [hub])")
    hub.add_argument("--push-to-hub", metavar="REPO_ID", default=None, help="upload the export to OWNER/NAME")
    hub.add_argument("--private", action="store_true", help="create the repo private")
    hub.add_argument("--revision", "--branch", default=None, help="branch to push to (created if missing)")
    hub.add_argument("--commit-message", default=None, help="summary of the hub commit")
    hub.add_argument("--token", default=None, help="hub token (default: HF_TOKEN or the saved `hf auth login`)")
    hub.add_argument("--license", default=None, help="license of the weights in the card (default: see docs)")
    hub.add_argument(
        "--card-only",
        action="store_true",
        help="upload only the regenerated model card (README.md); the repo's weights are left as they are",
    )
    hub.add_argument(
        "--compression-model",
        default=None,
        help="for a language model: the exported compression package to upload with it "
        "(default: <xp>/exported/compression_state_dict.bin)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``audiocraft-export``; returns the exit status (0 done, 1 failed, 2 nothing to export or bad usage).

    Args:
        argv: the command-line arguments (default: ``sys.argv[1:]``).
    """
    args = _parser().parse_args(argv)
    if args.card_only and args.push_to_hub is None:
        print("audiocraft-export: --card-only goes with --push-to-hub REPO_ID", file=sys.stderr)
        return 2
    if args.push_to_hub is not None:
        try:
            check_repo_id(args.push_to_hub)
        except ValueError as exc:
            print(f"audiocraft-export: --push-to-hub: {exc}", file=sys.stderr)
            return 2
        if args.out_file.suffix == ".safetensors":
            print(
                "audiocraft-export: --push-to-hub uploads a torch package (.bin/.th): the hub loaders read "
                f"{loaders.COMPRESSION_FILENAME} / {loaders.LM_FILENAME} from a repo id",
                file=sys.stderr,
            )
            return 2
        try:
            importlib.import_module("huggingface_hub")
        except ImportError:
            print(
                "audiocraft-export: --push-to-hub needs huggingface_hub: pip install 'audiocraft[hub]' "
                "(or 'audiocraft-models[hub]'); nothing was exported",
                file=sys.stderr,
            )
            return 1
    try:
        environment = AudioCraftEnvironment()
        dora_dir = args.dora_dir or environment.get_dora_dir()
        path = resolve_checkpoint_path(
            args.source, name=args.checkpoint_name, xps_root=Path(dora_dir) / "xps", environment=environment
        )
        if path is None:
            print(
                f"audiocraft-export: no checkpoint found for {args.source!r} (XPs are looked up in "
                f"{Path(dora_dir) / 'xps'})",
                file=sys.stderr,
            )
            return 2
        # A LoRA run's checkpoint holds adapter keys: export it with the adapters merged (a plain LM).
        with merged_lora_checkpoint(path, from_checkpoint=True) as source:
            out = export_checkpoint(source, args.out_file)
        print(f"Exported {path} to {out}")
        if args.push_to_hub is not None:
            url = _push(args, path, out)
            print(f"Pushed {out} to the Hugging Face hub: {url}")
    except ImportError as exc:  # an optional dependency of this model kind (e.g. peft for LoRA)
        print(
            f"audiocraft-export: a package this export needs is missing: {exc} (install it, or the package extra "
            "the error names, into this environment)",
            file=sys.stderr,
        )
        return 1
    except OSError as exc:  # unreadable source, unwritable destination, disk full, ...
        print(
            f"audiocraft-export: {exc} (exporting {args.source} to {args.out_file}; nothing was written)",
            file=sys.stderr,
        )
        return 1
    except (ValueError, RuntimeError, KeyError, pickle.UnpicklingError, HubPushError) as exc:
        print(f"audiocraft-export: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
