"""Benchmark of ``MusicGen.generate`` (10 s of audio) against upstream AudioCraft 1.3.0, same weights (standalone).

The model: the LM of ``benchmarks/lm_generate.py`` (dim 512, 8 heads, 8 layers, 4 codebooks x 2048, delay pattern,
LUT text conditioner on cross-attention; its ``CONFIG`` and ``_build``) over the ``encodec_musicgen_32khz``
compression model (``benchmarks/encodec_rtf.py``'s ``CONFIG``: non-causal SEANet, 32 kHz, 50 frames/s), random
weights built once by our builders and loaded strictly by both sides. ``MusicGen(name, compression_model, lm,
max_duration=30)``, ``set_generation_params(duration=10)`` (top-k 250 sampling, CFG 3.0 in one batched pass), one
description, 2 torch threads. The timed call is ``generate([description])``: 500 frames (503 LM steps) and the
decode of 10 s of audio.

Each run is a fresh process (one warm-up generation of 1 s first); runs alternate ours / upstream ``--runs`` times
and the table gives the median wall time of each side, the median of the paired ratios (upstream time / ours) and
their spread, for wall time and for the CPU time of the worker process (less sensitive to other processes on a
loaded machine). With the same global seed both sides draw the same tokens (reported).

Ours also reports the streamed output (``model.stream(model.generate, ..., chunk_duration=1.0)``): time to the first
audio chunk, total wall time, and the real-time factor (wall time / 10 s; below 1 means the audio is produced faster
than it plays), with the re-decoding streamer that the non-causal codec needs.

Run: python benchmarks/musicgen_generate.py [--runs 3] [--seconds 10] [--threads 2] [--only ours]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OURS_PYTHON = ROOT / ".venv" / "bin" / "python"
UPSTREAM_PYTHON = ROOT / ".venvs" / "upstream-1.3" / "bin" / "python"
DESCRIPTION = "happy rock song with electric guitars"


def _build(lm_weights: Path, codec_weights: Path):
    import torch
    from omegaconf import OmegaConf

    sys.path.insert(0, str(HERE))
    import encodec_rtf
    import lm_generate

    from audiocraft.models import MusicGen, builders

    lm = lm_generate._build(lm_weights)
    codec = builders.get_compression_model(OmegaConf.create(encodec_rtf.CONFIG))
    codec.load_state_dict(torch.load(codec_weights, map_location="cpu", weights_only=True), strict=True)
    return MusicGen("bench", codec.eval(), lm, max_duration=30)


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    model = _build(Path(args.lm_weights), Path(args.codec_weights))
    model.set_generation_params(duration=1.0)
    torch.manual_seed(1)
    model.generate([DESCRIPTION])  # warm-up
    model.set_generation_params(duration=args.seconds)
    torch.manual_seed(2)
    start, cpu_start = time.perf_counter(), time.process_time()
    audio, tokens = model.generate([DESCRIPTION], return_tokens=True)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    result = {"seconds": seconds, "cpu_seconds": cpu, "audio_shape": list(audio.shape), "tokens_sum": int(tokens.sum())}
    if args.stream:
        torch.manual_seed(2)
        start = time.perf_counter()
        first = None
        chunks = []
        for chunk in model.stream(model.generate, [DESCRIPTION], chunk_duration=1.0):
            first = time.perf_counter() - start if first is None else first
            chunks.append(chunk)
        total = time.perf_counter() - start
        streamed = torch.cat(chunks, dim=-1)
        result.update(
            stream_seconds=total,
            first_chunk_seconds=first,
            stream_rtf=total / args.seconds,
            stream_max_diff=float((streamed - audio).abs().max()),
            chunks=len(chunks),
        )
    print(json.dumps(result))


def _make_weights(lm_path: Path, codec_path: Path) -> None:
    code = (
        "import sys, torch\n"
        "from omegaconf import OmegaConf\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "import encodec_rtf, lm_generate\n"
        "from audiocraft.models import builders\n"
        "torch.manual_seed(0)\n"
        f"torch.save(builders.get_lm_model(OmegaConf.create(lm_generate.CONFIG)).state_dict(), {str(lm_path)!r})\n"
        "codec = builders.get_compression_model(OmegaConf.create(encodec_rtf.CONFIG))\n"
        f"torch.save(codec.state_dict(), {str(codec_path)!r})\n"
    )
    subprocess.run([str(OURS_PYTHON), "-c", code], check=True)


def _run(python: Path, weights: tuple[Path, Path], args: argparse.Namespace, stream: bool) -> dict:
    cmd = [
        str(python),
        "-W",
        "ignore",
        __file__,
        "--worker",
        "--lm-weights",
        str(weights[0]),
        "--codec-weights",
        str(weights[1]),
        "--seconds",
        str(args.seconds),
        "--threads",
        str(args.threads),
    ]
    if stream:
        cmd.append("--stream")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if out.returncode:
        raise RuntimeError(f"worker failed: {' '.join(cmd)}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["ours", "upstream"])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lm-weights", help=argparse.SUPPRESS)
    parser.add_argument("--codec-weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    sides = {"ours": OURS_PYTHON, "upstream": UPSTREAM_PYTHON}
    if not UPSTREAM_PYTHON.exists():
        print(f"no upstream venv at {UPSTREAM_PYTHON} (bash benchmarks/upstream/setup_upstream.sh): ours only")
        sides.pop("upstream")
    if args.only:
        sides = {args.only: sides[args.only]}
    print(
        f"MusicGen.generate, {args.seconds:g} s of audio: LM 512/8 heads/8 layers over encodec_musicgen_32khz, "
        f"top-k 250, CFG 3.0, {args.threads} threads, {args.runs} paired runs (load average before: "
        f"{os.getloadavg()[0]:.1f})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        weights = (Path(tmp) / "lm.pt", Path(tmp) / "codec.pt")
        _make_weights(*weights)
        results: dict[str, list[dict]] = {name: [] for name in sides}
        for run in range(args.runs):
            for name, python in sides.items():
                results[name].append(_run(python, weights, args, stream=name == "ours"))
            line = "  ".join(f"{n} {r[-1]['seconds']:6.1f} s" for n, r in results.items())
            print(f"run {run + 1}: {line}  (load {os.getloadavg()[0]:.1f})", flush=True)
        for name, res in results.items():
            times = [r["seconds"] for r in res]
            cpu = statistics.median(r["cpu_seconds"] for r in res)
            print(
                f"{name:8s}: median {statistics.median(times):6.1f} s (min {min(times):.1f}, max {max(times):.1f}),"
                f" real-time factor {statistics.median(times) / args.seconds:.2f}, CPU time {cpu:.1f} s"
            )
        if "ours" in results:
            ours = results["ours"]
            wall = statistics.median(r["stream_seconds"] for r in ours)
            first = statistics.median(r["first_chunk_seconds"] for r in ours)
            rtf = statistics.median(r["stream_rtf"] for r in ours)
            print(
                f"ours streamed (1 s chunks): median wall {wall:.1f} s, first chunk after {first:.1f} s, real-time "
                f"factor {rtf:.2f}, max |streamed - one-shot| {max(r['stream_max_diff'] for r in ours):.1e}"
            )
        if len(results) == 2:
            ratios = [u["seconds"] / o["seconds"] for o, u in zip(results["ours"], results["upstream"])]
            same = all(o["tokens_sum"] == u["tokens_sum"] for o, u in zip(results["ours"], results["upstream"]))
            cpu_ratios = [u["cpu_seconds"] / o["cpu_seconds"] for o, u in zip(results["ours"], results["upstream"])]
            print(
                f"speed-up upstream time / ours: median {statistics.median(ratios):.2f}x "
                f"(min {min(ratios):.2f}, max {max(ratios):.2f}); CPU time: median "
                f"{statistics.median(cpu_ratios):.2f}x (min {min(cpu_ratios):.2f}, max {max(cpu_ratios):.2f}); "
                f"same tokens: {same}"
            )
    print("reproduce: python benchmarks/musicgen_generate.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
