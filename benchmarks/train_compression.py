"""Benchmark of compression (EnCodec) training speed, in updates per second (standalone script).

Two configurations, each with data loading included (batches from the train loader) and excluded (the first
batch re-used, as ``benchmark_no_load=true`` does):

* ``debug``: ``solver=compression/debug`` as shipped (tiny causal EnCodec, L1 only, example dataset, 16 kHz);
* ``base_24khz``: ``solver=compression/encodec_base_24khz dset=audio/example`` with batch 8 and 1 s segments
  (SEANet 32 filters, 32-level RVQ, msspec + L1 through the balancer, MS-STFT discriminator with adversarial
  and feature-matching losses).

Each runs the CompressionSolver's real ``run_step`` (forward, discriminator update, losses, balancer, optimizer
and EMA) inside a Dora XP in a temporary folder, with ``torch.set_num_threads(threads)``, after ``--warmup``
updates (the first one initialises the codebooks with k-means).

For the comparison with upstream AudioCraft 1.3.0 itself (its own solver, in its own venv), use
``benchmarks/upstream/bench_compression_upstream.py``. ``--upstream-path`` is NOT upstream: it times the same
step with OUR RE-IMPLEMENTATION of upstream 1.3's loss computations (the column is labelled so), a quick check of
what the loss-side changes are worth: every zero-weight (info) loss at every train step, msspec computing
each mel spectrogram twice (linear and log branch) for estimate and reference separately, discriminators run
separately on fake and real (real with a graph) in both the discriminator and the generator passes, and the
balancer taking one autograd pass per loss even when it does not balance. Model, data and optimizer are the same.

Needs the example dataset: ``python -m audiocraft.data.example egs/example`` (run from the repository root).

Run: python benchmarks/train_compression.py [--updates 20] [--warmup 3] [--threads 2] [--runs 3] [--upstream-path]
     [--configs debug base_24khz]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import typing as tp
import warnings

import torch
from torch import autograd
from torch.nn import functional as F

CONFIGS: dict[str, list[str]] = {
    "debug": ["solver=compression/debug"],
    "base_24khz": [
        "solver=compression/encodec_base_24khz",
        "dset=audio/example",
        "dataset.batch_size=8",
        "dataset.segment_duration=1",
        "dataset.num_workers=0",
    ],
}


def _upstream_msspec_forward(self: tp.Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # upstream: l1s[i] (linear) and l2s[i] (log) are separate transforms, each applied to x and to y.
    loss = 0.0
    for mel, alpha in zip(self.mels, self.alphas):
        lin_x, lin_y = mel(x), mel(y)
        log_x, log_y = (torch.log10(self.floor_level + mel(s)) for s in (x, y))
        loss = loss + F.l1_loss(lin_x, lin_y) + alpha * F.mse_loss(log_x, log_y)
    return loss / self.total if self.normalized else loss


def _upstream_train_adv(self: tp.Any, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    loss = torch.tensor(0.0, device=fake.device)
    logits_fake, _ = self.get_adversary_pred(fake.detach())
    logits_real, _ = self.get_adversary_pred(real.detach())
    for lf, lr in zip(logits_fake, logits_real):
        loss = loss + self.loss_fake(lf) + self.loss_real(lr)
    loss = loss / len(logits_fake)
    self.optimizer.zero_grad()
    loss.backward()
    self.optimizer.step()
    return loss


def _upstream_adv_forward(self: tp.Any, fake: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    import flashy

    adv = torch.tensor(0.0, device=fake.device)
    feat = torch.tensor(0.0, device=fake.device)
    with flashy.utils.readonly(self.adversary):
        logits_fake, fmaps_fake = self.get_adversary_pred(fake)
        _, fmaps_real = self.get_adversary_pred(real)
        for logit in logits_fake:
            adv = adv + self.loss(logit)
        for ff, fr in zip(fmaps_fake, fmaps_real):
            feat = feat + self.loss_feat(ff, fr)
    return adv / len(logits_fake), feat / len(logits_fake)


def _upstream_balancer_backward(
    self: tp.Any, losses: dict[str, torch.Tensor], input: torch.Tensor, extra_loss: torch.Tensor | None = None
) -> torch.Tensor:
    import flashy

    if extra_loss is not None and extra_loss.requires_grad:
        extra_loss.backward(retain_graph=True)  # upstream: the penalty's own backward pass, before the balancer
    if not hasattr(self, "_upstream_averager"):
        self._upstream_averager = flashy.averager(self.ema_decay)
    norms, grads = {}, {}
    for name, loss in losses.items():
        (grad,) = autograd.grad(loss, [input], retain_graph=True)
        norms[name] = grad.norm(dim=tuple(range(1, grad.dim())), p=2).mean() if self.per_batch_item else grad.norm()
        grads[name] = grad
    avg = self._upstream_averager(norms)  # float(): one host sync per loss, as upstream
    total_weights = sum(self.weights[k] for k in avg)
    out_grad = torch.zeros_like(input)
    effective = torch.tensor(0.0, dtype=input.dtype)
    for name, norm in avg.items():
        scale = (
            self.weights[name] / total_weights * self.total_norm / (self.epsilon + norm)
            if self.balance_grads
            else self.weights[name]
        )
        out_grad.add_(grads[name], alpha=scale)
        effective += scale * losses[name].detach()
    input.backward(out_grad)
    return effective


@contextlib.contextmanager
def upstream_path(solver: tp.Any) -> tp.Iterator[None]:
    """Swap in upstream 1.3's loss computations (see the module docstring)."""
    from audiocraft.adversarial.losses import AdversarialLoss
    from audiocraft.losses.balancer import Balancer
    from audiocraft.losses.specloss import MultiScaleMelSpectrogramLoss

    saved = (
        MultiScaleMelSpectrogramLoss.forward,
        AdversarialLoss.train_adv,
        AdversarialLoss.forward,
        Balancer.backward,
        solver._log_updates,
    )
    MultiScaleMelSpectrogramLoss.forward = _upstream_msspec_forward  # type: ignore[method-assign]
    AdversarialLoss.train_adv = _upstream_train_adv  # type: ignore[method-assign]
    AdversarialLoss.forward = _upstream_adv_forward  # type: ignore[method-assign]
    Balancer.backward = _upstream_balancer_backward  # type: ignore[method-assign]
    solver._log_updates = 1  # info losses at every step
    try:
        yield
    finally:
        (
            MultiScaleMelSpectrogramLoss.forward,
            AdversarialLoss.train_adv,
            AdversarialLoss.forward,
            Balancer.backward,
            solver._log_updates,
        ) = saved


