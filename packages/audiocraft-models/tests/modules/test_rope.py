"""RotaryEmbedding / XPos against a direct complex-number formulation, and their relative-position property."""

from __future__ import annotations

import torch

from audiocraft.modules.rope import RotaryEmbedding


def _reference(x: torch.Tensor, start: int, max_period: float, scale: float, decay_sign: int = 0) -> torch.Tensor:
    """[B, T, H, D]: rotate pairs (x[2i], x[2i+1]) by t / max_period ** (2i / D) as complex numbers."""
    dim = x.shape[-1]
    t = torch.arange(start, start + x.shape[1], dtype=torch.float64)[:, None]
    freqs = max_period ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    rotation = torch.polar(torch.ones(x.shape[1], dim // 2, dtype=torch.float64), t * freqs)
    if decay_sign:
        rates = (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2) + 0.4) / 1.4
        rotation = rotation * (rates ** (t / 512)) ** decay_sign
    rotation = rotation * scale + (1 - scale)
    z = torch.view_as_complex(x.double().reshape(*x.shape[:-1], -1, 2).contiguous())
    return torch.view_as_real(z * rotation[None, :, None]).flatten(-2).float()


def test_rotation_matches_complex_reference():
    x = torch.randn(2, 7, 3, 8)
    for scale in [1.0, 0.3]:
        rope = RotaryEmbedding(8, max_period=100.0, scale=scale)
        torch.testing.assert_close(rope.rotate(x, start=5), _reference(x, 5, 100.0, scale), atol=1e-5, rtol=0)
        # heads-first layout gives the same numbers
        out = rope.rotate(x.transpose(1, 2), start=5, time_dim=2).transpose(1, 2)
        torch.testing.assert_close(out, _reference(x, 5, 100.0, scale), atol=1e-5, rtol=0)
    assert torch.equal(RotaryEmbedding(8, scale=0.0).rotate(x, start=3), x)


def test_xpos_decay_queries_and_inverse_for_keys():
    q, k = torch.randn(1, 6, 2, 8), torch.randn(1, 6, 2, 8)
    rope = RotaryEmbedding(8, xpos=True)
    rq, rk = rope.rotate_qk(q, k, start=4)
    torch.testing.assert_close(rq, _reference(q, 4, 10000.0, 1.0, decay_sign=1), atol=1e-5, rtol=0)
    torch.testing.assert_close(rk, _reference(k, 4, 10000.0, 1.0, decay_sign=-1), atol=1e-5, rtol=0)
    assert "xpos.decay_rates" in rope.state_dict() and "frequencies" in rope.state_dict()


def test_scores_depend_only_on_relative_position():
    rope = RotaryEmbedding(16, xpos=True)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(tq: int, tk: int) -> torch.Tensor:
        return (rope.rotate(q, start=tq) * rope.rotate(k, start=tk, invert_decay=True)).sum()

    torch.testing.assert_close(score(10, 3), score(107, 100), atol=1e-4, rtol=1e-4)
    # streaming shape: 1 query against 5 keys, the query is the last position
    keys = torch.randn(1, 5, 1, 16)
    rq, rk = rope.rotate_qk(q, keys, start=20)
    torch.testing.assert_close(rq, rope.rotate(q, start=24))
    torch.testing.assert_close(rk, rope.rotate(keys, start=20, invert_decay=True))
