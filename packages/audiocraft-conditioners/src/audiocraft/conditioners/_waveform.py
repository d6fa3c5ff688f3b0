"""Base class of the conditioners of waveform attributes (layer: audiocraft-conditioners, private).

A waveform conditioner embeds a :class:`WavCondition` (audio ``[B, 1, T]`` with real lengths) into a sequence of
frames ``[B, T', output_dim]``; the mask covers the frames of each item's real length, ``length / factor`` where
the factor is the embedding's hop in samples.
"""

from __future__ import annotations

import abc

import torch

from audiocraft.data.conditions import WavCondition

from ._base import BaseConditioner, ConditionType
from .utils import length_to_mask


class WaveformConditioner(BaseConditioner):
    """Base of the conditioners that take a waveform: subclasses define the embedding and its hop.

    Args:
        dim: Width of the embedding before ``output_proj``.
        output_dim: Width of the returned embeddings.
        device: Device of the embedding model (the condition is moved there in :meth:`tokenize`).
    """

    def __init__(self, dim: int, output_dim: int, device: torch.device | str) -> None:
        super().__init__(dim, output_dim)
        self.device = device
        # Masking off: used by the chroma conditioner when it repeats a short condition to the training length.
        self._use_masking = True

    def tokenize(self, x: WavCondition) -> WavCondition:
        """The condition with its audio and lengths on :attr:`device`."""
        wav, length, sample_rate, path, seek_time = x
        if length is None:
            raise ValueError("WavCondition.length is required")
        return WavCondition(wav.to(self.device), length.to(self.device), sample_rate, path, seek_time)

    @abc.abstractmethod
    def _get_wav_embedding(self, x: WavCondition) -> torch.Tensor:
        """Dense embedding ``[B, T', dim]`` of the condition's audio."""

    @abc.abstractmethod
    def _downsampling_factor(self) -> float:
        """Samples of audio per embedding frame."""

    def forward(self, x: WavCondition) -> ConditionType:
        """Embedding ``[B, T', output_dim]`` (zero past each item's length) and mask ``[B, T']``."""
        lengths = x.length
        with torch.no_grad():
            embeds = self._get_wav_embedding(x)
        embeds = self.output_proj(embeds.to(self.output_proj.weight))
        if lengths is not None and self._use_masking:
            mask = length_to_mask(lengths / self._downsampling_factor(), max_len=embeds.shape[1]).int()
        else:
            mask = torch.ones_like(embeds[..., 0]).int()
        return embeds * mask.unsqueeze(-1), mask
