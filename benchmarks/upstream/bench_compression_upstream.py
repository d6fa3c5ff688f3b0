"""Compression (EnCodec) training speed of upstream AudioCraft 1.3.0 next to ours, in updates per second (benchmark).

Measures what issue 6 asks for: training updates per second of ``solver=compression/debug`` and of a small
``encodec_base_24khz``-shaped configuration (batch 8, 1 s segments) on 2 CPU threads, with data loading included
(batches from the train loader, ``dataset.num_workers=0``) and excluded (the first batch re-used, as
``benchmark_no_load=true`` does), after a few warm-up updates (the first one runs the RVQ k-means init).

The timing is the one of our ``benchmarks/train_compression.py``, with the same Hydra overrides: the solver of a Dora
XP (``audiocraft.train.main.get_xp(overrides)``, ``init_seed_and_system``, ``get_solver``), then inside
``solver.run_stage("train", ...)``: ``run_step(idx, batch, {})`` followed by ``ema.step()``, exactly what the
solvers' ``common_train_valid`` runs per update. The worker is this same file run by either interpreter: in the
upstream venv (``bash benchmarks/upstream/setup_upstream.sh``) ``audiocraft`` is upstream 1.3.0 with its own
``config/`` (taken from its PyPI sdist), in .venv it is this repository. Both train on the same example dataset,
made by ``python -m audiocraft.data.example`` (our generator) and given to both through ``datasource.*`` overrides
with manifests whose paths are absolute (upstream resolves relative paths against the working directory).
Workers alternate (upstream, ours) ``--runs`` times per configuration; the table gives the median and the spread.

``--mode dora`` times the real command line instead: ``dora run <same overrides> optim.epochs=1
optim.updates_per_epoch=W+N+1 benchmark_no_load=false|true`` with a progress line per update (flashy's
LogProgress, used by both); the rate is taken from the arrival times of the lines of updates W and W+N, so startup,
k-means init and warm-up are excluded, and the run is stopped once the train stage has printed its last line. It
also reports the CPU seconds per update of the run's process tree and its peak resident memory, and the load
average at the start and end of each run (``dora_timing.py``, shared with ``bench_musicgen_train_upstream.py``).
The ratio column is the median (min-max) of the per-pair ratios (run i of ours / run i of upstream).

Config differences that remain, on purpose: each side's own ``solver=compression/debug`` (ours trains with
lr 3e-3 instead of 3e-4 and makes smaller valid/evaluate sets; neither changes the cost of a train update), except
``rvq.q_dropout=true`` forced on both (upstream's value; ours defaults to false, which costs more per step).
Both use ``dataset.num_workers=0`` (upstream's debug default is 10 workers; this machine has 2 cores).

Run: .venvs/upstream-1.3/bin/python benchmarks/upstream/bench_compression_upstream.py [--configs debug base_24khz]
     [--updates 20] [--warmup 3] [--threads 2] [--runs 2] [--mode step|dora] [--only ours|upstream]
     [--data-dir DIR (kept; default: a temporary folder)]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import typing as tp
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dora_timing  # noqa: E402  (the shared helpers next to this file)
from dora_timing import spread  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OURS_PYTHON = REPO / ".venv" / "bin" / "python"
UPSTREAM_PYTHON = REPO / ".venvs" / "upstream-1.3" / "bin" / "python"

# The configurations of benchmarks/train_compression.py, plus the settings its build_solver adds.
# Upstream's compression/debug trains with quantizer dropout (a random bandwidth per step, from
# encodec_base_causal); ours turns it off, so the debug rows force upstream's value on both sides.
CONFIGS: dict[str, list[str]] = {
    "debug": ["solver=compression/debug", "rvq.q_dropout=true"],
    "base_24khz": [
        "solver=compression/encodec_base_24khz",
        "dset=audio/example",
        "dataset.batch_size=8",
        "dataset.segment_duration=1",
    ],
}
COMMON = [
    "device=cpu",
    "logging.log_updates=1000",
    "dataset.train.num_samples=100000",
    "optim.ema.use=true",
    "dataset.num_workers=0",
]


def time_updates(solver: tp.Any, updates: int, warmup: int, no_load: bool) -> float:
    """Updates per second of the solver's train step after ``warmup`` updates (as train_compression.py)."""
    import torch

    result: dict[str, float] = {}

    def _stage() -> dict:
        solver.model.train()
        # what both CompressionSolver.train() set up before common_train_valid (upstream creates it only there)
        solver.rng = torch.Generator()
        solver.rng.manual_seed(1234 + solver.epoch)
        iterator = iter(solver.dataloaders["train"])
        first = next(iterator)
        t0 = time.perf_counter()
        for idx in range(warmup + updates):
            if idx == warmup:
                t0 = time.perf_counter()
            batch = first if (no_load or idx == 0) else next(iterator)
            solver.run_step(idx, batch, {})
            if solver.ema is not None:
                solver.ema.step()
        result["ups"] = updates / (time.perf_counter() - t0)
        return {}

    torch.manual_seed(0)
    solver._pending_metrics.pop("train", None)  # flashy refuses a second "train" stage in one epoch
    solver.run_stage("train", _stage)
    return result["ups"]


