"""Comparisons shared by the resume and fault tests: two training checkpoints hold the same training.

Not a test module (no ``test_`` prefix): the core and meta-package fault tests import it.
"""

from __future__ import annotations

import typing as tp
from pathlib import Path

import torch

from audiocraft.utils.checkpoint import load_checkpoint

COMPARED = ("model", "optimizer", "ema", "best_state")


def flatten(tree: tp.Any, prefix: str = "") -> dict[str, tp.Any]:
    """Leaves of nested dicts / lists keyed by their dotted path."""
    out: dict[str, tp.Any] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}.{key}"))
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            out.update(flatten(value, f"{prefix}.{index}"))
    else:
        out[prefix] = tree
    return out


def strip_durations(history: list[dict]) -> list[dict]:
    """The metric history without the wall-clock ``duration`` of each stage."""
    return [
        {stage: {k: v for k, v in metrics.items() if k != "duration"} for stage, metrics in epoch.items()}
        for epoch in history
    ]


def assert_same_training(a: dict, b: dict, keys: tp.Sequence[str] = COMPARED) -> None:
    """Bit-identical states under ``keys`` (tensors with torch.equal) and identical histories."""
    for key in keys:
        flat_a, flat_b = flatten(a[key]), flatten(b[key])
        assert flat_a.keys() == flat_b.keys(), f"{key}: different entries"
        for name, va in flat_a.items():
            vb = flat_b[name]
            if isinstance(va, torch.Tensor):
                assert torch.equal(va, vb), f"{key}{name} differs"
            else:
                assert va == vb, f"{key}{name} differs: {va!r} != {vb!r}"
    assert strip_durations(a["history"]) == strip_durations(b["history"])


def assert_no_partial_checkpoint(folder: Path) -> None:
    """Every ``checkpoint*.th`` of the XP folder loads (weights_only), and no temporary file takes such a name."""
    for path in sorted(folder.glob("checkpoint*.th*")):
        assert isinstance(load_checkpoint(path), dict), path
