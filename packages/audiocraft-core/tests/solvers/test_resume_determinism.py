"""A run killed with SIGKILL (mid-epoch, or mid-checkpoint-write) and restarted with the same command ends with
exactly the weights and metrics of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from resume_checks import assert_same_training as _assert_same  # noqa: E402

from audiocraft.utils.checkpoint import load_checkpoint  # noqa: E402

TINY = Path(__file__).parent / "tiny_solver.py"
OVERRIDES = {
    "optim.epochs": 3,
    "optim.updates_per_epoch": 5,
    "dataset.num_workers": 1,
    "checkpoint.save_every": 1,
    "checkpoint.keep_last": 2,
}


def _run(dora_dir: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(extra_env or {})}
    return subprocess.run(
        [sys.executable, str(TINY), str(dora_dir), json.dumps(OVERRIDES)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _final(dora_dir: Path) -> dict:
    (folder,) = list((dora_dir / "xps").iterdir())
    return load_checkpoint(folder / "checkpoint.th")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    ref = tmp_path_factory.mktemp("ref")
    proc = _run(ref)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return _final(ref)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_exact(tmp_path, reference):
    killed = tmp_path / "killed"
    proc = _run(killed, {"TINY_KILL_AT": "2:3"})  # epoch 2, 4th update
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert len(_final(killed)["history"]) == 1  # only epoch 1 was checkpointed
    resumed = _run(killed)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _assert_same(reference, _final(killed))
    (folder,) = list((killed / "xps").iterdir())
    assert sorted(p.name for p in folder.glob("checkpoint*.th")) == [
        "checkpoint.th",
        "checkpoint_2.th",
        "checkpoint_3.th",
    ]


KILL_ON_REPLACE = """
import os, signal, sys, runpy
calls = {'n': 0}
real_replace = os.replace
def replace(src, dst):
    if str(dst).endswith('checkpoint.th'):
        calls['n'] += 1
        if calls['n'] == 2:  # second epoch's checkpoint: temp file written, not yet in place
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst)
os.replace = replace
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


@pytest.mark.slow
def test_sigkill_during_checkpoint_write_keeps_previous_checkpoint(tmp_path, reference):
    killed = tmp_path / "killed"
    wrapper = tmp_path / "wrapper.py"
    wrapper.write_text(KILL_ON_REPLACE)
    proc = subprocess.run(
        [sys.executable, str(wrapper), str(TINY), str(killed), json.dumps(OVERRIDES)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == -signal.SIGKILL
    assert len(_final(killed)["history"]) == 1  # the epoch 1 checkpoint is intact and loadable
    assert list(_final(killed).keys())  # and no temp file is mistaken for a checkpoint
    assert _run(killed).returncode == 0
    _assert_same(reference, _final(killed))