def time_updates(solver: tp.Any, updates: int, warmup: int, no_load: bool) -> float:
    """Updates per second of the solver's train step (after `warmup` updates)."""
    result: dict[str, float] = {}

    def _stage() -> dict:
        solver.model.train()
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

    solver._pending_metrics.pop("train", None)  # flashy allows one "train" stage per epoch; we time several
    solver.run_stage("train", _stage)
    return result["ups"]


def build_solver(overrides: list[str], threads: int) -> tp.Any:
    from audiocraft import train

    cfg_overrides = overrides + [
        "device=cpu",
        f"num_threads={threads}",
        "logging.log_updates=1000",
        "dataset.train.num_samples=100000",
        "optim.ema.use=true",
    ]
    xp = train.main.get_xp(cfg_overrides)
    stack = contextlib.ExitStack()
    stack.enter_context(xp.enter())
    train.init_seed_and_system(xp.cfg)
    solver = train.get_solver(xp.cfg)
    return solver, stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--upstream-path", action="store_true")
    parser.add_argument("--runs", type=int, default=3, help="measurements per cell (median, min-max shown)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if not os.path.exists("egs/example/train/data.jsonl"):
        sys.exit("run from the repository root after `python -m audiocraft.data.example egs/example`")
    os.environ.setdefault("AUDIOCRAFT_DORA_DIR", tempfile.mkdtemp(prefix="bench_compression_"))
    os.environ.setdefault("DORA_PACKAGE", "audiocraft")
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.configs:
        solver, stack = build_solver(CONFIGS[name], args.threads)
        with stack:
            torch.manual_seed(0)
            for no_load in (False, True):
                ours, refs = [], []
                for _ in range(args.runs):  # alternate, so that a change of machine load hits both alike
                    ours.append(time_updates(solver, args.updates, args.warmup, no_load))
                    if args.upstream_path:
                        with upstream_path(solver):
                            refs.append(time_updates(solver, args.updates, args.warmup, no_load))
                ups = statistics.median(ours)
                row = [name, "excluded" if no_load else "included", f"{ups:.3f} ({min(ours):.2f}-{max(ours):.2f})"]
                if args.upstream_path:
                    ref = statistics.median(refs)
                    row += [f"{ref:.3f} ({min(refs):.2f}-{max(refs):.2f})", f"{ups / ref:.2f}x"]
                rows.append(row)
    header = ["config", "data loading", "updates/s"] + (
        ["re-implemented upstream-1.3 losses (not upstream)", "speedup"] if args.upstream_path else []
    )
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    print(
        f"CompressionSolver training, CPU, {args.threads} threads, {args.updates} timed updates "
        f"after {args.warmup} warm-up; median (min-max) of {args.runs} runs"
    )
    for row in [header] + rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    print("command: python " + " ".join(sys.argv))


if __name__ == "__main__":
    main()
