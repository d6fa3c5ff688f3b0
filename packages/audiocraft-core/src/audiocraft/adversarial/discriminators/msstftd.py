"""Multi-scale STFT discriminator (MS-STFT) from EnCodec (audiocraft-core, adversarial training).

Each sub-discriminator runs 2D convolutions over the real and imaginary parts of a complex STFT
at its own resolution. Module and parameter names follow upstream AudioCraft, so discriminator
state dicts are interchangeable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torchaudio
from torch import nn

from audiocraft.modules.conv import NormConv2d

from .base import MultiDiscriminator, MultiDiscriminatorOutputType


def get_2d_padding(kernel_size: tuple[int, int], dilation: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """'Same' padding of a 2D convolution with odd kernel sizes."""
    return ((kernel_size[0] - 1) * dilation[0]) // 2, ((kernel_size[1] - 1) * dilation[1]) // 2


class DiscriminatorSTFT(nn.Module):
    """STFT sub-discriminator.

    Args:
        filters: number of filters of the first convolution.
        in_channels: audio channels.
        out_channels: logits channels.
        n_fft: FFT size.
        hop_length: STFT hop.
        win_length: STFT window length.
        max_filters: cap on the number of filters.
        filters_scale: growth of the filters at each inner layer.
        kernel_size: inner Conv2d kernel size (time, frequency).
        dilations: time dilation of each inner convolution.
        stride: inner Conv2d stride (time, frequency).
        normalized: window-normalize the STFT.
        norm: normalization of the convolutions (`weight_norm`, ...).
        activation: name of a `torch.nn` activation.
        activation_params: its keyword arguments.
    """

    def __init__(
        self,
        filters: int,
        in_channels: int = 1,
        out_channels: int = 1,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int = 1024,
        max_filters: int = 1024,
        filters_scale: int = 1,
        kernel_size: tuple[int, int] = (3, 9),
        dilations: Sequence[int] = (1, 2, 4),
        stride: tuple[int, int] = (1, 2),
        normalized: bool = True,
        norm: str = "weight_norm",
        activation: str = "LeakyReLU",
        activation_params: dict[str, Any] | None = None,
    ):
        super().__init__()
        if len(kernel_size) != 2 or len(stride) != 2:
            raise ValueError(f"kernel_size {kernel_size} and stride {stride} must both have 2 entries")
        kernel_size = (int(kernel_size[0]), int(kernel_size[1]))
        stride = (int(stride[0]), int(stride[1]))
        self.filters = filters
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.normalized = normalized
        self.activation = getattr(torch.nn, activation)(**(activation_params or {"negative_slope": 0.2}))
        self.spec_transform = torchaudio.transforms.Spectrogram(
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window_fn=torch.hann_window,
            normalized=normalized,
            center=False,
            pad_mode=None,
            power=None,
        )
        self.convs = nn.ModuleList()
        # As upstream: the first convolution has no normalization.
        self.convs.append(
            NormConv2d(2 * in_channels, filters, kernel_size=kernel_size, padding=get_2d_padding(kernel_size))
        )
        in_chs = min(filters_scale * filters, max_filters)
        for i, dilation in enumerate(dilations):
            out_chs = min((filters_scale ** (i + 1)) * filters, max_filters)
            self.convs.append(
                NormConv2d(
                    in_chs,
                    out_chs,
                    kernel_size=kernel_size,
                    stride=stride,
                    dilation=(dilation, 1),
                    padding=get_2d_padding(kernel_size, (dilation, 1)),
                    norm=norm,
                )
            )
            in_chs = out_chs
        out_chs = min((filters_scale ** (len(dilations) + 1)) * filters, max_filters)
        square = (kernel_size[0], kernel_size[0])
        self.convs.append(NormConv2d(in_chs, out_chs, kernel_size=square, padding=get_2d_padding(square), norm=norm))
        self.conv_post = NormConv2d(
            out_chs, out_channels, kernel_size=square, padding=get_2d_padding(square), norm=norm
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Args: x: waveform `[B, C, T]`. Returns logits `[B, out, frames', freqs']` and the feature maps."""
        fmap = []
        spec = self.spec_transform(x)  # [B, C, freqs, frames], complex
        z = torch.cat([spec.real, spec.imag], dim=1).transpose(2, 3)  # [B, 2C, frames, freqs]
        for layer in self.convs:
            z = self.activation(layer(z))
            fmap.append(z)
        z = self.conv_post(z)
        return z, fmap


class MultiScaleSTFTDiscriminator(MultiDiscriminator):
    """Multi-scale STFT (MS-STFT) discriminator.

    Args:
        filters: number of filters of the first convolution of each sub-discriminator.
        in_channels: audio channels.
        out_channels: logits channels.
        sep_channels: kept for compatibility with upstream's signature (unused, as upstream).
        n_ffts: FFT size of each sub-discriminator.
        hop_lengths: STFT hop of each sub-discriminator.
        win_lengths: STFT window length of each sub-discriminator.
        **kwargs: further `DiscriminatorSTFT` arguments.
    """

    def __init__(
        self,
        filters: int,
        in_channels: int = 1,
        out_channels: int = 1,
        sep_channels: bool = False,
        n_ffts: Sequence[int] = (1024, 2048, 512),
        hop_lengths: Sequence[int] = (256, 512, 128),
        win_lengths: Sequence[int] = (1024, 2048, 512),
        **kwargs: Any,
    ):
        super().__init__()
        if not len(n_ffts) == len(hop_lengths) == len(win_lengths):
            raise ValueError(
                f"msstftd: n_ffts {list(n_ffts)}, hop_lengths {list(hop_lengths)} and "
                f"win_lengths {list(win_lengths)} must have the same length"
            )
        self.sep_channels = sep_channels
        self.discriminators = nn.ModuleList(
            DiscriminatorSTFT(
                filters,
                in_channels=in_channels,
                out_channels=out_channels,
                n_fft=n_fft,
                win_length=win,
                hop_length=hop,
                **kwargs,
            )
            for n_fft, hop, win in zip(n_ffts, hop_lengths, win_lengths)
        )

    @property
    def num_discriminators(self) -> int:
        """Number of sub-discriminators (one per STFT resolution)."""
        return len(self.discriminators)

    def forward(self, x: torch.Tensor) -> MultiDiscriminatorOutputType:
        """Args: x: waveform `[B, C, T]`. Returns one logits tensor and one feature-map list per resolution."""
        return self._forward_each(x)
