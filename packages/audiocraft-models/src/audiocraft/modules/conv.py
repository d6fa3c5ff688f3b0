"""Normalised and streamable 1-D convolutions (layer: audiocraft-models, modules).

``NormConv1d`` / ``NormConvTranspose1d`` (and their 2-D versions, used by discriminators) wrap a torch convolution
with a normalisation (``none``, ``weight_norm``, ``spectral_norm`` or ``time_group_norm``). ``StreamableConv1d`` and
``StreamableConvTranspose1d`` add the padding that keeps lengths aligned across an encoder/decoder pair (causal:
all on the left; non-causal: split, with the extra at the end), with upstream AudioCraft's numerics and
state-dict keys (``conv.conv.weight_g``, ``convtr.convtr.weight_v``...). Causal ones can also run in streaming
mode (see :mod:`audiocraft.modules.streaming`), chunk by chunk, with the same output as one offline call.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, TypeVar, cast

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

from .streaming import StreamingModule
from .weight_norm import effective_weight, weight_norm

__all__ = [
    "CONV_NORMALIZATIONS",
    "NormConv1d",
    "NormConv2d",
    "NormConvTranspose1d",
    "NormConvTranspose2d",
    "StreamableConv1d",
    "StreamableConvTranspose1d",
    "get_extra_padding_for_conv1d",
    "pad1d",
    "pad_for_conv1d",
    "unpad1d",
]

CONV_NORMALIZATIONS = frozenset(["none", "weight_norm", "spectral_norm", "time_group_norm"])
"""The ``norm`` values of the convolution wrappers."""

M = TypeVar("M", bound=nn.Module)


# On CPU, float32 convolutions run as 2-D oneDNN convolutions over [B, C, 1, T] tensors in channels-last layout:
# oneDNN's kernels for that layout are 1.2-3x faster here than for torch's default [B, C, T] layout (which it
# reorders to and from a blocked format at every call), for the forward and the backward pass. The outputs are
# [B, C, T] views with time-major strides (channel stride 1), which the next convolution takes without a copy; the
# activations, adds and the LSTM in between work on any layout. The arithmetic is the same convolution, but the
# kernel sums in another order: outputs differ from torch's conv1d by float rounding (a few 1e-7 relative).
# Upstream AudioCraft calls torch's conv1d; `channels_last_cpu(False)` does the same here.
_CHANNELS_LAST_CPU = True


def channels_last_cpu(enabled: bool) -> bool:
    """Turn the channels-last CPU convolutions on or off (process-wide); return the previous setting.

    Args:
        enabled: True (the default) runs float32 CPU 1-D convolutions as channels-last 2-D oneDNN convolutions;
            False calls torch's ``conv1d`` / ``conv_transpose1d`` as upstream does.

    Returns:
        bool: the setting before the call.
    """
    global _CHANNELS_LAST_CPU
    previous, _CHANNELS_LAST_CPU = _CHANNELS_LAST_CPU, bool(enabled)
    return previous


def _use_channels_last(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (
        _CHANNELS_LAST_CPU
        and x.device.type == "cpu"
        and x.dim() == 3
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
    )


def _channels_last_2d(weight: torch.Tensor, owner: nn.Module | None = None) -> torch.Tensor:
    """A 1-D convolution weight [O, I, K] as the channels-last 2-D weight [O, I, 1, K] (a copy, kept in the graph).

    Without autograd (inference, streaming decode) the copy is cached on ``owner`` and reused while ``weight`` is
    the same tensor at the same version: an in-place update (optimizer step, ``load_state_dict``) bumps the
    version, a recomputed weight-norm weight is a new tensor, and the cache holds a reference to its source, so a
    freed tensor's address cannot be mistaken for it.
    """
    if owner is None or torch.is_grad_enabled():
        return weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    # Inference tensors (a weight-norm weight computed under inference_mode) have no version counter; nothing
    # updates them in place, they are replaced.
    key = (-1 if weight.is_inference() else weight._version, torch.is_inference_mode_enabled())
    cached = owner.__dict__.get("_ac_channels_last")
    if cached is not None and cached[0] is weight and cached[1] == key:
        return cast(torch.Tensor, cached[2])
    weight_2d = weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    owner.__dict__["_ac_channels_last"] = (weight, key, weight_2d)
    return weight_2d


def _functional_args(module: nn.Conv1d | nn.ConvTranspose1d) -> tuple[torch.Tensor, int] | None:
    """``(weight, padding)`` to call the functional convolution with, or None when the module's forward must run.

    None for reparametrisations other than weight norm (see ``effective_weight``), non-zero padding modes and
    string paddings (``'same'``), which the functional path here does not reproduce.
    """
    if module.padding_mode != "zeros" or isinstance(module.padding, str):
        return None
    weight = effective_weight(module)
    return None if weight is None else (weight, module.padding[0])


def _conv1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: int,
    padding: int,
    dilation: int,
    groups: int,
    owner: nn.Module | None = None,
) -> torch.Tensor:
    """``F.conv1d`` with integer geometry; a channels-last 2-D convolution on CPU (see ``_CHANNELS_LAST_CPU``).

    ``owner`` (the convolution module) keeps the channels-last weight between inference calls.
    """
    if not _use_channels_last(x, weight):
        return F.conv1d(x, weight, bias, stride, padding, dilation, groups)
    weight_2d = _channels_last_2d(weight, owner)
    y = F.conv2d(x.unsqueeze(2), weight_2d, bias, (1, stride), (0, padding), (1, dilation), groups)
    return y.squeeze(2)


def _conv_transpose1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: int,
    padding: int,
    output_padding: int,
    groups: int,
    dilation: int,
    owner: nn.Module | None = None,
) -> torch.Tensor:
    """``F.conv_transpose1d`` with integer geometry; channels-last 2-D on CPU (see ``_CHANNELS_LAST_CPU``).

    ``owner`` (the transposed convolution module) keeps the channels-last weight between inference calls.
    """
    if not _use_channels_last(x, weight):
        return F.conv_transpose1d(x, weight, bias, stride, padding, output_padding, groups, dilation)
    y = F.conv_transpose2d(
        x.unsqueeze(2),
        _channels_last_2d(weight, owner),
        bias,
        (1, stride),
        (0, padding),
        (0, output_padding),
        groups,
        (1, dilation),
    )
    return y.squeeze(2)


def _check_norm(norm: str) -> None:
    if norm not in CONV_NORMALIZATIONS:
        raise ValueError(f"unknown conv normalization {norm!r}; expected one of {sorted(CONV_NORMALIZATIONS)}")


def apply_parametrization_norm(module: M, norm: str = "none") -> M:
    """Apply the weight reparametrisation of ``norm`` (weight or spectral norm) to ``module``, in place."""
    _check_norm(norm)
    if norm == "weight_norm":
        return weight_norm(module)
    if norm == "spectral_norm":
        return spectral_norm(module)
    return module


def get_norm_module(module: nn.Module, causal: bool = False, norm: str = "none", **norm_kwargs: Any) -> nn.Module:
    """Return the normalisation applied after the convolution (GroupNorm over time, or identity).

    Raises:
        ValueError: for ``time_group_norm`` with ``causal=True`` (it looks at the whole sequence).
    """
    _check_norm(norm)
    if norm == "time_group_norm":
        if causal:
            raise ValueError("time_group_norm normalises over the whole sequence and cannot be causal")
        return nn.GroupNorm(1, int(module.out_channels), **norm_kwargs)  # type: ignore[arg-type]
    return nn.Identity()


def get_extra_padding_for_conv1d(x: torch.Tensor, kernel_size: int, stride: int, padding_total: int = 0) -> int:
    """Right padding needed for the last window of a strided convolution to be full (see :func:`pad_for_conv1d`)."""
    length = x.shape[-1]
    n_frames = (length - kernel_size + padding_total) / stride + 1
    ideal_length = (math.ceil(n_frames) - 1) * stride + (kernel_size - padding_total)
    return ideal_length - length


def pad_for_conv1d(x: torch.Tensor, kernel_size: int, stride: int, padding_total: int = 0) -> torch.Tensor:
    """Zero-pad ``x`` [..., T] at the end so that the last convolution window is full.

    Without it, a transposed convolution could not rebuild the input length: the samples of an incomplete last
    window would be dropped.
    """
    return F.pad(x, (0, get_extra_padding_for_conv1d(x, kernel_size, stride, padding_total)))


def pad1d(x: torch.Tensor, paddings: tuple[int, int], mode: str = "constant", value: float = 0.0) -> torch.Tensor:
    """``F.pad`` on the last dimension that also allows reflect padding of inputs shorter than the padding.

    For a too short input, zeros are added on the right before reflecting, then removed.
    """
    padding_left, padding_right = paddings
    if padding_left < 0 or padding_right < 0:
        raise ValueError(f"paddings must be >= 0, got {paddings}")
    if mode != "reflect":
        return F.pad(x, paddings, mode, value)
    length = x.shape[-1]
    max_pad = max(padding_left, padding_right)
    extra_pad = 0
    if length <= max_pad:
        extra_pad = max_pad - length + 1
        x = F.pad(x, (0, extra_pad))
    padded = F.pad(x, paddings, mode, value)
    return padded[..., : padded.shape[-1] - extra_pad]


def unpad1d(x: torch.Tensor, paddings: tuple[int, int]) -> torch.Tensor:
    """Remove ``paddings`` (left, right) from the last dimension of ``x``."""
    padding_left, padding_right = paddings
    if padding_left < 0 or padding_right < 0 or padding_left + padding_right > x.shape[-1]:
        raise ValueError(f"cannot remove paddings {paddings} from a length {x.shape[-1]}")
    return x[..., padding_left : x.shape[-1] - padding_right]


class NormConv1d(nn.Module):
    """``nn.Conv1d`` followed by the normalisation ``norm`` (keys ``conv.*`` and ``norm.*``)."""

    def __init__(
        self,
        *args: Any,
        causal: bool = False,
        norm: str = "none",
        norm_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.conv = apply_parametrization_norm(nn.Conv1d(*args, **kwargs), norm)
        self.norm = get_norm_module(self.conv, causal, norm, **(norm_kwargs or {}))
        self.norm_type = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C_in, T] -> [B, C_out, T']."""
        conv: nn.Conv1d = self.conv
        args = _functional_args(conv)
        if args is None:
            return self.norm(conv(x))
        weight, padding = args
        return self.norm(_conv1d(x, weight, conv.bias, conv.stride[0], padding, conv.dilation[0], conv.groups, conv))


