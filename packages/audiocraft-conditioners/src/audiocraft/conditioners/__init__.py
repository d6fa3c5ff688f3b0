"""Conditioning for audio language models (distribution `audiocraft-conditioners`, above audiocraft-data).

This package will hold the tokenizers, text / waveform / joint-embedding conditioners, the ConditioningProvider,
the ConditionFuser and classifier-free-guidance dropout. The condition *types* live one layer down, in
`audiocraft.data.conditions`, so that datasets can build them without importing conditioners (this breaks upstream's
data <-> conditioners cycle); they are re-exported here, lazily, under their upstream names.
"""
from __future__ import annotations

import importlib

__all__ = ["ConditioningAttributes", "JointEmbedCondition", "SegmentWithAttributes", "SymbolicCondition",
           "WavCondition"]

_WHERE = {name: "audiocraft.data.conditions" for name in __all__}


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
