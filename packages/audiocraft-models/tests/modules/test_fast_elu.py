"""FastELU (SEANet's CPU ELU) against torch's ELU: values, gradients, in-place use, and whole SEANet models."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from audiocraft.modules.seanet import FastELU, SEANetDecoder, SEANetEncoder


def _inputs() -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 4001, generator=gen) * 4
    x[0, 0, :6] = torch.tensor([0.0, -0.0, 1e-9, -1e-9, -80.0, 80.0])
    return x


@pytest.mark.parametrize("alpha", [1.0, 0.5, 2.0])
def test_values_within_2e7_of_torch_elu(alpha: float) -> None:
    x = _inputs()
    expected = F.elu(x, alpha)
    out = FastELU(alpha)(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    torch.testing.assert_close(out, expected, atol=2e-7 * max(alpha, 1.0), rtol=0)
    positive = x > 0
    assert torch.equal(out[positive], x[positive])  # exact where ELU is the identity
    assert torch.equal(out[x == 0], torch.zeros_like(out[x == 0]))


def test_inplace_overwrites_input_and_keeps_values() -> None:
    x = _inputs()
    expected = FastELU()(x)
    y = x.clone()
    out = FastELU(inplace=True)(y)
    assert out.data_ptr() == y.data_ptr()
    assert torch.equal(out, expected)
    assert torch.equal(FastELU()(x.transpose(1, 2)), expected.transpose(1, 2))  # strided input


@pytest.mark.parametrize("alpha", [1.0, 0.3])
@pytest.mark.parametrize("inplace", [False, True])
def test_gradient_matches_torch_elu(alpha: float, inplace: bool) -> None:
    x = _inputs()
    weight = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    ref = x.clone().requires_grad_()
    (F.elu(ref, alpha) * weight).sum().backward()
    leaf = x.clone().requires_grad_()
    # In place on a leaf is not allowed by autograd: apply it to the output of an op, as SEANet does.
    (FastELU(alpha, inplace=inplace)(leaf * 1.0) * weight).sum().backward()
    assert leaf.grad is not None and ref.grad is not None
    torch.testing.assert_close(leaf.grad, ref.grad, atol=1e-6, rtol=1e-6)


def test_integer_input_and_repr_as_torch() -> None:
    assert FastELU(0.5, inplace=True).extra_repr() == nn.ELU(0.5, inplace=True).extra_repr()
    assert isinstance(FastELU(), nn.ELU)
    with pytest.raises(RuntimeError):
        FastELU()(torch.arange(3))  # integer inputs: torch's own error


def _with_torch_elu(model: nn.Module) -> nn.Module:
    reference = copy.deepcopy(model)
    for module in reference.modules():
        for name, child in module.named_children():
            if isinstance(child, FastELU):
                setattr(module, name, nn.ELU(child.alpha))
    return reference


@pytest.mark.parametrize("causal", [False, True])
def test_seanet_outputs_and_gradients_within_1e6_of_torch_elu(causal: bool) -> None:
    torch.manual_seed(0)
    kwargs = dict(
        n_filters=8,
        dimension=16,
        ratios=[4, 2],
        n_residual_layers=2,
        lstm=1,
        causal=causal,
        norm="weight_norm",
        pad_mode="constant" if causal else "reflect",
    )
    encoder, decoder = SEANetEncoder(**kwargs), SEANetDecoder(**kwargs)
    assert sum(isinstance(m, FastELU) for m in encoder.modules()) == 2 * 2 * 2 + 2 + 1
    x = 0.3 * torch.randn(2, 1, 1600, generator=torch.Generator().manual_seed(3))
    outputs = {}
    for name, (enc, dec) in {
        "fast": (encoder, decoder),
        "torch": (_with_torch_elu(encoder), _with_torch_elu(decoder)),
    }.items():
        y = dec(enc(x))
        y.square().mean().backward()
        with torch.no_grad():
            outputs[name] = (y.detach(), enc(x), [p.grad for p in [*enc.parameters(), *dec.parameters()]])
    (y_fast, z_fast, g_fast), (y_ref, z_ref, g_ref) = outputs["fast"], outputs["torch"]
    torch.testing.assert_close(y_fast, y_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(z_fast, z_ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(encoder(x).detach(), z_fast, atol=1e-6, rtol=0)  # autograd and no_grad paths
    for fast, ref in zip(g_fast, g_ref):
        torch.testing.assert_close(fast, ref, atol=1e-6, rtol=1e-5)
