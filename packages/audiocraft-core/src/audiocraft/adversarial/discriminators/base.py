"""Base class of multi-scale discriminators (audiocraft-core, adversarial training).

A `MultiDiscriminator` holds several sub-discriminators and returns, for an input waveform,
one logits tensor and one list of feature maps per sub-discriminator.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

FeatureMapType = list[torch.Tensor]
LogitsType = torch.Tensor
MultiDiscriminatorOutputType = tuple[list[LogitsType], list[FeatureMapType]]


class MultiDiscriminator(ABC, nn.Module):
    """Discriminator made of sub-discriminators acting at different scales, periods or resolutions."""

    @abstractmethod
    def forward(self, x: torch.Tensor) -> MultiDiscriminatorOutputType:
        """Args: x: waveform `[B, C, T]`. Returns (logits per sub-discriminator, feature maps per sub-discriminator)."""
        ...

    @property
    @abstractmethod
    def num_discriminators(self) -> int:
        """Number of sub-discriminators."""
        ...

    def _forward_each(self, x: torch.Tensor) -> MultiDiscriminatorOutputType:
        """Run every sub-discriminator in `self.discriminators` on `x` and collect their outputs."""
        logits, fmaps = [], []
        for disc in self.discriminators:  # type: ignore[attr-defined]
            logit, fmap = disc(x)
            logits.append(logit)
            fmaps.append(fmap)
        return logits, fmaps