class NormConv2d(nn.Module):
    """``nn.Conv2d`` followed by the normalisation ``norm`` (used by the discriminators)."""

    def __init__(
        self, *args: Any, norm: str = "none", norm_kwargs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__()
        self.conv = apply_parametrization_norm(nn.Conv2d(*args, **kwargs), norm)
        self.norm = get_norm_module(self.conv, causal=False, norm=norm, **(norm_kwargs or {}))
        self.norm_type = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C_in, H, W] -> [B, C_out, H', W']."""
        return self.norm(self.conv(x))


class NormConvTranspose1d(nn.Module):
    """``nn.ConvTranspose1d`` followed by the normalisation ``norm`` (keys ``convtr.*`` and ``norm.*``)."""

    def __init__(
        self,
        *args: Any,
        causal: bool = False,
        norm: str = "none",
        norm_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.convtr = apply_parametrization_norm(nn.ConvTranspose1d(*args, **kwargs), norm)
        self.norm = get_norm_module(self.convtr, causal, norm, **(norm_kwargs or {}))
        self.norm_type = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C_in, T] -> [B, C_out, T']."""
        convtr: nn.ConvTranspose1d = self.convtr
        args = _functional_args(convtr)
        if args is None:
            return self.norm(convtr(x))
        weight, padding = args
        return self.norm(
            _conv_transpose1d(
                x,
                weight,
                convtr.bias,
                convtr.stride[0],
                padding,
                convtr.output_padding[0],
                convtr.groups,
                convtr.dilation[0],
                convtr,
            )
        )


