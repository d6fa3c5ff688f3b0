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


def _elu_values(x: torch.Tensor, alpha: float, out: torch.Tensor | None) -> torch.Tensor:
    """``ELU(x) = x if x > 0 else alpha * (exp(x) - 1)`` in four vectorised passes, written to ``out`` if given.

    torch's CPU ELU kernel goes through ``expm1``, which the AVX-512 build runs element by element (about 20x
    slower than ``exp``): it made ELU the most expensive operation of SEANet on CPU. ``exp(x) - 1`` is exact for
    x >= 0 (0 at x = 0) and within about 1e-7 of ``expm1`` elsewhere; for alpha <= 1, ``max(x, alpha *
    (exp(min(x, 0)) - 1))`` equals ELU, picking x itself where the exp rounding would undershoot it.
    """
    neg = torch.clamp(x, max=0.0)
    neg.exp_().sub_(1.0)
    if alpha != 1.0:
        neg.mul_(alpha)
    if alpha <= 1.0:
        return torch.maximum(x, neg, out=neg if out is None else out)
    return torch.where(x > 0, x, neg, out=neg if out is None else out)


class _ELUFunction(torch.autograd.Function):
    """Autograd of :func:`_elu_values`: the gradient ``1`` for x > 0, ``ELU(x) + alpha`` elsewhere.

    The gradient is computed from the output, so an in-place call keeps no copy of its input.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, alpha: float, inplace: bool) -> torch.Tensor:  # type: ignore[override]
        y = _elu_values(x, alpha, x if inplace else None)
        if inplace:
            ctx.mark_dirty(x)
        ctx.save_for_backward(y)
        ctx.alpha = alpha
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        (y,) = ctx.saved_tensors
        if ctx.alpha == 1.0:
            slope = torch.clamp(y, max=0.0).add_(1.0)  # y + 1 where y <= 0, 1 elsewhere
        else:
            slope = torch.where(y > 0, torch.ones_like(y), y + ctx.alpha)
        return slope.mul_(grad), None, None


class FastELU(nn.ELU):
    """``nn.ELU`` (same ``alpha``/``inplace`` attributes, no parameters) with a faster CPU path.

    On CPU, the values come from :func:`_elu_values` (within about 1e-7 of torch's kernel) and, with
    ``inplace=True``, overwrite the input, even under autograd (the gradient is computed from the output). Other
    devices use torch's own ``F.elu``. Upstream AudioCraft uses ``nn.ELU``; this class only changes speed.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Elementwise ELU of ``x``."""
        if x.device.type != "cpu" or not x.is_floating_point():
            return super().forward(x)
        if torch.is_grad_enabled() and x.requires_grad:
            return _ELUFunction.apply(x, float(self.alpha), self.inplace)
        return _elu_values(x, float(self.alpha), x if self.inplace else None)


def _make_activation(act: type[nn.Module], params: dict[str, Any], inplace: bool = False) -> nn.Module:
    """An instance of ``act``; ELU becomes :class:`FastELU`, in place when its input has no other reader."""
    if act is nn.ELU:
        return FastELU(**params, inplace=inplace)
    return act(**params)


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

    def __init__(
        self,
        dim: int,
        kernel_sizes: list[int] | None = None,
        dilations: list[int] | None = None,
        activation: str = "ELU",
        activation_params: dict[str, Any] | None = None,
        norm: str = "none",
        norm_params: dict[str, Any] | None = None,
        causal: bool = False,
        pad_mode: str = "reflect",
        compress: int = 2,
        true_skip: bool = True,
    ) -> None:
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
                _make_activation(act, activation_params, inplace=i > 0),  # x itself also feeds the shortcut
                StreamableConv1d(
                    in_chs,
                    out_chs,
                    kernel_size=kernel_size,
                    dilation=dilation,
                    norm=norm,
                    norm_kwargs=norm_params,
                    causal=causal,
                    pad_mode=pad_mode,
                ),
            ]
        self.block = StreamingSequential(*block)
        self.shortcut: nn.Module
        if true_skip:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = StreamableConv1d(
                dim, dim, kernel_size=1, norm=norm, norm_kwargs=norm_params, causal=causal, pad_mode=pad_mode
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, dim, T] -> [B, dim, T]."""
        # The block ends with a convolution whose fresh output nothing else reads: add the shortcut into it.
        return self.block(x).add_(self.shortcut(x))


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

    def __init__(
        self,
        channels: int = 1,
        dimension: int = 128,
        n_filters: int = 32,
        n_residual_layers: int = 3,
        ratios: list[int] | None = None,
        activation: str = "ELU",
        activation_params: dict[str, Any] | None = None,
        norm: str = "none",
        norm_params: dict[str, Any] | None = None,
        kernel_size: int = 7,
        last_kernel_size: int = 7,
        residual_kernel_size: int = 3,
        dilation_base: int = 2,
        causal: bool = False,
        pad_mode: str = "reflect",
        true_skip: bool = True,
        compress: int = 2,
        lstm: int = 0,
        disable_norm_outer_blocks: int = 0,
    ) -> None:
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
            raise ValueError(
                f"disable_norm_outer_blocks must be in [0, {self.n_blocks}], got {disable_norm_outer_blocks}"
            )
        act = _activation(activation)
        common: dict[str, Any] = dict(norm_kwargs=norm_params, causal=causal, pad_mode=pad_mode)
        mult = 1
        model: list[nn.Module] = [
            StreamableConv1d(
                channels,
                mult * n_filters,
                kernel_size,
                norm="none" if disable_norm_outer_blocks >= 1 else norm,
                **common,
            )
        ]
        for i, ratio in enumerate(self.ratios):
            block_norm = "none" if disable_norm_outer_blocks >= i + 2 else norm
            for j in range(n_residual_layers):
                model.append(
                    SEANetResnetBlock(
                        mult * n_filters,
                        kernel_sizes=[residual_kernel_size, 1],
                        dilations=[dilation_base**j, 1],
                        norm=block_norm,
                        norm_params=norm_params,
                        activation=activation,
                        activation_params=activation_params,
                        causal=causal,
                        pad_mode=pad_mode,
                        compress=compress,
                        true_skip=true_skip,
                    )
                )
            model += [
                _make_activation(act, activation_params, inplace=True),
                StreamableConv1d(
                    mult * n_filters,
                    mult * n_filters * 2,
                    kernel_size=ratio * 2,
                    stride=ratio,
                    norm=block_norm,
                    **common,
                ),
            ]
            mult *= 2
        if lstm:
            model.append(StreamableLSTM(mult * n_filters, num_layers=lstm))
        model += [
            _make_activation(act, activation_params, inplace=True),
            StreamableConv1d(
                mult * n_filters,
                dimension,
                last_kernel_size,
                norm="none" if disable_norm_outer_blocks == self.n_blocks else norm,
                **common,
            ),
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

    def __init__(
        self,
        channels: int = 1,
        dimension: int = 128,
        n_filters: int = 32,
        n_residual_layers: int = 3,
        ratios: list[int] | None = None,
        activation: str = "ELU",
        activation_params: dict[str, Any] | None = None,
        final_activation: str | None = None,
        final_activation_params: dict[str, Any] | None = None,
        norm: str = "none",
        norm_params: dict[str, Any] | None = None,
        kernel_size: int = 7,
        last_kernel_size: int = 7,
        residual_kernel_size: int = 3,
        dilation_base: int = 2,
        causal: bool = False,
        pad_mode: str = "reflect",
        true_skip: bool = True,
        compress: int = 2,
        lstm: int = 0,
        disable_norm_outer_blocks: int = 0,
        trim_right_ratio: float = 1.0,
    ) -> None:
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
            raise ValueError(
                f"disable_norm_outer_blocks must be in [0, {self.n_blocks}], got {disable_norm_outer_blocks}"
            )
        act = _activation(activation)
        common: dict[str, Any] = dict(norm_kwargs=norm_params, causal=causal, pad_mode=pad_mode)
        mult = int(2 ** len(self.ratios))
        model: list[nn.Module] = [
            StreamableConv1d(
                dimension,
                mult * n_filters,
                kernel_size,
                norm="none" if disable_norm_outer_blocks == self.n_blocks else norm,
                **common,
            )
        ]
        if lstm:
            model.append(StreamableLSTM(mult * n_filters, num_layers=lstm))
        for i, ratio in enumerate(self.ratios):
            block_norm = "none" if disable_norm_outer_blocks >= self.n_blocks - (i + 1) else norm
            model += [
                _make_activation(act, activation_params, inplace=True),
                StreamableConvTranspose1d(
                    mult * n_filters,
                    mult * n_filters // 2,
                    kernel_size=ratio * 2,
                    stride=ratio,
                    norm=block_norm,
                    norm_kwargs=norm_params,
                    causal=causal,
                    trim_right_ratio=trim_right_ratio,
                ),
            ]
            for j in range(n_residual_layers):
                model.append(
                    SEANetResnetBlock(
                        mult * n_filters // 2,
                        kernel_sizes=[residual_kernel_size, 1],
                        dilations=[dilation_base**j, 1],
                        activation=activation,
                        activation_params=activation_params,
                        norm=block_norm,
                        norm_params=norm_params,
                        causal=causal,
                        pad_mode=pad_mode,
                        compress=compress,
                        true_skip=true_skip,
                    )
                )
            mult //= 2
        model += [
            _make_activation(act, activation_params, inplace=True),
            StreamableConv1d(
                n_filters, channels, last_kernel_size, norm="none" if disable_norm_outer_blocks >= 1 else norm, **common
            ),
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
