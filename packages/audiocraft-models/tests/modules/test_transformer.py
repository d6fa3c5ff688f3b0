"""StreamingTransformer: one-pass numerics, streaming equivalence, the key/value cache and upstream's fixed bugs."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from torch import nn

from audiocraft.modules.activations import GeGLU, ReGLU, SwiGLU, get_activation_fn
from audiocraft.modules.transformer import (
    StreamingMultiheadAttention,
    StreamingTransformer,
    StreamingTransformerLayer,
    create_norm_fn,
    create_sin_embedding,
    get_efficient_attention_backend,
    set_efficient_attention_backend,
)

POSITIONS = [("sin", False), ("rope", False), ("sin_rope", False), ("rope", True)]  # (embedding, xpos)
BACKENDS = {"custom": {"custom": True}, "memory_efficient": {"memory_efficient": True}}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # These models are tiny: a second thread only adds synchronisation (10x slower on a busy machine).
    torch.set_num_threads(1)


def _model(**kwargs) -> StreamingTransformer:
    torch.manual_seed(0)
    base = dict(d_model=16, num_heads=4, num_layers=2, dim_feedforward=32, dropout=0.0, causal=True)
    base.update(kwargs)
    return StreamingTransformer(**base).eval()


def _stream(model: StreamingTransformer, x: torch.Tensor, chunks: list[int], **kwargs) -> torch.Tensor:
    outs, start = [], 0
    with model.streaming():
        for size in chunks:
            outs.append(model(x[:, start : start + size], **kwargs))
            start += size
    assert start == x.shape[1]
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("position", POSITIONS, ids=[f"{p}{'-xpos' if x else ''}" for p, x in POSITIONS])
@pytest.mark.parametrize("past_context", [None, 5])
@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("kv_repeat", [1, 2])
@torch.no_grad()
def test_streaming_equals_one_pass(backend, position, past_context, cross, kv_repeat):
    model = _model(
        positional_embedding=position[0],
        xpos=position[1],
        past_context=past_context,
        cross_attention=cross,
        kv_repeat=kv_repeat,
        **BACKENDS[backend],
    )
    x = torch.randn(2, 70, 16)
    kwargs = {"cross_attention_src": torch.randn(2, 4, 16)} if cross else {}
    ref = model(x, **kwargs)
    # a prompt (as LM generation), single steps, a multi-step chunk, single steps past the first reallocation (64)
    streamed = _stream(model, x, [20, 0] + [1] * 7 + [5] + [1] * 38, **kwargs)  # 0: an empty chunk
    torch.testing.assert_close(streamed, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("position", POSITIONS, ids=[f"{p}{'-xpos' if x else ''}" for p, x in POSITIONS])
@pytest.mark.parametrize("past_context", [None, 3])
@pytest.mark.parametrize("kv_repeat", [1, 2, 4])
@torch.no_grad()
def test_backends_agree(position, past_context, kv_repeat):
    kwargs = dict(positional_embedding=position[0], xpos=position[1], past_context=past_context, kv_repeat=kv_repeat)
    custom = _model(custom=True, **kwargs)
    efficient = _model(memory_efficient=True, **kwargs)
    efficient.load_state_dict(custom.state_dict(), strict=True)
    x = torch.randn(2, 12, 16)
    torch.testing.assert_close(efficient(x), custom(x), atol=1e-5, rtol=0)


@torch.no_grad()
def test_upstream_bug_rope_memory_efficient_streaming():
    # Upstream 1.3 reads the rope offset of the cache from the heads dimension with the memory-efficient backend:
    # streamed rope outputs were ~5% off. Here they match the one-pass output of the custom backend.
    efficient = _model(positional_embedding="rope", memory_efficient=True, num_heads=2)
    custom = _model(positional_embedding="rope", custom=True, num_heads=2)
    custom.load_state_dict(efficient.state_dict())
    x = torch.randn(2, 16, 16)
    ref = custom(x)
    streamed = _stream(efficient, x, [1] * 16)
    assert (streamed - ref).norm() / ref.norm() < 1e-6


def test_upstream_bug_past_context_memory_efficient():
    # Upstream ignores past_context in batch mode with the memory-efficient backend (plain causal attention) and
    # crashes when streaming. Check the receptive field through the gradients, then streaming.
    model = _model(num_layers=1, past_context=4, memory_efficient=True)
    x = torch.randn(2, 12, 16, requires_grad=True)
    model(x)[:, 10].abs().sum().backward()
    grad = x.grad.abs().sum(dim=(0, 2))
    assert torch.all(grad[6:11] > 0) and torch.all(grad[:6] == 0) and torch.all(grad[11:] == 0)
    with torch.no_grad():
        plain = _model(num_layers=1, memory_efficient=True)
        plain.load_state_dict(model.state_dict())
        ref = model(x)
        assert not torch.allclose(plain(x), ref, atol=1e-3)
        torch.testing.assert_close(_stream(model, x, [1] * 12), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("glu", [SwiGLU, GeGLU, ReGLU])
@torch.no_grad()
def test_upstream_bug_glu_activation(glu):
    # Upstream keeps linear2 at dim_feedforward inputs, so a GLU (which halves its input) crashes the layer.
    torch.manual_seed(0)
    layer = StreamingTransformerLayer(16, 4, dim_feedforward=32, dropout=0.0, activation=glu(), norm_first=True)
    assert layer.linear1.out_features == 32 and layer.linear2.in_features == 16
    x = torch.randn(2, 5, 16)
    h = layer.norm1(x)
    h = x + layer.self_attn(h, h, h)[0]
    a, b = layer.linear1(layer.norm2(h)).chunk(2, dim=-1)
    expected = h + layer.linear2(a * glu().activation(b))
    torch.testing.assert_close(layer(x), expected, atol=1e-6, rtol=0)
    # through the names LMModel uses
    model = _model(activation=get_activation_fn(glu.__name__.lower()))
    assert model(torch.randn(1, 7, 16)).shape == (1, 7, 16)


@pytest.mark.parametrize("kwargs", [{}, {"custom": True}, {"memory_efficient": True}], ids=["mha", "custom", "sdpa"])
@torch.no_grad()
def test_matches_torch_transformer_encoder(kwargs):
    # Non-causal, post-norm, ReLU, biases: the same function as nn.TransformerEncoder, whose keys load directly.
    torch.manual_seed(1)
    ref = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(16, 4, dropout=0.0, batch_first=True), 2, enable_nested_tensor=False
    ).eval()
    model = StreamingTransformer(16, 4, 2, dropout=0.0, positional_scale=0.0, **kwargs).eval()
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(3, 11, 16)
    torch.testing.assert_close(model(x), ref(x), atol=1e-5, rtol=0)
    if not kwargs:
        assert "layers.0.self_attn.mha.in_proj_weight" in model.state_dict()


def test_causality_and_receptive_field():
    for context, kwargs in itertools.product([None, 6], [{"custom": True}, {}]):
        model = _model(num_layers=2, past_context=context, **kwargs)
        for k in [0, 9, 15]:
            x = torch.randn(2, 16, 16, requires_grad=True)
            model(x)[:, k].abs().sum().backward()
            grad = x.grad.abs().sum(dim=(0, 2))
            assert torch.all(grad[k + 1 :] == 0) and torch.all(grad[k] > 0)
            if context is not None and k > 2 * context:
                assert torch.all(grad[: k - 2 * context] == 0)  # two layers: twice the receptive field


@torch.no_grad()
def test_cache_costs_one_position_per_step():
    model = _model(num_layers=1, memory_efficient=True)
    attn = model.layers[0].self_attn
    reallocations, previous = 0, None
    with model.streaming():
        for _ in range(300):
            model(torch.randn(2, 1, 16))
            keys = attn._streaming_state["keys"]
            if previous is not None and keys.data_ptr() != previous:
                reallocations += 1
            previous = keys.data_ptr()
        assert keys.shape[2] >= 300 and reallocations <= 3  # 64 -> 130 -> 262 -> 526: geometric growth
    assert attn._streaming_state == {}


@torch.no_grad()
def test_cache_with_past_context_stays_bounded():
    model = _model(num_layers=1, past_context=10, custom=True)
    x = torch.randn(1, 400, 16)
    ref = model(x)
    attn = model.layers[0].self_attn
    outs = []
    with model.streaming():
        for t in range(400):
            outs.append(model(x[:, t : t + 1]))
            assert attn._streaming_state["keys"].shape[2] <= 64
    torch.testing.assert_close(torch.cat(outs, 1), ref, atol=1e-5, rtol=0)


@torch.no_grad()
def test_cross_attention_keys_computed_once_per_generation():
    model = _model(cross_attention=True, memory_efficient=True)
    cross = model.layers[0].cross_attention
    src = torch.randn(2, 3, 16)
    calls = []
    cross.register_forward_hook(lambda m, args, out: calls.append(m._streaming_state.get("cross_keys")))
    x = torch.randn(2, 6, 16)
    ref = model(x, cross_attention_src=src)
    calls.clear()
    with model.streaming():
        outs = [model(x[:, t : t + 1], cross_attention_src=src.clone()) for t in range(6)]
        assert all(k is calls[0] for k in calls)  # the same cached keys at every step, even for an equal copy
        other = torch.randn(2, 3, 16)  # a different source is not served from the cache
        y_other = model(torch.randn(2, 1, 16), cross_attention_src=other)
        assert calls[-1] is not calls[0] and torch.isfinite(y_other).all()
    torch.testing.assert_close(torch.cat(outs, 1), ref, atol=1e-5, rtol=0)


@torch.no_grad()
def test_streaming_state_snapshot_and_restore():
    model = _model(positional_embedding="rope", memory_efficient=True)
    x = torch.randn(2, 12, 16)
    with model.streaming():
        model(x[:, :4])
        state = {k: v.clone() for k, v in model.get_streaming_state().items()}
        y = model(x[:, 4:5])
        model(x[:, 5:9])
        model.set_streaming_state(state)
        torch.testing.assert_close(model(x[:, 4:5]), y, atol=0, rtol=0)
        # two independent streams (as two-step CFG does), swapped at every step
        other: dict[str, torch.Tensor] = {}
        model.set_streaming_state({})
        first = []
        for t in range(12):
            first.append(model(x[:, t : t + 1]))
            mine = model.get_streaming_state()
            model.set_streaming_state(other)
            model(x[:, t : t + 1].flip(0))
            other = model.get_streaming_state()
            model.set_streaming_state(mine)
    torch.testing.assert_close(torch.cat(first, 1), model(x), atol=1e-5, rtol=0)


def test_state_dict_names_and_options():
    model = StreamingTransformer(
        16,
        4,
        1,
        cross_attention=True,
        custom=True,
        layer_scale=0.1,
        qk_layer_norm=True,
        qk_layer_norm_cross=True,
        positional_embedding="rope",
        bias_ff=False,
        bias_attn=False,
    )
    assert sorted(model.state_dict()) == sorted(
        [
            "rope.frequencies",
            "layers.0.self_attn.rope.frequencies",
            "layers.0.self_attn.in_proj_weight",
            "layers.0.self_attn.out_proj.weight",
            "layers.0.self_attn.q_layer_norm.weight",
            "layers.0.self_attn.q_layer_norm.bias",
            "layers.0.self_attn.k_layer_norm.weight",
            "layers.0.self_attn.k_layer_norm.bias",
            "layers.0.linear1.weight",
            "layers.0.linear2.weight",
            "layers.0.norm1.weight",
            "layers.0.norm1.bias",
            "layers.0.norm2.weight",
            "layers.0.norm2.bias",
            "layers.0.layer_scale_1.scale",
            "layers.0.layer_scale_2.scale",
            "layers.0.cross_attention.in_proj_weight",
            "layers.0.cross_attention.out_proj.weight",
            "layers.0.cross_attention.q_layer_norm.weight",
            "layers.0.cross_attention.q_layer_norm.bias",
            "layers.0.cross_attention.k_layer_norm.weight",
            "layers.0.cross_attention.k_layer_norm.bias",
            "layers.0.norm_cross.weight",
            "layers.0.norm_cross.bias",
            "layers.0.layer_scale_cross.scale",
        ]
    )
    assert torch.all(model.layers[0].layer_scale_1.scale == 0.1)
    with pytest.raises(ValueError, match="positional_embedding"):
        StreamingTransformer(16, 4, 1, positional_embedding="alibi")
    with pytest.raises(ValueError, match="cross_attention_src"):
        model(torch.randn(1, 3, 16))
    with pytest.raises(ValueError, match="kv_repeat"):
        StreamingMultiheadAttention(16, 4, cross_attention=True, kv_repeat=2, custom=True)
    with pytest.raises(ValueError, match="norm type"):
        create_norm_fn("rms_norm", 16)


def test_sin_embedding_values():
    emb = create_sin_embedding(torch.arange(3).view(1, -1, 1), 8, max_period=100.0)
    periods = 100.0 ** (torch.arange(4) / 3)
    expected = torch.cat(
        [torch.cos(torch.arange(3)[:, None] / periods), torch.sin(torch.arange(3)[:, None] / periods)], dim=-1
    )
    torch.testing.assert_close(emb[0], expected)


@torch.no_grad()
def test_positional_scale_and_max_period_change_the_output():
    x = torch.randn(1, 10, 16)
    ref = _model(positional_embedding="sin_rope")(x)
    assert not torch.allclose(_model(positional_embedding="sin_rope", positional_scale=0.5)(x), ref, atol=1e-4)
    assert not torch.allclose(_model(positional_embedding="sin_rope", max_period=100.0)(x), ref, atol=1e-4)


@pytest.mark.parametrize("checkpointing", ["torch", "xformers_default", "xformers_mm"])
def test_checkpointing_gives_the_same_gradients(checkpointing):
    plain = _model(memory_efficient=True, cross_attention=True)
    ckpt = _model(memory_efficient=True, cross_attention=True, checkpointing=checkpointing)
    ckpt.load_state_dict(plain.state_dict())
    x, src = torch.randn(2, 8, 16), torch.randn(2, 3, 16)
    plain(x, cross_attention_src=src).square().sum().backward()
    ckpt(x, cross_attention_src=src).square().sum().backward()
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(b.grad, a.grad, atol=1e-5, rtol=1e-5, msg=name)


def test_attention_as_float32_and_dropout():
    torch.manual_seed(0)
    half = StreamingTransformer(16, 4, 2, dropout=0.0, custom=True, dtype=torch.bfloat16)
    f32 = StreamingTransformer(16, 4, 2, dropout=0.0, custom=True, dtype=torch.bfloat16, attention_as_float32=True)
    f32.load_state_dict(half.state_dict())
    x = torch.randn(3, 12, 16, dtype=torch.bfloat16)
    y, y32 = half(x), f32(x)
    assert y32.dtype == torch.bfloat16 and not torch.equal(y, y32)
    drop = _model(dropout=0.5).train()
    assert not torch.equal(drop(torch.ones(1, 5, 16)), drop(torch.ones(1, 5, 16)))


def test_attention_backend_argument_and_process_default():
    assert get_efficient_attention_backend() == "torch"
    set_efficient_attention_backend("xformers")
    try:
        assert StreamingMultiheadAttention(16, 4).attention_backend == "xformers"
        assert StreamingMultiheadAttention(16, 4, attention_backend="torch").attention_backend == "torch"
    finally:
        set_efficient_attention_backend("torch")
    with pytest.raises(ValueError, match="attention backend"):
        set_efficient_attention_backend("flash")


@torch.no_grad()
def test_src_and_key_padding_masks():
    model = _model(causal=False, memory_efficient=True, num_layers=1)
    x = torch.randn(2, 6, 16)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[:, 4:] = True
    # padded keys do not influence the other positions
    y = model(x, src_key_padding_mask=pad)
    x2 = x.clone()
    x2[:, 4:] = torch.randn(2, 2, 16)
    torch.testing.assert_close(model(x2, src_key_padding_mask=pad)[:, :4], y[:, :4])
    causal = torch.triu(torch.ones(6, 6, dtype=torch.bool), diagonal=1)
    ref = _model(causal=True, memory_efficient=True, num_layers=1)(x)
    torch.testing.assert_close(model(x, src_mask=causal), ref, atol=1e-6, rtol=0)
    # an additive mask padded to a multiple of 8 (MAGNeT's layout) is cut to the sequence, as upstream
    padded = torch.triu(torch.full((1, 1, 8, 8), float("-inf")), diagonal=1)
    torch.testing.assert_close(model(x, src_mask=padded), ref, atol=1e-6, rtol=0)


FIXTURES = Path(__file__).parents[1] / "fixtures" / "upstream"
# The transformer_lm arguments of the two upstream LM fixtures (see tests/fixtures/upstream/README.md).
UPSTREAM_LMS = {
    "musicgen_tiny": dict(memory_efficient=True),
    "musicgen_rope": dict(custom=True, positional_embedding="rope", qk_layer_norm=True, layer_scale=0.1),
}


@pytest.mark.parametrize("name", sorted(UPSTREAM_LMS))
@torch.no_grad()
def test_upstream_lm_transformer_loads_strictly_and_streams(name):
    state = torch.load(FIXTURES / name / "state_dict.bin", map_location="cpu", weights_only=True)["best_state"]
    prefix = "transformer."
    weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    gen = torch.Generator().manual_seed(0)
    x, src = torch.randn(4, 30, 64, generator=gen), torch.randn(4, 1, 64, generator=gen)
    results = []
    for backend in ({"custom": True, "memory_efficient": False}, {"custom": False, "memory_efficient": True}):
        kwargs = {**UPSTREAM_LMS[name], **backend}
        model = StreamingTransformer(
            64,
            4,
            2,
            dim_feedforward=256,
            dropout=0.0,
            bias_ff=False,
            bias_attn=False,
            causal=True,
            cross_attention=True,
            norm_first=True,
            activation="gelu",
            **kwargs,
        ).eval()
        model.load_state_dict(weights, strict=True)
        ref = model(x, cross_attention_src=src)
        torch.testing.assert_close(_stream(model, x, [3] + [1] * 27, cross_attention_src=src), ref, atol=1e-5, rtol=0)
        results.append(ref)
    torch.testing.assert_close(results[0], results[1], atol=1e-5, rtol=0)


@torch.no_grad()
def test_kv_repeat_without_enable_gqa(monkeypatch):
    # torch < 2.5 has no enable_gqa: the keys/values are then repeated, with the same result.
    import audiocraft.modules._attention as attention  # the flag's module (transformer.py re-exports the classes)

    model = _model(memory_efficient=True, kv_repeat=2)
    x = torch.randn(2, 9, 16)
    ref = model(x)
    monkeypatch.setattr(attention, "_SDPA_GQA", False)
    torch.testing.assert_close(model(x), ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(_stream(model, x, [4] + [1] * 5), ref, atol=1e-5, rtol=0)


@torch.no_grad()
def test_float32_attention_parameters_in_a_bf16_model():
    # As upstream's test: cast the attention modules of a bf16 model to float32; the layer output stays bf16.
    torch.manual_seed(0)
    model = StreamingTransformer(
        16, 4, 2, dropout=0.0, dtype=torch.bfloat16, attention_as_float32=True, cross_attention=True
    )
    for layer in model.layers:
        layer.self_attn.to(torch.float32)
        layer.cross_attention.to(torch.float32)
    x, src = torch.randn(3, 12, 16, dtype=torch.bfloat16), torch.randn(3, 2, 16, dtype=torch.bfloat16)
    y = model(x, cross_attention_src=src)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()
    reference = StreamingTransformer(16, 4, 2, dropout=0.0, cross_attention=True)
    reference.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    torch.testing.assert_close(y.float(), reference(x.float(), cross_attention_src=src.float()), atol=0.1, rtol=0.05)
