"""Base Dora explorer for AudioCraft grids: one table row per XP with its latest metrics of each stage.

Part of the ``audiocraft`` meta-package (grids). A task explorer subclasses `BaseExplorer` and lists its
columns in `get_grid_metrics`; `process_sheep` fills them from the XP history (the latest value of each
metric of each stage, since evaluate and generate only run every few epochs), plus the epoch count, the
stage durations in minutes and how long ago the XP last wrote to its log.
"""

from __future__ import annotations

import time
import typing as tp
from abc import ABC, abstractmethod

import treetable as tt
from dora import Explorer


def time_since_last_log(sheep: tp.Any) -> str | None:
    """How long ago the XP last wrote to its log (``"3.2m"``), or None when there is no log yet."""
    log = getattr(sheep, "log", None)
    if log is None or not log.exists():
        return None
    delta = time.time() - log.stat().st_mtime
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta > seconds:
            return f"{delta / seconds:.1f}{unit}"
    return f"{delta:.1f}s"


class BaseExplorer(ABC, Explorer):
    """Explorer showing, for each XP of a grid, the latest metrics of the stages of `stages`."""

    def stages(self) -> list[str]:
        return ["train", "valid", "evaluate"]

    def get_grid_meta(self) -> list[tp.Any]:
        return [
            tt.leaf("index", align=">"),
            tt.leaf("name", wrap=140),
            tt.leaf("state"),
            tt.leaf("sig", align=">"),
            tt.leaf("sid", align="<"),
        ]

    @abstractmethod
    def get_grid_metrics(self) -> list[tp.Any]:
        """The table's metric columns, as treetable groups named after the stages."""

    def process_sheep(self, sheep: tp.Any, history: list[dict[str, dict[str, tp.Any]]]) -> dict[str, dict]:
        """Latest value of each metric of each stage; ``train.epoch``, ``<stage>.duration`` (min), ``train.ping``."""
        parts: dict[str, dict[str, tp.Any]] = {stage: {} for stage in self.stages()}
        for epoch_metrics in history:
            for stage, metrics in epoch_metrics.items():
                part = parts.setdefault(stage, {})
                part.update({k: v for k, v in metrics.items() if k != "duration"})
                if "duration" in metrics:
                    part["duration"] = metrics["duration"] / 60.0
        parts.setdefault("train", {})["epoch"] = len(history)
        ping = time_since_last_log(sheep)
        if ping is not None:
            parts["train"]["ping"] = ping
        return parts
