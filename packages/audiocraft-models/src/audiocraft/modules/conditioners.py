"""Compatibility path ``audiocraft.modules.conditioners`` (audiocraft-models, above audiocraft-conditioners).

Upstream AudioCraft defined the conditioning types and modules in this one module. Here they live in
``audiocraft.data.conditions`` (the types, so datasets can build them) and ``audiocraft.conditioners`` (the modules);
this module re-exports every public name of ``audiocraft.conditioners`` so that upstream imports such as
``from audiocraft.modules.conditioners import ConditioningAttributes, T5Conditioner`` keep working. Names are
resolved on first access, so the optional dependencies of a conditioner load only when it is used.
"""

from __future__ import annotations

import audiocraft.conditioners as _conditioners

__all__ = list(_conditioners.__all__)


def __getattr__(name: str) -> object:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_conditioners, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
