"""Benchmark of ``LMModel.generate`` against upstream AudioCraft 1.3.0, same weights, same machine (standalone).

The LM (issue 12): dim 512, 8 heads, 8 layers, 4 codebooks x 2048, delay pattern [0, 1, 2, 3], the rest of
``model/lm/musicgen_lm`` (pre-norm, no biases, GELU, sinusoidal positions, memory-efficient attention), a LUT text
conditioner (noop tokenizer) on cross-attention. Generation: classifier-free guidance 3.0 (one batched pass),
top-k 250 sampling, temperature 1, ``max_gen_len`` 250 (253 decoding steps with the delay pattern), batch 1 and 4,
2 torch threads.

The worker is this same file run by either interpreter: in ``.venv`` ``audiocraft`` is this repository, in
``.venvs/upstream-1.3`` (``bash benchmarks/upstream/setup_upstream.sh``) it is upstream 1.3.0; both build the LM with
their own ``builders.get_lm_model`` from the same config and load the same state dict strictly (ours is built
once, seeded, and saved with upstream's keys). Runs alternate (ours, upstream) ``--runs`` times per batch size, each
in a fresh process with one warm-up generation; the table gives tokens/s (``batch * 4 codebooks * 250`` generated
tokens per second of ``generate``), the median of the paired ratios and their spread, and the peak RSS of the
worker, and the same rates per CPU second of the worker (steadier than wall time on a loaded machine). With the same
seed both sides draw the same tokens (checked: the consumption of the global RNG is the same).
Upstream's only patch: with ``memory_efficient=True`` it imports xformers even on its default 'torch' backend,
which never calls it; the benchmark venv has no xformers, so the import check is skipped and the
``LowerTriangularMask`` marker class is provided (a plain class: the torch backend only tests it against None), and
``xformers.ops.unbind`` (used to split the packed q/k/v) is ``torch.unbind``.

Run: python benchmarks/lm_generate.py [--batch 1 4] [--runs 5] [--steps 250] [--threads 2] [--only ours]
     [--profile]   (--profile: torch.profiler top entries of one generation of each side, batch 1)
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

ROOT = Path(__file__).resolve().parents[1]
OURS_PYTHON = ROOT / ".venv" / "bin" / "python"
UPSTREAM_PYTHON = ROOT / ".venvs" / "upstream-1.3" / "bin" / "python"
N_Q, CARD = 4, 2048

# The sections upstream's get_lm_model reads, as solver=musicgen/musicgen_base_32khz composes them, with the sizes of
# issue 12's benchmark and a LUT description conditioner.
CONFIG = {
    "device": "cpu",
    "dtype": "float32",
    "efficient_attention_backend": "torch",
    "lm_model": "transformer_lm",
    "dataset": {"segment_duration": 30},
    "codebooks_pattern": {
        "modeling": "delay",
        "delay": {"delays": [0, 1, 2, 3], "flatten_first": 0, "empty_initial": 0},
    },
    "transformer_lm": {
        "dim": 512,
        "num_heads": 8,
        "num_layers": 8,
        "hidden_scale": 4,
        "n_q": N_Q,
        "card": CARD,
        "dropout": 0.0,
        "emb_lr": None,
        "activation": "gelu",
        "norm_first": True,
        "bias_ff": False,
        "bias_attn": False,
        "bias_proj": False,
        "past_context": None,
        "causal": True,
        "custom": False,
        "memory_efficient": True,
        "attention_as_float32": False,
        "layer_scale": None,
        "positional_embedding": "sin",
        "xpos": False,
        "checkpointing": "none",
        "weight_init": "gaussian",
        "depthwise_init": "current",
        "zero_bias_init": True,
        "norm": "layer_norm",
        "cross_attention": False,
        "qk_layer_norm": False,
        "qk_layer_norm_cross": False,
        "attention_dropout": None,
        "kv_repeat": 1,
        "two_step_cfg": False,
    },
    "classifier_free_guidance": {"training_dropout": 0.1, "inference_coef": 3.0},
    "attribute_dropout": {},
    "fuser": {
        "cross_attention_pos_emb": False,
        "cross_attention_pos_emb_scale": 1,
        "sum": [],
        "prepend": [],
        "cross": ["description"],
        "input_interpolate": [],
    },
    "conditioners": {"description": {"model": "lut", "lut": {"n_bins": 1024, "dim": 64, "tokenizer": "noop"}}},
}
DESCRIPTIONS = [
    "happy rock song with electric guitars",
    "calm piano melody",
    "lo-fi hip hop beat",
    "epic orchestral score",
]


def _rss_mb() -> float:
    """Peak resident set size of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _build(weights: Path):
    import torch
    from omegaconf import OmegaConf

    import audiocraft
    from audiocraft.models import builders

    if getattr(audiocraft, "__version__", None):  # upstream (ours has no audiocraft/__init__.py)
        import xformers.ops

        from audiocraft.modules import transformer

        # Upstream's memory-efficient path imports xformers even with its 'torch' backend, which never calls it
        # (scaled_dot_product_attention runs; LowerTriangularMask only marks "causal"). The benchmark venv has no
        # xformers: skip the import check and give the marker class.
        transformer._verify_xformers_memory_efficient_compat = lambda: None
        xformers.ops.LowerTriangularMask = type("LowerTriangularMask", (), {})
        xformers.ops.unbind = torch.unbind  # xformers' unbind is torch.unbind (a fused backward aside)

    lm = builders.get_lm_model(OmegaConf.create(CONFIG))
    lm.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return lm.eval()


