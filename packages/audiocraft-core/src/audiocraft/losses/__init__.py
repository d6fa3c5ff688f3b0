"""Training losses: reconstruction, spectral and SI-SNR losses and the EnCodec loss balancer (audiocraft-core).

Public names load lazily (PEP 562), so importing `audiocraft.losses` does not import torchaudio
until a spectral loss is used.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "Balancer",
    "SISNR",
    "LogSTFTMagnitudeLoss",
    "MRSTFTLoss",
    "SpectralConvergenceLoss",
    "STFTLoss",
    "STFTLosses",
    "MelSpectrogramWrapper",
    "MelSpectrogramL1Loss",
    "MultiScaleMelSpectrogramLoss",
    "get_loss",
    "get_balancer",
]

_WHERE = {
    "Balancer": "balancer",
    "SISNR": "sisnr",
    "LogSTFTMagnitudeLoss": "stftloss",
    "MRSTFTLoss": "stftloss",
    "SpectralConvergenceLoss": "stftloss",
    "STFTLoss": "stftloss",
    "STFTLosses": "stftloss",
    "MelSpectrogramWrapper": "specloss",
    "MelSpectrogramL1Loss": "specloss",
    "MultiScaleMelSpectrogramLoss": "specloss",
    "get_loss": "builders",
    "get_balancer": "builders",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
