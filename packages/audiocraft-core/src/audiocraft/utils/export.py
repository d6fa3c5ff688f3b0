"""Export helpers used by task solvers and the ``audiocraft-export`` command: training checkpoint -> release
package (``{best_state, xp.cfg, version, exported}``) loadable by audiocraft-models alone.

Part of audiocraft-core (training layer). The release format itself belongs to `audiocraft.models.export`
(EnCodec); this module adds language-model export and `export_checkpoint`, which picks the exporter from the
``solver`` stored in the checkpoint's config.
"""

from __future__ import annotations

import typing as tp
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from audiocraft.models.export import export_encodec, export_pretrained_compression_model, package_version

from .checkpoint import atomic_torch_save, load_checkpoint

__all__ = ["export_checkpoint", "export_encodec", "export_lm", "export_pretrained_compression_model"]


def export_lm(training_checkpoint: str | Path, out_file: str | Path) -> Path:
    """Export the best state of a language-model training checkpoint (MusicGen / AudioGen solvers)."""
    source = Path(training_checkpoint)
    pkg = load_checkpoint(source)
    best = pkg.get("fsdp_best_state") or pkg.get("best_state") or {}
    if "model" not in best:
        raise ValueError(f"training checkpoint {source} has no best state for 'model' (keys: {sorted(pkg)})")
    cfg = pkg.get("xp.cfg")
    if not isinstance(cfg, str):
        raise ValueError(f"training checkpoint {source} has no 'xp.cfg' YAML string")
    out = Path(out_file)
    atomic_torch_save({"best_state": best["model"], "xp.cfg": cfg, "version": package_version(), "exported": True},
                      out)
    return out


_EXPORTERS: dict[str, tp.Callable[[Path, Path], Path]] = {
    "compression": export_encodec,
    "musicgen": export_lm,
    "audiogen": export_lm,
    "lm": export_lm,
    "sound_lm": export_lm,
}


def export_checkpoint(training_checkpoint: str | Path, out_file: str | Path) -> Path:
    """Export a training checkpoint with the exporter of the solver that wrote it.

    Raises:
        ValueError: if the checkpoint's solver has no exporter (listing the known solvers).
    """
    source = Path(training_checkpoint)
    pkg = load_checkpoint(source)
    cfg_text = pkg.get("xp.cfg")
    if not isinstance(cfg_text, str):
        raise ValueError(f"training checkpoint {source} has no 'xp.cfg' YAML string")
    cfg = OmegaConf.create(cfg_text)
    solver = cfg.get("solver") if isinstance(cfg, DictConfig) else None
    if solver not in _EXPORTERS:
        raise ValueError(f"no exporter for solver {solver!r} of {source}; expected one of {sorted(_EXPORTERS)}")
    return Path(_EXPORTERS[solver](source, Path(out_file)))