class NormConvTranspose2d(nn.Module):
    """``nn.ConvTranspose2d`` followed by the normalisation ``norm``."""

    def __init__(
        self, *args: Any, norm: str = "none", norm_kwargs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__()
        self.convtr = apply_parametrization_norm(nn.ConvTranspose2d(*args, **kwargs), norm)
        self.norm = get_norm_module(self.convtr, causal=False, norm=norm, **(norm_kwargs or {}))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C_in, H, W] -> [B, C_out, H', W']."""
        return self.norm(self.convtr(x))


def _require_causal(module: nn.Module, causal: bool) -> None:
    if not causal:
        raise RuntimeError(
            f"{type(module).__name__} can only stream when causal=True (its output would depend "
            "on samples that have not arrived yet)"
        )


class StreamableConv1d(StreamingModule):
    """Conv1d with causal or centred padding and a normalisation, streamable when causal.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel size.
        stride: stride.
        dilation: dilation.
        groups: groups.
        bias: whether the convolution has a bias.
        causal: pad only on the left, so output frame t depends on input up to t.
        norm: one of ``none``, ``weight_norm``, ``spectral_norm``, ``time_group_norm``.
        norm_kwargs: extra arguments of the normalisation module.
        pad_mode: ``F.pad`` mode of the padding (``constant``, ``reflect``, ``replicate``...).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        causal: bool = False,
        norm: str = "none",
        norm_kwargs: dict[str, Any] | None = None,
        pad_mode: str = "reflect",
    ) -> None:
        super().__init__()
        if stride > 1 and dilation > 1:
            warnings.warn(
                f"StreamableConv1d with stride > 1 and dilation > 1 (kernel_size={kernel_size}, "
                f"stride={stride}, dilation={dilation})",
                stacklevel=2,
            )
        self.conv = NormConv1d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            dilation=dilation,
            groups=groups,
            bias=bias,
            causal=causal,
            norm=norm,
            norm_kwargs=norm_kwargs,
        )
        self.causal = causal
        self.pad_mode = pad_mode

    @property
    def _geometry(self) -> tuple[int, int, int]:
        """(effective kernel size, stride, total fixed padding)."""
        conv: nn.Conv1d = self.conv.conv
        kernel = (conv.kernel_size[0] - 1) * conv.dilation[0] + 1
        stride = conv.stride[0]
        return kernel, stride, kernel - stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C_in, T] -> [B, C_out, ceil(T / stride)]; in streaming mode, the frames complete so far."""
        if self._is_streaming:
            return self._stream(x)
        kernel, stride, padding_total = self._geometry
        extra_padding = get_extra_padding_for_conv1d(x, kernel, stride, padding_total)
        if self.causal:
            padding_left, padding_right = padding_total, extra_padding
        else:
            padding_right = padding_total // 2
            padding_left = padding_total - padding_right
            padding_right += extra_padding
        if self.pad_mode == "constant" and padding_right <= padding_left and isinstance(self.conv.norm, nn.Identity):
            return self._conv_zero_padded(x, padding_left, padding_right, stride)
        return self.conv(pad1d(x, (padding_left, padding_right), mode=self.pad_mode))

    def _conv_zero_padded(self, x: torch.Tensor, padding_left: int, padding_right: int, stride: int) -> torch.Tensor:
        """Zero padding done by the convolution itself (no padded copy of the input).

        Pads ``padding_left`` on both sides, then drops the output frames that only the extra right padding produced.
        """
        conv = self.conv.conv
        weight = effective_weight(conv)
        if weight is None:
            return self.conv(pad1d(x, (padding_left, padding_right)))
        n_frames = (x.shape[-1] + padding_left + padding_right - self._geometry[0]) // stride + 1
        y = _conv1d(x, weight, conv.bias, stride, padding_left, conv.dilation[0], conv.groups, conv)
        return y[..., :n_frames]

    def _stream(self, x: torch.Tensor) -> torch.Tensor:
        _require_causal(self, self.causal)
        kernel, stride, padding_total = self._geometry
        previous = self._streaming_state.get("previous")
        if previous is None:
            pending = self._streaming_state.pop("pending", None)
            if pending is not None:
                x = torch.cat([pending, x], dim=-1)
            if self.pad_mode == "reflect" and x.shape[-1] <= padding_total:
                # Reflect padding needs more samples than the padding to match offline: wait for them.
                self._streaming_state["pending"] = x
                return x.new_zeros(x.shape[0], int(self.conv.conv.out_channels), 0)
            x = pad1d(x, (padding_total, 0), mode=self.pad_mode)  # first chunk: the same left padding as offline
        else:
            x = torch.cat([previous, x], dim=-1)
        n_frames = max(0, (x.shape[-1] - kernel) // stride + 1)
        self._streaming_state["previous"] = x[..., n_frames * stride :]
        if n_frames == 0:
            return x.new_zeros(x.shape[0], int(self.conv.conv.out_channels), 0)
        return self.conv(x[..., : (n_frames - 1) * stride + kernel])

    def flush(self, x: torch.Tensor | None = None) -> torch.Tensor | None:
        """Process ``x`` then emit the last, partially filled window(s) padded as offline would."""
        outputs = [] if x is None else [self(x)]
        pending = self._streaming_state.pop("pending", None)
        if pending is not None:  # the whole stream was shorter than the padding: do what offline does
            self._is_streaming = False
            try:
                outputs.append(self(pending))
            finally:
                self._is_streaming = True
        previous = self._streaming_state.get("previous")
        kernel, stride, padding_total = self._geometry
        if previous is not None and previous.shape[-1] > padding_total:
            extra = get_extra_padding_for_conv1d(previous, kernel, stride, padding_total)
            outputs.append(self.conv(pad1d(previous, (0, extra), mode=self.pad_mode)))
            self._streaming_state["previous"] = previous[..., previous.shape[-1] - padding_total :]
        if not outputs:
            return None
        return torch.cat(outputs, dim=-1)


class StreamableConvTranspose1d(StreamingModule):
    """ConvTranspose1d that trims its fixed padding (causal: on the right), streamable when causal.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel size.
        stride: stride (upsampling factor).
        causal: trim the padding so that output sample t depends on input frames up to t // stride.
        norm: one of ``none``, ``weight_norm``, ``spectral_norm``, ``time_group_norm``.
        trim_right_ratio: causal only, share of the padding trimmed on the right (1.0 = all of it).
        norm_kwargs: extra arguments of the normalisation module.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        causal: bool = False,
        norm: str = "none",
        trim_right_ratio: float = 1.0,
        norm_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.convtr = NormConvTranspose1d(
            in_channels, out_channels, kernel_size, stride, causal=causal, norm=norm, norm_kwargs=norm_kwargs
        )
        self.causal = causal
        self.trim_right_ratio = trim_right_ratio
        if not (causal or trim_right_ratio == 1.0):
            raise ValueError("trim_right_ratio != 1.0 only makes sense for causal convolutions")
        if not 0.0 <= trim_right_ratio <= 1.0:
            raise ValueError(f"trim_right_ratio must be in [0, 1], got {trim_right_ratio}")

    def _paddings(self) -> tuple[int, int]:
        convtr: nn.ConvTranspose1d = self.convtr.convtr
        padding_total = convtr.kernel_size[0] - convtr.stride[0]
        if self.causal:
            padding_right = math.ceil(padding_total * self.trim_right_ratio)
        else:
            padding_right = padding_total // 2
        return padding_total - padding_right, padding_right

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C_in, T] -> [B, C_out, T * stride]; in streaming mode, the samples complete so far."""
        if self._is_streaming:
            return self._stream(x)
        # Only the fixed padding is trimmed here: the extra padding of `pad_for_conv1d` is removed at the very end
        # by the caller, who knows the target length.
        return unpad1d(self.convtr(x), self._paddings())

    def _bias(self) -> torch.Tensor | None:
        bias = self.convtr.convtr.bias
        return None if bias is None else bias[:, None]

    def _stream(self, x: torch.Tensor) -> torch.Tensor:
        _require_causal(self, self.causal)
        stride: int = self.convtr.convtr.stride[0]
        if x.shape[-1] == 0:
            return x.new_zeros(x.shape[0], int(self.convtr.convtr.out_channels), 0)
        y = self.convtr(x)
        partial = self._streaming_state.get("partial")
        first = "started" not in self._streaming_state
        bias = self._bias()
        if partial is not None:
            overlap = partial.shape[-1]
            y = torch.cat([y[..., :overlap] + partial, y[..., overlap:]], dim=-1)
        ready = x.shape[-1] * stride
        tail = y[..., ready:]
        # The tail overlaps the next chunk's output, which will carry the bias again: keep it without bias.
        self._streaming_state["partial"] = tail - bias if bias is not None else tail
        self._streaming_state["started"] = torch.ones(x.shape[0], device=x.device)
        out = y[..., :ready]
        if first:
            out = out[..., self._paddings()[0] :]
        return out

    def flush(self, x: torch.Tensor | None = None) -> torch.Tensor | None:
        """Process ``x`` then emit the samples held back by a left trim (``trim_right_ratio`` < 1)."""
        outputs = [] if x is None else [self(x)]
        partial = self._streaming_state.pop("partial", None)
        padding_left = self._paddings()[0]
        if partial is not None and padding_left > 0:
            bias = self._bias()
            held = partial[..., :padding_left]
            outputs.append(held + bias if bias is not None else held)
        if not outputs:
            return None
        return torch.cat(outputs, dim=-1)
