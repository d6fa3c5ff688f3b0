"""EnCodec inference speed against upstream AudioCraft 1.3.0 itself (standalone benchmark).

The ``encodec_musicgen_32khz`` architecture (SEANet 64 filters, ratios 8-5-4-4, 2-layer LSTM, 4 x 2048 RVQ), random
weights with initialised codebooks (speed does not depend on the values), 10 s of 32 kHz mono audio, 2 threads.

Two long-lived worker processes run this same file: one with ``.venvs/upstream-1.3/bin/python``, where
``import audiocraft`` is upstream 1.3.0 (``bash benchmarks/upstream/setup_upstream.sh`` makes that venv), one with
``.venv/bin/python`` (this repository). Each builds the model with its own ``builders.get_compression_model`` from
the same config and loads the same state dict (written once by our side, upstream's ``weight_g``/``weight_v``
layout, strict), reads the same input and runs ``encode`` then ``decode`` of its own codes under
``torch.no_grad()`` (how upstream's MusicGen calls it). The parent tells the two workers to run one repetition at a
time, alternating which goes first, so that a change of machine load hits both alike. It prints the median time of
each side, the median and min-max of the per-repetition ratios (upstream time / our time), each worker's peak
resident memory (``ru_maxrss``: import, model and the inference above), the CPU time (all threads) of each
encode + decode and its ratio, and the largest difference between the
two sides' codes and audio.

Also, ours only (upstream 1.3.0's SEANet has no streaming mode): the streaming decode latency of one 20 ms code
frame of the causal variant of the same architecture, after a warm-up.

Run: .venv/bin/python benchmarks/encodec_rtf.py [--seconds 10] [--repeats 7] [--threads 2] [--no-upstream]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OURS_PYTHON = REPO / ".venv" / "bin" / "python"
UPSTREAM_PYTHON = REPO / ".venvs" / "upstream-1.3" / "bin" / "python"

# The composed sections of upstream's solver=compression/encodec_musicgen_32khz (model encodec_large_nq4_s640).
CONFIG = {
    "device": "cpu",
    "sample_rate": 32000,
    "channels": 1,
    "compression_model": "encodec",
    "encodec": {
        "autoencoder": "seanet",
        "quantizer": "rvq",
        "sample_rate": "${sample_rate}",
        "channels": "${channels}",
        "causal": False,
        "renormalize": False,
    },
    "seanet": {
        "dimension": 128,
        "channels": "${channels}",
        "causal": "${encodec.causal}",
        "n_filters": 64,
        "n_residual_layers": 1,
        "ratios": [8, 5, 4, 4],
        "activation": "ELU",
        "activation_params": {"alpha": 1.0},
        "norm": "weight_norm",
        "norm_params": {},
        "kernel_size": 7,
        "residual_kernel_size": 3,
        "last_kernel_size": 7,
        "dilation_base": 2,
        "pad_mode": "constant",
        "true_skip": True,
        "compress": 2,
        "lstm": 2,
        "disable_norm_outer_blocks": 0,
        "decoder": {"trim_right_ratio": 1.0, "final_activation": None, "final_activation_params": None},
        "encoder": {},
    },
    "rvq": {
        "n_q": 4,
        "q_dropout": False,
        "bins": 2048,
        "decay": 0.99,
        "kmeans_init": True,
        "kmeans_iters": 50,
        "threshold_ema_dead_code": 2,
        "orthogonal_reg_weight": 0.0,
        "orthogonal_reg_active_codes_only": False,
    },
    "no_quant": {},
}


def build(causal: bool = False):
    """The model of ``CONFIG`` built by whichever ``audiocraft`` this interpreter imports."""
    import copy

    from omegaconf import OmegaConf

    from audiocraft.models import builders

    cfg = OmegaConf.create(copy.deepcopy(CONFIG))
    cfg.encodec.causal = causal
    return builders.get_compression_model(cfg)


def prepare(folder: Path, seconds: float) -> None:
    """Write the shared state dict (codebooks initialised by k-means on noise) and the input audio."""
    import torch

    torch.manual_seed(0)
    model = build().train()
    with torch.no_grad():
        # Initialise the codebooks by k-means on 3000 random latent frames: more than the 2048 codes, so that no
        # code is a duplicate of another (exact ties between duplicates could break either way at a 1e-7 difference).
        model.quantizer(torch.randn(1, model.quantizer.dimension, 3000), model.frame_rate)
    torch.save(model.state_dict(), folder / "state.pt")
    x = 0.1 * torch.randn(1, 1, int(32000 * seconds), generator=torch.Generator().manual_seed(1))
    torch.save(x, folder / "input.pt")


def worker(folder: Path, name: str, threads: int) -> None:
    """Serve ``run`` commands on stdin (one encode + one decode, timed), ``save`` and ``quit``; answer in JSON."""
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)
    import audiocraft.models

    model = build()
    model.load_state_dict(torch.load(folder / "state.pt", weights_only=True), strict=True)
    model.eval()
    x = torch.load(folder / "input.pt", weights_only=True)
    with torch.no_grad():  # warm-up
        codes = model.encode(x)[0]
        audio = model.decode(codes)
    print(json.dumps({"ready": str(Path(audiocraft.models.__file__).parent)}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "run":
            with torch.no_grad():
                start, cpu_start = time.perf_counter(), time.process_time()
                codes = model.encode(x)[0]
                middle = time.perf_counter()
                audio = model.decode(codes)
                end, cpu_end = time.perf_counter(), time.process_time()
            reply = {"encode": middle - start, "decode": end - middle, "cpu": cpu_end - cpu_start}
        elif command == "save":
            torch.save({"codes": codes, "audio": audio}, folder / f"out_{name}.pt")
            reply = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        else:
            break
        print(json.dumps(reply), flush=True)


def streaming_latency(seconds: float, frames: int, threads: int) -> tuple[float, float]:
    """Median and p90 seconds of ``decode`` of one code frame in streaming mode (ours, causal variant)."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(causal=True).train()
    with torch.no_grad():
        model(0.1 * torch.randn(1, 1, 32000 * 3))
    model.eval()
    x = 0.1 * torch.randn(1, 1, int(32000 * min(seconds, 4)), generator=torch.Generator().manual_seed(1))
    latencies = []
    with torch.no_grad():
        codes = model.encode(x)[0]
        with model.streaming():
            for i in range(min(frames, codes.shape[-1])):
                start = time.perf_counter()
                model.decode(codes[..., i : i + 1])
                latencies.append(time.perf_counter() - start)
    latencies = sorted(latencies[5:])  # warm-up
    return statistics.median(latencies), latencies[int(0.9 * len(latencies))]


