"""Segment throughput of upstream AudioCraft 1.3.0's AudioDataset next to ours, on the same files (benchmark script).

Measures what issue 3 asks for: 1 s segments at 32 kHz from a manifest of 100 files of 30 s (wav, flac and mp3 in
turn), ``AudioDataset.__getitem__`` with num_workers=0 and ``torch.set_num_threads(1)``, in segments per second.

The audio files are made by ``make_folder`` of ``benchmarks/data_segment_throughput.py`` (our benchmark), run with our
development venv, so both benchmarks read the same bytes. One JSON-lines manifest per format is written, and each
implementation opens it with its own ``AudioDataset.from_meta(manifest, segment_duration=1, sample_rate=32000,
channels=1, num_samples=N, shuffle=True, shuffle_seed=0)``. The timing loop is the one of our benchmark: 5 warm-up
items, then the best of 3 passes over items 0..N-1, inside a fresh worker process per measurement. The worker is
this same file, run by either interpreter: ``import audiocraft.data.audio_dataset`` resolves to upstream 1.3.0 in
the upstream venv and to audiocraft-data in ours, and the worker prints which file it loaded. Workers of the two
implementations alternate, ``--runs`` times each, so a change of load on the shared machine hits both alike;
the table gives the median and the spread (min-max) of the runs.

Setup once: ``bash benchmarks/upstream/setup_upstream.sh`` (makes .venvs/upstream-1.3).
Run: .venvs/upstream-1.3/bin/python benchmarks/upstream/bench_dataset_upstream.py [--num-files 100] [--duration 30]
     [--segments 300] [--formats wav flac mp3] [--runs 2] [--data-dir DIR (kept; default: a temporary folder)]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OURS_PYTHON = REPO / ".venv" / "bin" / "python"
UPSTREAM_PYTHON = REPO / ".venvs" / "upstream-1.3" / "bin" / "python"

# Run by our venv: our benchmark's generator writes <root>/<fmt>/file0000.<fmt>... and we list them in a manifest.
GENERATE = """
import json, sys
from pathlib import Path
sys.path.insert(0, {bench_dir!r})
from data_segment_throughput import make_folder
root, fmt = Path({root!r}), {fmt!r}
metas = make_folder(root, fmt, {num_files}, {duration}, {sample_rate})
with open(root / fmt / "data.jsonl", "w") as out:
    for m in metas:
        out.write(json.dumps({{"path": m.path, "duration": m.duration, "sample_rate": m.sample_rate,
                              "amplitude": None, "weight": None, "info_path": None}}) + "\\n")
