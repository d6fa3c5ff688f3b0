"""Reconstruction metrics of compression models over a data loader, correct with several workers.

Part of audiocraft-core (task solvers), used by `CompressionSolver.evaluate` and by the end-of-training export.
`ReconstructionMetrics` scores one batch (upstream's *negated* SI-SNR in dB, lower is better; ``mel`` /
``mrstft`` distances; ViSQOL through `audiocraft.solvers.builders.get_visqol`). `evaluate_model` runs a model
over each worker's share of a loader and reduces across workers once, in a fixed order that every worker
follows (also a worker with no batch): the per-batch metrics are averaged over every batch of every worker (as
upstream's ``flashy.distrib.average_metrics(metrics, len(loader))``), and the code histograms are summed before
the codebook usage and entropy are computed from them.
"""

from __future__ import annotations

import math
import multiprocessing
import typing as tp

import flashy
import omegaconf
import torch
from torch import nn

from .. import losses
from ..utils.utils import get_pool_executor
from . import builders

__all__ = ["ReconstructionMetrics", "evaluate_audio_reconstruction", "evaluate_model"]


class ReconstructionMetrics:
    """Reconstruction metrics of one batch `[B, C, T]`, built once from the config (picklable, for a process pool).

    Calling it returns ``sisnr`` (negated SI-SNR in dB, as upstream; ``evaluate.metrics.sisnr``), the ``mel`` and
    ``mrstft`` distances (``evaluate.metrics.base``), and ``visqol`` when ``evaluate.metrics.visqol`` is on.

    Args:
        cfg: the full training config.
        only_sisnr: compute SI-SNR alone (the export's comparison with an untrained model).
    """

    def __init__(self, cfg: omegaconf.DictConfig, only_sisnr: bool = False):
        self.sample_rate = int(cfg.sample_rate)
        self.sisnr = losses.get_loss("sisnr", cfg) if only_sisnr or cfg.evaluate.metrics.get("sisnr", True) else None
        self.spectral: dict[str, nn.Module] = {}
        self.visqol: tp.Any = None
        if only_sisnr:
            return
        if cfg.evaluate.metrics.get("base", True):
            self.spectral = {"mel": losses.get_loss("mel", cfg), "mrstft": losses.get_loss("mrstft", cfg)}
        if cfg.evaluate.metrics.get("visqol", False):
            if not cfg.metrics.visqol.bin:
                raise ValueError("evaluate.metrics.visqol=true needs metrics.visqol.bin (the ViSQOL install folder)")
            self.visqol = builders.get_visqol(cfg.metrics.visqol)

    @property
    def names(self) -> list[str]:
        """The metrics a call returns, in a fixed order (the order of the cross-worker reduction)."""
        return (
            (["sisnr"] if self.sisnr is not None else [])
            + list(self.spectral)
            + (["visqol"] if self.visqol is not None else [])
        )

    def __call__(self, y_pred: torch.Tensor, y: torch.Tensor) -> dict[str, tp.Any]:
        """Score a batch of reconstructions against the references.

        Args:
            y_pred: reconstructed audio ``[B, C, T]``.
            y: reference audio ``[B, C, T]``.

        Returns:
            The metric values by name (those of `names`).
        """
        metrics: dict[str, tp.Any] = {}
        with torch.no_grad():
            if self.sisnr is not None:
                metrics["sisnr"] = self.sisnr(y_pred, y)
            for name, loss in self.spectral.items():
                metrics[name] = loss.to(y.device)(y_pred, y)
        if self.visqol is not None:
            metrics["visqol"] = self.visqol(y_pred, y, self.sample_rate)
        return metrics


def evaluate_audio_reconstruction(y_pred: torch.Tensor, y: torch.Tensor, cfg: omegaconf.DictConfig) -> dict:
    """Upstream's entry point: `ReconstructionMetrics` of one batch."""
    return ReconstructionMetrics(cfg)(y_pred, y)


