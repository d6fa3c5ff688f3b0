"""Training utilities of audiocraft-core.

Checkpoints, best-state and EMA helpers, RNG capture, profiler, deadlock detection, the samples manager, caches
and export helpers.

This subpackage sits in the training layer (audiocraft-core); nothing below it (data, models, metrics)
imports it. Submodules are imported explicitly (``from audiocraft.utils import checkpoint``), so importing
the package itself is cheap.
"""

__all__ = [
    "autocast",
    "best_state",
    "cache",
    "checkpoint",
    "cluster",
    "deadlock",
    "export",
    "profiler",
    "rng",
    "samples",
    "utils",
]
