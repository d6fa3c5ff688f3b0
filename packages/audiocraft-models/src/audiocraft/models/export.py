"""Turn a training checkpoint into a release package that audiocraft-models loads alone.

Layer: audiocraft-models, models. ``export_encodec`` reads a training checkpoint (a dict with ``xp.cfg`` and
``best_state = {'model': state_dict, ...}``, or ``model`` when there is no best state), checks that the state dict
fits the model its config builds, and writes upstream AudioCraft's exported layout
``{best_state: state_dict, xp.cfg: YAML string, version, exported: True}`` atomically (temporary file, then
``os.replace``). A ``.safetensors`` output file gets the tensors, with ``xp.cfg`` and ``version`` as metadata.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from .loaders import OWN_VERSION_PREFIX, CheckpointError, load_state_dict_strict, migrate_cfg

__all__ = ["export_encodec", "export_pretrained_compression_model", "package_version"]


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
        hint = ("" if trust_pickle else " If it was written by upstream AudioCraft (it pickles OmegaConf objects) "
                "and you trust it, pass trust_pickle=True.")
        raise CheckpointError(f"could not read training checkpoint {path}: {type(exc).__name__}: {exc}.{hint}") \
            from exc
    if not isinstance(pkg, dict):
        raise CheckpointError(f"training checkpoint {path} holds a {type(pkg).__name__}, expected a dict")
    return pkg


def _config_yaml(raw: Any, source: Path) -> str:
    if isinstance(raw, str):
        cfg = OmegaConf.create(raw)
    elif isinstance(raw, (Mapping, DictConfig)):
        cfg = OmegaConf.create(raw if isinstance(raw, DictConfig) else dict(raw))
    else:
        raise CheckpointError(f"training checkpoint {source}: 'xp.cfg' is a {type(raw).__name__}, "
                              "expected a YAML string or a mapping")
    return OmegaConf.to_yaml(cfg)


def _model_state(pkg: dict[str, Any], source: Path) -> dict[str, torch.Tensor]:
    best = pkg.get("best_state")
    if isinstance(best, Mapping) and isinstance(best.get("model"), Mapping):
        state = best["model"]
    elif isinstance(best, Mapping) and best and all(isinstance(v, torch.Tensor) for v in best.values()):
        state = best  # already a flat state dict
    elif isinstance(pkg.get("model"), Mapping):
        state = pkg["model"]
    else:
        raise CheckpointError(f"training checkpoint {source} has neither best_state['model'] nor 'model' "
                              f"(keys: {sorted(pkg)})")
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def _atomic_write(out_file: Path, write: Any) -> None:
    out_file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out_file.name}.", suffix=".tmp", dir=out_file.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, out_file)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _save_package(pkg: dict[str, Any], out_file: Path) -> None:
    if out_file.suffix == ".safetensors":
        try:
            st_torch = importlib.import_module("safetensors.torch")
        except ImportError as exc:
            raise ImportError("writing .safetensors needs: pip install 'audiocraft-models[safetensors]'") from exc
        metadata = {"xp.cfg": pkg["xp.cfg"], "version": pkg["version"], "exported": "true"}
        _atomic_write(out_file, lambda tmp: st_torch.save_file(pkg["best_state"], tmp, metadata=metadata))
    else:
        _atomic_write(out_file, lambda tmp: torch.save(pkg, tmp))


def export_encodec(training_checkpoint: str | Path, out_file: str | Path, *, validate: bool = True,
                   trust_pickle: bool = False) -> Path:
    """Export the model of an EnCodec training checkpoint to a release package.

    Args:
        training_checkpoint: checkpoint written by the compression solver.
        out_file: the package to write (``.th``/``.bin``: torch; ``.safetensors``: safetensors).
        validate: build the model from the config and load the state dict strictly before writing.
        trust_pickle: read the checkpoint with full pickle (only for trusted upstream checkpoints that hold
            OmegaConf objects); by default only tensors, numbers, strings and containers are read.

    Returns:
        The path written.

    Raises:
        CheckpointError: naming the file, if it cannot be read, has no config or model state, or does not fit.
    """
    source, out_file = Path(training_checkpoint), Path(out_file)
    pkg = _read_training_checkpoint(source, trust_pickle)
    if "xp.cfg" not in pkg:
        raise CheckpointError(f"training checkpoint {source} has no 'xp.cfg' (keys: {sorted(pkg)})")
    yaml_cfg = _config_yaml(pkg["xp.cfg"], source)
    state = _model_state(pkg, source)
    if validate:
        from . import builders

        cfg = OmegaConf.create(yaml_cfg)
        if not isinstance(cfg, DictConfig):
            raise CheckpointError(f"training checkpoint {source}: 'xp.cfg' is not a mapping")
        cfg = migrate_cfg(cfg, pkg.get("version"))
        cfg.device = "cpu"
        model = builders.get_compression_model(cfg)
        load_state_dict_strict(model, state, str(source))
    exported = {"best_state": state, "xp.cfg": yaml_cfg, "version": package_version(), "exported": True}
    _save_package(exported, out_file)
    return out_file


def export_pretrained_compression_model(pretrained_name: str, out_file: str | Path) -> Path:
    """Write a package that only points to a pretrained model (loaded with ``CompressionModel.get_pretrained``).

    Useful to record which published codec a language model was trained on, e.g. ``facebook/encodec_32khz``.
    """
    out_file = Path(out_file)
    pkg = {"pretrained": pretrained_name, "exported": True, "version": package_version()}
    _atomic_write(out_file, lambda tmp: torch.save(pkg, tmp))
    return out_file