class _Worker:
    def __init__(self, python: Path, folder: Path, name: str, threads: int) -> None:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONWARNINGS="ignore")
        self.proc = subprocess.Popen(
            [str(python), __file__, "--worker", name, "--folder", str(folder), "--threads", str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tempfile.gettempdir(),
        )
        self.path = self.ask(None)["ready"]

    def ask(self, command: str | None) -> dict:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.proc.args[0]} stopped (exit code {self.proc.wait()})")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait()


def _spread(values: list[float], fmt: str = "{:.3f}") -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=7, help="timed encode + decode per side")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stream-frames", type=int, default=100)
    parser.add_argument(
        "--stream-threads",
        type=int,
        default=1,
        help="threads for the one-frame streaming decode (tiny ops: 1 thread avoids OpenMP overhead)",
    )
    parser.add_argument("--no-upstream", action="store_true", help="time ours only")
    parser.add_argument("--ours-python", type=Path, default=OURS_PYTHON)
    parser.add_argument("--upstream-python", type=Path, default=UPSTREAM_PYTHON)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.folder, args.worker, args.threads)
        return 0
    sides = [("ours", args.ours_python)]
    if not args.no_upstream:
        if not args.upstream_python.exists():
            print(
                f"missing {args.upstream_python}: run `bash benchmarks/upstream/setup_upstream.sh` "
                "or pass --no-upstream",
                file=sys.stderr,
            )
            return 1
        sides.insert(0, ("upstream", args.upstream_python))
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="encodec_rtf_") as tmp:
        folder = Path(tmp)
        subprocess.run(
            [
                str(args.ours_python),
                "-c",
                f"import sys; sys.path.insert(0, {str(REPO / 'benchmarks')!r}); "
                f"import encodec_rtf; from pathlib import Path; "
                f"encodec_rtf.prepare(Path({tmp!r}), {args.seconds})",
            ],
            check=True,
        )
        workers = {name: _Worker(python, folder, name, args.threads) for name, python in sides}
        times: dict[str, dict[str, list[float]]] = {n: {"encode": [], "decode": [], "cpu": []} for n in workers}
        try:
            for repeat in range(args.repeats):
                order = list(workers) if repeat % 2 == 0 else list(reversed(workers))
                for name in order:
                    reply = workers[name].ask("run")
                    for op in ("encode", "decode", "cpu"):
                        times[name][op].append(reply[op])
            rss = {name: w.ask("save")["peak_rss_mib"] for name, w in workers.items()}
        finally:
            for w in workers.values():
                w.close()
        outs = {name: __import__("torch").load(folder / f"out_{name}.pt") for name in workers}
    load = max(load, os.getloadavg()[0])

    print(
        f"EnCodec encodec_musicgen_32khz, {args.seconds:g} s of 32 kHz mono, threads={args.threads}, "
        f"{args.repeats} alternating repetitions, torch.no_grad(); load average (1 min, max of start/end) {load:.1f}"
    )
    for name, w in workers.items():
        print(f"  {name}: audiocraft from {w.path}")
    print(
        f"{'':10s} {'encode s':>22s} {'decode s':>22s} {'encode+decode s':>22s} {'CPU s (both)':>22s} "
        f"{'peak RSS MiB':>13s}"
    )
    for name in workers:
        both = [e + d for e, d in zip(times[name]["encode"], times[name]["decode"])]
        print(
            f"{name:10s} {_spread(times[name]['encode']):>22s} {_spread(times[name]['decode']):>22s} "
            f"{_spread(both):>22s} {_spread(times[name]['cpu']):>22s} {rss[name]:13.0f}"
        )
    if "upstream" in workers:
        ratios = {}
        for op in ("encode", "decode"):
            ratios[op] = [u / o for u, o in zip(times["upstream"][op], times["ours"][op])]
        ratios["encode+decode"] = [
            (ue + ud) / (oe + od)
            for ue, ud, oe, od in zip(
                times["upstream"]["encode"],
                times["upstream"]["decode"],
                times["ours"]["encode"],
                times["ours"]["decode"],
            )
        ]
        ratios["CPU time"] = [u / o for u, o in zip(times["upstream"]["cpu"], times["ours"]["cpu"])]
        print(
            "speed-up over upstream 1.3.0 (upstream time / our time, per repetition: median (min-max)): "
            + ", ".join(f"{op} {_spread(r, '{:.2f}x')}" for op, r in ratios.items())
        )
        differ = int((outs["ours"]["codes"] != outs["upstream"]["codes"]).sum())
        diff = float((outs["ours"]["audio"] - outs["upstream"]["audio"]).abs().max())
        print(
            f"ours vs upstream: {differ} of {outs['ours']['codes'].numel()} codes differ, decoded audio max "
            f"|diff| {diff:.2e}"
        )

    median, p90 = streaming_latency(args.seconds, args.stream_frames, args.stream_threads)
    print(
        f"streaming decode, ours (causal variant, threads={args.stream_threads}), one 20 ms frame: "
        f"median {1000 * median:.2f} ms, p90 {1000 * p90:.2f} ms (upstream 1.3.0: no streaming SEANet)"
    )
    print(
        "command: "
        + " ".join(
            [
                str(Path(sys.executable).relative_to(REPO)) if sys.executable.startswith(str(REPO)) else sys.executable,
                *sys.argv,
            ]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
