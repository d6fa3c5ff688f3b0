"""ConditionFuser: the four fusing methods, positions, and streamed chunks equal to one pass."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from audiocraft.conditioners import ConditionFuser


def _cond(*shape: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    return x, torch.ones(shape[:2], dtype=torch.int32)


def _streamed(
    fuser: ConditionFuser, x: torch.Tensor, conditions: dict, chunks: list[int], total: int | None = None
) -> list[torch.Tensor]:
    outs = []
    with fuser.streaming():
        if total is not None:
            fuser.set_streaming_length(total)
        start = 0
        for size in chunks:
            out, _ = fuser(x[:, start : start + size], conditions)
            outs.append(out)
            start += size
        assert fuser._streaming_state["offsets"].tolist() == [start] * x.shape[0]
    assert fuser._streaming_state == {} and not fuser.is_streaming
    return outs


def test_one_pass_methods() -> None:
    x = torch.randn(2, 6, 4)
    glob, seq, short, pre, cross1, cross2 = (
        _cond(2, 1, 4, seed=1),
        _cond(2, 6, 4, seed=2),
        _cond(2, 3, 4, seed=3),
        _cond(2, 2, 4, seed=4),
        _cond(2, 5, 4, seed=5),
        _cond(2, 2, 4, seed=6),
    )
    fuser = ConditionFuser(
        {
            "sum": ["genre", "beat"],
            "input_interpolate": ["chords"],
            "prepend": ["melody"],
            "cross": ["description", "artist"],
        }
    )
    before = x.clone()
    conditions = {"melody": pre, "genre": glob, "beat": seq, "chords": short, "description": cross1, "artist": cross2}
    out, cross = fuser(x, conditions)
    stretched = F.interpolate(short[0].transpose(1, 2), size=6).transpose(1, 2)
    torch.testing.assert_close(out, torch.cat([pre[0], x + glob[0] + seq[0] + stretched], dim=1))
    torch.testing.assert_close(cross, torch.cat([cross1[0], cross2[0]], dim=1))
    torch.testing.assert_close(x, before)  # the caller's tensor is not modified
    assert fuser(x, {"genre": glob})[1] is None


def test_cross_attention_positions_match_upstream_formula() -> None:
    cond = _cond(1, 3, 4, seed=0)
    fuser = ConditionFuser({"cross": ["description"]}, cross_attention_pos_emb=True, cross_attention_pos_emb_scale=0.5)
    _, cross = fuser(torch.zeros(1, 2, 4), {"description": cond})
    pos = torch.arange(3.0).view(1, 3, 1)
    phase = pos / (10000.0 ** (torch.arange(2.0).view(1, 1, 2) / 1))
    torch.testing.assert_close(cross, cond[0] + 0.5 * torch.cat([phase.cos(), phase.sin()], dim=-1))


@pytest.mark.parametrize("chunks", [[1] * 9, [4, 1, 1, 3], [9]])
def test_streamed_sum_and_interpolate_equal_one_pass(chunks: list[int]) -> None:
    x = torch.randn(2, 9, 4)
    conditions = {
        "beat": _cond(2, 9, 4, seed=1),
        "genre": _cond(2, 1, 4, seed=2),
        "chords": _cond(2, 4, 4, seed=3),
        "melody": _cond(2, 3, 4, seed=4),
        "description": _cond(2, 5, 4, seed=5),
    }
    fuser = ConditionFuser(
        {"sum": ["beat", "genre"], "input_interpolate": ["chords"], "prepend": ["melody"], "cross": ["description"]}
    )
    whole, cross = fuser(x, conditions)
    outs = _streamed(fuser, x, conditions, chunks, total=9)
    assert outs[0].shape[1] == chunks[0] + 3  # prepended on the first step only
    assert all(o.shape[1] == size for o, size in zip(outs[1:], chunks[1:]))
    torch.testing.assert_close(torch.cat(outs, dim=1), whole, rtol=0, atol=0)


def test_stream_state_errors() -> None:
    fuser = ConditionFuser({"sum": ["beat"], "input_interpolate": ["chords"]})
    with pytest.raises(ValueError, match="set_streaming_length"), fuser.streaming():
        fuser(torch.zeros(1, 1, 2), {"chords": _cond(1, 3, 2, seed=0)})
    with pytest.raises(ValueError, match="reached step 3"), fuser.streaming():
        for _ in range(3):
            fuser(torch.zeros(1, 1, 2), {"beat": _cond(1, 2, 2, seed=0)})
    with pytest.raises(ValueError, match="one step or as many"):
        fuser(torch.zeros(1, 4, 2), {"beat": _cond(1, 3, 2, seed=0)})
    with pytest.raises(ValueError, match="no fusing method"):
        fuser(torch.zeros(1, 4, 2), {"mood": _cond(1, 1, 2, seed=0)})
    with pytest.raises(ValueError, match="'add'"):
        ConditionFuser({"add": ["x"]})
    with pytest.raises(RuntimeError, match="streaming context"):
        fuser.set_streaming_length(3)
