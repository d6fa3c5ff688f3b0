"""Multi-scale waveform discriminator (MSD, MelGAN style) (audiocraft-core, adversarial training).

Sub-discriminators are strided grouped 1D convolution stacks; sub-discriminator `i` sees the
waveform average-pooled `i` times. Module names follow upstream AudioCraft. Deviation: upstream
computes the pooled signal but discards it (every scale sees the raw waveform); here the pooled
signal is used, as MelGAN's MSD intends. State dicts are the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from audiocraft.modules.conv import NormConv1d

from .base import MultiDiscriminator, MultiDiscriminatorOutputType


class ScaleDiscriminator(nn.Module):
    """Waveform sub-discriminator.

    Args:
        in_channels: audio channels.
        out_channels: logits channels.
        kernel_sizes: kernel sizes of the last two convolutions; their product is the first kernel size.
        filters: filters of the first convolution.
        max_filters: cap on the number of filters.
        downsample_scales: stride (and filter growth) of each inner convolution.
        inner_kernel_sizes: kernel of each inner convolution (default `10 * scale + 1`).
        groups: groups of each inner convolution (default `in_channels // 4`).
        strides: stride of each inner convolution (default the downsample scale).
        paddings: padding of each inner convolution (default 'same').
        norm: normalization of the convolutions.
        activation: name of a `torch.nn` activation.
        activation_params: its keyword arguments.
        pad: name of the `torch.nn` padding module of the first convolution.
        pad_params: its keyword arguments.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        kernel_sizes: Sequence[int] = (5, 3),
        filters: int = 16,
        max_filters: int = 1024,
        downsample_scales: Sequence[int] = (4, 4, 4, 4),
        inner_kernel_sizes: Sequence[int] | None = None,
        groups: Sequence[int] | None = None,
        strides: Sequence[int] | None = None,
        paddings: Sequence[int] | None = None,
        norm: str = "weight_norm",
        activation: str = "LeakyReLU",
        activation_params: dict[str, Any] | None = None,
        pad: str = "ReflectionPad1d",
        pad_params: dict[str, Any] | None = None,
    ):
        super().__init__()
        if len(kernel_sizes) != 2 or kernel_sizes[0] % 2 != 1 or kernel_sizes[1] % 2 != 1:
            raise ValueError(f"msd kernel_sizes must be two odd numbers, got {list(kernel_sizes)}")
        n_scales = len(downsample_scales)
        for name, value in (
            ("inner_kernel_sizes", inner_kernel_sizes),
            ("groups", groups),
            ("strides", strides),
            ("paddings", paddings),
        ):
            if value is not None and len(value) != n_scales:
                raise ValueError(f"msd {name} {list(value)} must have one entry per downsample scale ({n_scales})")
        self.activation = getattr(torch.nn, activation)(**(activation_params or {"negative_slope": 0.2}))
        first_kernel = math.prod(kernel_sizes)
        self.convs = nn.ModuleList()
        self.convs.append(
            nn.Sequential(
                getattr(torch.nn, pad)((first_kernel - 1) // 2, **(pad_params or {})),
                NormConv1d(in_channels, filters, kernel_size=first_kernel, stride=1, norm=norm),
            )
        )
        in_chs = filters
        for i, scale in enumerate(downsample_scales):
            out_chs = min(in_chs * scale, max_filters)
            kernel = inner_kernel_sizes[i] if inner_kernel_sizes else scale * 10 + 1
            self.convs.append(
                NormConv1d(
                    in_chs,
                    out_chs,
                    kernel_size=kernel,
                    stride=strides[i] if strides else scale,
                    groups=groups[i] if groups else in_chs // 4,
                    padding=paddings[i] if paddings else (scale * 10) // 2,
                    norm=norm,
                )
            )
            in_chs = out_chs
        out_chs = min(in_chs * 2, max_filters)
        self.convs.append(
            NormConv1d(
                in_chs, out_chs, kernel_size=kernel_sizes[0], stride=1, padding=(kernel_sizes[0] - 1) // 2, norm=norm
            )
        )
        self.conv_post = NormConv1d(
            out_chs, out_channels, kernel_size=kernel_sizes[1], stride=1, padding=(kernel_sizes[1] - 1) // 2, norm=norm
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Args: x: waveform `[B, C, T]`. Returns logits `[B, out, T']` and the feature maps (logits last)."""
        fmap = []
        for layer in self.convs:
            x = self.activation(layer(x))
            fmap.append(x)
        x = self.conv_post(x)
        fmap.append(x)
        return x, fmap


class MultiScaleDiscriminator(MultiDiscriminator):
    """Multi-scale (MSD) discriminator.

    Args:
        in_channels: audio channels.
        out_channels: logits channels.
        downsample_factor: average-pooling factor between consecutive scales.
        scale_norms: normalization of each sub-discriminator (one per scale).
        **kwargs: further `ScaleDiscriminator` arguments.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        downsample_factor: int = 2,
        scale_norms: Sequence[str] = ("weight_norm", "weight_norm", "weight_norm"),
        **kwargs: Any,
    ):
        super().__init__()
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(in_channels, out_channels, norm=norm, **kwargs) for norm in scale_norms
        )
        self.downsample = nn.AvgPool1d(downsample_factor * 2, downsample_factor, padding=downsample_factor)

    @property
    def num_discriminators(self) -> int:
        """Number of sub-discriminators (one per scale)."""
        return len(self.discriminators)

    def forward(self, x: torch.Tensor) -> MultiDiscriminatorOutputType:
        """Args: x: waveform `[B, C, T]`. Returns one logits tensor and one feature-map list per scale."""
        logits, fmaps = [], []
        for i, disc in enumerate(self.discriminators):
            if i != 0:
                x = self.downsample(x)
            logit, fmap = disc(x)
            logits.append(logit)
            fmaps.append(fmap)
        return logits, fmaps
