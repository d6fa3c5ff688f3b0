"""Codebook patterns: layouts derived by hand from upstream AudioCraft's definitions, and sequence round trips."""

from __future__ import annotations

import pytest
import torch

from audiocraft.modules.codebooks_patterns import (
    CoarseFirstPattern,
    DelayedPatternProvider,
    LayoutCoord,
    MusicLMPattern,
    ParallelPatternProvider,
    Pattern,
    UnrolledPatternProvider,
)


def C(t: int, q: int) -> LayoutCoord:
    return LayoutCoord(t, q)


# (provider, timesteps, expected layout, expected max_delay). Each expected layout was written out by hand from
# upstream's get_pattern loops (see the comments), not produced by this implementation.
CASES = [
    # delay [0, 1, 2]: step 1 + t holds (t - delay_q, q) for every q with t - delay_q >= 0, t < T + max(delays)
    (
        DelayedPatternProvider(3),
        4,
        [
            [],
            [C(0, 0)],
            [C(1, 0), C(0, 1)],
            [C(2, 0), C(1, 1), C(0, 2)],
            [C(3, 0), C(2, 1), C(1, 2)],
            [C(4, 0), C(3, 1), C(2, 2)],
            [C(5, 0), C(4, 1), C(3, 2)],
        ],
        2,
    ),
    # flatten_first=2: timesteps 0 and 1 one code per step, then the delayed layout from t = 2 on
    (
        DelayedPatternProvider(2, delays=[0, 1], flatten_first=2),
        4,
        [[], [C(0, 0)], [C(0, 1)], [C(1, 0)], [C(1, 1)], [C(2, 0)], [C(3, 0), C(2, 1)], [C(4, 0), C(3, 1)]],
        1,
    ),
    # empty_initial=2: two more empty steps after the initial one
    (
        DelayedPatternProvider(2, delays=[0, 1], empty_initial=2),
        2,
        [[], [], [], [C(0, 0)], [C(1, 0), C(0, 1)], [C(2, 0), C(1, 1)]],
        1,
    ),
    (ParallelPatternProvider(2), 3, [[], [C(0, 0), C(0, 1)], [C(1, 0), C(1, 1)], [C(2, 0), C(2, 1)]], 0),
    # unroll, full flattening: one codebook per step, codebook order inside a timestep
    (UnrolledPatternProvider(3), 2, [[], [C(0, 0)], [C(0, 1)], [C(0, 2)], [C(1, 0)], [C(1, 1)], [C(1, 2)]], 0),
    # unroll, flattening [0, 1, 1] delays [0, 3, 3]: items (t + delay, coords) for t < T + 3 (dropped when
    # t + delay >= T + 3), sorted: at equal keys the coordinates order them, so [(0,1),(0,2)] precedes [(3,0)]
    (
        UnrolledPatternProvider(3, flattening=[0, 1, 1], delays=[0, 3, 3]),
        4,
        [
            [],
            [C(0, 0)],
            [C(1, 0)],
            [C(2, 0)],
            [C(0, 1), C(0, 2)],
            [C(3, 0)],
            [C(1, 1), C(1, 2)],
            [C(4, 0)],
            [C(2, 1), C(2, 2)],
            [C(5, 0)],
            [C(3, 1), C(3, 2)],
            [C(6, 0)],
        ],
        3,
    ),
    # unroll with an unused inner step: its empty item (t, []) sorts before the codes of timestep t
    (UnrolledPatternProvider(2, flattening=[0, 2]), 2, [[], [], [C(0, 0)], [C(0, 1)], [], [C(1, 0)], [C(1, 1)]], 0),
    # coarse_first: all of codebook 0, then codebooks 1.. in parallel
    (CoarseFirstPattern(3), 2, [[], [C(0, 0)], [C(1, 0)], [C(0, 1), C(0, 2)], [C(1, 1), C(1, 2)]], 0),
    (
        CoarseFirstPattern(3, delays=[0, 1]),
        2,
        [[], [C(0, 0)], [C(1, 0)], [C(0, 1)], [C(1, 1), C(0, 2)], [C(2, 1), C(1, 2)]],
        1,
    ),
    # musiclm group_by 2: for each group, for each timestep, its codebooks one per step
    (
        MusicLMPattern(4, group_by=2),
        2,
        [[], [C(0, 0)], [C(0, 1)], [C(1, 0)], [C(1, 1)], [C(0, 2)], [C(0, 3)], [C(1, 2)], [C(1, 3)]],
        0,
    ),
    (MusicLMPattern(4, group_by=4), 1, [[], [C(0, 0)], [C(0, 1)], [C(0, 2)], [C(0, 3)]], 0),
]
IDS = [
    "delay",
    "delay-flatten",
    "delay-empty",
    "parallel",
    "unroll",
    "unroll-delay",
    "unroll-gap",
    "coarse",
    "coarse-delay",
    "musiclm2",
    "musiclm4",
]


@pytest.mark.parametrize(("provider", "T", "layout", "max_delay"), CASES, ids=IDS)
def test_layout_and_max_delay(provider, T, layout, max_delay) -> None:
    pattern = provider.get_pattern(T)
    assert pattern.layout == layout
    assert pattern.max_delay == max_delay
    assert pattern.num_sequence_steps == len(layout) - 1
    assert pattern.valid_layout == layout[: len(layout) - max_delay]
    assert provider.get_pattern(T) is pattern  # cached per length


