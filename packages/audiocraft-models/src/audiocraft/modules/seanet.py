"""SEANet encoder and decoder, the convolutional autoencoder of EnCodec (layer: audiocraft-models, modules).

The encoder maps audio [B, channels, T] to a latent [B, dimension, T / hop_length] through residual blocks and
strided convolutions (plus an optional LSTM); the decoder mirrors it with transposed convolutions. Every knob and
every state-dict key follows upstream AudioCraft (``encoder.model.<i>...``), so upstream checkpoints load strictly.
Both are :class:`~audiocraft.modules.streaming.StreamingModule` and stream when built with ``causal=True``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .conv import StreamableConv1d, StreamableConvTranspose1d
from .lstm import StreamableLSTM
from .streaming import StreamingModule, StreamingSequential

__all__ = ["SEANetResnetBlock", "SEANetEncoder", "SEANetDecoder"]


def _activation(name: str) -> type[nn.Module]:
    act = getattr(nn, name, None)
    if not (isinstance(act, type) and issubclass(act, nn.Module)):
        raise ValueError(f"unknown activation {name!r}: expected the name of a torch.nn module such as 'ELU'")
    return act


class SEANetResnetBlock(StreamingModule):
    """Residual block: activation + conv pairs on a compressed branch, plus an identity or 1x1-conv shortcut.

    Args:
        dim: input and output channels.
        kernel_sizes: kernel size of each convolution of the branch.
        dilations: dilation of each convolution (same length as ``kernel_sizes``).
        activation: name of a ``torch.nn`` activation.
        activation_params: its keyword arguments.
        norm: convolution normalisation.
        norm_params: keyword arguments of the normalisation.
        causal: causal convolutions.
        pad_mode: padding mode.
        compress: channel reduction factor inside the branch.
        true_skip: identity shortcut (else a 1x1 convolution).
    """

    def __init__(self, dim: int, kernel_sizes: list[int] | None = None, dilations: list[int] | None = None,
                 activation: str = "ELU", activation_params: dict[str, Any] | None = None, norm: str = "none",
                 norm_params: dict[str, Any] | None = None, causal: bool = False, pad_mode: str = "reflect",
                 compress: int = 2, true_skip: bool = True) -> None:
        super().__init__()
        kernel_sizes = [3, 1] if kernel_sizes is None else list(kernel_sizes)
        dilations = [1, 1] if dilations is None else list(dilations)
        if len(kernel_sizes) != len(dilations):
            raise ValueError(f"kernel_sizes {kernel_sizes} and dilations {dilations} must have the same length")
        activation_params = {"alpha": 1.0} if activation_params is None else activation_params
        act = _activation(activation)
        hidden = dim // compress
        block: list[nn.Module] = []
        for i, (kernel_size, dilation) in enumerate(zip(kernel_sizes, dilations)):
            in_chs = dim if i == 0 else hidden
            out_chs = dim if i == len(kernel_sizes) - 1 else hidden
            block += [
                act(**activation_params),
                StreamableConv1d(in_chs, out_chs, kernel_size=kernel_size, dilation=dilation, norm=norm,
                                 norm_kwargs=norm_params, causal=causal, pad_mode=pad_mode),
            ]
        self.block = StreamingSequential(*block)
        self.shortcut: nn.Module
        if true_skip:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = StreamableConv1d(dim, dim, kernel_size=1, norm=norm, norm_kwargs=norm_params,
                                             causal=causal, pad_mode=pad_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, dim, T] -> [B, dim, T]."""
        return self.shortcut(x) + self.block(x)