"""


def worker(manifest: str, segments: int, sample_rate: int, passes: int) -> None:
    """Time ``AudioDataset`` of whichever ``audiocraft`` this interpreter imports; print one JSON line."""
    import torch

    torch.set_num_threads(1)
    from audiocraft.data import audio_dataset

    ds = audio_dataset.AudioDataset.from_meta(
        manifest,
        segment_duration=1.0,
        sample_rate=sample_rate,
        channels=1,
        num_samples=segments,
        shuffle=True,
        shuffle_seed=0,
    )
    ds.start_epoch(0)
    for i in range(min(5, segments)):  # warm-up (imports, page cache), as our benchmark does
        ds[i]
    wav = ds[0]
    assert tuple(wav.shape) == (1, sample_rate), f"unexpected segment shape {tuple(wav.shape)}"
    best = 0.0
    for _ in range(passes):
        start = time.perf_counter()
        for i in range(segments):
            ds[i]
        best = max(best, segments / (time.perf_counter() - start))
    print(json.dumps({"module": audio_dataset.__file__, "segments_per_s": best}))


def measure(python: Path, manifest: Path, args: argparse.Namespace) -> tuple[float, str]:
    cmd = [
        str(python),
        __file__,
        "--worker",
        str(manifest),
        "--segments",
        str(args.segments),
        "--sample-rate",
        str(args.sample_rate),
        "--passes",
        str(args.passes),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if proc.returncode != 0:
        raise RuntimeError(f"worker {python} failed on {manifest}:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["segments_per_s"], result["module"]


def generate(root: Path, fmt: str, args: argparse.Namespace) -> Path:
    manifest = root / fmt / "data.jsonl"
    if manifest.exists() and sum(1 for _ in open(manifest)) == args.num_files:
        return manifest
    shutil.rmtree(root / fmt, ignore_errors=True)
    code = GENERATE.format(
        bench_dir=str(REPO / "benchmarks"),
        root=str(root),
        fmt=fmt,
        num_files=args.num_files,
        duration=args.duration,
        sample_rate=args.sample_rate,
    )
    subprocess.run([str(args.ours_python), "-c", code], check=True, cwd=REPO)
    return manifest


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} ({min(values):.1f}-{max(values):.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-files", type=int, default=100)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per file")
    parser.add_argument("--segments", type=int, default=300, help="segments read per pass")
    parser.add_argument("--formats", nargs="+", default=["wav", "flac", "mp3"])
    parser.add_argument("--sample-rate", type=int, default=32000)
    parser.add_argument("--runs", type=int, default=2, help="worker processes per implementation and format")
    parser.add_argument("--passes", type=int, default=3, help="timed passes per worker (the best is kept)")
    parser.add_argument("--data-dir", type=Path, help="where the audio and manifests go (kept, reused if complete)")
    parser.add_argument("--ours-python", type=Path, default=OURS_PYTHON)
    parser.add_argument("--upstream-python", type=Path, default=UPSTREAM_PYTHON)
    parser.add_argument("--worker", metavar="MANIFEST", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.segments, args.sample_rate, args.passes)
        return 0
    for python in (args.ours_python, args.upstream_python):
        if not python.exists():
            print(f"missing interpreter {python}; run: bash benchmarks/upstream/setup_upstream.sh", file=sys.stderr)
            return 1
    cmd = "python benchmarks/upstream/bench_dataset_upstream.py " + " ".join(sys.argv[1:])
    tmp = None if args.data_dir else tempfile.TemporaryDirectory(prefix="bench_dataset_")
    root = args.data_dir or Path(tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    print(
        f"# {args.num_files} files x {args.duration:g} s, {args.sample_rate} Hz mono; 1 s segments, num_workers=0, "
        f"torch threads=1, {args.segments} segments per pass, best of {args.passes} passes per run, "
        f"{args.runs} runs per implementation"
    )
    print(f"{'format':6} {'audiocraft-data':>24} {'upstream 1.3.0':>24} {'ratio':>6}   (segments/s: median (min-max))")
    modules = set()
    try:
        for fmt in args.formats:
            manifest = generate(root, fmt, args)
            runs: dict[str, list[float]] = {"ours": [], "upstream": []}
            errors: dict[str, str] = {}
            for _ in range(args.runs):
                for name, python in (("upstream", args.upstream_python), ("ours", args.ours_python)):
                    if name in errors:
                        continue
                    try:
                        speed, module = measure(python, manifest, args)
                    except RuntimeError as exc:
                        errors[name] = str(exc).strip().splitlines()[-1]
                        continue
                    runs[name].append(speed)
                    modules.add(module)
            ours = spread(runs["ours"]) if runs["ours"] else "failed"
            up = spread(runs["upstream"]) if runs["upstream"] else "failed"
            ratio = (
                f"{statistics.median(runs['ours']) / statistics.median(runs['upstream']):5.2f}x"
                if runs["ours"] and runs["upstream"]
                else "   n/a"
            )
            print(f"{fmt:6} {ours:>24} {up:>24} {ratio:>6}")
            for name, err in errors.items():
                print(f"       {name} failed on {fmt}: {err}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    print("\nimplementations: " + ", ".join(sorted(modules)))
    print(f"reproduce: .venvs/upstream-1.3/bin/{cmd}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
