"""Turn a training checkpoint into a release package that audiocraft-models loads alone; write files atomically.

Layer: audiocraft-models, models. :func:`export_model` is the one release export: it reads a training checkpoint
(a dict with ``xp.cfg`` and ``fsdp_best_state`` / ``best_state = {'model': state_dict, ...}``, or ``model`` when there
is no best state), takes the best state, and writes upstream AudioCraft's exported layout
``{best_state: state_dict, xp.cfg: YAML string, version, exported: True}`` atomically. Before the file takes its
name, the written package is loaded back through the public loader of its kind (:func:`loaders.load_model`: the
model is rebuilt from the config and the state loaded strictly) and compared with the exported tensors; a package
that does not load is never left behind. ``export_encodec`` and ``export_lm`` are its uses for one model kind;
``export_checkpoint`` picks the kind from the ``solver`` stored in the checkpoint. A ``.safetensors`` output file
gets the tensors, with ``xp.cfg`` and ``version`` as metadata.

:func:`atomic_write` (and :func:`atomic_torch_save`) is the project's one atomic file writer, re-exported here from
:mod:`audiocraft.data.atomic` (the training checkpoints of audiocraft-core use it through this path).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from audiocraft.data.atomic import atomic_torch_save, atomic_write

from . import loaders
from .loaders import OWN_VERSION_PREFIX, CheckpointError

__all__ = [
    "atomic_torch_save",
    "atomic_write",
    "best_model_state",
    "export_checkpoint",
    "export_encodec",
    "export_lm",
    "export_model",
    "export_pretrained_compression_model",
    "package_version",
]

# Which kind of model (key of loaders.MODEL_KINDS) each training solver produces.
SOLVER_KINDS: dict[str, str] = {
    "compression": "compression",
    "musicgen": "lm",
    "audiogen": "lm",
    "lm": "lm",
    "sound_lm": "lm",
}


def package_version() -> str:
    """The ``version`` written into exported packages: ``audiocraft-models/<version>``."""
    try:
        return OWN_VERSION_PREFIX + importlib.metadata.version("audiocraft-models")
    except importlib.metadata.PackageNotFoundError:
        return OWN_VERSION_PREFIX + "unknown"


def _read_training_checkpoint(path: Path, trust_pickle: bool) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"training checkpoint {path} does not exist")
    try:
        pkg = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as exc:
        hint = (
            ""
            if trust_pickle
            else " If it was written by upstream AudioCraft (it pickles OmegaConf objects) "
            "and you trust it, pass trust_pickle=True."
        )
        raise CheckpointError(f"could not read training checkpoint {path}: {type(exc).__name__}: {exc}.{hint}") from exc
    if not isinstance(pkg, dict):
        raise CheckpointError(f"training checkpoint {path} holds a {type(pkg).__name__}, expected a dict")
    return pkg


def _config_yaml(pkg: dict[str, Any], source: Path) -> str:
    if "xp.cfg" not in pkg:
        raise CheckpointError(f"training checkpoint {source} has no 'xp.cfg' (keys: {sorted(pkg)})")
    raw = pkg["xp.cfg"]
    if isinstance(raw, str):
        cfg = OmegaConf.create(raw)
    elif isinstance(raw, (Mapping, DictConfig)):
        cfg = OmegaConf.create(raw if isinstance(raw, DictConfig) else dict(raw))
    else:
        raise CheckpointError(
            f"training checkpoint {source}: 'xp.cfg' is a {type(raw).__name__}, expected a YAML string or a mapping"
        )
    if not isinstance(cfg, DictConfig):
        raise CheckpointError(f"training checkpoint {source}: 'xp.cfg' is not a mapping")
    return OmegaConf.to_yaml(cfg)


def best_model_state(pkg: dict[str, Any], source: str | Path) -> dict[str, torch.Tensor]:
    """The model weights to release from a training checkpoint, on CPU.

    In order: ``fsdp_best_state['model']`` (sharded training), ``best_state['model']``, a ``best_state`` that is
    already a flat state dict, then the live ``model`` (checkpoints written without a best state).

    Raises:
        CheckpointError: naming ``source`` when none of them is there.
    """
    for key in ("fsdp_best_state", "best_state"):
        best = pkg.get(key)
        if isinstance(best, Mapping) and isinstance(best.get("model"), Mapping) and best["model"]:
            state = best["model"]
            break
    else:
        best = pkg.get("best_state")
        if isinstance(best, Mapping) and best and all(isinstance(v, torch.Tensor) for v in best.values()):
            state = best
        elif isinstance(pkg.get("model"), Mapping) and pkg["model"]:
            state = pkg["model"]
        else:
            raise CheckpointError(
                f"training checkpoint {source} has neither best_state['model'] nor 'model' (keys: {sorted(pkg)})"
            )
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def _kind_of(cfg_yaml: str, kind: str | None, source: Path) -> str:
    if kind is not None:
        if kind not in loaders.MODEL_KINDS:
            raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(loaders.MODEL_KINDS)}")
        return kind
    cfg = OmegaConf.create(cfg_yaml)
    solver = cfg.get("solver") if isinstance(cfg, DictConfig) else None
    if solver not in SOLVER_KINDS:
        raise ValueError(f"no exporter for solver {solver!r} of {source}; expected one of {sorted(SOLVER_KINDS)}")
    return SOLVER_KINDS[solver]


def _reload_check(kind: str, state: dict[str, torch.Tensor], source: Path) -> Callable[[Path], None]:
    def check(written: Path) -> None:
        try:
            model = loaders.load_model(kind, written, device="cpu")
        except CheckpointError as exc:
            raise CheckpointError(
                f"exporting training checkpoint {source}: the {kind} model does not load: {exc}"
            ) from exc
        reloaded = model.state_dict()
        differ = sorted(k for k, v in state.items() if not torch.equal(reloaded[k].cpu(), v))
        if differ:
            raise CheckpointError(
                f"exporting training checkpoint {source}: the written package does not give "
                f"back the exported weights for {differ[:5]}"
            )

    return check


def _save_package(pkg: dict[str, Any], out_file: Path, check: Callable[[Path], None]) -> None:
    if out_file.suffix == ".safetensors":
        try:
            st_torch = importlib.import_module("safetensors.torch")
        except ImportError as exc:
            raise ImportError("writing .safetensors needs: pip install 'audiocraft-models[safetensors]'") from exc
        metadata = {"xp.cfg": pkg["xp.cfg"], "version": pkg["version"], "exported": "true"}
        atomic_write(out_file, lambda tmp: st_torch.save_file(pkg["best_state"], str(tmp), metadata=metadata), check)
    else:
        atomic_write(out_file, lambda tmp: torch.save(pkg, tmp), check)


def export_model(
    training_checkpoint: str | Path, out_file: str | Path, kind: str | None = None, *, trust_pickle: bool = False
) -> Path:
    """Export the best model of a training checkpoint to a release package, loaded back before it is kept.

    Args:
        training_checkpoint: checkpoint written by a training solver.
        out_file: the package to write (``.th``/``.bin``: torch; ``.safetensors``: safetensors).
        kind: ``compression`` or ``lm`` (see ``loaders.MODEL_KINDS``); None picks it from the checkpoint's
            ``solver`` (:data:`SOLVER_KINDS`).
        trust_pickle: read the checkpoint with full pickle (only for trusted upstream checkpoints that hold
            OmegaConf objects); by default only tensors, numbers, strings and containers are read.

    Returns:
        The path written.

    Raises:
        CheckpointError: naming the file, if it cannot be read, has no config or model state, or does not fit
            the model its config builds (then nothing is written).
        ValueError: unknown ``kind``, or a checkpoint whose solver has no exporter.
    """
    source, out_file = Path(training_checkpoint), Path(out_file)
    pkg = _read_training_checkpoint(source, trust_pickle)
    yaml_cfg = _config_yaml(pkg, source)
    kind = _kind_of(yaml_cfg, kind, source)
    state = best_model_state(pkg, source)
    exported = {"best_state": state, "xp.cfg": yaml_cfg, "version": package_version(), "exported": True}
    _save_package(exported, out_file, _reload_check(kind, state, source))
    return out_file


def export_encodec(training_checkpoint: str | Path, out_file: str | Path, *, trust_pickle: bool = False) -> Path:
    """Export the compression model of a training checkpoint (:func:`export_model` with ``kind='compression'``)."""
    return export_model(training_checkpoint, out_file, "compression", trust_pickle=trust_pickle)


def export_lm(training_checkpoint: str | Path, out_file: str | Path, *, trust_pickle: bool = False) -> Path:
    """Export the language model of a MusicGen / AudioGen training checkpoint (``kind='lm'``)."""
    return export_model(training_checkpoint, out_file, "lm", trust_pickle=trust_pickle)


def export_checkpoint(training_checkpoint: str | Path, out_file: str | Path, *, trust_pickle: bool = False) -> Path:
    """Export a training checkpoint as the solver that wrote it asks (:func:`export_model` with ``kind=None``)."""
    return export_model(training_checkpoint, out_file, None, trust_pickle=trust_pickle)


def export_pretrained_compression_model(pretrained_name: str, out_file: str | Path) -> Path:
    """Write a package that only names a pretrained compression model, checked by loading it.

    Useful to record which published codec a language model was trained on, e.g. ``facebook/encodec_32khz``
    (then loading it is the check, which needs the model in the hub cache or the network).
    """
    out_file = Path(out_file)
    pkg = {"pretrained": pretrained_name, "exported": True, "version": package_version()}

    def check(written: Path) -> None:
        loaders.load_compression_model(written)

    atomic_write(out_file, lambda tmp: torch.save(pkg, tmp), check)
    return out_file