def _codes(K: int, T: int, B: int = 2) -> torch.Tensor:
    return torch.arange(B * K * T).view(B, K, T) + 100  # distinct, never the special token


@pytest.mark.parametrize(("provider", "T", "layout", "max_delay"), CASES, ids=IDS)
@pytest.mark.parametrize("valid", [False, True])
def test_build_places_every_code_where_the_layout_says(provider, T, layout, max_delay, valid) -> None:
    K = provider.n_q
    z = _codes(K, T)
    seq, _, mask = provider.get_pattern(T).build_pattern_sequence(z, special_token=-7, keep_only_valid_steps=valid)
    steps = layout[: len(layout) - max_delay] if valid else layout
    expected = torch.full((2, K, len(steps)), -7)
    for s, coords in enumerate(steps):
        for c in coords:
            if c.t < T:
                expected[:, c.q, s] = z[:, c.q, c.t]
    assert torch.equal(seq, expected)
    assert torch.equal(mask, expected[0] != -7)


@pytest.mark.parametrize(("provider", "T", "layout", "max_delay"), CASES, ids=IDS)
def test_revert_inverts_build(provider, T, layout, max_delay) -> None:
    pattern = provider.get_pattern(T)
    z = _codes(provider.n_q, T)
    seq, _, _ = pattern.build_pattern_sequence(z, special_token=-7)
    back, _, mask = pattern.revert_pattern_sequence(seq, special_token=-1)
    assert torch.equal(back, z) and bool(mask.all())


@pytest.mark.parametrize(("provider", "T", "layout", "max_delay"), CASES, ids=IDS)
def test_revert_logits_reads_the_previous_step(provider, T, layout, max_delay) -> None:
    """The logits at sequence step s predict layout step s + 1; steps cut by keep_only_valid_steps are masked."""
    pattern = provider.get_pattern(T)
    K = provider.n_q
    valid = layout[: len(layout) - max_delay]
    S = len(valid)
    logits = torch.arange(S, dtype=torch.float).view(1, 1, 1, S).expand(2, 3, K, S).clone()
    logits += 1000 * torch.arange(K).view(1, 1, K, 1)
    out, _, mask = pattern.revert_pattern_logits(logits, float("nan"), keep_only_valid_steps=True)
    assert out.shape == (2, 3, K, T)
    for q in range(K):
        for t in range(T):
            steps = [s for s, coords in enumerate(valid) if C(t, q) in coords]
            assert bool(mask[q, t]) == bool(steps)
            if steps:
                assert torch.all(out[:, :, q, t] == 1000 * q + steps[0] - 1)
            else:
                assert torch.isnan(out[:, :, q, t]).all()


def test_delay_mask_of_compute_predictions() -> None:
    """MusicGen's delay [0, 1, 2, 3]: the last k timesteps of codebook k have no valid prediction."""
    pattern = DelayedPatternProvider(4).get_pattern(20)
    logits = torch.zeros(1, 5, 4, len(pattern.valid_layout))
    _, _, mask = pattern.revert_pattern_logits(logits, float("nan"), keep_only_valid_steps=True)
    for k in range(4):
        assert mask[k, : 20 - k].all() and not mask[k, 20 - k :].any()


def test_shorter_codes_than_the_pattern() -> None:
    """Generation builds the pattern of max_gen_len and lays out codes of that length; a shorter input has holes."""
    pattern = DelayedPatternProvider(2).get_pattern(5)
    seq, _, mask = pattern.build_pattern_sequence(_codes(2, 3, B=1), special_token=-7)
    assert seq.shape == (1, 2, 7)
    assert mask.sum() == 6


def test_first_step_with_timestep() -> None:
    pattern = DelayedPatternProvider(4).get_pattern(10)
    assert pattern.get_first_step_with_timesteps(0) == 1
    assert pattern.get_first_step_with_timesteps(3) == 4
    assert pattern.get_steps_with_timestep(3, q=2) == [6]
    assert MusicLMPattern(4).get_pattern(3).get_first_step_with_timesteps(1) == 3


@pytest.mark.parametrize(
    ("layout", "match"),
    [
        ([[C(0, 0)]], "empty step"),
        ([[], [C(0, 0), C(1, 0)]], "more than once"),
        ([[], [C(1, 0)], [C(0, 0)]], "goes back"),
        ([[], [C(0, 2)]], "out of range"),
    ],
)
def test_invalid_layouts_are_named(layout, match) -> None:
    with pytest.raises(ValueError, match=match):
        Pattern(layout, timesteps=2, n_q=2)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: DelayedPatternProvider(3, delays=[0, 2, 1]), "non-decreasing"),
        (lambda: DelayedPatternProvider(3, delays=[0, 1]), "one value per codebook"),
        (lambda: UnrolledPatternProvider(2, flattening=[0, 0], delays=[0, 1]), "share their delay"),
        (lambda: MusicLMPattern(3, group_by=2), "group_by must divide"),
        (lambda: CoarseFirstPattern(1), "at least 2"),
    ],
)
def test_invalid_provider_arguments_are_named(build, match) -> None:
    with pytest.raises(ValueError, match=match):
        build()


def test_codes_longer_than_the_pattern_are_refused() -> None:
    with pytest.raises(ValueError, match="more than the pattern"):
        DelayedPatternProvider(2).get_pattern(3).build_pattern_sequence(_codes(2, 4), special_token=0)
