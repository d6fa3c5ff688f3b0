"""`dora grid compression.debug` on a real one-node SLURM cluster (scripts/local_slurm.sh), end to end.

The test starts the cluster (installing its Debian packages when they are absent: CI runs on a clean machine, as
root, with the Debian archive reachable), schedules the grid through Dora's own submitit path, waits for every XP
to finish, checks each XP's history, checkpoint and export, prints the explorer table, checks that a second
`dora grid` schedules nothing and that `--clear` reschedules, then stops the cluster it started.

A machine that cannot run the cluster (not root, no apt-get) makes the test FAIL with the reason, never skip: the
point of the test is to prove the SLURM path in CI, so a CI machine that cannot run it must be noticed. On a
workstation that cannot run SLURM, deselect it (``--deselect packages/audiocraft/tests/test_slurm_grid.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audiocraft.data.example import generate_example_dataset
from audiocraft.utils.checkpoint import load_checkpoint

GRID = "compression.debug"
EPOCHS = 4  # optim.epochs of solver/compression/debug


def _repo_root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "scripts" / "local_slurm.sh").is_file():
            return parent
    raise AssertionError(f"scripts/local_slurm.sh not found above {__file__}")


def _cluster_prerequisites() -> str | None:
    """Why this machine cannot run the local cluster, or None."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "the local SLURM cluster needs a POSIX (Debian/Ubuntu) machine"
    if os.geteuid() != 0:
        return f"scripts/local_slurm.sh must run as root to install and start slurm (uid is {os.geteuid()})"
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "slurm is not installed and apt-get is not available to install it (Debian/Ubuntu needed)"
    return None


def _sh(args: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)


def _job_ids() -> list[str]:
    """Base ids of the jobs accounting knows, plus the queued ones: slurmdbd records a fresh submission a few
    seconds late, while squeue has it at once."""
    out = _sh(["sacct", "-n", "-X", "-P", "-o", "JobID", "-S", "now-1days"], 60)
    assert out.returncode == 0, out.stderr
    ids = {line.split("_")[0] for line in out.stdout.split() if line.strip()}
    return sorted(ids | {job.split("_")[0] for job in _active_jobs()})


def _active_jobs() -> list[str]:
    out = _sh(["squeue", "-h", "-o", "%i"], 60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.fixture(scope="module")
def cluster():
    reason = _cluster_prerequisites()
    if reason is not None:
        pytest.fail(
            f"cannot run the SLURM grid test: {reason}. CI runs it as root on Debian; on a workstation "
            "that cannot, deselect packages/audiocraft/tests/test_slurm_grid.py."
        )
    script = _repo_root() / "scripts" / "local_slurm.sh"
    already_up = shutil.which("sinfo") is not None and _sh(["sinfo", "-h"], 30).returncode == 0
    start = time.time()
    proc = _sh(["bash", str(script), "start"], 900)
    assert proc.returncode == 0, f"local_slurm.sh start failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    print(f"cluster up in {time.time() - start:.0f} s (already running: {already_up})")
    yield script
    leftover = _active_jobs()
    if leftover:
        _sh(["scancel", *leftover], 60)
    if not already_up:
        stop = _sh(["bash", str(script), "stop"], 120)
        assert stop.returncode == 0, stop.stderr


def _dora_grid(
    env: dict[str, str], cwd: Path, *args: str, stdin: str | None = None, timeout: float = 1200
) -> subprocess.CompletedProcess:
    # -i 0.05: dora's monitor refreshes every 3 s and returns once every XP is done (or failed).
    cmd = [sys.executable, "-m", "dora", "grid", GRID, "-i", "0.05", *args]
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, input=stdin)
    print(f"$ dora grid {GRID} {' '.join(args)}\n{proc.stdout[-6000:]}")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _check_finished_xp(folder: Path) -> None:
    history = json.loads((folder / "history.json").read_text())
    assert len(history) == EPOCHS, f"{folder}: {len(history)} epochs in history.json"
    assert {"train", "valid", "evaluate", "generate"} <= set(history[-1])
    state = load_checkpoint(folder / "checkpoint.th")
    assert len(state["history"]) == EPOCHS and state["xp.sig"] == folder.name
    exported = folder / "exported" / "compression_state_dict.bin"
    assert exported.is_file(), f"{folder}: no export"
    from audiocraft.models import CompressionModel

    model = CompressionModel.get_pretrained(str(exported), device="cpu")
    assert model.sample_rate == 16000


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(2400)  # about 5 min on an idle 2-core machine (two 1-CPU jobs of the shipped debug XP)
def test_dora_grid_on_local_slurm_cluster(cluster, tmp_path):
    work = tmp_path / "launch"
    generate_example_dataset(
        work / "egs" / "example", num_clips=6, sample_rate=16000, min_duration=4.5, max_duration=5.0
    )
    dora_dir = tmp_path / "dora"
    env = {
        **os.environ,
        "DORA_PACKAGE": "audiocraft",
        "AUDIOCRAFT_DORA_DIR": str(dora_dir),
        "USER": os.environ.get("USER") or "root",
        "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": "1",
    }
    env.pop("SLURM_JOB_ID", None)
    before = set(_job_ids())

    start = time.time()
    first = _dora_grid(env, work)
    print(f"grid finished in {time.time() - start:.0f} s")
    submitted = sorted(set(_job_ids()) - before)
    assert submitted, "dora grid submitted no SLURM job"
    assert not _active_jobs()
    folders = sorted((dora_dir / "xps").iterdir())
    assert len(folders) == 2, folders  # the base XP and the rvq.bins=2048 rvq.n_q=4 one
    for folder in folders:
        _check_finished_xp(folder)
    # The explorer table lists both XPs with their final epoch.
    assert "rvq.bins=2048 rvq.n_q=4" in first.stdout and first.stdout.count(f"{EPOCHS}") >= 2

    # Everything is done: a second `dora grid` shows the table and schedules nothing.
    again = _dora_grid(env, work)
    assert sorted(set(_job_ids()) - before) == submitted and not _active_jobs()
    assert "rvq.bins=2048 rvq.n_q=4" in again.stdout

    # --clear (confirmed on stdin) deletes the XPs and schedules them again.
    cleared = _dora_grid(env, work, "--clear", "--no_monitoring", stdin="y\n")
    deadline = time.time() + 60
    while not (resubmitted := sorted(set(_job_ids()) - before - set(submitted))) and time.time() < deadline:
        time.sleep(2)
    assert resubmitted, f"--clear scheduled no new job:\n{cleared.stdout}"
    for folder in folders:
        assert not (folder / "history.json").exists() or len(json.loads((folder / "history.json").read_text())) < EPOCHS
    _dora_grid(env, work, "--cancel", "--no_monitoring")
    deadline = time.time() + 120
    while _active_jobs() and time.time() < deadline:
        time.sleep(1)
    assert not _active_jobs()
