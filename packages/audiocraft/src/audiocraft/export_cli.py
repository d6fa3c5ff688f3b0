"""``audiocraft-export``: export any XP (by signature) or training checkpoint to the inference layout.

Part of the ``audiocraft`` meta-package. The exporter is chosen from the ``solver`` stored in the checkpoint's
config (EnCodec for ``compression``, language models for ``musicgen`` / ``audiogen``); the result loads with
audiocraft-models alone (``CompressionModel.get_pretrained(path)``, ...).

Usage::

    audiocraft-export 1a2b3c4d exported/encodec.bin          # XP signature (in the Dora dir)
    audiocraft-export //sig/1a2b3c4d exported/encodec.bin
    audiocraft-export outputs/xps/1a2b3c4d/checkpoint.th exported/encodec.bin
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audiocraft.environment import AudioCraftEnvironment
from audiocraft.utils.checkpoint import resolve_checkpoint_path
from audiocraft.utils.export import export_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="audiocraft-export", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="XP signature, //sig/<SIG>, XP folder or training checkpoint file")
    parser.add_argument("out_file", type=Path, help="package to write (.bin/.th, or .safetensors for EnCodec)")
    parser.add_argument("--dora-dir", type=Path, default=None,
                        help="Dora directory holding xps/ (default: AUDIOCRAFT_DORA_DIR or the team file)")
    parser.add_argument("--checkpoint-name", default=None,
                        help="epoch checkpoint to export instead of the last one, e.g. 25 for checkpoint_25.th")
    args = parser.parse_args(argv)
    environment = AudioCraftEnvironment()
    dora_dir = args.dora_dir or environment.get_dora_dir()
    path = resolve_checkpoint_path(args.source, name=args.checkpoint_name, xps_root=Path(dora_dir) / "xps",
                                   environment=environment)
    if path is None:
        print(f"audiocraft-export: no checkpoint found for {args.source!r} (XPs are looked up in "
              f"{Path(dora_dir) / 'xps'})", file=sys.stderr)
        return 2
    try:
        out = export_checkpoint(path, args.out_file)
    except (ValueError, RuntimeError) as exc:
        print(f"audiocraft-export: {exc}", file=sys.stderr)
        return 1
    print(f"Exported {path} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
