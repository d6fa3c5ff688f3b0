"""Quantizer interface and result type (layer: audiocraft-models, quantization).

Every quantizer maps a latent [B, D, T] to a (possibly approximately) quantized latent plus codes [B, K, T],
reporting the bandwidth it used, a penalty for the training loss and logging metrics in a :class:`QuantizedResult`.
:class:`DummyQuantizer` is the identity, for autoencoders trained without quantization.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["QuantizedResult", "BaseQuantizer", "DummyQuantizer"]


@dataclass
class QuantizedResult:
    """Output of a quantizer's (or a compression model's) forward.

    Attributes:
        x: quantized latent [B, D, T] (for a compression model's forward: the reconstructed audio [B, C, T]).
        codes: codes [B, K, T].
        bandwidth: bandwidth used, in kb/s (scalar tensor).
        penalty: term to add to the training loss (commitment, orthogonal regularisation), or None.
        metrics: values for logging, e.g. ``rvq_perplexity_q0``, ``rvq_usage_q0`` per level.
    """

    x: torch.Tensor
    codes: torch.Tensor
    bandwidth: torch.Tensor
    penalty: torch.Tensor | None = None
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


class BaseQuantizer(ABC, nn.Module):
    """Base class for quantizers: every implementation provides all of the methods below."""

    @abstractmethod
    def forward(self, x: torch.Tensor, frame_rate: int) -> QuantizedResult:
        """Quantize ``x`` [B, D, T]; ``frame_rate`` (frames/s) is needed to compute the bandwidth."""

    @abstractmethod
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent [B, D, T] -> codes [B, K, T]."""

    @abstractmethod
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, K, T] -> quantized latent [B, D, T]."""

    @property
    @abstractmethod
    def total_codebooks(self) -> int:
        """Number of codebooks the quantizer has."""

    @property
    @abstractmethod
    def num_codebooks(self) -> int:
        """Number of codebooks in use."""

    @abstractmethod
    def set_num_codebooks(self, n: int) -> None:
        """Set the number of codebooks in use."""


class DummyQuantizer(BaseQuantizer):
    """Identity "quantizer": the codes are the latent itself, as [B, 1, D, T]."""

    def forward(self, x: torch.Tensor, frame_rate: int) -> QuantizedResult:
        """Return ``x`` unchanged, with the bandwidth of sending it as float32."""
        q = x.unsqueeze(1)
        bandwidth = torch.tensor(q.numel() * 32 * frame_rate / 1000 / len(x)).to(x)
        return QuantizedResult(x, q, bandwidth)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[B, D, T] -> [B, 1, D, T]."""
        return x.unsqueeze(1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """[B, 1, D, T] -> [B, D, T]."""
        return codes.squeeze(1)

    @property
    def total_codebooks(self) -> int:
        """Always 1."""
        return 1

    @property
    def num_codebooks(self) -> int:
        """Always 1."""
        return 1

    def set_num_codebooks(self, n: int) -> None:
        """Not supported: raises AttributeError."""
        raise AttributeError("the DummyQuantizer has a single, fixed codebook")
