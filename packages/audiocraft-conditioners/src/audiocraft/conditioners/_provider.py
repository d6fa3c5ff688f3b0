"""ConditioningProvider: one conditioner per attribute, batched (layer: audiocraft-conditioners, private).

The provider collates a list of :class:`ConditioningAttributes` (one per item) into one batch per attribute (a list
of texts, one :class:`WavCondition`, one :class:`JointEmbedCondition`), runs each conditioner's ``tokenize``, then,
in ``forward``, each conditioner on what its ``tokenize`` returned. Which attribute is text, waveform or joint
embedding follows from the conditioner's class, as upstream's. Attributes of the items that no conditioner reads
are ignored; an attribute that a conditioner reads and an item lacks is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from audiocraft.data.conditions import ConditioningAttributes, JointEmbedCondition, WavCondition

from ._base import BaseConditioner, ConditionType, TextConditioner
from ._joint import JointEmbeddingConditioner
from ._waveform import WaveformConditioner
from .utils import collate


def _single_item(
    kind: str, attribute: str, index: int, wav: torch.Tensor, length: torch.Tensor, sample_rate: list[int]
) -> None:
    """Check one item's audio condition: ``[1, C, T]``, one length not above ``T``, one sample rate."""
    where = f"{kind} condition {attribute!r} of item {index}"
    if wav.dim() != 3 or wav.shape[0] != 1:
        raise ValueError(f"{where}: expected audio of shape [1, C, T], got {tuple(wav.shape)}")
    if length.numel() != 1:
        raise ValueError(f"{where}: expected one length, got {length.numel()}")
    if int(length.reshape(-1)[0]) > wav.shape[-1]:
        raise ValueError(f"{where}: length {int(length.reshape(-1)[0])} exceeds the audio's {wav.shape[-1]} samples")
    if len(sample_rate) != 1:
        raise ValueError(f"{where}: expected one sample rate, got {sample_rate}")