def _all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Reduce (``sum`` or ``max``) across workers (no-op alone), on the device the backend needs (as flashy)."""
    if not flashy.distrib.is_distributed():
        return tensor
    device = "cuda" if torch.cuda.is_available() else "cpu"
    reduced = tensor.to(device)
    reduce_op = {"sum": torch.distributed.ReduceOp.SUM, "max": torch.distributed.ReduceOp.MAX}[op]
    torch.distributed.all_reduce(reduced, op=reduce_op)
    return reduced.to(tensor.device)


class _CodeStats:
    """Per-level histograms of the codes of one worker's batches (only for models with integer codes)."""

    def __init__(self, model: nn.Module):
        bins = getattr(model, "cardinality", None)  # None for models without discrete codes (no_quant)
        levels = getattr(model, "total_codebooks", None)
        self.enabled = bins is not None and levels is not None
        self.hist = torch.zeros((int(levels), int(bins)) if self.enabled else (0, 0), dtype=torch.float64)  # type: ignore
        self.used_levels = 0
        self.frame_rate = float(getattr(model, "frame_rate", 0.0))

    def add(self, codes: torch.Tensor | None) -> None:
        if not self.enabled or codes is None or codes.is_floating_point():
            return
        codes = codes.reshape(codes.shape[0], codes.shape[1], -1).cpu()
        for k in range(codes.shape[1]):
            self.hist[k] += torch.bincount(codes[:, k].reshape(-1), minlength=self.hist.shape[1]).double()
        self.used_levels = max(self.used_levels, codes.shape[1])

    def reduce(self) -> dict[str, float]:
        """Sum the histograms of every worker; usage, entropy rate and nominal bit rate of the levels used."""
        if not self.enabled:
            return {}
        hist = _all_reduce(self.hist)
        used = int(_all_reduce(torch.tensor([self.used_levels]), "max").item())
        if used == 0:
            return {}
        hist = hist[:used]  # [K, bins]
        probs = hist / hist.sum(-1, keepdim=True).clamp(min=1)
        entropy_bits = -(probs * torch.log2(probs.clamp(min=1e-12))).sum(-1)  # [K]
        return {
            "codebook_usage": float((hist > 0).double().mean()),
            "entropy_kbps": float(entropy_bits.sum() * self.frame_rate / 1000),
            "bits_per_second": float(math.log2(hist.shape[-1]) * hist.shape[0] * self.frame_rate),
        }


def evaluate_model(
    model: nn.Module,
    loader: tp.Iterable,
    cfg: omegaconf.DictConfig,
    device: str | torch.device,
    log_progress: tp.Callable[[str, tp.Any, int], tp.Any] | None = None,
    only_sisnr: bool = False,
) -> dict[str, float]:
    """Run ``model`` over this worker's share of ``loader`` and average the metrics over every worker's batches.

    Every worker must call it (it ends with collective reductions when distributed); all of them get the same
    result. Metrics run in a process pool of ``evaluate.num_workers`` only when ViSQOL is on (an external
    binary); otherwise in this process, which avoids spawning workers for cheap tensor metrics.

    Args:
        model: the compression model (put in eval mode).
        loader: batches of audio `[B, C, T]` (or tuples whose first item is the audio).
        cfg: the full training config.
        device: device of the model.
        log_progress: wraps the iteration over the loader, ``(name, iterable, total) -> iterable``.
        only_sisnr: compute SI-SNR alone, without the codebook statistics.

    Returns:
        The reconstruction metrics, plus ``bandwidth`` (kb/s), ``codebook_usage``, ``entropy_kbps`` and
        ``bits_per_second`` unless ``only_sisnr``.
    """
    model.eval()
    total = len(loader) if hasattr(loader, "__len__") else 0  # type: ignore[arg-type]
    iterator = loader if log_progress is None else log_progress("inference", loader, total)
    use_pool = bool(cfg.evaluate.metrics.get("visqol", False)) and not only_sisnr
    num_workers = int(cfg.evaluate.get("num_workers") or 0) if use_pool else 0
    compute = ReconstructionMetrics(cfg, only_sisnr=only_sisnr)
    names = compute.names + ([] if only_sisnr else ["bandwidth"])
    sums = dict.fromkeys(names, 0.0)  # sums over this worker's batches of the per-batch metrics
    codes = _CodeStats(model)
    pendings = []
    n_batches = 0
    with get_pool_executor(num_workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for batch in iterator:
            x = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(device)
            with torch.no_grad():
                qres = model(x)
            n_batches += 1
            if not only_sisnr:
                sums["bandwidth"] += float(qres.bandwidth.mean())
                codes.add(qres.codes)
            pendings.append(pool.submit(compute, qres.x.cpu(), x.cpu()))
        for pending in pendings:
            for name, value in pending.result().items():
                sums[name] += float(value)
    totals = _all_reduce(torch.tensor([sums[name] for name in names] + [n_batches], dtype=torch.float64))
    count = max(float(totals[-1]), 1.0)
    metrics = {name: float(value) / count for name, value in zip(names, totals[:-1].tolist())}
    if not only_sisnr:
        metrics.update(codes.reduce())
    return metrics
