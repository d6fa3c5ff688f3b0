"""Compatibility path `audiocraft.modules.conditioners` (audiocraft-models, above audiocraft-conditioners).

Upstream AudioCraft defined the conditioning types and modules in this one module. Here they live in
`audiocraft.data.conditions` (the types, so datasets can build them) and `audiocraft.conditioners` (the modules);
this module re-exports them so that upstream imports such as
`from audiocraft.modules.conditioners import ConditioningAttributes` keep working.
"""
from __future__ import annotations

from audiocraft.data.conditions import (
    ConditioningAttributes,
    JointEmbedCondition,
    SegmentWithAttributes,
    SymbolicCondition,
    WavCondition,
)

__all__ = ["ConditioningAttributes", "JointEmbedCondition", "SegmentWithAttributes", "SymbolicCondition",
           "WavCondition"]
