"""oneDNN-packed linears of CPU generation: equal to F.linear to float32 rounding, row-independent, with a fallback
wherever they do not apply; a streamed transformer on packed weights equals the one-pass output."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from audiocraft.modules._packed_linear import can_pack, pack_linear, pack_weight, packed_linear, packed_module
from audiocraft.modules.transformer import StreamingTransformer

needs_onednn = pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="torch built without oneDNN")


@needs_onednn
@pytest.mark.parametrize("shape", [(2, 48), (3, 1, 48), (0, 48)])
def test_packed_linear_equals_f_linear_to_rounding(shape: tuple[int, ...]) -> None:
    gen = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(80, 48, generator=gen), torch.randn(80, generator=gen)
    x = torch.randn(*shape, generator=gen)
    packed = pack_weight(weight, rows=2)
    assert packed is not None
    for b in (bias, None):
        out = packed_linear(x, weight, b, packed)
        assert out.shape == (*shape[:-1], 80)
        torch.testing.assert_close(out, F.linear(x, weight, b), rtol=1e-5, atol=1e-5)
    # each row's result does not depend on the other rows
    assert torch.equal(packed_linear(x[:1], weight, bias, packed), packed_linear(x, weight, bias, packed)[:1])
    # a slice of a weight (the query part of an in_proj) packs too
    top = pack_weight(weight[:16], rows=2)
    torch.testing.assert_close(packed_linear(x, weight[:16], None, top), F.linear(x, weight[:16]))


def test_packing_falls_back_where_it_does_not_apply() -> None:
    weight = torch.randn(8, 4)
    assert pack_weight(weight.half(), rows=2) is None and not can_pack(weight.double())
    x = torch.randn(2, 4, requires_grad=True)
    packed = pack_weight(weight, rows=2)
    out = packed_linear(x, weight, None, packed)  # autograd needs F.linear
    assert out.requires_grad and torch.equal(out, F.linear(x, weight))
    assert torch.equal(packed_linear(x.detach(), weight, None, None), F.linear(x.detach(), weight))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not can_pack(weight)


@needs_onednn
@pytest.mark.parametrize("cross", [False, True])
def test_streaming_on_packed_weights_equals_the_one_pass_output(cross: bool) -> None:
    torch.manual_seed(0)
    tr = StreamingTransformer(
        32, 4, 2, dim_feedforward=64, dropout=0.0, causal=True, memory_efficient=True, cross_attention=cross
    ).eval()
    x, src = torch.randn(2, 7, 32), torch.randn(2, 3, 32)
    kwargs = {"cross_attention_src": src} if cross else {}
    with torch.no_grad():
        reference = tr(x, **kwargs)
        with tr.packed_weights(2), tr.streaming():
            assert tr.layers[0].self_attn._packed_in is not None
            chunks = [tr(x[:, :3], **kwargs)] + [tr(x[:, t : t + 1], **kwargs) for t in range(3, 7)]
    assert tr.layers[0].self_attn._packed_in is None and tr.layers[1]._packed_ff == (None, None)
    torch.testing.assert_close(torch.cat(chunks, dim=1), reference, rtol=1e-5, atol=1e-5)


def test_wrapped_linears_are_not_packed_and_keep_their_forward() -> None:
    """A module wrapping a linear (as peft's LoRA layers do) adds its own computation: it is never packed, and
    packed_module runs its forward; a plain nn.Linear is packed and gives its own output to rounding."""
    torch.manual_seed(0)
    plain = torch.nn.Linear(32, 16)

    class Wrapped(torch.nn.Linear):  # same weight, one more term
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) + 1.0

    wrapped = Wrapped(32, 16)
    wrapped.load_state_dict(plain.state_dict())
    x = torch.randn(2, 32)
    assert pack_linear(wrapped, rows=2) is None
    with torch.no_grad():
        assert torch.equal(packed_module(x, wrapped, pack_linear(wrapped, rows=2)), wrapped(x))
        packed = pack_linear(plain, rows=2)
        if can_pack(plain.weight):
            assert packed is not None
        torch.testing.assert_close(packed_module(x, plain, packed), plain(x))
