"""Multi-period waveform discriminator (MPD, HiFi-GAN style) (audiocraft-core, adversarial training).

Sub-discriminator `p` folds the waveform into a `[T / p, p]` image and runs 2D convolutions along
time. Module names follow upstream AudioCraft.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from audiocraft.modules.conv import NormConv2d

from .base import MultiDiscriminator, MultiDiscriminatorOutputType


def get_padding(kernel_size: int, dilation: int = 1) -> int:
    """'Same' padding of a 1D convolution with an odd kernel."""
    return int((kernel_size * dilation - dilation) / 2)


class PeriodDiscriminator(nn.Module):
    """Period sub-discriminator.

    Args:
        period: folding period in samples.
        in_channels: audio channels.
        out_channels: logits channels.
        n_layers: number of convolutions (the last has stride 1).
        kernel_sizes: kernel of the convolutions and of the post convolution.
        stride: time stride of the convolutions.
        filters: base number of filters.
        filters_scale: filter growth per layer.
        max_filters: cap on the number of filters.
        norm: normalization of the convolutions.
        activation: name of a `torch.nn` activation.
        activation_params: its keyword arguments.
    """

    def __init__(
        self,
        period: int,
        in_channels: int = 1,
        out_channels: int = 1,
        n_layers: int = 5,
        kernel_sizes: Sequence[int] = (5, 3),
        stride: int = 3,
        filters: int = 8,
        filters_scale: int = 4,
        max_filters: int = 1024,
        norm: str = "weight_norm",
        activation: str = "LeakyReLU",
        activation_params: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.period = period
        self.n_layers = n_layers
        self.activation = getattr(torch.nn, activation)(**(activation_params or {"negative_slope": 0.2}))
        self.convs = nn.ModuleList()
        in_chs = in_channels
        for i in range(n_layers):
            out_chs = min(filters * (filters_scale ** (i + 1)), max_filters)
            eff_stride = 1 if i == n_layers - 1 else stride
            self.convs.append(
                NormConv2d(
                    in_chs,
                    out_chs,
                    kernel_size=(kernel_sizes[0], 1),
                    stride=(eff_stride, 1),
                    padding=((kernel_sizes[0] - 1) // 2, 0),
                    norm=norm,
                )
            )
            in_chs = out_chs
        self.conv_post = NormConv2d(
            in_chs,
            out_channels,
            kernel_size=(kernel_sizes[1], 1),
            stride=1,
            padding=((kernel_sizes[1] - 1) // 2, 0),
            norm=norm,
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Args: x: waveform `[B, C, T]`. Returns logits `[B, out, T', period]` and the feature maps (logits last)."""
        fmap = []
        batch, channels, length = x.shape
        if length % self.period != 0:
            n_pad = self.period - (length % self.period)
            x = F.pad(x, (0, n_pad), "reflect")
            length += n_pad
        x = x.view(batch, channels, length // self.period, self.period)
        for conv in self.convs:
            x = self.activation(conv(x))
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return x, fmap


class MultiPeriodDiscriminator(MultiDiscriminator):
    """Multi-period (MPD) discriminator.

    Args:
        in_channels: audio channels.
        out_channels: logits channels.
        periods: period of each sub-discriminator.
        **kwargs: further `PeriodDiscriminator` arguments.
    """

    def __init__(
        self, in_channels: int = 1, out_channels: int = 1, periods: Sequence[int] = (2, 3, 5, 7, 11), **kwargs: Any
    ):
        super().__init__()
        self.discriminators = nn.ModuleList(
            PeriodDiscriminator(p, in_channels, out_channels, **kwargs) for p in periods
        )

    @property
    def num_discriminators(self) -> int:
        """Number of sub-discriminators (one per period)."""
        return len(self.discriminators)

    def forward(self, x: torch.Tensor) -> MultiDiscriminatorOutputType:
        """Args: x: waveform `[B, C, T]`. Returns one logits tensor and one feature-map list per period."""
        return self._forward_each(x)