class SEANetEncoder(StreamingModule):
    """SEANet encoder: audio [B, channels, T] -> latent [B, dimension, ceil(T / hop_length)].

    Args:
        channels: audio channels.
        dimension: latent dimension.
        n_filters: base width.
        n_residual_layers: residual blocks per resolution.
        ratios: stride of each resampling stage in *decoder* order; the encoder applies them reversed.
        activation: name of a ``torch.nn`` activation.
        activation_params: its keyword arguments.
        norm: convolution normalisation.
        norm_params: keyword arguments of the normalisation.
        kernel_size: kernel of the first convolution.
        last_kernel_size: kernel of the last convolution.
        residual_kernel_size: kernel inside residual blocks.
        dilation_base: dilation growth between residual layers.
        causal: causal convolutions (streamable).
        pad_mode: padding mode.
        true_skip: identity shortcut in residual blocks (else 1x1 conv).
        compress: channel reduction inside residual blocks.
        lstm: number of LSTM layers at the bottleneck (0 = none).
        disable_norm_outer_blocks: number of outer blocks (the first ones for the encoder) without normalisation.
    """

    def __init__(self, channels: int = 1, dimension: int = 128, n_filters: int = 32, n_residual_layers: int = 3,
                 ratios: list[int] | None = None, activation: str = "ELU",
                 activation_params: dict[str, Any] | None = None, norm: str = "none",
                 norm_params: dict[str, Any] | None = None, kernel_size: int = 7, last_kernel_size: int = 7,
                 residual_kernel_size: int = 3, dilation_base: int = 2, causal: bool = False,
                 pad_mode: str = "reflect", true_skip: bool = True, compress: int = 2, lstm: int = 0,
                 disable_norm_outer_blocks: int = 0) -> None:
        super().__init__()
        ratios = [8, 5, 4, 2] if ratios is None else list(ratios)
        activation_params = {"alpha": 1.0} if activation_params is None else dict(activation_params)
        self.channels = channels
        self.dimension = dimension
        self.n_filters = n_filters
        self.ratios = list(reversed(ratios))
        self.n_residual_layers = n_residual_layers
        self.hop_length = int(torch.tensor(self.ratios).prod().item()) if self.ratios else 1
        self.n_blocks = len(self.ratios) + 2  # first and last conv + one block per ratio
        self.disable_norm_outer_blocks = disable_norm_outer_blocks
        if not 0 <= disable_norm_outer_blocks <= self.n_blocks:
            raise ValueError(f"disable_norm_outer_blocks must be in [0, {self.n_blocks}], "
                             f"got {disable_norm_outer_blocks}")
        act = _activation(activation)
        common: dict[str, Any] = dict(norm_kwargs=norm_params, causal=causal, pad_mode=pad_mode)
        mult = 1
        model: list[nn.Module] = [StreamableConv1d(
            channels, mult * n_filters, kernel_size, norm="none" if disable_norm_outer_blocks >= 1 else norm,
            **common)]
        for i, ratio in enumerate(self.ratios):
            block_norm = "none" if disable_norm_outer_blocks >= i + 2 else norm
            for j in range(n_residual_layers):
                model.append(SEANetResnetBlock(
                    mult * n_filters, kernel_sizes=[residual_kernel_size, 1], dilations=[dilation_base ** j, 1],
                    norm=block_norm, norm_params=norm_params, activation=activation,
                    activation_params=activation_params, causal=causal, pad_mode=pad_mode, compress=compress,
                    true_skip=true_skip))
            model += [
                act(**activation_params),
                StreamableConv1d(mult * n_filters, mult * n_filters * 2, kernel_size=ratio * 2, stride=ratio,
                                 norm=block_norm, **common),
            ]
            mult *= 2
        if lstm:
            model.append(StreamableLSTM(mult * n_filters, num_layers=lstm))
        model += [
            act(**activation_params),
            StreamableConv1d(mult * n_filters, dimension, last_kernel_size,
                             norm="none" if disable_norm_outer_blocks == self.n_blocks else norm, **common),
        ]
        self.model = StreamingSequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, channels, T] -> [B, dimension, ceil(T / hop_length)]."""
        return self.model(x)

    def flush(self, x: torch.Tensor | None = None) -> torch.Tensor | None:
        """Emit the latent frames of the samples still held back at the end of a stream."""
        return self.model.flush(x)


class SEANetDecoder(StreamingModule):
    """SEANet decoder: latent [B, dimension, F] -> audio [B, channels, F * hop_length].

    Args:
        channels: audio channels.
        dimension: latent dimension.
        n_filters: base width.
        n_residual_layers: residual blocks per resolution.
        ratios: upsampling stride of each stage.
        activation: name of a ``torch.nn`` activation.
        activation_params: its keyword arguments.
        final_activation: optional activation applied last (e.g. ``Tanh``).
        final_activation_params: its keyword arguments.
        norm: convolution normalisation.
        norm_params: keyword arguments of the normalisation.
        kernel_size: kernel of the first convolution.
        last_kernel_size: kernel of the last convolution.
        residual_kernel_size: kernel inside residual blocks.
        dilation_base: dilation growth between residual layers.
        causal: causal convolutions (streamable).
        pad_mode: padding mode.
        true_skip: identity shortcut in residual blocks (else 1x1 conv).
        compress: channel reduction inside residual blocks.
        lstm: number of LSTM layers at the bottleneck (0 = none).
        disable_norm_outer_blocks: number of outer blocks (the last ones for the decoder) without normalisation.
        trim_right_ratio: causal only, share of the transposed convolutions' padding trimmed on the right.
    """

    def __init__(self, channels: int = 1, dimension: int = 128, n_filters: int = 32, n_residual_layers: int = 3,
                 ratios: list[int] | None = None, activation: str = "ELU",
                 activation_params: dict[str, Any] | None = None, final_activation: str | None = None,
                 final_activation_params: dict[str, Any] | None = None, norm: str = "none",
                 norm_params: dict[str, Any] | None = None, kernel_size: int = 7, last_kernel_size: int = 7,
                 residual_kernel_size: int = 3, dilation_base: int = 2, causal: bool = False,
                 pad_mode: str = "reflect", true_skip: bool = True, compress: int = 2, lstm: int = 0,
                 disable_norm_outer_blocks: int = 0, trim_right_ratio: float = 1.0) -> None:
        super().__init__()
        ratios = [8, 5, 4, 2] if ratios is None else list(ratios)
        activation_params = {"alpha": 1.0} if activation_params is None else dict(activation_params)
        self.dimension = dimension
        self.channels = channels
        self.n_filters = n_filters
        self.ratios = ratios
        self.n_residual_layers = n_residual_layers
        self.hop_length = int(torch.tensor(self.ratios).prod().item()) if self.ratios else 1
        self.n_blocks = len(self.ratios) + 2
        self.disable_norm_outer_blocks = disable_norm_outer_blocks
        if not 0 <= disable_norm_outer_blocks <= self.n_blocks:
            raise ValueError(f"disable_norm_outer_blocks must be in [0, {self.n_blocks}], "
                             f"got {disable_norm_outer_blocks}")
        act = _activation(activation)
        common: dict[str, Any] = dict(norm_kwargs=norm_params, causal=causal, pad_mode=pad_mode)
        mult = int(2 ** len(self.ratios))
        model: list[nn.Module] = [StreamableConv1d(
            dimension, mult * n_filters, kernel_size,
            norm="none" if disable_norm_outer_blocks == self.n_blocks else norm, **common)]
        if lstm:
            model.append(StreamableLSTM(mult * n_filters, num_layers=lstm))
        for i, ratio in enumerate(self.ratios):
            block_norm = "none" if disable_norm_outer_blocks >= self.n_blocks - (i + 1) else norm
            model += [
                act(**activation_params),
                StreamableConvTranspose1d(mult * n_filters, mult * n_filters // 2, kernel_size=ratio * 2,
                                          stride=ratio, norm=block_norm, norm_kwargs=norm_params, causal=causal,
                                          trim_right_ratio=trim_right_ratio),
            ]
            for j in range(n_residual_layers):
                model.append(SEANetResnetBlock(
                    mult * n_filters // 2, kernel_sizes=[residual_kernel_size, 1], dilations=[dilation_base ** j, 1],
                    activation=activation, activation_params=activation_params, norm=block_norm,
                    norm_params=norm_params, causal=causal, pad_mode=pad_mode, compress=compress,
                    true_skip=true_skip))
            mult //= 2
        model += [
            act(**activation_params),
            StreamableConv1d(n_filters, channels, last_kernel_size,
                             norm="none" if disable_norm_outer_blocks >= 1 else norm, **common),
        ]
        if final_activation is not None:
            model.append(_activation(final_activation)(**(final_activation_params or {})))
        self.model = StreamingSequential(*model)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """[B, dimension, F] -> [B, channels, F * hop_length]."""
        return self.model(z)

    def flush(self, x: torch.Tensor | None = None) -> torch.Tensor | None:
        """Emit the samples still held back at the end of a stream (only with ``trim_right_ratio`` < 1)."""
        return self.model.flush(x)
