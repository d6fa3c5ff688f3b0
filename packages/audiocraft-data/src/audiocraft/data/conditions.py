"""Condition types shared by datasets, conditioners and models.

Part of ``audiocraft-data`` (bottom of the package DAG): datasets build these, ``audiocraft.conditioners``
consumes them and re-exports them, so that neither package imports the other upward. Field names
and behaviour follow upstream AudioCraft's ``audiocraft.modules.conditioners``.
"""

import abc
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from ._manifest import SegmentInfo

__all__ = [
    "WavCondition",
    "JointEmbedCondition",
    "SymbolicCondition",
    "ConditioningAttributes",
    "SegmentWithAttributes",
]


class WavCondition(NamedTuple):
    """A waveform condition (e.g. the melody of ``self_wav``).

    Attributes:
        wav (torch.Tensor): audio of shape [B, C, T].
        length (torch.Tensor): real (non padded) length of each item, shape [B].
        sample_rate (list[int]): sample rate of each item.
        path (list[str | None]): source file of each item.
        seek_time (list[float | None]): start of each item in its source file, in seconds.
    """

    wav: torch.Tensor
    length: torch.Tensor
    sample_rate: list[int]
    path: list[str | None] = []
    seek_time: list[float | None] = []


class JointEmbedCondition(NamedTuple):
    """A condition embedded jointly from audio and text (e.g. CLAP).

    Attributes:
        wav (torch.Tensor): audio of shape [B, C, T].
        text (list[str | None]): text of each item.
        length (torch.Tensor): real length of each item, shape [B].
        sample_rate (list[int]): sample rate of each item.
        path (list[str | None]): source file of each item.
        seek_time (list[float | None]): start of each item in its source file, in seconds.
    """

    wav: torch.Tensor
    text: list[str | None]
    length: torch.Tensor
    sample_rate: list[int]
    path: list[str | None] = []
    seek_time: list[float | None] = []


class SymbolicCondition(NamedTuple):
    """Symbolic conditions (as used by JASCO).

    Attributes:
        frame_chords (torch.Tensor, optional): chord index per frame, shape [B, T].
        melody (torch.Tensor, optional): salience matrix, shape [B, n_bins, T].
    """

    frame_chords: torch.Tensor | None = None
    melody: torch.Tensor | None = None


@dataclass
class ConditioningAttributes:
    """All the conditions of one item, grouped by kind.

    Attributes:
        text (dict[str, str | None]): text conditions, e.g. ``{"description": "calm piano"}``.
        wav (dict[str, WavCondition]): waveform conditions, e.g. ``{"self_wav": ...}``.
        joint_embed (dict[str, JointEmbedCondition]): joint audio/text conditions.
        symbolic (dict[str, SymbolicCondition]): symbolic conditions.
    """

    text: dict[str, str | None] = field(default_factory=dict)
    wav: dict[str, WavCondition] = field(default_factory=dict)
    joint_embed: dict[str, JointEmbedCondition] = field(default_factory=dict)
    symbolic: dict[str, SymbolicCondition] = field(default_factory=dict)

    def __getitem__(self, item: str) -> Any:
        return getattr(self, item)

    @property
    def text_attributes(self) -> Any:
        """Names of the text conditions."""
        return self.text.keys()

    @property
    def wav_attributes(self) -> Any:
        """Names of the waveform conditions."""
        return self.wav.keys()

    @property
    def joint_embed_attributes(self) -> Any:
        """Names of the joint embedding conditions."""
        return self.joint_embed.keys()

    @property
    def symbolic_attributes(self) -> Any:
        """Names of the symbolic conditions."""
        return self.symbolic.keys()

    @property
    def attributes(self) -> dict[str, Any]:
        """Condition names by kind: ``{"text": ..., "wav": ..., "joint_embed": ..., "symbolic": ...}``."""
        return {
            "text": self.text_attributes,
            "wav": self.wav_attributes,
            "joint_embed": self.joint_embed_attributes,
            "symbolic": self.symbolic_attributes,
        }

    def to_flat_dict(self) -> dict[str, Any]:
        """Flatten to ``{"<kind>.<name>": value}``."""
        return {
            **{f"text.{k}": v for k, v in self.text.items()},
            **{f"wav.{k}": v for k, v in self.wav.items()},
            **{f"joint_embed.{k}": v for k, v in self.joint_embed.items()},
            **{f"symbolic.{k}": v for k, v in self.symbolic.items()},
        }

    @classmethod
    def from_flat_dict(cls, x: dict[str, Any]) -> "ConditioningAttributes":
        """Inverse of :meth:`to_flat_dict`.

        Raises:
            ValueError: for a key that is not ``<kind>.<name>`` with a known kind.
        """
        out = cls()
        for key, value in x.items():
            kind, _, name = key.partition(".")
            if kind not in ("text", "wav", "joint_embed", "symbolic") or not name:
                raise ValueError(f"bad flat condition key {key!r}; expected '<text|wav|joint_embed|symbolic>.<name>'")
            out[kind][name] = value
        return out


class SegmentWithAttributes(SegmentInfo, abc.ABC):
    """Abstract base class for segment infos that turn into ``ConditioningAttributes``.

    Dataset infos (``AudioInfo``, ``MusicInfo``, ``SoundInfo``) derive from it. Difference from upstream: upstream's
    class can be instantiated and raises ``NotImplementedError`` when asked for its conditions; here it is an
    abstract base, so a subclass that forgets ``to_condition_attributes`` fails when it is instantiated.
    """

    @abc.abstractmethod
    def to_condition_attributes(self) -> ConditioningAttributes:
        """Return the conditions of this segment (each dataset's info class defines them)."""
