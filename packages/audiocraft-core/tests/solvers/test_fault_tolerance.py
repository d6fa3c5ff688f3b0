"""Fault suite: SIGKILL at seeded random moments, a full disk, with mid-epoch checkpoints.

Every run is the tiny solver (`tiny_solver.py`) in a subprocess. Faults are injected by `fault_hook/sitecustomize.py`
(on PYTHONPATH, driven by ``AUDIOCRAFT_TEST_FAULT``): SIGKILL at the n-th call of a function, or ENOSPC. After each
kill the same command runs again and must end with exactly the weights, optimizer, EMA, best state, history and
export of a run that was never interrupted (and never wrote a mid-epoch checkpoint); no checkpoint may ever be
half-written, and a killed run loses at most ``checkpoint.save_every_updates`` updates.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from resume_checks import assert_no_partial_checkpoint, assert_same_training  # noqa: E402

from audiocraft.utils.checkpoint import load_checkpoint  # noqa: E402

HERE = Path(__file__).parent
TINY = HERE / "tiny_solver.py"
HOOK = HERE / "fault_hook"
EPOCHS, UPDATES, SAVE_EVERY = 3, 5, 2
VALID_STEPS = 4  # 32 valid items / batch 8
BASE = {
    "optim.epochs": EPOCHS,
    "optim.updates_per_epoch": UPDATES,
    "evaluate.every": 1,
    "checkpoint.save_every": 1,
    "checkpoint.keep_last": 2,
}
MID_EPOCH = {**BASE, "checkpoint.save_every_updates": SAVE_EVERY}
# torch.save calls of a MID_EPOCH run: per epoch 2 mid-epoch checkpoints (after updates 2 and 4), then
# checkpoint_<epoch>.th and checkpoint.th; then the export.
SAVES_PER_EPOCH = 2 + 2
EXPORT_SAVE = EPOCHS * SAVES_PER_EPOCH + 1


def _run(
    dora_dir: Path, overrides: dict, fault: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(HOOK), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("AUDIOCRAFT_TEST_FAULT", None)
    if fault:
        env["AUDIOCRAFT_TEST_FAULT"] = fault
    return subprocess.run(
        [sys.executable, str(TINY), str(dora_dir), json.dumps(overrides)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _folder(dora_dir: Path) -> Path:
    (folder,) = list((dora_dir / "xps").iterdir())
    return folder


def _outcome(dora_dir: Path) -> dict:
    folder = _folder(dora_dir)
    state = load_checkpoint(folder / "checkpoint.th")
    state["export"] = torch.load(folder / "exported" / "tiny.bin", weights_only=True)
    return state


def _updates_done(folder: Path) -> int:
    path = folder / "checkpoint.th"
    if not path.exists():
        return 0
    state = load_checkpoint(path)
    position = state.get("train_position") or {}
    return len(state["history"]) * UPDATES + position.get("updates", 0)


def _moments(seed: int, count: int) -> list[tuple[str, str]]:
    """``count`` (kind, fault spec) pairs drawn with ``seed``, at least one of each kind."""
    step = "audiocraft.solvers.base:StandardSolver.backward_and_update"
    candidates = {
        "inside a train step": [f"{step}@{n}" for n in range(1, EPOCHS * UPDATES + 1)],
        "inside a valid step": [
            f"tiny_solver:TinySolver.run_step@{e * (UPDATES + VALID_STEPS) + UPDATES + v}"
            for e in range(EPOCHS)
            for v in range(1, VALID_STEPS + 1)
        ],
        "during evaluate": [
            f"tiny_solver:TinySolver.evaluate@{n}:{when}" for n in range(1, EPOCHS + 1) for when in ("before", "after")
        ],
        "during a checkpoint write": [
            f"torch:save@{n}:{when}" for n in range(1, EXPORT_SAVE) for when in ("before", "after")
        ],
        "during the final export": [f"torch:save@{EXPORT_SAVE}:{when}" for when in ("before", "after")],
    }
    rng = random.Random(seed)
    chosen = [(kind, rng.choice(specs)) for kind, specs in candidates.items()]
    pool = [(kind, spec) for kind, specs in candidates.items() for spec in specs if (kind, spec) not in chosen]
    return chosen + rng.sample(pool, count - len(chosen))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """An uninterrupted run without mid-epoch checkpoints."""
    ref = tmp_path_factory.mktemp("ref")
    proc = _run(ref, BASE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _outcome(ref)


def test_mid_epoch_checkpoints_change_nothing_and_hold_the_position(tmp_path, reference):
    proc = _run(tmp_path, MID_EPOCH)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_training(reference, _outcome(tmp_path), keys=("model", "optimizer", "ema", "best_state", "export"))
    assert proc.stderr.count("Mid-epoch checkpoint: epoch") == EPOCHS * (UPDATES - 1) // SAVE_EVERY
    final = load_checkpoint(_folder(tmp_path) / "checkpoint.th")
    assert "train_position" not in final  # end-of-epoch checkpoints keep upstream's layout


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 20 tiny runs: about 3 min on an idle 2-core machine
def test_sigkill_at_seeded_random_moments_resumes_bit_exactly(tmp_path, reference):
    moments = _moments(seed=15, count=10)
    report = []
    for index, (kind, fault) in enumerate(moments):
        dora_dir = tmp_path / f"run{index}"
        killed = _run(dora_dir, MID_EPOCH, fault)
        assert killed.returncode == -signal.SIGKILL, f"{kind} ({fault}) did not kill:\n{killed.stderr[-2000:]}"
        folder = _folder(dora_dir)
        assert_no_partial_checkpoint(folder)
        if fault.startswith("audiocraft.solvers.base"):  # killed inside update n: n - 1 updates were done
            lost = int(fault.rsplit("@", 1)[1]) - 1 - _updates_done(folder)
            assert 0 <= lost <= SAVE_EVERY, f"{fault}: {lost} updates lost"
        leftovers = [p.name for p in folder.rglob(".*.tmp*")]
        resumed = _run(dora_dir, MID_EPOCH)
        assert resumed.returncode == 0, f"{kind} ({fault}): resume failed:\n{resumed.stderr[-3000:]}"
        for name in leftovers:
            assert f"{name}, left by an interrupted write" in resumed.stderr
        assert not list(folder.rglob(".*.tmp*")), "temporary files left after the resume"
        assert_same_training(reference, _outcome(dora_dir), keys=("model", "optimizer", "ema", "best_state", "export"))
        report.append(f"{kind}: {fault} (leftover temp files: {leftovers})")
    print("\n".join(report))


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MB tmpfs (root), else None: the caller then injects ENOSPC in the writer."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True)
    if proc.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def _fill(mount: Path) -> Path:
    filler = mount / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def test_disk_full_during_a_checkpoint_write_keeps_the_previous_one(small_disk, tmp_path, reference):
    dora_dir = (small_disk or tmp_path) / "dora"
    killed = _run(dora_dir, MID_EPOCH, "audiocraft.solvers.base:StandardSolver.backward_and_update@8")
    assert killed.returncode == -signal.SIGKILL
    folder = _folder(dora_dir)
    before = load_checkpoint(folder / "checkpoint.th")
    if small_disk is not None:
        filler = _fill(small_disk)
        full = _run(dora_dir, MID_EPOCH)
        filler.unlink()
    else:  # not root: the next torch.save fails as on a full disk
        full = _run(dora_dir, MID_EPOCH, "torch:save@1:enospc")
    assert full.returncode not in (0, -signal.SIGKILL)
    error = [line for line in full.stderr.splitlines() if line.startswith("OSError:")][-1]  # the outermost one
    assert "no space left on device while writing checkpoint" in error, full.stderr[-3000:]
    assert str(folder / "checkpoint.th") in error and "previous checkpoint is kept intact" in error
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # the failed temp file is gone
    after = load_checkpoint(folder / "checkpoint.th")
    assert_same_training(before, after)
    assert after["train_position"] == before["train_position"]
    resumed = _run(dora_dir, MID_EPOCH)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_training(reference, _outcome(dora_dir), keys=("model", "optimizer", "ema", "best_state", "export"))


def test_resuming_mid_epoch_with_another_batch_size_names_the_checkpoint(tmp_path):
    killed = _run(tmp_path, MID_EPOCH, "audiocraft.solvers.base:StandardSolver.backward_and_update@4")
    assert killed.returncode == -signal.SIGKILL
    other = _run(tmp_path, {**MID_EPOCH, "dataset.batch_size": 4})
    assert other.returncode != 0
    error = other.stderr.strip().splitlines()[-1]
    assert (
        f"{_folder(tmp_path) / 'checkpoint.th'} was written in the middle of epoch 1 (after 2 updates) with "
        "global_batch=8, but the config now gives 4" in error
    ), other.stderr[-2000:]
