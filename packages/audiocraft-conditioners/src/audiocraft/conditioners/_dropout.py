"""Condition dropout: nullified conditions, per-attribute dropout and classifier-free-guidance dropout.

Layer: audiocraft-conditioners, private. A dropped text becomes None; a dropped waveform or joint-embedding
condition becomes a one-sample zero signal of length 0 with no path, which every conditioner turns into a fully
masked embedding. Dropout decisions are batch-level, as upstream's, and drawn from the module's own seeded
``torch.Generator`` (same draws as upstream's for the same seed), whose state can be saved and restored with
:meth:`DropoutModule.get_rng_state` / :meth:`DropoutModule.set_rng_state` so that a resumed training run draws
what the uninterrupted run would have drawn.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from audiocraft.data.conditions import ConditioningAttributes, JointEmbedCondition, WavCondition

from ._base import ConditionType

CONDITION_KINDS = ("text", "wav", "joint_embed")


def nullify_condition(condition: ConditionType, dim: int = 1) -> ConditionType:
    """Null version of an ``(embedding, mask)`` pair: zeros of length 1 along ``dim`` and a zero mask ``[B, 1]``.

    Args:
        condition: The condition and its mask.
        dim: The (time) dimension to shrink to 1; never the batch dimension 0.

    Raises:
        ValueError: if ``dim`` is 0 or the input is not a pair of tensors.
    """
    if dim == 0:
        raise ValueError("nullify_condition: dim cannot be the batch dimension 0")
    if not (
        isinstance(condition, tuple) and len(condition) == 2 and all(isinstance(t, torch.Tensor) for t in condition)
    ):
        raise ValueError(f"nullify_condition expects a (tensor, mask) pair, got {type(condition).__name__}")
    cond, _ = condition
    out = torch.zeros_like(cond.narrow(dim, 0, 1))
    mask = torch.zeros((cond.shape[0], 1), device=cond.device, dtype=torch.int32)
    return out, mask


def nullify_wav(cond: WavCondition) -> WavCondition:
    """Null version of a waveform condition: zero audio ``[B, C, 1]``, length 0, no path or seek time."""
    batch = cond.wav.shape[0]
    null_wav, _ = nullify_condition((cond.wav, torch.zeros_like(cond.wav)), dim=cond.wav.dim() - 1)
    return WavCondition(
        wav=null_wav,
        length=torch.zeros(batch, dtype=torch.long, device=cond.wav.device),
        sample_rate=cond.sample_rate,
        path=[None] * batch,
        seek_time=[None] * batch,
    )


def nullify_joint_embed(embed: JointEmbedCondition) -> JointEmbedCondition:
    """Null version of a joint-embedding condition: zero audio ``[B, C, 1]``, no text, length 0.

    Upstream gives a length tensor of shape [1] whatever the batch; here it has one zero per item (the same for
    the single-item conditions that dropout handles).
    """
    batch = embed.wav.shape[0]
    null_wav, _ = nullify_condition((embed.wav, torch.zeros_like(embed.wav)), dim=embed.wav.dim() - 1)
    return JointEmbedCondition(
        wav=null_wav,
        text=[None] * len(embed.text),
        length=torch.zeros(batch, dtype=torch.long, device=embed.wav.device),
        sample_rate=embed.sample_rate,
        path=[None] * batch,
        seek_time=[0.0] * batch,
    )


def dropout_condition(sample: ConditioningAttributes, condition_type: str, condition: str) -> ConditioningAttributes:
    """Nullify one attribute of ``sample`` in place (text -> None; wav / joint_embed -> their null versions).

    Returns:
        ``sample`` itself.

    Raises:
        ValueError: for an unknown condition type, or an attribute that ``sample`` does not have.
    """
    if condition_type not in CONDITION_KINDS:
        raise ValueError(
            f"dropout_condition: unknown condition type {condition_type!r}; expected one of {list(CONDITION_KINDS)}"
        )
    attributes = getattr(sample, condition_type)
    if condition not in attributes:
        raise ValueError(
            f"dropout_condition: the sample has no {condition_type} attribute {condition!r} "
            f"(it has {sorted(attributes)})"
        )
    if condition_type == "wav":
        sample.wav[condition] = nullify_wav(sample.wav[condition])
    elif condition_type == "joint_embed":
        sample.joint_embed[condition] = nullify_joint_embed(sample.joint_embed[condition])
    else:
        sample.text[condition] = None
    return sample


class DropoutModule(nn.Module):
    """Base of the dropout modules: holds the seeded generator that every dropout decision is drawn from.

    Args:
        seed: Seed of the generator.
    """

    def __init__(self, seed: int = 1234) -> None:
        super().__init__()
        self.rng = torch.Generator()
        self.rng.manual_seed(seed)

    def draw(self) -> float:
        """One uniform draw in [0, 1) from the module's generator (upstream's ``torch.rand(1, generator=rng)``)."""
        return float(torch.rand(1, generator=self.rng).item())

    def get_rng_state(self) -> torch.Tensor:
        """State of the generator (a uint8 tensor), to store in a training checkpoint."""
        return self.rng.get_state()

    def set_rng_state(self, state: torch.Tensor) -> None:
        """Restore a state returned by :meth:`get_rng_state`."""
        self.rng.set_state(state)


class AttributeDropout(DropoutModule):
    """Drop each listed attribute with its own probability, for the whole batch at once.

    Unlike :class:`ClassifierFreeGuidanceDropout`, attributes drop independently ("artist" may drop while
    "genre" stays). For each ``(kind, attribute)`` in the order of ``p``, one draw decides for every sample.

    An ``args`` entry of ``p`` holds options, as in upstream's ``chroma2music`` config
    (``attribute_dropout: {args: {active_on_eval: false}, ...}``): its ``active_on_eval`` is used. Upstream treats
    ``args`` as one more condition kind whose "attributes" are drawn and never dropped (so the option has no effect
    and each forward consumes one extra draw); here it is not drawn.

    Args:
        p: Probabilities by kind then attribute, e.g. ``{"text": {"genre": 0.1, "artist": 0.5}, "wav": {...}}``.
        active_on_eval: Also drop in eval mode.
        seed: Seed of the generator.

    Raises:
        ValueError: for an unknown condition kind or option.
    """

    def __init__(self, p: dict[str, dict[str, Any]], active_on_eval: bool = False, seed: int = 1234) -> None:
        super().__init__(seed=seed)
        p = dict(p)
        options: dict[str, Any] = dict(p.pop("args", {}) or {})
        active_on_eval = bool(options.pop("active_on_eval", active_on_eval))
        if options:
            raise ValueError(f"AttributeDropout: unknown option(s) {sorted(options)} in 'args'")
        self.active_on_eval = active_on_eval
        for kind in p:
            if kind not in CONDITION_KINDS:
                raise ValueError(
                    f"AttributeDropout: unknown condition type {kind!r}; expected one of {list(CONDITION_KINDS)}"
                )
        self.p: dict[str, dict[str, float]] = {
            kind: {name: float(prob) for name, prob in probs.items()} for kind, probs in p.items()
        }

    def forward(self, samples: list[ConditioningAttributes]) -> list[ConditioningAttributes]:
        """A copy of ``samples`` with the drawn attributes nullified (``samples`` itself when inactive)."""
        if not self.training and not self.active_on_eval:
            return samples
        samples = copy.deepcopy(samples)
        for kind, probs in self.p.items():
            for attribute, prob in probs.items():
                if self.draw() < prob:
                    for sample in samples:
                        dropout_condition(sample, kind, attribute)
        return samples

    def __repr__(self) -> str:
        return f"AttributeDropout({self.p})"


class ClassifierFreeGuidanceDropout(DropoutModule):
    """Drop every condition of the whole batch with probability ``p`` (training only).

    Deliberate difference from upstream: joint-embedding conditions (CLAP) are nullified too. Upstream nullifies
    only ``wav`` and ``text``, so a CLAP-conditioned model never trains its unconditional branch and
    classifier-free guidance does nothing for it.

    Args:
        p: Probability of dropping the batch's conditions.
        seed: Seed of the generator.
    """

    def __init__(self, p: float, seed: int = 1234) -> None:
        super().__init__(seed=seed)
        self.p = p

    def forward(self, samples: list[ConditioningAttributes]) -> list[ConditioningAttributes]:
        """A copy of ``samples`` with all conditions nullified, or ``samples`` itself when not dropped."""
        if not self.training:
            return samples
        if not self.draw() < self.p:
            return samples
        samples = copy.deepcopy(samples)
        for sample in samples:
            for kind in ("wav", "text", "joint_embed"):
                for attribute in list(sample.attributes[kind]):
                    dropout_condition(sample, kind, attribute)
        return samples

    def __repr__(self) -> str:
        return f"ClassifierFreeGuidanceDropout(p={self.p})"
