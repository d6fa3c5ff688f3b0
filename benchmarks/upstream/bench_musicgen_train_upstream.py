"""MusicGen (LM) training speed of upstream AudioCraft 1.3.0's MusicGenSolver next to ours, through ``dora run``.

Measures what issue 14's Performance paragraph asks for: training updates per second of the debug MusicGen and of
an xsmall-scale LM with the delay pattern of the released models, on 2 CPU threads, with the audio codes encoded on
the fly by the frozen compression model and with the codes read from the code cache, ours against upstream 1.3.0
on the same configuration and data, peak memory beside it.

Each measurement is a real ``dora run`` (``<venv>/bin/dora``: upstream's in ``.venvs/upstream-1.3``, made by
``bash benchmarks/upstream/setup_upstream.sh``; ours in ``.venv``) timed by ``dora_timing.time_dora_run`` (shared
with ``bench_compression_upstream.py``): the rate between the progress lines of updates W and W+N (startup, model
build and warm-up excluded, data loading included), the CPU seconds per update of the run's process tree, its peak
resident memory (sum of the processes' ``VmHWM``) and the load average. Runs of the two implementations alternate,
``--runs`` pairs per configuration and mode; the table gives each side's median (min-max) and the median (min-max)
of the per-pair ratios ours / upstream.

- ``onthefly``: the train loader reads audio segments and the solver encodes them with the compression model at
  every step (``cache.path`` unset).
- ``cache``: a first run of the same command with ``cache.path=<dir> cache.write=true`` fills the code cache for
  the epoch (untimed; each side writes its own cache with its own code), then a run with ``cache.path=<dir>`` reads
  the codes from it (no audio decoding, no compression model call) and is timed. Upstream 1.3.0's
  ``CachedBatchLoader`` cannot read back its own cache (it asserts that the tuple of infos of each cached batch is a
  tensor): its cache rows fail and are reported as such.

Configurations (identical overrides on both sides; every key is upstream's):

- ``debug``: ``solver=musicgen/debug`` with the values of our debug config forced on both (upstream's uses
  T5-small, which needs a download): an xsmall LM (dim 64, 2 layers, 2 heads) over 4 x 400 codes of upstream's
  ``//pretrained/debug_compression_model`` (built in place by both), parallel pattern, a LUT conditioner on the
  description (noop tokenizer) on cross-attention, CFG dropout 0.2, batch 8, 2 s segments.
- ``xsmall``: the same conditioning and compression model under ``solver=musicgen/musicgen_base_32khz`` with
  ``model/lm/model_scale=xsmall``: the released models' delay pattern and optimizer (D-Adaptation Adam, cosine
  schedule), batch 4 of 10 s segments, no autocast (CPU).

Upstream needs one patch to build its LM at all in the benchmark venv, the one ``benchmarks/lm_generate.py``
applies: with ``transformer_lm.memory_efficient=true`` (the configs' value) it checks that xformers imports, even on
its default 'torch' backend, which calls ``scaled_dot_product_attention`` and uses from xformers only a marker
class and ``unbind`` (``torch.unbind``). The upstream runs get a ``sitecustomize.py`` (on ``PYTHONPATH``, written
to a temporary folder) that gives the venv's xformers stand-in these three names, and
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (its code cache reader calls ``torch.load`` without ``weights_only``, which
torch 2.6+ reads as ``True`` and which refuses the ``MusicInfo`` objects its writer pickled); nothing else changes.

Both use ``dataset.num_workers=0`` (2 cores) on the fly, and 1 with the cache (upstream's cache loader reads the
cached batches with a pool of ``dataset.num_workers`` threads and refuses 0; ours clamps it to 1), and the example
dataset written by our ``audiocraft.data.example`` (clips with JSON sidecars holding their descriptions), given to
both with absolute-path manifests.

Run: .venvs/upstream-1.3/bin/python benchmarks/upstream/bench_musicgen_train_upstream.py [--configs debug xsmall]
     [--modes onthefly cache] [--updates 20] [--warmup 3] [--threads 2] [--runs 2] [--only ours|upstream]
     [--data-dir DIR (kept; default: a temporary folder)]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dora_timing  # noqa: E402  (the shared helpers next to this file)
from dora_timing import spread  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OURS_PYTHON = REPO / ".venv" / "bin" / "python"
UPSTREAM_PYTHON = REPO / ".venvs" / "upstream-1.3" / "bin" / "python"

# Conditioning of our musicgen/debug, forced on both sides (upstream's debug config asks for t5-small).
CONDITIONING = [
    "conditioners.description.model=lut",
    "++conditioners.description.lut={n_bins: 1024, dim: 64, tokenizer: noop}",
    "classifier_free_guidance.training_dropout=0.2",
    "attribute_dropout={}",
    "fuser.cross=[description]",
    "fuser.prepend=[]",
    "fuser.sum=[]",
]
CONFIGS: dict[str, list[str]] = {
    "debug": [
        "solver=musicgen/debug",
        "codebooks_pattern.modeling=parallel",
        "dataset.batch_size=8",
        "dataset.segment_duration=2",
    ],
    "xsmall": [
        "solver=musicgen/musicgen_base_32khz",
        "model/lm/model_scale=xsmall",
        "dset=audio/example",
        "compression_model_checkpoint=//pretrained/debug_compression_model",
        "transformer_lm.n_q=4",
        "transformer_lm.card=400",
        "autocast=false",
        "fsdp.use=false",
        "deadlock.use=false",
        "optim.ema.device=cpu",
        "dataset.batch_size=4",
        "dataset.segment_duration=10",
        "schedule.cosine.warmup=1",  # 4000 in the config: longer than the timed epoch (ours refuses that)
    ],
}
COMMON = [
    "device=cpu",
    "dataset.train.num_samples=100000",
    "logging.log_tensorboard=false",
    "optim.epochs=1",
]


# Imported at the start of the upstream `dora run` processes (see the module docstring).
_UPSTREAM_SITECUSTOMIZE = """
import torch
import xformers.ops

