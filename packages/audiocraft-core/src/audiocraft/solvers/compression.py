"""`CompressionSolver`: trains EnCodec-style compression models (audiocraft-core, task solvers; ``solver=compression``).

A train step reconstructs a batch, optionally updates the discriminators (with probability
``1 / adversarial.every``), then back-propagates the weighted losses through the `Balancer` (the quantizer
penalty goes straight to the model). Losses with a zero weight are computed for information only. The
evaluate stage reports the reconstruction metrics (``sisnr``: upstream's *negated* SI-SNR in dB, lower is
better; ``mel``/``mrstft`` distances; ViSQOL when ``evaluate.metrics.visqol`` and ``metrics.visqol.bin`` are
set; nominal ``bandwidth`` in kb/s, ``entropy_kbps`` the code-histogram entropy rate, ``codebook_usage``);
generate writes reconstructions beside their references with the samples manager. At the end of training
the best state is exported to ``<xp>/exported/compression_state_dict.bin`` (loadable with
`audiocraft.models.CompressionModel.get_pretrained`), and its SI-SNR is compared with an untrained model's.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import typing as tp
from pathlib import Path

import flashy
import omegaconf
import torch
from torch import nn

from .. import adversarial, losses
from ..utils.utils import get_pool_executor
from . import base, builders

logger = logging.getLogger(__name__)

EXPORT_DIR = "exported"
EXPORT_NAME = "compression_state_dict.bin"


class CompressionSolver(base.StandardSolver):
    """Solver for the compression task: reconstruction, spectral and adversarial losses through a balancer.

    Args:
        cfg: the full training config.
        environment: team/cluster environment, see `StandardSolver`.
    """

    def __init__(self, cfg: omegaconf.DictConfig, environment: tp.Any = None):
        super().__init__(cfg, environment)
        if cfg.fsdp.use:
            raise ValueError("fsdp.use=true is not supported by the compression solver")
        if self.grad_accum_steps != 1:
            raise ValueError("optim.grad_accum_steps must be 1 for the compression solver (the balancer "
                             "normalises each batch's gradient)")
        self.rng = torch.Generator()  # reseeded at each epoch
        self.adv_losses = adversarial.get_adversarial_losses(self.cfg, builders.get_optimizer)
        self.aux_losses = nn.ModuleDict()
        self.info_losses = nn.ModuleDict()
        loss_weights: dict[str, float] = {}
        for loss_name, weight in self.cfg.losses.items():
            if loss_name in ("adv", "feat"):
                for adv_name in self.adv_losses:
                    loss_weights[f"{loss_name}_{adv_name}"] = weight
            elif weight > 0:
                self.aux_losses[loss_name] = losses.get_loss(loss_name, self.cfg)
                loss_weights[loss_name] = weight
            else:
                self.info_losses[loss_name] = losses.get_loss(loss_name, self.cfg)
        self.aux_losses.to(self.device)
        self.info_losses.to(self.device)
        self.balancer = losses.get_balancer(loss_weights, self.cfg.balancer)
        self.register_stateful("adv_losses", "balancer")

    @property
    def best_metric_name(self) -> str | None:
        return None  # the best compression model is the last one, as upstream

    def build_model(self) -> None:
        """Build the compression model and its optimizer from the config."""
        from audiocraft.models import builders as model_builders
        self.model = model_builders.get_compression_model(self.cfg).to(self.device)
        self.optimizer = builders.get_optimizer(self.model.parameters(), self.cfg.optim)
        self.register_stateful("model", "optimizer")
        self.register_best_state("model")
        self.register_ema("model")

    def build_dataloaders(self) -> None:
        """Audio loaders for the train / valid / evaluate / generate splits of ``datasource``."""
        self.dataloaders = builders.get_audio_datasets(self.cfg, environment=self.environment)

    def show(self) -> None:
        """Log the compression model, the adversaries and the losses."""
        self.logger.info("Compression model with %d codebooks:", self.model.total_codebooks)
        self.log_model_summary(self.model)
        self.logger.info("Adversarial losses:")
        self.log_model_summary(self.adv_losses)
        self.logger.info("Balanced losses: %s", self.balancer.weights)
        self.logger.info("Info losses: %s", list(self.info_losses))

    # ---- train / valid -------------------------------------------------------------------------------
    def run_epoch(self) -> None:
        self.rng = torch.Generator()
        self.rng.manual_seed(1234 + self.epoch)  # adversarial schedule, reproducible across resumes
        super().run_epoch()

    def _check_finite(self, idx: int, named: dict[str, torch.Tensor]) -> None:
        """Stop on a NaN/inf loss, naming it (one host sync for all losses); the last checkpoint is untouched."""
        if not named:
            return
        values = torch.stack([v.detach().float().reshape(()) for v in named.values()])
        if bool(torch.isfinite(values).all()):
            return
        bad = {name: float(v) for name, v in zip(named, values.tolist()) if not math.isfinite(v)}
        raise FloatingPointError(
            f"non-finite loss at epoch {self.epoch}, {self.current_stage} step {idx}: {bad}. Stopping; the last "
            f"checkpoint ({self.checkpoint_path()}) was written before this epoch and is kept intact.")

    def run_step(self, idx: int, batch: tp.Any, metrics: dict) -> dict:
        """One train (with updates) or valid step on a batch of audio `[B, C, T]`."""
        x = batch.to(self.device)
        y = x.clone()
        qres = self.model(x)
        y_pred = qres.x
        metrics["bandwidth"] = qres.bandwidth.mean()

        if self.is_training:
            d_losses: dict[str, torch.Tensor] = {}
            every = self.cfg.adversarial.every
            if len(self.adv_losses) > 0 and torch.rand(1, generator=self.rng).item() <= 1 / every:
                for adv_name, adversary in self.adv_losses.items():
                    d_losses[f"d_{adv_name}"] = adversary.train_adv(y_pred, y)
                metrics["d_loss"] = torch.sum(torch.stack(list(d_losses.values())))
            metrics.update(d_losses)

        balanced_losses: dict[str, torch.Tensor] = {}
        other_losses: dict[str, torch.Tensor] = {}
        if qres.penalty is not None and qres.penalty.requires_grad:
            other_losses["penalty"] = qres.penalty
        for adv_name, adversary in self.adv_losses.items():
            adv_loss, feat_loss = adversary(y_pred, y)
            balanced_losses[f"adv_{adv_name}"] = adv_loss
            balanced_losses[f"feat_{adv_name}"] = feat_loss
        for loss_name, criterion in self.aux_losses.items():
            balanced_losses[loss_name] = criterion(y_pred, y)
        metrics.update(balanced_losses)
        metrics.update(other_losses)
        metrics.update(_summarize_codebook_metrics(qres.metrics))

        # Diagnostics (gradient norms, info losses) every `logging.log_updates` train steps, every valid step.
        measure = not self.is_training or idx % max(1, self.log_updates) == 0
        if self.is_training:
            self._check_finite(idx, {**balanced_losses, **other_losses})
            penalty = other_losses.get("penalty")
            if penalty is not None and measure:
                # The penalty alone first, to log the norm of its gradient (`ratio1`) as upstream does.
                penalty.backward(retain_graph=True)
                metrics["ratio1"] = _grad_norm(self.model)
                penalty = None
            # Otherwise the penalty rides along in the balancer's backward pass (one pass instead of two).
            metrics["g_loss"] = self.balancer.backward(balanced_losses, y_pred, extra_loss=penalty)
            metrics.update(self.balancer.metrics)
            if measure:
                metrics["ratio2"] = _grad_norm(self.model)
            if flashy.distrib.is_distributed():
                flashy.distrib.sync_model(self.model)
            if self.cfg.optim.max_norm:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.max_norm)
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)

        # Zero-weight losses are for information only: every step in valid, but in train only every
        # `logging.log_updates` steps (their running average is then taken over those steps), which saves
        # their spectrograms on the other steps.
        if measure:
            with torch.no_grad():
                for loss_name, criterion in self.info_losses.items():
                    metrics[loss_name] = criterion(y_pred, y)

        adv_values = [v for k, v in metrics.items() if k.startswith("adv")]
        if adv_values:
            metrics["adv"] = torch.sum(torch.stack(adv_values))
        feat_values = [v for k, v in metrics.items() if k.startswith("feat")]
        if feat_values:
            metrics["feat"] = torch.sum(torch.stack(feat_values))
        return {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in metrics.items()}

    # ---- evaluate / generate -------------------------------------------------------------------------
    def evaluate(self) -> dict:
        """Reconstruction metrics of the (best) model over the evaluate split."""
        self.model.eval()
        return evaluate_model(self.model, self.dataloaders["evaluate"], self.cfg, self.device,
                              log_progress=lambda name, it, total: self.log_progress(
                                  f"{self.current_stage} {name}", it, total=total, updates=self.log_updates))

    def generate(self) -> None:
        """Write reconstructions of the generate split beside their references (and to tensorboard if on)."""
        from ..utils.samples.manager import SampleManager
        self.model.eval()
        sample_manager = SampleManager(self.xp, map_reference_to_sample_id=True)
        loader = self.dataloaders["generate"]
        lp = self.log_progress(str(self.current_stage), loader, total=len(loader), updates=self.log_updates)
        media = 0
        for batch in lp:
            reference, _ = batch
            reference = reference.to(self.device)
            with torch.no_grad():
                qres = self.model(reference)
            reference = reference.cpu()
            estimate = qres.x.cpu()
            sample_manager.add_samples(estimate, self.epoch, ground_truth_wavs=reference)
            if self.cfg.logging.get("log_tensorboard") and self.cfg.get("tensorboard", {}).get("with_media_logging"):
                for est, ref in zip(estimate, reference):
                    self.log_audio(str(self.current_stage), f"sample_{media}/reconstruction", est,
                                   self.cfg.sample_rate)
                    self.log_audio(str(self.current_stage), f"sample_{media}/reference", ref, self.cfg.sample_rate)
                    media += 1
        flashy.distrib.barrier()

    # ---- export at the end of training ---------------------------------------------------------------
    def run(self) -> None:
        """Train, then export the best state and compare its evaluate SI-SNR with an untrained model's."""
        super().run()
        if self.cfg.execute_only is None and self.epoch > self.cfg.optim.epochs and flashy.distrib.is_rank_zero():
            self.export_and_compare()

    @property
    def export_path(self) -> Path:
        """Where the inference checkpoint is written: ``<xp>/exported/compression_state_dict.bin``."""
        return Path(self.folder) / EXPORT_DIR / EXPORT_NAME

    def export_and_compare(self) -> dict[str, float]:
        """Export the best state, reload it with audiocraft-models alone, and log SI-SNR vs an untrained model.

        Returns:
            ``{'sisnr_db_exported', 'sisnr_db_untrained', 'sisnr_db_gain'}`` (positive SI-SNR in dB), also
            written to ``<xp>/exported/export_metrics.json``.
        """
        from audiocraft.models import CompressionModel
        from audiocraft.models import builders as model_builders
        from audiocraft.models.export import export_encodec
        checkpoint = self.checkpoint_path()
        out = self.export_path
        if out.exists() and out.stat().st_mtime >= checkpoint.stat().st_mtime:
            self.logger.info("Exported model %s is up to date.", out)
            summary_file = out.parent / "export_metrics.json"
            return json.loads(summary_file.read_text()) if summary_file.exists() else {}
        export_encodec(checkpoint, out)
        self.logger.info("Exported the best state to %s", out)
        loader = self.dataloaders.get("evaluate")
        if loader is None:
            return {}
        exported = CompressionModel.get_pretrained(str(out), device=self.device)
        with torch.random.fork_rng(devices=[]):  # leave the training RNG streams untouched
            torch.manual_seed(self.cfg.seed)
            untrained = model_builders.get_compression_model(self.cfg).to(self.device).eval()
        summary: dict[str, float] = {}
        for name, model in (("exported", exported), ("untrained", untrained)):
            metrics = evaluate_model(model, loader, self.cfg, self.device, only_sisnr=True)
            summary[f"sisnr_db_{name}"] = -float(metrics["sisnr"])
        summary["sisnr_db_gain"] = summary["sisnr_db_exported"] - summary["sisnr_db_untrained"]
        self.logger.info("Evaluate SI-SNR: exported model %.2f dB, untrained model %.2f dB (gain %+.2f dB)",
                         summary["sisnr_db_exported"], summary["sisnr_db_untrained"], summary["sisnr_db_gain"])
        (out.parent / "export_metrics.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary

    # ---- loading -------------------------------------------------------------------------------------
    def load_from_pretrained(self, name: str) -> dict:
        """State to continue from a pretrained compression model (``continue_from=//pretrained/NAME``)."""
        from audiocraft.models import CompressionModel, EncodecModel
        model = CompressionModel.get_pretrained(name)
        if not isinstance(model, EncodecModel):
            raise RuntimeError(f"cannot fine-tune a {type(model).__name__} ({name}); only EncodecModel")
        return {"best_state": {"model": model.state_dict()}}

    @staticmethod
    def model_from_checkpoint(checkpoint_path: Path | str, device: torch.device | str = "cpu",
                              xps_root: Path | None = None, environment: tp.Any = None) -> tp.Any:
        """Compression model from a training checkpoint path, a Dora signature (``//sig/SIG``) or
        ``//pretrained/NAME`` (an exported model or a pretrained name).

        Used by the LM solvers to load their (frozen) compression model.

        Args:
            checkpoint_path: what to load.
            device: device of the returned model (in eval mode).
            xps_root: the Dora ``xps`` folder to resolve signatures; defaults to the current XP's, else the
                environment's Dora directory.
            environment: resolves ``//reference`` paths (built from the environment variables when None).
        """
        from audiocraft.models import CompressionModel
        from audiocraft.models import builders as model_builders

        from ..utils import checkpoint
        checkpoint_path = str(checkpoint_path)
        if checkpoint_path.startswith("//pretrained/"):
            return CompressionModel.get_pretrained(checkpoint_path.split("/", 3)[-1], device=device)
        logger.info("Loading compression model from checkpoint: %s", checkpoint_path)
        from ..environment import AudioCraftEnvironment
        environment = environment if environment is not None else AudioCraftEnvironment()
        if xps_root is None:
            try:
                import dora
                xp = dora.get_xp()
                xps_root = Path(xp.dora.dir) / xp.dora.xps
            except RuntimeError:  # not inside an XP
                xps_root = Path(environment.get_dora_dir()) / "xps"
        resolved = checkpoint.resolve_checkpoint_path(checkpoint_path, use_fsdp=False, xps_root=xps_root,
                                                      environment=environment)
        if resolved is None:
            raise FileNotFoundError(f"could not resolve compression model checkpoint {checkpoint_path}")
        state = checkpoint.load_checkpoint(resolved)
        if not isinstance(state, dict) or "xp.cfg" not in state or not state.get("best_state"):
            raise RuntimeError(f"{resolved} is not a compression training checkpoint (needs xp.cfg and best_state)")
        if state.get("exported"):
            raise RuntimeError(f"{resolved} is an exported model: use //pretrained/{resolved}")
        cfg = state["xp.cfg"]
        cfg = omegaconf.OmegaConf.create(cfg) if isinstance(cfg, str) else cfg
        assert isinstance(cfg, omegaconf.DictConfig), f"{resolved}: xp.cfg is not a mapping"
        cfg.device = str(device)
        model = model_builders.get_compression_model(cfg).to(device)
        model.load_state_dict(state["best_state"]["model"])
        return model.eval()

    @staticmethod
    def wrapped_model_from_checkpoint(cfg: omegaconf.DictConfig, checkpoint_path: Path | str,
                                      device: torch.device | str = "cpu") -> tp.Any:
        """`model_from_checkpoint`, wrapped as ``cfg`` asks (e.g. interleaved stereo)."""
        from audiocraft.models import builders as model_builders
        model = CompressionSolver.model_from_checkpoint(checkpoint_path, device)
        return model_builders.get_wrapped_compression_model(model, cfg)


def _summarize_codebook_metrics(metrics: dict[str, tp.Any]) -> dict[str, tp.Any]:
    """Average the per-level quantizer metrics (``<prefix>_usage_q<k>``, ``<prefix>_perplexity_q<k>``) over the
    levels used in this step into ``codebook_usage`` and ``codebook_perplexity``; other entries pass through."""
    out: dict[str, tp.Any] = {}
    grouped: dict[str, list[torch.Tensor]] = {}
    for key, value in metrics.items():
        stem, sep, level = key.rpartition("_q")
        kind = stem.rpartition("_")[2]
        if sep and level.isdigit() and kind in ("usage", "perplexity"):
            grouped.setdefault(f"codebook_{kind}", []).append(torch.as_tensor(value, dtype=torch.float32))
        else:
            out[key] = value
    for key, values in grouped.items():
        out[key] = torch.stack(values).mean()
    return out


def _grad_norm(model: nn.Module) -> torch.Tensor:
    """L2 norm of the model's gradients, as a tensor (no host sync)."""
    grads = [p.grad.detach() for p in model.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


class ReconstructionMetrics:
    """Reconstruction metrics of one batch `[B, C, T]`, built once from the config (picklable, for a process pool).

    Calling it returns ``sisnr`` (negated SI-SNR in dB, as upstream; ``evaluate.metrics.sisnr``), the ``mel`` and
    ``mrstft`` distances (``evaluate.metrics.base``), and ``visqol`` when ``evaluate.metrics.visqol`` is on.
    """

    def __init__(self, cfg: omegaconf.DictConfig, only_sisnr: bool = False):
        self.sample_rate = int(cfg.sample_rate)
        self.sisnr = losses.get_loss("sisnr", cfg) if only_sisnr or cfg.evaluate.metrics.get("sisnr", True) else None
        self.spectral: dict[str, nn.Module] = {}
        self.visqol: tp.Any = None
        if only_sisnr:
            return
        if cfg.evaluate.metrics.get("base", True):
            self.spectral = {"mel": losses.get_loss("mel", cfg), "mrstft": losses.get_loss("mrstft", cfg)}
        if cfg.evaluate.metrics.get("visqol", False):
            from audiocraft.metrics import ViSQOL
            if not cfg.metrics.visqol.bin:
                raise ValueError("evaluate.metrics.visqol=true needs metrics.visqol.bin (the ViSQOL install folder)")
            self.visqol = ViSQOL(**omegaconf.OmegaConf.to_container(cfg.metrics.visqol, resolve=True))  # type: ignore

    def __call__(self, y_pred: torch.Tensor, y: torch.Tensor) -> dict[str, tp.Any]:
        metrics: dict[str, tp.Any] = {}
        with torch.no_grad():
            if self.sisnr is not None:
                metrics["sisnr"] = self.sisnr(y_pred, y)
            for name, loss in self.spectral.items():
                metrics[name] = loss.to(y.device)(y_pred, y)
        if self.visqol is not None:
            metrics["visqol"] = self.visqol(y_pred, y, self.sample_rate)
        return metrics


def evaluate_audio_reconstruction(y_pred: torch.Tensor, y: torch.Tensor, cfg: omegaconf.DictConfig) -> dict:
    """Upstream's entry point: `ReconstructionMetrics` of one batch."""
    return ReconstructionMetrics(cfg)(y_pred, y)


def evaluate_model(model: nn.Module, loader: tp.Iterable, cfg: omegaconf.DictConfig, device: str | torch.device,
                   log_progress: tp.Callable[[str, tp.Any, int], tp.Any] | None = None,
                   only_sisnr: bool = False) -> dict:
    """Run `model` over `loader` and average the reconstruction and codebook metrics.

    Metrics run in a process pool of ``evaluate.num_workers`` only when ViSQOL is on (an external binary);
    otherwise in this process, which avoids spawning workers for cheap tensor metrics.
    """
    model.eval()
    total = len(loader) if hasattr(loader, "__len__") else 0  # type: ignore[arg-type]
    iterator = loader if log_progress is None else log_progress("inference", loader, total)
    use_pool = bool(cfg.evaluate.metrics.get("visqol", False)) and not only_sisnr
    num_workers = int(cfg.evaluate.get("num_workers") or 0) if use_pool else 0
    compute = ReconstructionMetrics(cfg, only_sisnr=only_sisnr)
    average = flashy.averager()
    metrics: dict = {}
    counts: list[torch.Tensor] = []
    bandwidths: list[torch.Tensor] = []
    pendings = []
    n_batches = 0
    with get_pool_executor(num_workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for batch in iterator:
            x = (batch[0] if isinstance(batch, (tuple, list)) else batch).to(device)
            with torch.no_grad():
                qres = model(x)
            n_batches += 1
            if only_sisnr:
                metrics = average(compute(qres.x, x))
                continue
            bandwidths.append(qres.bandwidth.mean())
            bins = getattr(model, "cardinality", None)
            if bins is not None and qres.codes is not None:
                codes = qres.codes.reshape(qres.codes.shape[0], qres.codes.shape[1], -1)
                per_level = torch.stack([torch.bincount(codes[:, k].reshape(-1), minlength=bins)
                                         for k in range(codes.shape[1])])
                counts.append(per_level)
            pendings.append(pool.submit(compute, qres.x.cpu(), x.cpu()))
        for pending in pendings:
            metrics = average(pending.result())
    if only_sisnr:
        return flashy.distrib.average_metrics(metrics, n_batches)
    if bandwidths:
        metrics["bandwidth"] = float(torch.stack(bandwidths).mean())
    if counts:
        hist = torch.stack(counts).sum(0).double()  # [K, bins]
        probs = hist / hist.sum(-1, keepdim=True).clamp(min=1)
        entropy_bits = -(probs * torch.log2(probs.clamp(min=1e-12))).sum(-1)  # [K]
        frame_rate = float(getattr(model, "frame_rate", 0.0))
        metrics["codebook_usage"] = float((hist > 0).double().mean())
        metrics["entropy_kbps"] = float(entropy_bits.sum() * frame_rate / 1000)
        metrics["bits_per_second"] = float(math.log2(hist.shape[-1]) * hist.shape[0] * frame_rate)
    return flashy.distrib.average_metrics(metrics, max(n_batches, 1))
