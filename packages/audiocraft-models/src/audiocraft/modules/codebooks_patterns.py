"""Codebook interleaving patterns for language models over several parallel streams of codes.

Layer: audiocraft-models, modules. An LM over ``K`` codebooks of ``T`` timesteps does not predict the ``K x T``
grid in one go: a :class:`Pattern` lays the codes out as a sequence of ``S`` steps, each step holding at most one
code of each codebook (a :class:`LayoutCoord` ``(t, q)``). The first step is always empty, so that the sequence
starts with the special token. :meth:`Pattern.build_pattern_sequence` maps codes ``[B, K, T]`` to the sequence
``[B, K, S]`` (holes filled with the special token), :meth:`Pattern.revert_pattern_sequence` maps it back, and
:meth:`Pattern.revert_pattern_logits` maps the LM output (one step late: step ``s`` predicts step ``s + 1``) back
to the codes it predicts.

The providers and their layouts are upstream AudioCraft's: ``parallel``, ``delay`` (MusicGen), ``unroll``,
``coarse_first`` (VALL-E) and ``musiclm``. Differences from upstream: invalid arguments raise a ValueError naming
the argument instead of failing an ``assert`` (or a KeyError deep inside, e.g. ``musiclm`` with ``n_q`` not a
multiple of ``group_by``), and the index caches live on each instance (a dict) instead of ``functools.lru_cache``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import NamedTuple

import torch

__all__ = [
    "LayoutCoord",
    "PatternLayout",
    "Pattern",
    "CodebooksPatternProvider",
    "DelayedPatternProvider",
    "ParallelPatternProvider",
    "UnrolledPatternProvider",
    "CoarseFirstPattern",
    "VALLEPattern",
    "MusicLMPattern",
]


class LayoutCoord(NamedTuple):
    """One code of the multi-codebook grid: timestep ``t`` of codebook ``q``."""

    t: int
    q: int


PatternLayout = list[list[LayoutCoord]]
"""The codes emitted at each step of a pattern."""
_Indexes = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Pattern:
    """A layout of ``n_q`` codebooks of ``timesteps`` steps as one interleaved sequence.

    Args:
        layout: for each sequence step, the coordinates of the codes it holds; ``layout[0]`` must be empty.
            Coordinates with ``t >= timesteps`` may appear (delayed codebooks run past the end): they are holes.
        timesteps: number of timesteps ``T`` of the grid.
        n_q: number of codebooks ``K``.

    Raises:
        ValueError: if the first step is not empty, a step holds two codes of one codebook, a codebook is out of
            range, or a codebook goes back in time along the sequence.
    """

    layout: PatternLayout
    timesteps: int
    n_q: int
    _cache: dict[tuple, _Indexes] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.layout or self.layout[0]:
            raise ValueError("a pattern layout must start with an empty step (where the special token goes)")
        self._validate_layout()

    def _validate_layout(self) -> None:
        last_t = [0] * self.n_q
        for step, coords in enumerate(self.layout):
            seen: set[int] = set()
            for coord in coords:
                if not 0 <= coord.q < self.n_q:
                    raise ValueError(f"pattern step {step}: codebook {coord.q} is out of range for n_q={self.n_q}")
                if coord.q in seen:
                    raise ValueError(f"pattern step {step} holds codebook {coord.q} more than once")
                if coord.t < last_t[coord.q]:
                    raise ValueError(
                        f"pattern step {step}: codebook {coord.q} goes back to timestep {coord.t} "
                        f"after timestep {last_t[coord.q]}"
                    )
                seen.add(coord.q)
                last_t[coord.q] = coord.t

    @property
    def num_sequence_steps(self) -> int:
        """Number of steps after the initial (empty) one."""
        return len(self.layout) - 1

    @property
    def max_delay(self) -> int:
        """How many timesteps past ``timesteps`` the layout reaches (e.g. the largest delay of ``delay``)."""
        reach = max((coord.t + 1 for coords in self.layout[1:] for coord in coords), default=0)
        return reach - self.timesteps

    @property
    def valid_layout(self) -> PatternLayout:
        """The layout without its last ``max_delay`` steps (the steps that need codes past ``timesteps``)."""
        return self.layout[: len(self.layout) - self.max_delay]

    def get_sequence_coords_with_timestep(self, t: int, q: int | None = None) -> list[tuple[int, LayoutCoord]]:
        """The ``(sequence step, coordinate)`` pairs holding timestep ``t`` (of codebook ``q`` if given)."""
        if t > self.timesteps:
            raise ValueError(f"timestep {t} is past the pattern's {self.timesteps} timesteps")
        if q is not None and q > self.n_q:
            raise ValueError(f"codebook {q} is past the pattern's {self.n_q} codebooks")
        return [
            (step, coord)
            for step, coords in enumerate(self.layout)
            for coord in coords
            if coord.t == t and (q is None or coord.q == q)
        ]

    def get_steps_with_timestep(self, t: int, q: int | None = None) -> list[int]:
        """The sequence steps holding timestep ``t`` (of codebook ``q`` if given)."""
        return [step for step, _ in self.get_sequence_coords_with_timestep(t, q)]

    def get_first_step_with_timesteps(self, t: int, q: int | None = None) -> int | None:
        """The first sequence step holding timestep ``t`` (of codebook ``q`` if given), None if there is none."""
        steps = self.get_steps_with_timestep(t, q)
        return steps[0] if steps else None

    def _build_pattern_sequence_scatter_indexes(
        self, timesteps: int, n_q: int, keep_only_valid_steps: bool, device: torch.device | str = "cpu"
    ) -> _Indexes:
        """Flat gather indexes ``[K, S]`` into ``codes.view(B, K * T)`` + one special token, and their mask."""
        if n_q != self.n_q:
            raise ValueError(f"the codes have {n_q} codebooks, the pattern {self.n_q}")
        if timesteps > self.timesteps:
            raise ValueError(f"the codes have {timesteps} timesteps, more than the pattern's {self.timesteps}")
        key = ("build", timesteps, n_q, keep_only_valid_steps, str(device))
        if key in self._cache:
            return self._cache[key]
        layout = self.valid_layout if keep_only_valid_steps else self.layout
        special = n_q * timesteps  # the index of the special token appended after the flattened codes
        indexes = [[special] * len(layout) for _ in range(n_q)]
        mask = [[False] * len(layout) for _ in range(n_q)]
        for step, coords in enumerate(layout):
            for coord in coords:
                if coord.t < timesteps:
                    indexes[coord.q][step] = coord.q * timesteps + coord.t
                    mask[coord.q][step] = True
        built = (
            torch.tensor(indexes, dtype=torch.long, device=device),
            torch.tensor(mask, dtype=torch.bool, device=device),
        )
        self._cache[key] = built
        return built

    def build_pattern_sequence(
        self, z: torch.Tensor, special_token: int, keep_only_valid_steps: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Lay the codes ``z`` ``[B, K, T]`` out as the interleaved sequence ``[B, K, S]``.

        Args:
            z: codes, ``T <= timesteps``.
            special_token: value of the holes.
            keep_only_valid_steps: stop at the last step that holds no code past ``timesteps``.

        Returns:
            ``(values [B, K, S], indexes [K, S], mask [K, S])``: ``mask`` is True where a code was placed.
        """
        B, K, T = z.shape
        indexes, mask = self._build_pattern_sequence_scatter_indexes(T, K, keep_only_valid_steps, str(z.device))
        flat = torch.cat([z.reshape(B, K * T), z.new_full((B, 1), special_token)], dim=1)
        values = flat[:, indexes.view(-1)].view(B, K, indexes.shape[-1])
        return values, indexes, mask

    def _build_reverted_sequence_scatter_indexes(
        self,
        sequence_steps: int,
        n_q: int,
        keep_only_valid_steps: bool = False,
        is_model_output: bool = False,
        device: torch.device | str = "cpu",
    ) -> _Indexes:
        """Flat gather indexes ``[K, T]`` into ``sequence.view(B, K * S)`` + one special token, and their mask.

        With ``is_model_output`` step ``s`` of the sequence is read as predicting layout step ``s + 1``.
        """
        if n_q != self.n_q:
            raise ValueError(f"the sequence has {n_q} codebooks, the pattern {self.n_q}")
        layout = self.valid_layout if keep_only_valid_steps else self.layout
        if sequence_steps > len(layout):
            raise ValueError(
                f"the sequence to revert has {sequence_steps} steps, more than the pattern's {len(layout)}"
            )
        key = ("revert", sequence_steps, n_q, keep_only_valid_steps, is_model_output, str(device))
        if key in self._cache:
            return self._cache[key]
        if is_model_output:
            layout = layout[1:]
        timesteps = self.timesteps
        special = n_q * sequence_steps
        indexes = [[special] * timesteps for _ in range(n_q)]
        mask = [[False] * timesteps for _ in range(n_q)]
        for step, coords in enumerate(layout[:sequence_steps]):
            for coord in coords:
                if coord.t < timesteps:
                    indexes[coord.q][coord.t] = coord.q * sequence_steps + step
                    mask[coord.q][coord.t] = True
        built = (
            torch.tensor(indexes, dtype=torch.long, device=device),
            torch.tensor(mask, dtype=torch.bool, device=device),
        )
        self._cache[key] = built
        return built

    def revert_pattern_sequence(
        self, s: torch.Tensor, special_token: int | float, keep_only_valid_steps: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Map an interleaved sequence ``[B, K, S]`` back to codes ``[B, K, T]`` (``T = timesteps``).

        Returns:
            ``(values [B, K, T], indexes [K, T], mask [K, T])``: ``special_token`` where ``mask`` is False.
        """
        B, K, S = s.shape
        indexes, mask = self._build_reverted_sequence_scatter_indexes(
            S, K, keep_only_valid_steps, is_model_output=False, device=str(s.device)
        )
        flat = torch.cat([s.reshape(B, K * S), s.new_full((B, 1), special_token)], dim=1)
        values = flat[:, indexes.view(-1)].view(B, K, indexes.shape[-1])
        return values, indexes, mask

    def revert_pattern_logits(
        self, logits: torch.Tensor, special_token: float, keep_only_valid_steps: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Map LM logits ``[B, card, K, S]`` on the sequence to the codes they predict: ``[B, card, K, T]``.

        The logits at step ``s`` predict layout step ``s + 1``, so the logits of the last step have no target.

        Returns:
            ``(values [B, card, K, T], indexes [K, T], mask [K, T])``: ``special_token`` where ``mask`` is False.
        """
        B, card, K, S = logits.shape
        indexes, mask = self._build_reverted_sequence_scatter_indexes(
            S, K, keep_only_valid_steps, is_model_output=True, device=str(logits.device)
        )
        flat = torch.cat([logits.reshape(B, card, K * S), logits.new_full((B, card, 1), special_token)], dim=-1)
        values = flat[:, :, indexes.view(-1)].view(B, card, K, indexes.shape[-1])
        return values, indexes, mask


class CodebooksPatternProvider(ABC):
    """Builds the :class:`Pattern` of ``n_q`` codebooks for a number of timesteps (patterns are cached per length).

    Args:
        n_q: number of codebooks.
        cached: keep the patterns built, by length (upstream's default; building one is a Python loop).
    """

    def __init__(self, n_q: int, cached: bool = True) -> None:
        if n_q <= 0:
            raise ValueError(f"n_q must be positive, got {n_q}")
        self.n_q = n_q
        if cached:  # as upstream: the instance's get_pattern is replaced by a memoised version
            build = self.get_pattern
            patterns: dict[int, Pattern] = {}

            def get_pattern(timesteps: int) -> Pattern:
                if timesteps not in patterns:
                    patterns[timesteps] = build(timesteps)
                return patterns[timesteps]

            self.get_pattern = get_pattern  # type: ignore[method-assign]

    @abstractmethod
    def get_pattern(self, timesteps: int) -> Pattern:
        """Build the pattern for ``timesteps`` timesteps."""


def _check_sorted(name: str, values: list[int], length: int, what: str) -> None:
    if len(values) != length:
        raise ValueError(f"{name} must have one value per {what} ({length}), got {values}")
    if sorted(values) != list(values):
        raise ValueError(f"{name} must be non-decreasing, got {values}")


class DelayedPatternProvider(CodebooksPatternProvider):
    """Codebook ``q`` delayed by ``delays[q]`` steps (MusicGen's pattern): each step holds one code per codebook.

    With ``n_q = 3``, default delays ``[0, 1, 2]`` and 4 timesteps the sequence is (``S``: special token)::

        [[S, 1, 2, 3, 4, S, S],
         [S, S, 1, 2, 3, 4, S],
         [S, S, S, 1, 2, 3, 4]]

    Args:
        n_q: number of codebooks.
        delays: delay of each codebook, non-decreasing (default ``range(n_q)``).
        flatten_first: the first ``flatten_first`` timesteps are laid out one code per step (codebook order).
        empty_initial: number of empty steps inserted after the initial one.
    """

    def __init__(
        self, n_q: int, delays: list[int] | None = None, flatten_first: int = 0, empty_initial: int = 0
    ) -> None:
        super().__init__(n_q)
        self.delays = list(range(n_q)) if delays is None else list(delays)
        _check_sorted("delays", self.delays, n_q, "codebook")
        self.flatten_first = flatten_first
        self.empty_initial = empty_initial

    def get_pattern(self, timesteps: int) -> Pattern:  # noqa: D102
        layout: PatternLayout = [[] for _ in range(1 + self.empty_initial)]
        for t in range(min(timesteps, self.flatten_first)):
            layout.extend([LayoutCoord(t, q)] for q in range(self.n_q))
        for t in range(self.flatten_first, timesteps + max(self.delays)):
            layout.append(
                [LayoutCoord(t - delay, q) for q, delay in enumerate(self.delays) if t - delay >= self.flatten_first]
            )
        return Pattern(layout, timesteps=timesteps, n_q=self.n_q)


class ParallelPatternProvider(DelayedPatternProvider):
    """All codebooks of a timestep in the same step (a delay pattern with no delay)."""

    def __init__(self, n_q: int) -> None:
        super().__init__(n_q, [0] * n_q)


class UnrolledPatternProvider(CodebooksPatternProvider):
    """Codebooks spread over several "inner" steps per timestep (fully or partly flattened), optionally delayed.

    ``flattening[q]`` is the inner step of codebook ``q`` (codebooks sharing an inner step are emitted together
    and must share their delay); a timestep takes ``max(flattening) + 1`` steps. ``delays[q]`` moves the codes of
    codebook ``q`` later in the sequence. Steps are ordered by ``(timestep + delay, coordinates)``, as upstream's
    sort does.

    Args:
        n_q: number of codebooks.
        flattening: inner step of each codebook, non-decreasing (default ``range(n_q)``: one codebook per step).
        delays: delay of each codebook, non-decreasing (default all 0).
    """

    def __init__(self, n_q: int, flattening: list[int] | None = None, delays: list[int] | None = None) -> None:
        super().__init__(n_q)
        flattening = list(range(n_q)) if flattening is None else list(flattening)
        delays = [0] * n_q if delays is None else list(delays)
        _check_sorted("flattening", flattening, n_q, "codebook")
        _check_sorted("delays", delays, n_q, "codebook")
        self._inner: dict[int, tuple[list[int], int]] = {}  # inner step -> (codebooks, delay)
        for q, (step, delay) in enumerate(zip(flattening, delays)):
            codebooks, step_delay = self._inner.setdefault(step, ([], delay))
            if step_delay != delay:
                raise ValueError(
                    f"codebooks flattened to the same inner step {step} must share their delay, "
                    f"got delays {step_delay} and {delay}"
                )
            codebooks.append(q)
        self.max_delay = max(delays)

    @property
    def _num_inner_steps(self) -> int:
        return max(self._inner) + 1

    def num_virtual_steps(self, timesteps: int) -> int:
        """Sequence length of ``timesteps`` timesteps without delays, initial step included."""
        return timesteps * self._num_inner_steps + 1

    def get_pattern(self, timesteps: int) -> Pattern:  # noqa: D102
        end = timesteps + self.max_delay
        keyed: list[tuple[int, list[LayoutCoord]]] = [(-1, [])]
        for t in range(end):
            for step in range(self._num_inner_steps):
                if step not in self._inner:
                    keyed.append((t, []))
                    continue
                codebooks, delay = self._inner[step]
                if t + delay < end:
                    keyed.append((t + delay, [LayoutCoord(t, q) for q in codebooks]))
        keyed.sort()
        return Pattern([coords for _, coords in keyed], timesteps=timesteps, n_q=self.n_q)


class CoarseFirstPattern(CodebooksPatternProvider):
    """All timesteps of codebook 0 first, then codebooks ``1..n_q-1`` in parallel (with ``delays``): VALL-E.

    The fine codebooks follow the whole coarse stream, so a model trained on a duration must generate that full
    duration.

    Args:
        n_q: number of codebooks (at least 2).
        delays: delay of each of the ``n_q - 1`` fine codebooks, non-decreasing (default all 0).
    """

    def __init__(self, n_q: int, delays: list[int] | None = None) -> None:
        super().__init__(n_q)
        if n_q < 2:
            raise ValueError(f"the coarse_first pattern needs at least 2 codebooks, got n_q={n_q}")
        self.delays = [0] * (n_q - 1) if delays is None else list(delays)
        _check_sorted("delays", self.delays, n_q - 1, "codebook after the first")

    def get_pattern(self, timesteps: int) -> Pattern:  # noqa: D102
        layout: PatternLayout = [[]]
        layout.extend([LayoutCoord(t, 0)] for t in range(timesteps))
        for t in range(timesteps + max(self.delays)):
            layout.append([LayoutCoord(t - delay, q + 1) for q, delay in enumerate(self.delays) if t - delay >= 0])
        return Pattern(layout, timesteps=timesteps, n_q=self.n_q)


VALLEPattern = CoarseFirstPattern  # upstream's older name
"""Upstream's older name of `CoarseFirstPattern`."""


class MusicLMPattern(CodebooksPatternProvider):
    """Full flattening by groups of ``group_by`` codebooks: all timesteps of group 0, then of group 1, ...

    Args:
        n_q: number of codebooks, a multiple of ``group_by``.
        group_by: number of codebooks laid out together (one code per step, timestep by timestep).
    """

    def __init__(self, n_q: int, group_by: int = 2) -> None:
        super().__init__(n_q)
        if group_by <= 0 or n_q % group_by:
            raise ValueError(f"musiclm group_by must divide n_q={n_q}, got {group_by}")
        self.group_by = group_by

    def get_pattern(self, timesteps: int) -> Pattern:  # noqa: D102
        layout: PatternLayout = [[]]
        for first in range(0, self.n_q, self.group_by):
            for t in range(timesteps):
                layout.extend([LayoutCoord(t, q)] for q in range(first, first + self.group_by))
        return Pattern(layout, timesteps=timesteps, n_q=self.n_q)
