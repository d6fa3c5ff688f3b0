"""Base class of the joint audio/text embedding conditioners (layer: audiocraft-conditioners, private).

A joint-embedding conditioner (CLAP) maps either the audio or the text of a :class:`JointEmbedCondition` into one
shared space, optionally discretises that vector with a residual vector quantizer, and projects it into a single
condition step ``[B, 1, output_dim]``.

The quantizer is injected. Upstream builds ``audiocraft.quantization.ResidualVectorQuantizer`` inside the
conditioner, but that class lives in audiocraft-models, above this package: here the conditioner takes any module
with upstream's quantizer call (``quantizer(x [B, dim, 1], frame_rate=1)`` returning an object whose ``.x`` is the
quantized tensor), stored as ``self.quantizer`` so that state-dict keys stay upstream's
(``quantizer.vq.layers.0._codebook.embed`` ...). audiocraft-models' builders inject their
``ResidualVectorQuantizer(dim, n_q=n_q, bins=bins, **kwargs)``.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn

from audiocraft.data.conditions import JointEmbedCondition

from ._autocast import conditioner_autocast
from ._base import BaseConditioner, ConditionType


class JointEmbeddingConditioner(BaseConditioner):
    """Base of the joint audio/text embedding conditioners.

    Args:
        dim: Width of the joint embedding.
        output_dim: Width of the returned embeddings.
        device: Device of the embedding model.
        attribute: Name of the joint-embedding attribute this conditioner reads.
        autocast_dtype: Autocast dtype of the embedding model (off on CPU).
        quantize: Quantize the embedding with ``quantizer``.
        n_q: Number of residual codebooks (for the injected quantizer; kept for upstream's signature).
        bins: Codebook size (idem).
        quantizer: The quantizer module; required when ``quantize`` is True (see the module docstring).
        **kwargs: Further quantizer arguments of upstream's signature; accepted and ignored here, the injected
            quantizer is already built with them.

    Raises:
        ValueError: if ``quantize`` is True and no quantizer is given.
    """

    def __init__(
        self,
        dim: int,
        output_dim: int,
        device: str,
        attribute: str,
        autocast_dtype: str | None = "float32",
        quantize: bool = True,
        n_q: int = 12,
        bins: int = 1024,
        quantizer: nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dim=dim, output_dim=output_dim)
        self.device = device
        self.attribute = attribute
        self.autocast = conditioner_autocast(type(self).__name__, device, autocast_dtype)
        self.quantizer: nn.Module | None = None
        if quantize:
            if quantizer is None:
                raise ValueError(
                    f"{type(self).__name__}(quantize=True) needs the quantizer module "
                    f"(n_q={n_q}, bins={bins}); audiocraft-models' builders inject their "
                    "ResidualVectorQuantizer"
                )
            self.quantizer = quantizer

    @abc.abstractmethod
    def _get_embed(self, x: JointEmbedCondition) -> tuple[torch.Tensor, torch.Tensor]:
        """The joint embedding ``[B, 1, dim]`` and the indices of the items that have no condition."""

    def tokenize(self, x: JointEmbedCondition) -> JointEmbedCondition:
        """The condition unchanged (subclasses may fill caches here)."""
        return x

    def forward(self, x: JointEmbedCondition) -> ConditionType:
        """Embedding ``[B, 1, output_dim]`` (zero for items without a condition) and mask ``[B, 1]``."""
        with self.autocast:
            embed, empty_idx = self._get_embed(x)
            if self.quantizer is not None:
                embed = self.quantizer(embed.reshape(-1, self.dim, 1), frame_rate=1).x.reshape(-1, self.dim)
            out = self.output_proj(embed).reshape(-1, 1, self.output_dim)
            mask = torch.ones(*out.shape[:2], device=out.device)
            mask[empty_idx, :] = 0
            return out * mask.unsqueeze(-1), mask
