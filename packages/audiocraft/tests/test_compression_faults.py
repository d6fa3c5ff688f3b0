"""Kills through the real ``dora run solver=compression/debug`` (the tiny-solver fault suite of audiocraft-core
covers the seeded random moments): inside a train step and right after the final export was written, then the same
command. Both end with exactly the checkpoint, history and export of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from audiocraft.data.example import generate_example_dataset
from audiocraft.utils.checkpoint import load_checkpoint

CORE_TESTS = Path(__file__).resolve().parents[2] / "audiocraft-core" / "tests" / "solvers"
sys.path.insert(0, str(CORE_TESTS))
from resume_checks import assert_no_partial_checkpoint, assert_same_training  # noqa: E402

KILLS = {
    # 6th train step (epoch 2, 2nd of 4 updates), after its forward pass and before its backward
    "inside a train step": "audiocraft.solvers.compression:CompressionSolver._check_finite@6",
    # the export package is written and checked, its comparison with an untrained model not yet run
    "during the final export": "audiocraft.solvers.compression_export:_export_if_needed@1:after",
}


def _run(tmp_path: Path, dora_dir: Path, fault: str | None = None) -> subprocess.CompletedProcess:
    data = tmp_path / "egs"
    if not data.exists():
        generate_example_dataset(data, num_clips=6, sample_rate=16000, min_duration=2.0, max_duration=2.5)
    overrides = [
        "solver=compression/debug",
        "device=cpu",
        "optim.epochs=2",
        "optim.updates_per_epoch=4",
        "checkpoint.save_every_updates=1",
        "dataset.valid.num_samples=4",
        "dataset.evaluate.num_samples=4",
        "dataset.generate.segment_duration=1",
    ] + [f"datasource.{split}={data / split}" for split in ("train", "valid", "evaluate", "generate")]
    env = {
        **os.environ,
        "DORA_PACKAGE": "audiocraft",
        "AUDIOCRAFT_DORA_DIR": str(dora_dir),
        "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(CORE_TESTS / "fault_hook"), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("AUDIOCRAFT_TEST_FAULT", None)
    if fault:
        env["AUDIOCRAFT_TEST_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "dora", "run", *overrides],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _outcome(dora_dir: Path) -> dict:
    (folder,) = (dora_dir / "xps").iterdir()
    state = load_checkpoint(folder / "checkpoint.th")
    state["export"] = torch.load(folder / "exported" / "compression_state_dict.bin", weights_only=True)["best_state"]
    assert (folder / "exported" / "export_metrics.json").is_file()
    return state


@pytest.mark.slow
@pytest.mark.integration
def test_compression_debug_killed_then_resumed_ends_as_uninterrupted(tmp_path):
    reference = tmp_path / "reference"
    proc = _run(tmp_path, reference)
    assert proc.returncode == 0, proc.stderr[-3000:]
    expected = _outcome(reference)
    for index, (moment, fault) in enumerate(KILLS.items()):
        dora_dir = tmp_path / f"killed{index}"
        killed = _run(tmp_path, dora_dir, fault)
        assert killed.returncode == -signal.SIGKILL, f"{moment}: {killed.stderr[-3000:]}"
        (folder,) = (dora_dir / "xps").iterdir()
        assert_no_partial_checkpoint(folder)
        resumed = _run(tmp_path, dora_dir)
        assert resumed.returncode == 0, f"{moment}: {resumed.stderr[-3000:]}"
        assert_same_training(
            expected, _outcome(dora_dir), keys=("model", "optimizer", "ema", "best_state", "balancer", "export")
        )