def worker(args: argparse.Namespace) -> None:
    import torch

    from audiocraft.modules.conditioners import ConditioningAttributes

    torch.set_num_threads(args.threads)
    batch = args.batch[0]
    lm = _build(Path(args.weights))
    conditions = [ConditioningAttributes(text={"description": DESCRIPTIONS[i % 4]}) for i in range(batch)]
    kwargs = dict(
        max_gen_len=args.steps, use_sampling=True, temp=1.0, top_k=250, top_p=0.0, cfg_coef=3.0, two_step_cfg=False
    )
    torch.manual_seed(1)
    lm.generate(None, conditions, **{**kwargs, "max_gen_len": 20})  # warm-up
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            lm.generate(None, conditions, **{**kwargs, "max_gen_len": 50})
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile_rows), file=sys.stderr)
    rss_before = _current_rss_mb()
    peak = [rss_before]

    def sample_rss(step: int, total: int) -> None:  # resident memory after every decoding step
        if step % 10 == 0 or step == total:
            peak[0] = max(peak[0], _current_rss_mb())

    torch.manual_seed(2)
    start, cpu_start = time.perf_counter(), time.process_time()
    tokens = lm.generate(None, conditions, callback=sample_rss, **kwargs)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    print(
        json.dumps(
            {
                "seconds": seconds,
                "tokens_per_s": batch * N_Q * args.steps / seconds,
                "tokens_per_cpu_s": batch * N_Q * args.steps / cpu_seconds,
                "peak_rss_mb": _rss_mb(),
                "rss_growth_mb": peak[0] - rss_before,
                "tokens_sum": int(tokens.sum()),
                "shape": list(tokens.shape),
            }
        )
    )


def _save_weights(path: Path) -> None:
    """Our LM, seeded, saved as a plain state dict (upstream's key names)."""
    import torch
    from omegaconf import OmegaConf

    from audiocraft.models import builders

    torch.manual_seed(0)
    torch.save(builders.get_lm_model(OmegaConf.create(CONFIG)).state_dict(), path)


def _run(python: Path, weights: Path, batch: int, args: argparse.Namespace, profile: bool = False) -> dict:
    cmd = [
        str(python),
        "-W",
        "ignore",
        __file__,
        "--worker",
        "--weights",
        str(weights),
        "--batch",
        str(batch),
        "--steps",
        str(args.steps),
        "--threads",
        str(args.threads),
    ]
    if profile:
        cmd += ["--profile", "--profile-rows", str(args.profile_rows)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if out.returncode:
        raise RuntimeError(f"worker failed: {' '.join(cmd)}\n{out.stderr[-3000:]}")
    if profile:
        print(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=250)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["ours", "upstream"])
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-rows", type=int, default=15)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--weights", help=argparse.SUPPRESS)
    parser.add_argument("--save-weights", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.save_weights:
        return _save_weights(Path(args.save_weights))
    if args.worker:
        return worker(args)
    sides = {"ours": OURS_PYTHON, "upstream": UPSTREAM_PYTHON}
    if not UPSTREAM_PYTHON.exists():
        print(f"no upstream venv at {UPSTREAM_PYTHON} (bash benchmarks/upstream/setup_upstream.sh): ours only")
        sides.pop("upstream")
    if args.only:
        sides = {args.only: sides[args.only]}
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "lm_state.pt"
        subprocess.run([str(OURS_PYTHON), __file__, "--save-weights", str(weights)], check=True)
        if args.profile:
            for name, python in sides.items():
                print(f"== profile: {name}, batch 1, 50 steps")
                _run(python, weights, 1, args, profile=True)
            return
        print(
            f"LM 512/8 heads/8 layers, 4 x {CARD}, delay, LUT cross-attention, CFG 3.0, top-k 250, "
            f"{args.steps} steps, {args.threads} threads, {args.runs} paired runs"
        )
        for batch in args.batch:
            results: dict[str, list[dict]] = {name: [] for name in sides}
            for run in range(args.runs):
                for name, python in sides.items():
                    results[name].append(_run(python, weights, batch, args))
                line = "  ".join(
                    f"{n} {r[-1]['tokens_per_s']:7.1f} tok/s ({r[-1]['tokens_per_cpu_s']:.1f} per CPU s)"
                    for n, r in results.items()
                )
                print(f"batch {batch} run {run + 1}: {line}", flush=True)
            for name, res in results.items():
                rates = [r["tokens_per_s"] for r in res]
                cpu_rates = [r["tokens_per_cpu_s"] for r in res]
                print(
                    f"batch {batch} {name:8s}: median {statistics.median(rates):7.1f} tokens/s "
                    f"(min {min(rates):.1f}, max {max(rates):.1f}), {statistics.median(cpu_rates):7.1f} tokens "
                    f"per CPU second, peak RSS "
                    f"{statistics.median(r['peak_rss_mb'] for r in res):.0f} MB "
                    f"(+{statistics.median(r['rss_growth_mb'] for r in res):.0f} MB during generate)"
                )
            if len(results) == 2:
                pairs = list(zip(results["ours"], results["upstream"]))
                same = all(o["tokens_sum"] == u["tokens_sum"] for o, u in pairs)
                for key, what in (("tokens_per_s", "wall"), ("tokens_per_cpu_s", "CPU")):
                    ratios = [o[key] / u[key] for o, u in pairs]
                    print(
                        f"batch {batch} ratio ours/upstream ({what} time): median {statistics.median(ratios):.2f}x "
                        f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
                    )
                print(f"batch {batch} same tokens on both sides: {same}")
    print("reproduce: python benchmarks/lm_generate.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
