"""Benchmark of EnCodec inference speed with the ``encodec_musicgen_32khz`` architecture (standalone script).

Random weights (speed does not depend on them). 10 s of 32 kHz mono audio, torch threads = 2. Reports the
real-time factor (RTF = compute time / audio duration; lower is faster) of ``encode`` and ``decode`` for:

* ``upstream-1.3 path``: the same model run the way upstream AudioCraft 1.3 runs it (upstream itself is not
  installed here): weight norm recomputed from ``weight_g``/``weight_v`` at every call, every convolution input
  padded into a new tensor first, under ``torch.no_grad()``; the rest (SEANet, LSTM, RVQ) is the same operations;
* ``audiocraft-models``: ``model.fold_weight_norm()`` then ``torch.inference_mode()``.

Also the streaming decode latency for one 20 ms frame (one code frame at 50 frames/s) of a causal variant
of the same architecture, after a warm-up.

Run: python benchmarks/encodec_rtf.py [--seconds 10] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import types

import torch
from omegaconf import OmegaConf

from audiocraft.models import builders
from audiocraft.modules.conv import StreamableConv1d, get_extra_padding_for_conv1d, pad1d
from audiocraft.modules.weight_norm import has_weight_norm

# The composed sections of upstream's solver=compression/encodec_musicgen_32khz (model encodec_large_nq4_s640).
CONFIG = {
    "device": "cpu", "sample_rate": 32000, "channels": 1, "compression_model": "encodec",
    "encodec": {"autoencoder": "seanet", "quantizer": "rvq", "sample_rate": "${sample_rate}",
                "channels": "${channels}", "causal": False, "renormalize": False},
    "seanet": {"dimension": 128, "channels": "${channels}", "causal": "${encodec.causal}", "n_filters": 64,
               "n_residual_layers": 1, "ratios": [8, 5, 4, 4], "activation": "ELU",
               "activation_params": {"alpha": 1.0}, "norm": "weight_norm", "norm_params": {}, "kernel_size": 7,
               "residual_kernel_size": 3, "last_kernel_size": 7, "dilation_base": 2, "pad_mode": "constant",
               "true_skip": True, "compress": 2, "lstm": 2, "disable_norm_outer_blocks": 0,
               "decoder": {"trim_right_ratio": 1.0, "final_activation": None, "final_activation_params": None},
               "encoder": {}},
    "rvq": {"n_q": 4, "q_dropout": False, "bins": 2048, "decay": 0.99, "kmeans_init": True, "kmeans_iters": 50,
            "threshold_ema_dead_code": 2, "orthogonal_reg_weight": 0.0, "orthogonal_reg_active_codes_only": False},
    "no_quant": {},
}


def _upstream_conv_forward(self: StreamableConv1d, x: torch.Tensor) -> torch.Tensor:
    """Upstream 1.3's StreamableConv1d.forward: explicit padding copy, then the convolution."""
    kernel, stride, padding_total = self._geometry
    extra = get_extra_padding_for_conv1d(x, kernel, stride, padding_total)
    if self.causal:
        return self.conv(pad1d(x, (padding_total, extra), mode=self.pad_mode))
    right = padding_total // 2
    return self.conv(pad1d(x, (padding_total - right, right + extra), mode=self.pad_mode))


def as_upstream(model):
    """Run ``model`` as upstream 1.3 does: no weight cache, explicit padding."""
    for module in model.modules():
        if isinstance(module, StreamableConv1d):
            module.forward = types.MethodType(_upstream_conv_forward, module)
        if has_weight_norm(module):
            hook = module.__dict__["_ac_weight_norm"]
            hook.weight = hook.compute  # recompute at every call, as torch.nn.utils.weight_norm does
    return model


def build(causal: bool = False):
    cfg = OmegaConf.create(copy.deepcopy(CONFIG))
    cfg.encodec.causal = causal
    torch.manual_seed(0)
    model = builders.get_compression_model(cfg)
    model.train()
    with torch.no_grad():
        model(0.1 * torch.randn(1, 1, 32000 * 3))  # initialise the codebooks
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stream-frames", type=int, default=100)
    parser.add_argument("--stream-threads", type=int, default=1,
                        help="threads for the one-frame streaming decode (tiny ops: 1 thread avoids OpenMP overhead)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = 0.1 * torch.randn(1, 1, int(32000 * args.seconds), generator=torch.Generator().manual_seed(1))

    ours = build()
    baseline = as_upstream(copy.deepcopy(ours))
    ours.fold_weight_norm()
    with torch.no_grad():
        codes = baseline.encode(x)[0]
    runs = {"upstream-1.3 path": (baseline, torch.no_grad), "audiocraft-models": (ours, torch.inference_mode)}
    times: dict[tuple[str, str], list[float]] = {(name, op): [] for name in runs for op in ("encode", "decode")}
    # Interleave the variants so that a change of machine load affects both alike; keep the best of each.
    for repeat in range(args.repeats + 1):
        for name, (model, ctx) in runs.items():
            for op in ("encode", "decode"):
                with ctx():
                    start = time.perf_counter()
                    model.encode(x) if op == "encode" else model.decode(codes)
                    elapsed = time.perf_counter() - start
                if repeat:  # the first round is a warm-up
                    times[(name, op)].append(elapsed)
    results = {name: (min(times[(name, "encode")]) / args.seconds, min(times[(name, "decode")]) / args.seconds)
               for name in runs}
    with torch.inference_mode():
        assert torch.equal(ours.encode(x)[0], codes)

    print(f"EnCodec encodec_musicgen_32khz, {args.seconds:g} s of 32 kHz mono, threads={args.threads}, "
          f"best of {args.repeats}")
    print(f"{'':20s} {'encode RTF':>11s} {'decode RTF':>11s}")
    for name, (e, d) in results.items():
        print(f"{name:20s} {e:11.4f} {d:11.4f}")
    base_e, base_d = results["upstream-1.3 path"]
    our_e, our_d = results["audiocraft-models"]
    print(f"speed-up vs upstream path: encode x{base_e / our_e:.2f}, decode x{base_d / our_d:.2f}")

    torch.set_num_threads(args.stream_threads)
    causal = build(causal=True)
    causal.fold_weight_norm()
    with torch.inference_mode():
        stream_codes = causal.encode(x[..., : 32000 * 4])[0]
        latencies = []
        with causal.streaming():
            for i in range(min(args.stream_frames, stream_codes.shape[-1])):
                start = time.perf_counter()
                causal.decode(stream_codes[..., i: i + 1])
                latencies.append(time.perf_counter() - start)
    latencies = latencies[5:]  # warm-up
    median, p90 = statistics.median(latencies), sorted(latencies)[int(0.9 * len(latencies))]
    print(f"streaming decode (causal variant, threads={args.stream_threads}), one 20 ms frame: "
          f"median {1000 * median:.2f} ms, p90 {1000 * p90:.2f} ms")
    print("command: " + " ".join([sys.executable.split("/")[-1], *sys.argv]))


if __name__ == "__main__":
    main()
