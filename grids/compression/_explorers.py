"""Explorer of the compression grids: one row per XP with its latest train / valid / evaluate metrics.

Part of the meta-package's grids. ``dora grid compression.<name>`` prints the table; metrics missing
from an XP's history (e.g. ``visqol`` when ViSQOL is off, or ``evaluate`` before its first run) show empty.
"""
from __future__ import annotations

import time
import typing as tp

import treetable as tt
from dora import Explorer


def _ping(sheep: tp.Any) -> str | None:
    """Time since the XP last wrote to its log, in the largest sensible unit."""
    log = getattr(sheep, "log", None)
    if log is None or not log.exists():
        return None
    delta = time.time() - log.stat().st_mtime
    for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta > seconds:
            return f"{delta / seconds:.1f}{unit}"
    return f"{delta:.1f}s"


class CompressionExplorer(Explorer):
    """Grid table for compression XPs.

    Columns: train epoch, bandwidth, l1, adv and discriminator losses; valid bandwidth, l1, msspec and
    sisnr; evaluate sisnr (negated SI-SNR in dB: lower is better), mel and STFT distances, ViSQOL, codebook
    usage and the entropy bitrate.
    """

    eval_metrics = ["sisnr", "mel", "mrstft", "visqol", "codebook_usage", "entropy_kbps"]

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

    def get_grid_metrics(self) -> list[tp.Any]:
        return [
            tt.group("train", [
                tt.leaf("epoch"),
                tt.leaf("bandwidth", ".2f"),
                tt.leaf("l1", ".4f"),
                tt.leaf("adv", ".4f"),
                tt.leaf("d_loss", ".4f"),
                tt.leaf("ping"),
            ], align=">"),
            tt.group("valid", [
                tt.leaf("bandwidth", ".2f"),
                tt.leaf("l1", ".4f"),
                tt.leaf("msspec", ".4f"),
                tt.leaf("sisnr", ".2f"),
            ], align=">"),
            tt.group("evaluate", [tt.leaf(name, ".3f") for name in self.eval_metrics], align=">"),
        ]

    def process_sheep(self, sheep: tp.Any, history: list[dict[str, dict[str, tp.Any]]]) -> dict[str, dict]:
        """Latest value of each metric of each stage (evaluate runs only every few epochs)."""
        parts: dict[str, dict[str, tp.Any]] = {"train": {"epoch": len(history)}}
        for epoch_metrics in history:
            for stage, metrics in epoch_metrics.items():
                part = parts.setdefault(stage, {})
                part.update({k: v for k, v in metrics.items() if k != "duration"})
                if "duration" in metrics:
                    part["duration"] = metrics["duration"] / 60.  # minutes
        parts["train"]["epoch"] = len(history)
        ping = _ping(sheep)
        if ping is not None:
            parts["train"]["ping"] = ping
        return parts