def worker(config: str, data_dir: str, updates: int, warmup: int, threads: int) -> None:
    """Build the solver of ``config`` with whichever ``audiocraft`` this interpreter imports; print one JSON line."""
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    os.environ.setdefault("USER", "bench")  # upstream's dora.dir interpolates ${oc.env:USER}
    os.environ["AUDIOCRAFT_DORA_DIR"] = tempfile.mkdtemp(prefix="bench_compression_xps_")
    os.environ.setdefault("DORA_PACKAGE", "audiocraft")
    torch.set_num_threads(threads)
    from audiocraft import train

    overrides = CONFIGS[config] + COMMON + [f"num_threads={threads}"]
    overrides += dora_timing.datasource_overrides(Path(data_dir))
    xp = train.main.get_xp(overrides)
    with contextlib.ExitStack() as stack:
        stack.enter_context(xp.enter())
        train.init_seed_and_system(xp.cfg)
        solver = train.get_solver(xp.cfg)
        params = sum(p.numel() for p in solver.model.parameters())
        included = time_updates(solver, updates, warmup, no_load=False)
        excluded = time_updates(solver, updates, warmup, no_load=True)
    print(
        json.dumps(
            {
                "module": type(solver).__module__
                + " @ "
                + str(Path(sys.modules[type(solver).__module__].__file__).parent.parent),
                "params": params,
                "threads": torch.get_num_threads(),
                "sample_rate": xp.cfg.sample_rate,
                "batch_size": xp.cfg.dataset.batch_size,
                "included": included,
                "excluded": excluded,
            }
        )
    )


