"""End of language-model training: the best state exported to the folder layout `MusicGen.get_pretrained` loads.

Part of audiocraft-core (task solvers, private). ``<xp>/exported/`` receives ``state_dict.bin`` (the LM's best
state and training config, through `audiocraft.models.export.export_lm`, which loads it back before keeping it) and
``compression_state_dict.bin``, the frozen compression model the LM was trained on: the exported package of a
compression XP is copied, a compression training checkpoint is exported, a ``//pretrained/NAME`` that is not a
local file is recorded by name (`export_pretrained_compression_model`), and the debug model built in place is
written with a config that rebuilds it. Rank 0 writes; its outcome is broadcast so that no worker waits forever.
"""

from __future__ import annotations

import logging
import shutil
import typing as tp
from pathlib import Path

import flashy
import torch

from audiocraft.models import loaders
from audiocraft.models.export import atomic_write, export_lm, export_pretrained_compression_model, package_version

from ..utils import checkpoint
from ._lm_training import DEBUG_COMPRESSION_RATES
from ._lora import merged_lora_checkpoint
from .compression_loading import _default_xps_root

if tp.TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = ["EXPORT_DIR", "export_lm_folder", "export_lm_folder_on_rank_zero"]

EXPORT_DIR = "exported"
_DEBUG_NAME = "debug_compression_model"  # the named debug model of audiocraft.models.loaders.NAMED_MODELS
logger = logging.getLogger(__name__)

# SEANet ratios of `get_debug_compression_model` (25 frames/s) at each sample rate it supports (twin of
# audiocraft.models.builders._DEBUG_RATIOS, private there).
_DEBUG_RATIOS = {16000: [10, 8, 8], 32000: [10, 8, 16]}


def _debug_compression_config(sample_rate: int) -> dict[str, tp.Any]:
    """A compression-model config that `get_compression_model` turns into the in-place debug model's architecture."""
    assert sample_rate in DEBUG_COMPRESSION_RATES
    return {
        "compression_model": "encodec",
        "sample_rate": sample_rate,
        "channels": 1,
        "encodec": {"autoencoder": "seanet", "quantizer": "rvq", "sample_rate": sample_rate, "channels": 1},
        "seanet": {"n_filters": 4, "n_residual_layers": 1, "dimension": 32, "ratios": _DEBUG_RATIOS[sample_rate]},
        "rvq": {"bins": 400, "n_q": 4},
    }


def _write_package(out: Path, write: tp.Callable[[Path], tp.Any]) -> None:
    def check(written: Path) -> None:
        loaders.load_compression_model(written)

    atomic_write(out, write, check)


def _resolve(source: str, environment: tp.Any) -> Path | str:
    """The local file of a compression source, or the name to record for a ``//pretrained/`` model."""
    if source.startswith(loaders.PRETRAINED_PREFIX):
        resolved = loaders.resolve_pretrained(source)
        local = Path(resolved)
        if local.is_dir():
            local = local / loaders.COMPRESSION_FILENAME
        return local if local.is_file() else resolved
    is_signature = source.startswith(checkpoint.SIG_PREFIX) or not Path(source).exists()
    root = _default_xps_root(environment) if is_signature else None
    path: Path | None = checkpoint.resolve_checkpoint_path(source, xps_root=root, environment=environment)
    if path is None and Path(source).is_dir():
        path = Path(source) / loaders.COMPRESSION_FILENAME
    if path is None or not path.is_file():
        raise FileNotFoundError(f"compression_model_checkpoint={source!r}: no file to export")
    return path


def export_compression(
    cfg: DictConfig, compression_model: torch.nn.Module, out: Path, environment: tp.Any = None
) -> Path:
    """Write the compression model of an LM training run as ``out`` (see the module docstring)."""
    source = cfg.get("compression_model_checkpoint")
    resolved = None if source is None else _resolve(str(source), environment)
    if resolved is None or resolved == _DEBUG_NAME:
        # The debug model (built in place, or upstream's named one) is written with a config that rebuilds it:
        # recording its name would make the reload check rebuild it, whose k-means initialisation of the codebooks
        # is a collective that only rank 0 would enter.
        from omegaconf import OmegaConf

        base: tp.Any = getattr(compression_model, "model", compression_model)  # unwrap a stereo wrapper
        pkg = {
            "best_state": {k: v.cpu() for k, v in base.state_dict().items()},
            "xp.cfg": OmegaConf.to_yaml(OmegaConf.create(_debug_compression_config(int(base.sample_rate)))),
            "version": package_version(),
            "exported": True,
        }
        _write_package(out, lambda tmp: torch.save(pkg, tmp))
        return out
    if isinstance(resolved, str):
        return export_pretrained_compression_model(resolved, out)
    pkg = loaders.load_checkpoint_file(resolved)
    if pkg.get("exported") or "pretrained" in pkg:
        _write_package(out, lambda tmp: shutil.copyfile(resolved, tmp))
        return out
    from audiocraft.models.export import export_encodec

    return export_encodec(resolved, out)


def export_lm_folder(
    training_checkpoint: Path,
    folder: Path,
    cfg: DictConfig,
    compression_model: torch.nn.Module,
    environment: tp.Any = None,
    log: logging.Logger = logger,
) -> bool:
    """Export ``state_dict.bin`` and ``compression_state_dict.bin`` into ``folder`` unless they are up to date.

    Returns:
        Whether the folder was already up to date (nothing written).
    """
    lm_file, compression_file = folder / loaders.LM_FILENAME, folder / loaders.COMPRESSION_FILENAME
    if (
        lm_file.exists()
        and compression_file.exists()
        and lm_file.stat().st_mtime >= training_checkpoint.stat().st_mtime
    ):
        log.info("Exported model %s is up to date.", folder)
        return True
    folder.mkdir(parents=True, exist_ok=True)
    export_compression(cfg, compression_model, compression_file, environment)
    with merged_lora_checkpoint(training_checkpoint, cfg.get("lora")) as source:  # LoRA runs: adapters merged
        export_lm(source, lm_file)
    log.info(
        "Exported the best state to %s (%s + %s): load it with MusicGen.get_pretrained(%r)",
        folder,
        loaders.LM_FILENAME,
        loaders.COMPRESSION_FILENAME,
        str(folder),
    )
    return False


def export_lm_folder_on_rank_zero(
    training_checkpoint: Path,
    folder: Path,
    cfg: DictConfig,
    compression_model: torch.nn.Module,
    environment: tp.Any = None,
    log: logging.Logger = logger,
) -> None:
    """`export_lm_folder` on rank 0; every worker must call it and raises if rank 0 failed."""
    failure: Exception | None = None
    error: str | None = None
    if flashy.distrib.is_rank_zero():
        try:
            export_lm_folder(training_checkpoint, folder, cfg, compression_model, environment, log)
        except Exception as exc:  # re-raised below, once the other workers know
            failure, error = exc, f"{type(exc).__name__}: {exc}"
    error = flashy.distrib.broadcast_object(error)
    if failure is not None:
        raise failure
    if error is not None:
        raise RuntimeError(f"exporting {training_checkpoint} to {folder} failed on rank 0: {error}")
