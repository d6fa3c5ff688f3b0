"""`AudioGenSolver`: MusicGen's training pipeline on sound data (audiocraft-core, task solvers; ``solver=audiogen``).

As upstream, not the method of the AudioGen paper (https://arxiv.org/abs/2209.15352) but MusicGen's solver over
`audiocraft.data.sound_dataset.SoundDataset` (text descriptions, optional mixing augmentation); everything else,
including the export to ``<xp>/exported/`` that ``AudioGen.get_pretrained`` loads, is `MusicGenSolver`'s.
"""

from __future__ import annotations

from . import builders
from .musicgen import MusicGenSolver

__all__ = ["AudioGenSolver"]


class AudioGenSolver(MusicGenSolver):
    """Solver for the AudioGen training task (MusicGen's, on `SoundDataset`)."""

    DATASET_TYPE: builders.DatasetType = builders.DatasetType.SOUND