def measure(python: Path, config: str, manifests: Path, args: argparse.Namespace) -> dict:
    cmd = [
        str(python),
        __file__,
        "--worker",
        config,
        "--data-dir",
        str(manifests),
        "--updates",
        str(args.updates),
        "--warmup",
        str(args.warmup),
        "--threads",
        str(args.threads),
    ]
    env = dict(
        os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads), PYTHONWARNINGS="ignore"
    )
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if proc.returncode != 0:
        raise RuntimeError(f"worker {python} failed on {config}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def dora_measure(python: Path, config: str, manifests: Path, args: argparse.Namespace) -> dict:
    """Updates/s, CPU s/update and peak RSS of real ``dora run`` commands of ``config`` (see dora_timing.py)."""
    total = args.warmup + args.updates + 1
    overrides = (
        CONFIGS[config]
        + COMMON
        + [
            f"num_threads={args.threads}",
            "optim.epochs=1",
            f"optim.updates_per_epoch={total}",
            f"logging.log_updates={total}",
        ]
        + dora_timing.datasource_overrides(manifests)
    )
    result: dict = {}
    for key, no_load in (("included", "false"), ("excluded", "true")):
        run = dora_timing.time_dora_run(
            python, overrides + [f"benchmark_no_load={no_load}"], args.warmup, args.warmup + args.updates, args.threads
        )
        result[key] = run["ups"]
        result[f"{key}_cpu"] = run["cpu_per_update"]
        result[f"{key}_rss"] = run["peak_rss_mib"]
        result[f"{key}_load"] = (run["load_start"], run["load_end"])
    result.update(module=str(python), params=0, sample_rate="?", batch_size="?")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--updates", type=int, default=20, help="timed updates per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed updates before them")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2, help="worker processes per implementation and config")
    parser.add_argument("--data-dir", type=Path, help="where the example dataset goes (kept, reused)")
    parser.add_argument("--ours-python", type=Path, default=OURS_PYTHON)
    parser.add_argument("--upstream-python", type=Path, default=UPSTREAM_PYTHON)
    parser.add_argument(
        "--mode",
        choices=["step", "dora"],
        default="step",
        help="step: time run_step in-process as train_compression.py; dora: time a real `dora run`",
    )
    parser.add_argument("--only", choices=["ours", "upstream"], help="measure one implementation only")
    parser.add_argument("--worker", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, str(args.data_dir), args.updates, args.warmup, args.threads)
        return 0
    impls = dora_timing.implementations(args.ours_python, args.upstream_python, args.only, args.mode == "dora")
    if impls is None:
        return 1
    cmd = "python benchmarks/upstream/bench_compression_upstream.py " + " ".join(sys.argv[1:])
    tmp = None if args.data_dir else tempfile.TemporaryDirectory(prefix="bench_compression_")
    root = (args.data_dir or Path(tmp.name)).resolve()
    print(
        f"# CompressionSolver training on CPU ({args.mode} mode), {args.threads} threads, {args.updates} timed "
        f"updates after {args.warmup} warm-up, {args.runs} runs per implementation (updates/s: median (min-max))"
    )
    rows, notes = [], []
    try:
        manifests = dora_timing.make_example(root, args.ours_python, REPO)
        for config in args.configs:
            results: dict[str, list[dict]] = {name: [] for name, _ in impls}
            for _ in range(args.runs):
                for name, python in impls:
                    try:
                        how = measure if args.mode == "step" else dora_measure
                        results[name].append(how(python, config, manifests, args))
                        print(
                            f"  {config} {name}: included {results[name][-1]['included']:.3f}, excluded "
                            f"{results[name][-1]['excluded']:.3f} updates/s",
                            flush=True,
                        )
                    except RuntimeError as exc:
                        notes.append(f"{name} {config}: {exc}")
            for name, runs in results.items():
                if runs and args.mode == "step":
                    notes.append(
                        f"{name} {config}: {runs[0]['module']}, {runs[0]['params']:,} parameters, "
                        f"{runs[0]['sample_rate']} Hz, batch {runs[0]['batch_size']}"
                    )
            for key, label in (("included", "included"), ("excluded", "excluded (benchmark_no_load)")):
                cells = {n: [r[key] for r in runs] for n, runs in results.items()}
                ratio = "n/a"
                if cells.get("ours") and cells.get("upstream"):
                    ratio = spread(dora_timing.paired_ratios(cells["ours"], cells["upstream"]), "{:.2f}x")
                rows.append(
                    [
                        config,
                        label,
                        spread(cells["ours"]) if cells.get("ours") else "-",
                        spread(cells["upstream"]) if cells.get("upstream") else "-",
                        ratio,
                    ]
                )
                if args.mode == "dora":
                    for name, runs in results.items():
                        if runs:
                            loads = [f"{a:.1f}-{b:.1f}" for a, b in (r[f"{key}_load"] for r in runs)]
                            notes.append(
                                f"{name} {config} {label}: CPU s/update {spread([r[f'{key}_cpu'] for r in runs])}, "
                                f"peak RSS of the run's processes {spread([r[f'{key}_rss'] for r in runs], '{:.0f}')}"
                                f" MiB, load (start-end) {', '.join(loads)}"
                            )
    finally:
        if tmp is not None:
            tmp.cleanup()
    header = ["config", "data loading", "audiocraft (ours)", "upstream 1.3.0", "ours/upstream per pair"]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    print("\n" + "\n".join(notes))
    print(f"reproduce: .venvs/upstream-1.3/bin/{cmd}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
