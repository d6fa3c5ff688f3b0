"""Discriminators for adversarial training: MS-STFT, MSD and MPD (audiocraft-core, adversarial training)."""

from __future__ import annotations

from .base import MultiDiscriminator, MultiDiscriminatorOutputType
from .mpd import MultiPeriodDiscriminator
from .msd import MultiScaleDiscriminator
from .msstftd import MultiScaleSTFTDiscriminator

__all__ = [
    "MultiDiscriminator",
    "MultiDiscriminatorOutputType",
    "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator",
    "MultiScaleSTFTDiscriminator",
]
