"""Solvers: the training loop (`StandardSolver`) and the task solvers built on it (``audiocraft.solvers``).

Part of audiocraft-core (training layer). Task solvers live in their own modules and are imported lazily;
`get_solver` picks one from the ``solver`` config value (registry: `audiocraft.solvers.builders.SOLVERS`).
``__all__`` and the table below name only solvers whose module exists.
"""

import importlib
import typing as tp

__all__ = ["AudioGenSolver", "CompressionSolver", "MusicGenSolver", "StandardSolver", "get_solver"]

_WHERE = {
    "StandardSolver": "base",
    "get_solver": "builders",
    "CompressionSolver": "compression",
    "MusicGenSolver": "musicgen",
    "AudioGenSolver": "audiogen",
}


def __getattr__(name: str) -> tp.Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
