"""Optional ``torch.profiler`` wrapper for the first steps of a stage.

Part of audiocraft-core (training layer). Enabled with ``profiler.enabled=true``; traces go to
``<xp folder>/profiler_trace`` in TensorBoard's format and a summary table goes to the log.
"""

from __future__ import annotations

import logging
import typing as tp
from pathlib import Path

import torch

logger = logging.getLogger(__name__)


class Profiler:
    """Profile the first ``wait + warmup + active`` steps of the wrapped loop.

    Args:
        module: the profiled model (its class name goes in the log).
        enabled: whether profiling is on; when off, entering and stepping cost nothing.
        folder: where traces are written (the XP folder); None keeps only the log summary.
        **kwargs: schedule overrides (``wait``, ``warmup``, ``active``, ``repeat``).
    """

    def __init__(
        self, module: torch.nn.Module, enabled: bool = False, folder: Path | str | None = None, **kwargs: tp.Any
    ):
        self.profiler: tp.Any = None
        if not enabled:
            return
        from torch import profiler

        schedule = profiler.schedule(
            wait=kwargs.get("wait", 1),
            warmup=kwargs.get("warmup", 1),
            active=kwargs.get("active", 3),
            repeat=kwargs.get("repeat", 1),
        )
        handler = None
        if folder is not None:
            handler = profiler.tensorboard_trace_handler(str(Path(folder) / "profiler_trace"), worker_name="worker")
        self.profiler = profiler.profile(
            schedule=schedule, on_trace_ready=handler, activities=[profiler.ProfilerActivity.CPU], record_shapes=False
        )
        self._name = module.__class__.__name__

    def step(self) -> None:
        """Advance the profiler's schedule by one training step (no-op when profiling is off)."""
        if self.profiler is not None:
            self.profiler.step()

    def __enter__(self) -> Profiler:
        if self.profiler is not None:
            self.profiler.__enter__()
        return self

    def __exit__(self, exc_type: tp.Any, exc_value: tp.Any, exc_tb: tp.Any) -> None:
        if self.profiler is not None:
            self.profiler.__exit__(exc_type, exc_value, exc_tb)
            try:
                table = self.profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)
                logger.info("Profile of %s:\n%s", self._name, table)
            except Exception:  # pragma: no cover - no steps recorded
                pass