class ConditioningProvider(nn.Module):
    """Prepare and embed the conditions of a batch with one conditioner per attribute.

    State-dict keys are ``conditioners.<attribute>.<...>``, as upstream's.

    Args:
        conditioners: Conditioner of each attribute.
        device: Device of the collated joint-embedding conditions.
    """

    def __init__(self, conditioners: Mapping[str, BaseConditioner], device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.device = device
        self.conditioners = nn.ModuleDict(dict(conditioners))

    @property
    def joint_embed_conditions(self) -> list[str]:
        """Attributes read by the joint-embedding conditioners."""
        return [m.attribute for m in self.conditioners.values() if isinstance(m, JointEmbeddingConditioner)]

    @property
    def has_joint_embed_conditions(self) -> bool:
        """Whether some conditioner is a joint-embedding one."""
        return len(self.joint_embed_conditions) > 0

    @property
    def text_conditions(self) -> list[str]:
        """Attributes with a text conditioner."""
        return [k for k, v in self.conditioners.items() if isinstance(v, TextConditioner)]

    @property
    def wav_conditions(self) -> list[str]:
        """Attributes with a waveform conditioner."""
        return [k for k, v in self.conditioners.items() if isinstance(v, WaveformConditioner)]

    @property
    def has_wav_condition(self) -> bool:
        """Whether some conditioner is a waveform one."""
        return len(self.wav_conditions) > 0

    def tokenize(self, inputs: list[ConditioningAttributes]) -> dict[str, Any]:
        """Collate the items' conditions by attribute and tokenize each batch (before any heavy device work).

        Raises:
            TypeError: if an input is not a ConditioningAttributes.
            KeyError: if an item lacks an attribute that a conditioner reads.
            ValueError: for badly shaped audio conditions.
        """
        for index, item in enumerate(inputs):
            if not isinstance(item, ConditioningAttributes):
                raise TypeError(f"item {index} is a {type(item).__name__}, expected ConditioningAttributes")
        batches: dict[str, Any] = {}
        batches.update(self._collate_text(inputs))
        batches.update(self._collate_wavs(inputs))
        batches.update(self._collate_joint_embeds(inputs))
        return {attribute: self._conditioner(attribute).tokenize(batch) for attribute, batch in batches.items()}

    def forward(self, tokenized: dict[str, Any]) -> dict[str, ConditionType]:
        """``(embedding [B, T, D], mask [B, T])`` of each attribute, from what :meth:`tokenize` returned."""
        return {attribute: self.conditioners[attribute](inputs) for attribute, inputs in tokenized.items()}

    def _conditioner(self, attribute: str) -> BaseConditioner:
        return cast(BaseConditioner, self.conditioners[attribute])

    @staticmethod
    def _get(item: ConditioningAttributes, kind: str, attribute: str, index: int) -> Any:
        values = item[kind]
        if attribute not in values:
            raise KeyError(
                f"item {index} has no {kind} attribute {attribute!r} (it has {sorted(values)}); "
                "the conditioning provider needs it"
            )
        return values[attribute]

    def _collate_text(self, samples: list[ConditioningAttributes]) -> dict[str, list[str | None]]:
        """Texts of each text attribute, in item order: ``{"genre": ["Rock", None], ...}``."""
        return {
            attribute: [self._get(item, "text", attribute, i) for i, item in enumerate(samples)]
            for attribute in self.text_conditions
        }

    def _collate_wavs(self, samples: list[ConditioningAttributes]) -> dict[str, WavCondition]:
        """One mono :class:`WavCondition` ``[B, 1, T_max]`` per waveform attribute (items right-padded)."""
        out: dict[str, WavCondition] = {}
        for attribute in self.wav_conditions:
            wavs, lengths, sample_rates, paths, seek_times = [], [], [], [], []
            for i, item in enumerate(samples):
                wav, length, sample_rate, path, seek_time = self._get(item, "wav", attribute, i)
                _single_item("wav", attribute, i, wav, length, sample_rate)
                wavs.append(wav.mean(1, keepdim=True).flatten())  # mono conditioning
                lengths.append(length.reshape(1))
                sample_rates.extend(sample_rate)
                paths.extend(path)
                seek_times.extend(seek_time)
            stacked, _ = collate(wavs, dim=0)
            out[attribute] = WavCondition(stacked.unsqueeze(1), torch.cat(lengths), sample_rates, paths, seek_times)
        return out

    def _collate_joint_embeds(self, samples: list[ConditioningAttributes]) -> dict[str, JointEmbedCondition]:
        """One :class:`JointEmbedCondition` ``[B, C, T_max]`` per joint-embedding attribute (on :attr:`device`)."""
        out: dict[str, JointEmbedCondition] = {}
        for attribute in self.joint_embed_conditions:
            wavs, texts, lengths, sample_rates, paths, seek_times = [], [], [], [], [], []
            channels: int | None = None
            for i, item in enumerate(samples):
                wav, text, length, sample_rate, path, seek_time = self._get(item, "joint_embed", attribute, i)
                _single_item("joint_embed", attribute, i, wav, length, sample_rate)
                if channels is not None and wav.shape[1] != channels:
                    raise ValueError(
                        f"joint_embed condition {attribute!r}: item {i} has {wav.shape[1]} channels, "
                        f"earlier items {channels}"
                    )
                channels = wav.shape[1]
                wavs.append(wav[0].transpose(0, 1))  # [T, C]
                texts.extend(text)
                lengths.append(length.reshape(1))
                sample_rates.extend(sample_rate)
                paths.extend(path)
                seek_times.extend(seek_time)
            stacked = pad_sequence(wavs, batch_first=True).transpose(1, 2).to(self.device)  # [B, C, T_max]
            out[attribute] = JointEmbedCondition(
                wav=stacked,
                text=texts,
                length=torch.cat(lengths).to(self.device),
                sample_rate=sample_rates,
                path=paths,
                seek_time=seek_times,
            )
        return out
