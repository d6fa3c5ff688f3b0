"""End of compression training: export the best state, then compare it with an untrained model, on every worker.

Part of audiocraft-core (task solvers), called by `CompressionSolver.run` on every worker. Rank 0 alone writes
``<xp>/exported/compression_state_dict.bin`` (through `audiocraft.models.export.export_encodec`, which loads the
package back before keeping it) and ``export_metrics.json``; its decision (up to date, exported, or failed) is
broadcast so that no worker waits forever for a rank that stopped. Then every worker loads the exported package
(the XP folder is shared, as Dora requires), scores its share of the evaluate split with it and with an untrained
model of the same config, and `evaluate_model` reduces the scores across workers, so the numbers are those of
the whole split, not of rank 0's share.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import flashy
import omegaconf
import torch

from .compression_loading import load_frozen_compression_model
from .compression_metrics import evaluate_model

__all__ = ["EXPORT_DIR", "EXPORT_NAME", "SUMMARY_NAME", "export_and_compare"]

EXPORT_DIR = "exported"
"""Folder of an XP that the export of its best state is written to (``<xp>/exported``)."""
EXPORT_NAME = "compression_state_dict.bin"
"""File name of the exported compression model in `EXPORT_DIR`."""
SUMMARY_NAME = "export_metrics.json"
"""File name of the export's metrics summary (JSON) in `EXPORT_DIR`."""

logger = logging.getLogger(__name__)


def _export_if_needed(checkpoint: Path, out: Path, log: logging.Logger) -> bool:
    """Export unless ``out`` is newer than ``checkpoint``; return whether it was already up to date."""
    from audiocraft.models.export import export_encodec

    if out.exists() and out.stat().st_mtime >= checkpoint.stat().st_mtime:
        log.info("Exported model %s is up to date.", out)
        return True
    export_encodec(checkpoint, out)
    log.info("Exported the best state to %s", out)
    return False


def export_and_compare(
    checkpoint: Path,
    out: Path,
    cfg: omegaconf.DictConfig,
    loader: torch.utils.data.DataLoader | None,
    device: str | torch.device,
    log: logging.Logger = logger,
) -> dict[str, float]:
    """Export the best state of ``checkpoint`` to ``out`` and log its evaluate SI-SNR against an untrained model's.

    Every worker must call it (it ends with collectives when distributed).

    Args:
        checkpoint: the XP's last training checkpoint.
        out: the package to write.
        cfg: the training config (the untrained model is built from it, seeded with ``cfg.seed``).
        loader: this worker's evaluate loader; None skips the comparison.
        device: device for the comparison.
        log: where to report (the solver's logger).

    Returns:
        ``{'sisnr_db_exported', 'sisnr_db_untrained', 'sisnr_db_gain'}`` (positive SI-SNR in dB), also written
        to ``<out folder>/export_metrics.json``; the stored summary when the export was already up to date.

    Raises:
        RuntimeError: on every worker, if the export failed on rank 0 (rank 0 re-raises its own error).
    """
    summary_file = out.parent / SUMMARY_NAME
    failure: Exception | None = None
    decision: tuple[bool, str | None] | None = None
    if flashy.distrib.is_rank_zero():
        try:
            # a run killed between the export and its summary redoes the comparison when it resumes
            decision = (_export_if_needed(checkpoint, out, log) and (loader is None or summary_file.exists()), None)
        except Exception as exc:  # re-raised below, once the other workers know
            failure, decision = exc, (False, f"{type(exc).__name__}: {exc}")
    up_to_date, error = flashy.distrib.broadcast_object(decision)
    if failure is not None:
        raise failure
    if error is not None:
        raise RuntimeError(f"exporting {checkpoint} to {out} failed on rank 0: {error}")
    if up_to_date:
        return json.loads(summary_file.read_text()) if summary_file.exists() else {}
    if loader is None:
        return {}
    exported = load_frozen_compression_model(out, device, sample_rate=cfg.sample_rate, channels=cfg.channels)
    from audiocraft.models import builders as model_builders

    with torch.random.fork_rng(devices=[]):  # leave the training RNG streams untouched
        torch.manual_seed(cfg.seed)
        untrained = model_builders.get_compression_model(cfg).to(device).eval()
    summary: dict[str, float] = {}
    for name, model in (("exported", exported), ("untrained", untrained)):
        metrics = evaluate_model(model, loader, cfg, device, only_sisnr=True)
        summary[f"sisnr_db_{name}"] = -float(metrics["sisnr"])
    summary["sisnr_db_gain"] = summary["sisnr_db_exported"] - summary["sisnr_db_untrained"]
    log.info(
        "Evaluate SI-SNR: exported model %.2f dB, untrained model %.2f dB (gain %+.2f dB)",
        summary["sisnr_db_exported"],
        summary["sisnr_db_untrained"],
        summary["sisnr_db_gain"],
    )
    if flashy.distrib.is_rank_zero():
        summary_file.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
