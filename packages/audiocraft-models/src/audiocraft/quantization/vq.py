"""Residual vector quantizer, the quantizer of EnCodec (layer: audiocraft-models, quantization).

:class:`ResidualVectorQuantizer` wraps :class:`~audiocraft.quantization.core_vq.ResidualVectorQuantization` with
upstream AudioCraft's constructor arguments and state-dict keys (``vq.layers.<i>._codebook.*``), quantizer dropout
(a random number of levels per training batch, i.e. bandwidth selection), codes laid out [B, K, T], input checks,
and per-level codebook usage and perplexity in the result's metrics.
"""

from __future__ import annotations

import math

import torch

from . import _distrib
from .base import BaseQuantizer, QuantizedResult
from .core_vq import ResidualVectorQuantization

__all__ = ["ResidualVectorQuantizer", "codebook_metrics"]


def codebook_metrics(codes: torch.Tensor, bins: int, prefix: str = "rvq") -> dict[str, torch.Tensor]:
    """Usage (share of codes used) and perplexity of each level of ``codes`` [B, K, T].

    Perplexity is ``exp(entropy)`` of the code histogram: ``bins`` when all codes are equally used, 1 when a single
    code is used.
    """
    metrics: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for k in range(codes.shape[1]):
            counts = torch.bincount(codes[:, k].reshape(-1), minlength=bins).float()
            probs = counts / counts.sum().clamp(min=1)
            entropy = -(probs * torch.log(probs.clamp(min=1e-12))).sum()
            metrics[f"{prefix}_usage_q{k}"] = (counts > 0).float().mean()
            metrics[f"{prefix}_perplexity_q{k}"] = entropy.exp()
    return metrics


class ResidualVectorQuantizer(BaseQuantizer):
    """Residual vector quantizer with EMA codebooks.

    Args:
        dimension: latent dimension.
        n_q: number of levels (codebooks).
        q_dropout: in training, use a random number of levels in [1, n_q] per batch.
        bins: codebook size.
        decay: EMA decay of the codebooks.
        kmeans_init: initialise each codebook with k-means on its first training batch.
        kmeans_iters: k-means iterations.
        threshold_ema_dead_code: replace codes whose EMA usage falls below this (0 disables).
        orthogonal_reg_weight: weight of the orthogonal regularisation of the codebooks.
        orthogonal_reg_active_codes_only: regularise only the codes used in the batch.
        orthogonal_reg_max_codes: regularise at most this many random codes.
    """

    def __init__(
        self,
        dimension: int = 256,
        n_q: int = 8,
        q_dropout: bool = False,
        bins: int = 1024,
        decay: float = 0.99,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        threshold_ema_dead_code: float = 2,
        orthogonal_reg_weight: float = 0.0,
        orthogonal_reg_active_codes_only: bool = False,
        orthogonal_reg_max_codes: int | None = None,
    ) -> None:
        super().__init__()
        if n_q < 1:
            raise ValueError(f"n_q must be >= 1, got {n_q}")
        self.max_n_q = n_q
        self.n_q = n_q
        self.q_dropout = q_dropout
        self.dimension = dimension
        self.bins = bins
        self.decay = decay
        self.kmeans_init = kmeans_init
        self.kmeans_iters = kmeans_iters
        self.threshold_ema_dead_code = threshold_ema_dead_code
        self.orthogonal_reg_weight = orthogonal_reg_weight
        self.orthogonal_reg_active_codes_only = orthogonal_reg_active_codes_only
        self.orthogonal_reg_max_codes = orthogonal_reg_max_codes
        self.vq = ResidualVectorQuantization(
            dim=dimension,
            codebook_size=bins,
            num_quantizers=n_q,
            decay=decay,
            kmeans_init=kmeans_init,
            kmeans_iters=kmeans_iters,
            threshold_ema_dead_code=threshold_ema_dead_code,
            orthogonal_reg_weight=orthogonal_reg_weight,
            orthogonal_reg_active_codes_only=orthogonal_reg_active_codes_only,
            orthogonal_reg_max_codes=orthogonal_reg_max_codes,
            channels_last=False,
        )

    def _check_latent(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[1] != self.dimension:
            raise ValueError(f"expected a latent of shape [B, {self.dimension}, T], got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor, frame_rate: int) -> QuantizedResult:
        """Quantize ``x`` [B, D, T]; codes are [B, n_q', T] with n_q' random under ``q_dropout`` in training."""
        self._check_latent(x)
        n_q = self.n_q
        if self.training and self.q_dropout:
            # Every worker must use the same levels, or the codebook synchronisation would deadlock.
            n_q = _distrib.broadcast_int(int(torch.randint(1, self.n_q + 1, (1,)).item()))
        bw_per_q = math.log2(self.bins) * frame_rate / 1000
        quantized, codes, commit_loss = self.vq(x, n_q=n_q)
        codes = codes.transpose(0, 1)  # [B, K, T]
        bandwidth = torch.tensor(n_q * bw_per_q).to(x)
        metrics = codebook_metrics(codes, self.bins)
        return QuantizedResult(quantized, codes, bandwidth, penalty=torch.mean(commit_loss), metrics=metrics)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent [B, D, T] -> codes [B, num_codebooks, T] (int64)."""
        self._check_latent(x)
        return self.vq.encode(x, n_q=self.n_q).transpose(0, 1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, K, T] (K <= total_codebooks) -> quantized latent [B, D, T].

        Raises:
            ValueError: for codes of the wrong shape, dtype, number of codebooks or out of ``[0, bins)``.
        """
        check_codes(codes, self.bins, self.max_n_q)
        return self.vq.decode(codes.transpose(0, 1))

    @property
    def total_codebooks(self) -> int:
        """Number of levels the quantizer has."""
        return self.max_n_q

    @property
    def num_codebooks(self) -> int:
        """Number of levels used by :meth:`encode` (and by forward without dropout)."""
        return self.n_q

    def set_num_codebooks(self, n: int) -> None:
        """Use the first ``n`` levels (1 <= n <= total_codebooks)."""
        if not 0 < n <= self.max_n_q:
            raise ValueError(f"number of codebooks must be in [1, {self.max_n_q}], got {n}")
        self.n_q = n


def check_codes(codes: torch.Tensor, bins: int, max_codebooks: int) -> None:
    """Raise a ValueError naming the problem if ``codes`` is not a valid [B, K, T] integer tensor of codes."""
    if codes.dim() != 3:
        raise ValueError(f"expected codes of shape [B, K, T], got {tuple(codes.shape)}")
    if codes.is_floating_point() or codes.is_complex() or codes.dtype == torch.bool:
        raise ValueError(f"expected integer codes, got dtype {codes.dtype}")
    if not 0 < codes.shape[1] <= max_codebooks:
        raise ValueError(
            f"codes have {codes.shape[1]} codebooks; this quantizer has {max_codebooks} "
            f"(expected between 1 and {max_codebooks})"
        )
    if codes.numel():
        low, high = int(codes.min()), int(codes.max())
        if low < 0 or high >= bins:
            raise ValueError(f"codes must be in [0, {bins - 1}], got values in [{low}, {high}]")
