"""Normalised convolutions: upstream geometry, weight norm layouts and folding."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from audiocraft.modules import NormConv2d, StreamableConv1d, StreamableConvTranspose1d, pad1d
from audiocraft.modules.conv import channels_last_cpu
from audiocraft.modules.weight_norm import has_weight_norm, remove_weight_norm


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("length", [37, 40, 41])
def test_conv_pair_rebuilds_ceil_length(causal: bool, length: int) -> None:
    down = StreamableConv1d(1, 4, kernel_size=8, stride=4, causal=causal)
    up = StreamableConvTranspose1d(4, 1, kernel_size=8, stride=4, causal=causal)
    y = up(down(torch.randn(2, 1, length)))
    assert down(torch.randn(2, 1, length)).shape[-1] == -(-length // 4)
    assert y.shape[-1] == 4 * -(-length // 4)


def test_weight_norm_keys_match_torch_and_upstream() -> None:
    conv = StreamableConv1d(2, 3, kernel_size=5, norm="weight_norm")
    keys = sorted(conv.state_dict())
    assert keys == ["conv.conv.bias", "conv.conv.weight_g", "conv.conv.weight_v"]
    assert conv.state_dict()["conv.conv.weight_g"].shape == (3, 1, 1)
    convtr = StreamableConvTranspose1d(4, 2, kernel_size=6, stride=3, norm="weight_norm")
    assert convtr.state_dict()["convtr.convtr.weight_g"].shape == (4, 1, 1)  # dim 0 = input channels


def test_torch_parametrization_state_dict_loads_and_computes_the_same() -> None:
    torch.manual_seed(0)
    reference = nn.utils.parametrizations.weight_norm(nn.Conv1d(2, 3, 5))
    with torch.no_grad():  # make g differ from ||v||
        reference.parametrizations.weight.original0.mul_(1.7)
    ours = StreamableConv1d(2, 3, kernel_size=5, norm="weight_norm", causal=True)
    missing = ours.conv.conv.load_state_dict(reference.state_dict(), strict=True)
    assert not missing.missing_keys
    x = torch.randn(1, 2, 20)
    with torch.no_grad():
        torch.testing.assert_close(ours.conv.conv(x), reference(x), atol=1e-6, rtol=0)


def test_fold_and_load_folded_weights() -> None:
    torch.manual_seed(0)
    conv = StreamableConv1d(2, 3, kernel_size=5, norm="weight_norm")
    x = torch.randn(1, 2, 20)
    with torch.no_grad():
        expected = conv(x)
    folded = copy.deepcopy(conv)
    remove_weight_norm(folded.conv.conv)
    assert not has_weight_norm(folded.conv.conv)
    assert sorted(folded.state_dict()) == ["conv.conv.bias", "conv.conv.weight"]
    with torch.no_grad():
        torch.testing.assert_close(folded(x), expected, atol=1e-6, rtol=0)
    fresh = StreamableConv1d(2, 3, kernel_size=5, norm="weight_norm")
    fresh.load_state_dict(folded.state_dict())  # folded layout accepted by a weight-normed module
    with torch.no_grad():
        torch.testing.assert_close(fresh(x), expected, atol=1e-6, rtol=0)


def test_weight_norm_trains() -> None:
    conv = StreamableConv1d(1, 2, kernel_size=3, norm="weight_norm")
    conv(torch.randn(1, 1, 10)).sum().backward()
    assert conv.conv.conv.weight_g.grad is not None and conv.conv.conv.weight_v.grad is not None
    copy.deepcopy(conv)  # no leftover non-leaf tensor after forward


def test_norm_choices_and_errors() -> None:
    conv = StreamableConv1d(2, 4, kernel_size=3, norm="time_group_norm")
    assert isinstance(conv.conv.norm, nn.GroupNorm)
    with pytest.raises(ValueError, match="cannot be causal"):
        StreamableConv1d(2, 4, kernel_size=3, norm="time_group_norm", causal=True)
    with pytest.raises(ValueError, match="expected one of"):
        StreamableConv1d(2, 4, kernel_size=3, norm="batch_norm")
    spectral = NormConv2d(1, 2, (3, 3), norm="spectral_norm")
    assert "conv.weight_orig" in spectral.state_dict()
    with pytest.raises(ValueError, match="trim_right_ratio"):
        StreamableConvTranspose1d(2, 2, kernel_size=4, stride=2, causal=False, trim_right_ratio=0.5)


def test_reflect_pad_of_short_input() -> None:
    x = torch.arange(3.0)[None, None]
    y = pad1d(x, (4, 4), mode="reflect")
    assert y.shape[-1] == 11
    assert torch.equal(y[..., 4:7], x)


def test_inference_weight_cache_follows_parameter_updates() -> None:
    torch.manual_seed(0)
    conv = StreamableConv1d(2, 3, kernel_size=3, norm="weight_norm")
    x = torch.randn(1, 2, 12)
    with torch.inference_mode():
        before = conv(x)
    opt = torch.optim.SGD(conv.parameters(), lr=0.5)
    conv(x).pow(2).sum().backward()
    opt.step()
    with torch.no_grad():
        after = conv(x)
        reference = nn.functional.conv1d(
            nn.functional.pad(x, (1, 1), mode="reflect"),
            torch._weight_norm(conv.conv.conv.weight_v, conv.conv.conv.weight_g, 0),
            conv.conv.conv.bias,
        )
    assert not torch.allclose(before, after)
    # rtol: on CPU the convolution runs as oneDNN's channels-last kernel, which sums in another order than conv1d
    torch.testing.assert_close(after, reference, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("norm", ["none", "weight_norm", "spectral_norm"])
@pytest.mark.parametrize(("kernel", "stride", "causal"), [(7, 1, True), (8, 4, True), (8, 4, False), (3, 1, False)])
def test_zero_padding_inside_the_conv_equals_explicit_padding(
    norm: str, kernel: int, stride: int, causal: bool
) -> None:
    torch.manual_seed(0)
    conv = StreamableConv1d(2, 3, kernel_size=kernel, stride=stride, causal=causal, norm=norm, pad_mode="constant")
    conv.eval()
    for length in (29, 32):
        x = torch.randn(2, 2, length, requires_grad=True)
        padding_total = kernel - stride
        extra = -(-length // stride) * stride - length if stride > 1 else 0
        left = padding_total if causal else padding_total - padding_total // 2
        right = padding_total + extra - left
        expected = conv.conv(nn.functional.pad(x, (left, right)))
        y = conv(x)
        assert y.shape[-1] == -(-length // stride)
        torch.testing.assert_close(y, expected, atol=1e-6, rtol=0)
        y.sum().backward()  # gradients flow through the weight-normed weight as well
        assert x.grad is not None
        if norm == "weight_norm":
            assert conv.conv.conv.weight_g.grad is not None


@pytest.mark.parametrize(
    "kind, cin, cout, kernel, stride, dilation, groups",
    [
        ("conv", 4, 6, 3, 1, 1, 1),
        ("conv", 4, 6, 8, 4, 1, 1),
        ("conv", 4, 6, 3, 1, 3, 1),
        ("conv", 4, 6, 3, 1, 1, 2),
        ("conv", 1, 8, 7, 1, 1, 1),
        ("convtr", 6, 4, 8, 4, 1, 1),
        ("convtr", 6, 4, 3, 1, 1, 1),
    ],
)
def test_channels_last_cpu_convolutions_match_torch_conv1d(
    kind: str, cin: int, cout: int, kernel: int, stride: int, dilation: int, groups: int
) -> None:
    torch.manual_seed(0)
    if kind == "conv":
        module: nn.Module = StreamableConv1d(
            cin, cout, kernel, stride, dilation=dilation, groups=groups, pad_mode="constant"
        )
    else:
        module = StreamableConvTranspose1d(cin, cout, kernel, stride)
    x = torch.randn(2, cin, 50, requires_grad=True)

    def run(enabled: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        previous = channels_last_cpu(enabled)
        try:
            y = module(x)
            grads = torch.autograd.grad(y.square().sum(), [x, *module.parameters()])
        finally:
            channels_last_cpu(previous)
        return y, list(grads)

    y_fast, grads_fast = run(True)
    y_ref, grads_ref = run(False)
    assert y_fast.shape == y_ref.shape
    if cin > 1:  # with one input channel both layouts are the same and oneDNN keeps torch's default
        assert y_fast.stride(1) == 1  # time-major [B, C, T] view of the channels-last result
    assert y_ref.stride(-1) == 1
    torch.testing.assert_close(y_fast, y_ref, rtol=1e-6, atol=1e-6)
    for fast, ref in zip(grads_fast, grads_ref, strict=True):
        torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)


def test_channels_last_chain_takes_the_previous_output_without_a_copy() -> None:
    torch.manual_seed(0)
    first = StreamableConv1d(3, 8, 3, pad_mode="constant")
    second = StreamableConv1d(8, 8, 3, pad_mode="constant")
    with torch.no_grad():
        y = first(torch.randn(1, 3, 64))
        assert y.stride() == (64 * 8, 1, 8)
        assert y.unsqueeze(2).is_contiguous(memory_format=torch.channels_last)  # what conv2d receives
        z = second(y)
        previous = channels_last_cpu(False)
        try:
            ref = second(y.contiguous())
        finally:
            channels_last_cpu(previous)
    torch.testing.assert_close(z, ref, rtol=1e-6, atol=1e-6)


def test_other_dtypes_and_the_switch_call_torch_conv1d_exactly() -> None:
    torch.manual_seed(0)
    conv = StreamableConv1d(3, 5, 3, pad_mode="constant").double()
    x = torch.randn(1, 3, 20, dtype=torch.float64)
    with torch.no_grad():
        y = conv(x)
        ref = nn.functional.conv1d(x, conv.conv.conv.weight, conv.conv.conv.bias, padding=1)
    assert torch.equal(y, ref) and y.is_contiguous()
    conv32 = conv.float()
    previous = channels_last_cpu(False)
    try:
        with torch.no_grad():
            y32 = conv32(x.float())
    finally:
        channels_last_cpu(previous)
    ref32 = nn.functional.conv1d(x.float(), conv32.conv.conv.weight, conv32.conv.conv.bias, padding=1)
    assert torch.equal(y32, ref32)


@pytest.mark.parametrize("norm", ["none", "weight_norm"])
@pytest.mark.parametrize("transposed", [False, True])
def test_inference_keeps_the_channels_last_weight_until_the_weight_changes(norm: str, transposed: bool) -> None:
    torch.manual_seed(0)
    cls = StreamableConvTranspose1d if transposed else StreamableConv1d
    layer = cls(4, 6, 4, stride=2, causal=True, norm=norm)
    inner = layer.convtr.convtr if transposed else layer.conv.conv
    x = torch.randn(2, 4, 30)

    def reference() -> torch.Tensor:
        previous = channels_last_cpu(False)
        try:
            with torch.no_grad():
                return layer(x)
        finally:
            channels_last_cpu(previous)

    with torch.no_grad():
        first = layer(x)
        cached = inner.__dict__["_ac_channels_last"][2]
        second = layer(x)
        assert inner.__dict__["_ac_channels_last"][2] is cached  # reused, not copied again
    assert torch.equal(first, second)
    torch.testing.assert_close(first, reference(), rtol=1e-6, atol=1e-6)
    # A training step updates the parameters in place: the next inference call sees the new weights.
    opt = torch.optim.SGD(inner.parameters(), lr=0.5)
    layer(x).pow(2).sum().backward()
    opt.step()
    with torch.no_grad():
        after_step = layer(x)
    assert inner.__dict__["_ac_channels_last"][2] is not cached
    assert not torch.allclose(after_step, first)
    torch.testing.assert_close(after_step, reference(), rtol=1e-6, atol=1e-6)
    # So does load_state_dict, and inference mode (whose weight-norm weights are inference tensors).
    other = cls(4, 6, 4, stride=2, causal=True, norm=norm)
    layer.load_state_dict(other.state_dict())
    with torch.inference_mode():
        loaded = layer(x)
        again = layer(x)
    assert torch.equal(loaded, again)
    torch.testing.assert_close(loaded, reference(), rtol=1e-6, atol=1e-6)
    # With autograd the copy stays in the graph: gradients reach the parameters, nothing is cached from it.
    inner.__dict__.pop("_ac_channels_last")
    layer(x).sum().backward()
    assert "_ac_channels_last" not in inner.__dict__
    copy.deepcopy(layer)
