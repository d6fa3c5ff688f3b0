"""Base class of multi-scale discriminators (audiocraft-core, adversarial training).

A `MultiDiscriminator` holds several sub-discriminators and returns, for an input waveform,
one logits tensor and one list of feature maps per sub-discriminator.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

FeatureMapType = list[torch.Tensor]
"""The feature maps of one discriminator, layer by layer."""
LogitsType = torch.Tensor
"""The logits of one discriminator."""
MultiDiscriminatorOutputType = tuple[list[LogitsType], list[FeatureMapType]]
"""What a `MultiDiscriminator` returns: the logits and feature maps of each sub-discriminator."""


class MultiDiscriminator(ABC, nn.Module):
    """Discriminator made of sub-discriminators acting at different scales, periods or resolutions."""

    discriminators: nn.ModuleList  # the sub-discriminators, set by each subclass's __init__

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
        for disc in self.discriminators:
            logit, fmap = disc(x)
            logits.append(logit)
            fmaps.append(fmap)
        return logits, fmaps
