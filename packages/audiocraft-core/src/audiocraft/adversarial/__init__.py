"""Adversarial training for audio codecs (audiocraft-core).

Discriminators (MS-STFT, MSD, MPD), the adversarial loss wrapper owning each discriminator's optimizer, GAN
criteria and feature matching.

Public names load lazily (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "MultiDiscriminator",
    "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator",
    "MultiScaleSTFTDiscriminator",
    "AdversarialLoss",
    "FeatureMatchingLoss",
    "ADVERSARIAL_LOSSES",
    "get_adv_criterion",
    "get_fake_criterion",
    "get_real_criterion",
    "get_adversary",
    "get_adversarial_losses",
]

_WHERE = {
    "MultiDiscriminator": "discriminators",
    "MultiPeriodDiscriminator": "discriminators",
    "MultiScaleDiscriminator": "discriminators",
    "MultiScaleSTFTDiscriminator": "discriminators",
    "AdversarialLoss": "losses",
    "FeatureMatchingLoss": "losses",
    "ADVERSARIAL_LOSSES": "losses",
    "get_adv_criterion": "losses",
    "get_fake_criterion": "losses",
    "get_real_criterion": "losses",
    "get_adversary": "builders",
    "get_adversarial_losses": "builders",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