xformers.ops.LowerTriangularMask = type("LowerTriangularMask", (), {})
xformers.ops.memory_efficient_attention = None  # only imported by the check; the 'torch' backend never calls it
xformers.ops.unbind = torch.unbind
"""


def upstream_env(folder: Path) -> dict[str, str]:
    """Environment additions of the upstream runs: the xformers names of ``_UPSTREAM_SITECUSTOMIZE``."""
    (folder / "sitecustomize.py").write_text(_UPSTREAM_SITECUSTOMIZE)
    # Upstream's CachedBatchLoader calls torch.load(file, 'cpu'): on torch >= 2.6 that means weights_only=True, which
    # refuses the MusicInfo objects its own writer pickled. torch's switch for code written before 2.6:
    return {"PYTHONPATH": str(folder), "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}


def overrides(config: str, manifests: Path, total: int, threads: int, num_workers: int) -> list[str]:
    """The ``dora run`` overrides of ``config`` for one epoch of ``total`` updates, each one logged."""
    return (
        CONFIGS[config]
        + CONDITIONING
        + COMMON
        + [f"num_threads={threads}", f"optim.updates_per_epoch={total}", f"logging.log_updates={total}"]
        + [f"dataset.num_workers={num_workers}"]
        + dora_timing.datasource_overrides(manifests)
    )


def measure(
    python: Path, config: str, mode: str, manifests: Path, args: argparse.Namespace, env: dict[str, str]
) -> dict[str, float]:
    """One timed ``dora run`` of ``config`` in ``mode`` (``onthefly`` or ``cache``) with ``python``'s venv."""
    total = args.warmup + args.updates + 1
    # Upstream's CachedBatchLoader reads with a pool of dataset.num_workers threads and refuses 0.
    base = overrides(config, manifests, total, args.threads, num_workers=0 if mode == "onthefly" else 1)
    first, last = args.warmup, args.warmup + args.updates
    if mode == "onthefly":
        return dora_timing.time_dora_run(python, base, first, last, args.threads, extra_env=env)
    with tempfile.TemporaryDirectory(prefix="bench_musicgen_cache_") as cache:
        # Fill the cache for the whole epoch (the reading run needs every batch), then time the reading run.
        write = base + [f"cache.path={cache}", "cache.write=true"]
        dora_timing.time_dora_run(python, write, first, last, args.threads, until_summary=True, extra_env=env)
        return dora_timing.time_dora_run(
            python, base + [f"cache.path={cache}"], first, last, args.threads, extra_env=env
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--modes", nargs="+", default=["onthefly", "cache"], choices=["onthefly", "cache"])
    parser.add_argument("--updates", type=int, default=20, help="timed updates per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed updates before them")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2, help="runs per implementation, configuration and mode")
    parser.add_argument("--data-dir", type=Path, help="where the example dataset goes (kept, reused)")
    parser.add_argument("--ours-python", type=Path, default=OURS_PYTHON)
    parser.add_argument("--upstream-python", type=Path, default=UPSTREAM_PYTHON)
    parser.add_argument("--only", choices=["ours", "upstream"], help="measure one implementation only")
    args = parser.parse_args()
    impls = dora_timing.implementations(args.ours_python, args.upstream_python, args.only)
    if impls is None:
        return 1
    tmp = None if args.data_dir else tempfile.TemporaryDirectory(prefix="bench_musicgen_")
    root = (args.data_dir or Path(tmp.name)).resolve()
    print(
        f"# MusicGenSolver training through dora run on CPU, {args.threads} threads, {args.updates} timed updates "
        f"after {args.warmup} warm-up, {args.runs} alternating runs per implementation"
    )
    rows, notes = [], []
    try:
        manifests = dora_timing.make_example(root, args.ours_python, REPO)
        (root / "upstream_site").mkdir(exist_ok=True)
        envs = {"ours": {}, "upstream": upstream_env(root / "upstream_site")}
        for config in args.configs:
            for mode in args.modes:
                results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in impls}
                for _ in range(args.runs):
                    for name, python in impls:
                        try:
                            run = measure(python, config, mode, manifests, args, envs[name])
                        except RuntimeError as exc:
                            notes.append(f"{name} {config} {mode}: {exc}")
                            print(f"  {config} {mode} {name}: FAILED (see the notes)", flush=True)
                            continue
                        results[name].append(run)
                        print(
                            f"  {config} {mode} {name}: {run['ups']:.3f} updates/s, {run['cpu_per_update']:.3f} "
                            f"CPU s/update, peak RSS {run['peak_rss_mib']:.0f} MiB, load {run['load_start']:.1f}-"
                            f"{run['load_end']:.1f}",
                            flush=True,
                        )
                cells = {n: runs for n, runs in results.items() if runs}
                ratio = cpu_ratio = "n/a"
                if "ours" in cells and "upstream" in cells:
                    ups = {n: [r["ups"] for r in runs] for n, runs in cells.items()}
                    ratio = spread(dora_timing.paired_ratios(ups["ours"], ups["upstream"]), "{:.2f}x")
                    cpu = {n: [1 / r["cpu_per_update"] for r in runs] for n, runs in cells.items()}
                    cpu_ratio = spread(dora_timing.paired_ratios(cpu["ours"], cpu["upstream"]), "{:.2f}x")

                def cell(name: str, key: str, fmt: str = "{:.3f}", cells: dict = cells) -> str:
                    return spread([r[key] for r in cells[name]], fmt) if name in cells else "-"

                rows.append(
                    [
                        config,
                        mode,
                        cell("ours", "ups"),
                        cell("upstream", "ups"),
                        ratio,
                        cpu_ratio,
                        cell("ours", "peak_rss_mib", "{:.0f}"),
                        cell("upstream", "peak_rss_mib", "{:.0f}"),
                    ]
                )
                loads = [f"{r['load_start']:.1f}-{r['load_end']:.1f}" for runs in cells.values() for r in runs]
                notes.append(f"{config} {mode}: load average (start-end) of the runs {', '.join(loads)}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    header = [
        "config",
        "codes",
        "ours updates/s",
        "upstream updates/s",
        "ours/upstream per pair",
        "same, CPU time",
        "ours peak RSS MiB",
        "upstream peak RSS MiB",
    ]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    for row in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    print("\n" + "\n".join(notes))
    print(
        f"reproduce: .venvs/upstream-1.3/bin/python benchmarks/upstream/{Path(__file__).name} {' '.join(sys.argv[1:])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
