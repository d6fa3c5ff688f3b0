"""Training on 2 CPU workers (gloo) through the real ``dora run -d --ddp_workers 2``.

- compression/debug as shipped (only the training budget is cut): the final weights and the metric history of a
  2-worker run match a 1-worker run with the same global batch, rank 0 alone writes the checkpoints and the export,
  both workers read them back;
- a worker killed in a 2-worker run started without a supervisor (as SLURM tasks are): the other one stops with a
  clear error naming the lost worker and the checkpoint to resume from, and the same command resumes (mid-epoch)
  and ends exactly as an uninterrupted 2-worker run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from audiocraft.data.example import generate_example_dataset
from audiocraft.utils.checkpoint import load_checkpoint

PLUGIN = Path(__file__).parent / "plugin"
CORE_TESTS = Path(__file__).resolve().parents[2] / "audiocraft-core" / "tests" / "solvers"
sys.path.insert(0, str(CORE_TESTS))
from resume_checks import assert_same_training, flatten, strip_durations  # noqa: E402


def _env(dora_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DORA_PACKAGE": "audiocraft",
        "AUDIOCRAFT_DORA_DIR": str(dora_dir),
        "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": "1",
        "USER": os.environ.get("USER") or "tester",
        **extra,
    }


def _dora(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "dora", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"dora {' '.join(args)}:\n{proc.stderr[-4000:]}"
    return proc


def _xp(dora_dir: Path) -> Path:
    (folder,) = (dora_dir / "xps").iterdir()
    return folder


def _assert_weights_match(
    one: dict, two: dict, label: str, scaled: tuple[str, ...] = (), tolerance: float = 1e-3
) -> None:
    """Every tensor of the two models agrees within ``tolerance`` in relative L2 norm (float tolerance):
    ``|a - b| < tolerance * |a| + 1e-4``.

    Tensors whose name ends with one of ``scaled`` are statistics averaged over the 2 workers where one worker sums
    them: twice their 2-worker value must match.

    Not elementwise: Adam divides by the root of the squared-gradient average, so coordinates whose gradient is
    about 0 turn float rounding noise into steps of up to ``lr`` (seen: 1e-2 after 3 updates at lr 3e-3 on a few
    elements of a tensor that otherwise agrees to 1e-7).
    """
    flat_a, flat_b = flatten(one["model"]), flatten(two["model"])
    assert flat_a.keys() == flat_b.keys()
    flat_b = {key: value * 2 if key.endswith(scaled) else value for key, value in flat_b.items()}
    # relative to the tensor's norm, plus 1e-4 for tensors that stay about 0 (e.g. a norm bias barely trained)
    rel = {
        key: float(
            (flat_a[key].double() - flat_b[key].double()).norm() / (flat_a[key].double().norm() + 1e-4 / tolerance)
        )
        for key in flat_a
    }
    worst = max(rel, key=rel.__getitem__)
    absolute = max(float((flat_a[k].double() - flat_b[k].double()).abs().max()) for k in flat_a)
    print(f"{label}: worst relative difference {rel[worst]:.2g} ({worst}), largest absolute {absolute:.2g}")
    assert rel[worst] < tolerance, f"{label}: model{worst} differs by {rel[worst]:.3g} (relative L2)"


@pytest.mark.slow
@pytest.mark.integration
def test_compression_debug_two_workers_match_one_worker(tmp_path):
    data = tmp_path / "egs"
    generate_example_dataset(data, num_clips=8, sample_rate=16000, min_duration=2.0, max_duration=3.0)
    # The budget is cut; batch sizes (global: 8 train/valid, 16 evaluate, 2 generate) are the shipped ones.
    # k-means and dead-code replacement draw from rank 0's share of the batch only, and the codebook EMA statistics
    # are averaged over the workers (upstream's semantics: flashy averages the buffers) where one worker sums them
    # over the whole batch, so codebooks trained on 2 workers differ from a 1-worker run by design (measured: up to
    # 155 after one update, while the other weights agree to 2e-6). For the comparison: no k-means, no dead codes,
    # and EMA decay 0 (each codebook is the mean of its last assignments, the same whether summed or averaged; the
    # count and sum buffers themselves are halved on 2 workers).
    overrides = [
        "solver=compression/debug",
        "device=cpu",
        "optim.epochs=2",
        "optim.updates_per_epoch=4",
        "dataset.train.num_samples=64",
        "dataset.valid.num_samples=8",
        "dataset.evaluate.num_samples=8",
        "dataset.generate.segment_duration=2",
        "rvq.kmeans_init=false",
        "rvq.threshold_ema_dead_code=0",
        "rvq.decay=0.0",
        "checkpoint.save_every_updates=2",
    ] + [f"datasource.{split}={data / split}" for split in ("train", "valid", "evaluate", "generate")]
    one, two = tmp_path / "one", tmp_path / "two"
    _dora(["run", *overrides], _env(one), tmp_path)
    proc = _dora(["run", "-d", "--ddp_workers", "2", *overrides], _env(two), tmp_path)
    assert re.search(r"Batch size: 4 per worker x 2 worker\(s\) = 8 per update", proc.stderr)
    folder = _xp(two)
    a, b = load_checkpoint(_xp(one) / "checkpoint.th"), load_checkpoint(folder / "checkpoint.th")
    # 1e-2, not 1e-3: measured 2.7e-3 after 8 updates (2e-6 after one). Most likely cause (not traced further): the
    # nearest-code choice is discontinuous, so rounding differences of the encoder output flip a few assignments
    # of the 32 codebooks and the runs drift apart slowly.
    _assert_weights_match(
        a, b, "compression/debug", scaled=("_codebook.cluster_size", "_codebook.embed_avg"), tolerance=1e-2
    )
    # metrics are reduced across workers: the same history, up to float rounding
    ha, hb = strip_durations(a["history"]), strip_durations(b["history"])
    for epoch_a, epoch_b in zip(ha, hb, strict=True):
        for stage in ("train", "valid", "evaluate"):
            for name in ("l1", "sisnr"):
                if name in epoch_a.get(stage, {}):
                    assert epoch_b[stage][name] == pytest.approx(epoch_a[stage][name], rel=1e-3, abs=1e-4), (
                        f"{stage}.{name}"
                    )
    logs = [(folder / f"solver.log.{rank}").read_text() for rank in range(2)]
    assert "Checkpoint saved to" in logs[0] and "Checkpoint saved to" not in logs[1]  # rank 0 alone writes
    assert "Mid-epoch checkpoint" in logs[0] and "Mid-epoch checkpoint" not in logs[1]
    assert all("Evaluate SI-SNR: exported model" in log for log in logs)  # both read the export back
    assert (folder / "exported" / "compression_state_dict.bin").is_file()


@pytest.mark.slow
@pytest.mark.integration
def test_musicgen_debug_two_workers_match_one_worker(tmp_path):
    data = tmp_path / "egs"
    generate_example_dataset(data, num_clips=8, sample_rate=32000, min_duration=2.5, max_duration=3.0)
    # Shipped batch sizes (global 8, generate 2); the classifier-free-guidance dropout draws one decision per item of
    # each worker's batch from a generator every worker holds in the same state, so 2 workers cannot reproduce a
    # 1-worker run's draws: it is off for the comparison.
    overrides = [
        "solver=musicgen/debug",
        "device=cpu",
        "optim.epochs=1",
        "optim.updates_per_epoch=3",
        "dataset.valid.num_samples=8",
        "dataset.evaluate.num_samples=4",
        "classifier_free_guidance.training_dropout=0",
    ] + [f"datasource.{split}={data / split}" for split in ("train", "valid", "evaluate", "generate")]
    one, two = tmp_path / "one", tmp_path / "two"
    _dora(["run", *overrides], _env(one), tmp_path)
    proc = _dora(["run", "-d", "--ddp_workers", "2", *overrides], _env(two), tmp_path)
    assert re.search(r"Batch size: 4 per worker x 2 worker\(s\) = 8 per update", proc.stderr)
    a, b = load_checkpoint(_xp(one) / "checkpoint.th"), load_checkpoint(_xp(two) / "checkpoint.th")
    _assert_weights_match(a, b, "musicgen/debug")
    for stage in ("train", "valid"):
        assert b["history"][0][stage]["ce"] == pytest.approx(a["history"][0][stage]["ce"], rel=1e-3)
    logs = [(_xp(two) / f"solver.log.{rank}").read_text() for rank in range(2)]
    assert "Checkpoint saved to" in logs[0] and "Checkpoint saved to" not in logs[1]


def _tiny_env(tmp_path: Path, dora_dir: Path, **extra: str) -> dict[str, str]:
    conf = tmp_path / "conf"
    if not conf.exists():
        shutil.copytree(PLUGIN / "conf", conf)
    hook = CORE_TESTS / "fault_hook"
    return _env(
        dora_dir,
        AUDIOCRAFT_EXTRA_CONFIG=str(conf),
        AUDIOCRAFT_EXTRA_SOLVERS="tiny=meta_tiny_solver:TinySolver",
        PYTHONPATH=os.pathsep.join([str(PLUGIN), str(hook), os.environ.get("PYTHONPATH", "")]),
        **extra,
    )


@pytest.mark.slow
@pytest.mark.integration
def test_a_killed_worker_stops_the_other_with_a_clear_error_and_the_run_resumes(tmp_path):
    args = ["solver=tiny", "checkpoint.save_every_updates=2"]
    reference = tmp_path / "reference"
    _dora(["run", "-d", "--ddp_workers", "2", *args], _tiny_env(tmp_path, reference), tmp_path)

    # Two ranks started independently (as SLURM starts tasks); rank 1 dies inside its 7th update (epoch 2, the
    # 3rd of 4 updates), after the mid-epoch checkpoint of update 2.
    dora_dir = tmp_path / "killed"
    env = _tiny_env(
        tmp_path,
        dora_dir,
        WORLD_SIZE="2",
        MASTER_ADDR="127.0.0.1",
        AUDIOCRAFT_TEST_FAULT="audiocraft.solvers.base:StandardSolver.backward_and_update@7#1",
    )
    ranks = [
        subprocess.Popen(
            [sys.executable, "-m", "dora", "run", "--", *args],
            cwd=tmp_path,
            text=True,
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for rank in range(2)
    ]
    out1, _ = ranks[1].communicate(timeout=600)
    assert ranks[1].returncode == -signal.SIGKILL, out1[-3000:]
    died = time.time()
    out0, _ = ranks[0].communicate(timeout=300)
    waited = time.time() - died
    print(f"rank 0 stopped {waited:.1f} s after rank 1 was killed")
    assert ranks[0].returncode != 0
    folder = _xp(dora_dir)
    assert re.search(
        r"WorkerLostError: worker 0/2: another training worker stopped during epoch 2 .*Run the same "
        rf"command again to resume from the last checkpoint, {re.escape(str(folder))}/checkpoint\.th",
        out0,
    ), out0[-3000:]
    assert waited < 120
    assert load_checkpoint(folder / "checkpoint.th")["train_position"]["updates"] == 2

    resumed = _dora(["run", "-d", "--ddp_workers", "2", *args], _tiny_env(tmp_path, dora_dir), tmp_path)
    assert "Resuming epoch 2 after its update 2" in resumed.stderr
    assert "Resuming epoch 2 after its update 2" in (folder / "solver.log.1").read_text()  # rank 1 read it too
    assert_same_training(load_checkpoint(_xp(reference) / "checkpoint.th"), load_checkpoint(folder / "checkpoint.th"))
