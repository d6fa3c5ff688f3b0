"""`CompressionSolver`: trains EnCodec-style compression models (audiocraft-core, task solvers; ``solver=compression``).

A train step reconstructs a batch, optionally updates the discriminators (with probability
``1 / adversarial.every``), then back-propagates the weighted losses through the `Balancer` (the quantizer
penalty goes straight to the model). Losses with a zero weight are computed for information only. The
evaluate stage reports the reconstruction metrics of `audiocraft.solvers.compression_metrics` over every
worker's share of the split; generate writes reconstructions beside their references with the samples manager.
At the end of training every worker takes part in `audiocraft.solvers.compression_export.export_and_compare`:
rank 0 exports the best state to ``<xp>/exported/compression_state_dict.bin`` (loadable with
`audiocraft.models.CompressionModel.get_pretrained`), and its SI-SNR is compared with an untrained model's.
Compression models to fine-tune from, or for other solvers to use, are loaded by
`audiocraft.solvers.compression_loading.load_frozen_compression_model` (``model_from_checkpoint``).
"""

from __future__ import annotations

import math
import typing as tp
from pathlib import Path

import flashy
import omegaconf
import torch
from torch import nn

from .. import adversarial, losses
from . import base, builders
from .compression_export import EXPORT_DIR, EXPORT_NAME, export_and_compare
from .compression_loading import check_compression_model, load_frozen_compression_model
from .compression_metrics import ReconstructionMetrics, evaluate_audio_reconstruction, evaluate_model

__all__ = [
    "EXPORT_DIR",
    "EXPORT_NAME",
    "CompressionSolver",
    "ReconstructionMetrics",
    "evaluate_audio_reconstruction",
    "evaluate_model",
]


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
            raise ValueError(
                "optim.grad_accum_steps must be 1 for the compression solver (the balancer "
                "normalises each batch's gradient)"
            )
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
        """None: no valid metric selects a best state."""
        return None  # the best compression model is the last one, as upstream

    def build_model(self) -> None:
        """Build the compression model and its optimizer from the config."""
        from audiocraft.models import builders as model_builders

        self.model = model_builders.get_compression_model(self.cfg).to(self.device)
        # Upstream trains silently wrong here (e.g. encodec.sample_rate=24000 on 16 kHz data): refuse it.
        check_compression_model(
            self.model,
            self.cfg.sample_rate,
            self.cfg.channels,
            f"built from compression_model={self.cfg.compression_model}",
        )
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
        """Run one epoch's stages, with the adversarial schedule's generator seeded by the epoch."""
        self.rng = torch.Generator()
        self.rng.manual_seed(1234 + self.epoch)  # adversarial schedule, reproducible across resumes
        super().run_epoch()

    def epoch_state_dict(self) -> dict:
        """State saved in a mid-epoch checkpoint: the adversarial schedule's generator state."""
        return {"adversarial_rng": self.rng.get_state()}  # resumed mid-epoch: the schedule goes on where it was

    def load_epoch_state_dict(self, state: dict) -> None:
        """Restore the adversarial schedule's generator from a mid-epoch checkpoint.

        Args:
            state: a dict from `epoch_state_dict` (a checkpoint without the key leaves the generator as it is).
        """
        if "adversarial_rng" in state:
            self.rng.set_state(state["adversarial_rng"])

    def _check_finite(self, idx: int, named: dict[str, torch.Tensor]) -> None:
        """Stop on a NaN/inf loss, naming it (one host sync for all losses); the last checkpoint is untouched."""
        if not named:
            return
        values = torch.stack([v.detach().float().reshape(()) for v in named.values()])
        if bool(torch.isfinite(values).all()):
            return
        bad = {name: float(v) for name, v in zip(named, values.tolist()) if not math.isfinite(v)}
        last = self.checkpoint_path()
        kept = (
            f"the last checkpoint ({last}) was written before this step and is kept intact"
            if last.exists()
            else "no checkpoint has been written yet"
        )
        raise FloatingPointError(
            f"non-finite loss at epoch {self.epoch}, {self.current_stage} step {idx}: {bad}. Stopping; {kept}. "
            "Audio with NaN/Inf samples is refused by the dataset (naming the file), so look at the learning rate, "
            "loss weights and optim.max_norm."
        )

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
        return evaluate_model(
            self.model,
            self.dataloaders["evaluate"],
            self.cfg,
            self.device,
            log_progress=lambda name, it, total: self.log_progress(
                f"{self.current_stage} {name}", it, total=total, updates=self.log_updates
            ),
        )

    def generate(self) -> None:
        """Write reconstructions of the generate split beside their references (and to tensorboard if on)."""
        from ..utils.samples.manager import SampleManager

        self.model.eval()
        sample_manager = SampleManager(self.xp, map_reference_to_sample_id=True)
        loader = self.dataloaders["generate"]
        lp = self.log_progress(str(self.current_stage), loader, total=len(loader), updates=self.log_updates)
        media = 0
        for batch in lp:
            reference, infos = batch
            reference = reference.to(self.device)
            with torch.no_grad():
                qres = self.model(reference)
            reference = reference.cpu()
            estimate = qres.x.cpu()
            # named after their source clips, with the clip and checkpoint in the JSON (upstream: a hash alone)
            sample_manager.add_samples(estimate, self.epoch, ground_truth_wavs=reference, sources=infos)
            if self.media_logging_enabled:
                for est, ref in zip(estimate, reference):
                    self.log_audio(str(self.current_stage), f"sample_{media}/reconstruction", est, self.cfg.sample_rate)
                    self.log_audio(str(self.current_stage), f"sample_{media}/reference", ref, self.cfg.sample_rate)
                    media += 1
        flashy.distrib.barrier()

    # ---- export at the end of training ---------------------------------------------------------------
    def run(self) -> None:
        """Train, then (every worker) export the best state and compare it with an untrained model."""
        super().run()
        if self.cfg.execute_only is None and self.epoch > self.cfg.optim.epochs:
            self.export_and_compare()

    @property
    def export_path(self) -> Path:
        """Where the inference checkpoint is written: ``<xp>/exported/compression_state_dict.bin``."""
        return Path(self.folder) / EXPORT_DIR / EXPORT_NAME

    def export_and_compare(self) -> dict[str, float]:
        """Export the best state (rank 0), reload it, and log its SI-SNR vs an untrained model's (all workers).

        Returns:
            ``{'sisnr_db_exported', 'sisnr_db_untrained', 'sisnr_db_gain'}`` (positive SI-SNR in dB over the whole
            evaluate split), also written to ``<xp>/exported/export_metrics.json``.
        """
        return export_and_compare(
            self.checkpoint_path(),
            self.export_path,
            self.cfg,
            self.dataloaders.get("evaluate"),
            self.device,
            log=self.logger,
        )

    # ---- loading -------------------------------------------------------------------------------------
    def load_from_pretrained(self, name: str) -> dict:
        """State to continue from a pretrained compression model (``continue_from=//pretrained/NAME``).

        NAME is looked up as inference does (``$AUDIOCRAFT_PRETRAINED_DIR``, model names, hub repos); the model
        must run at this config's ``sample_rate`` with its ``channels``.
        """
        from audiocraft.models import EncodecModel
        from audiocraft.models.loaders import PRETRAINED_PREFIX

        model = load_frozen_compression_model(
            PRETRAINED_PREFIX + name,
            sample_rate=self.cfg.sample_rate,
            channels=self.cfg.channels,
            environment=self.environment,
        )
        if not isinstance(model, EncodecModel):
            raise RuntimeError(f"cannot fine-tune a {type(model).__name__} ({name}); only EncodecModel")
        return {"best_state": {"model": model.state_dict()}}

    @staticmethod
    def model_from_checkpoint(
        checkpoint_path: Path | str,
        device: torch.device | str = "cpu",
        xps_root: Path | None = None,
        environment: tp.Any = None,
    ) -> tp.Any:
        """Frozen compression model from a checkpoint, an XP, an export or a pretrained name.

        Accepts a training checkpoint or XP folder, a Dora signature (``//sig/SIG``), ``//reference/...``, an
        exported package, or ``//pretrained/NAME`` (see `load_frozen_compression_model`).

        Args:
            checkpoint_path: what to load.
            device: device of the returned model (in eval mode, parameters frozen).
            xps_root: the Dora ``xps`` folder to resolve signatures; defaults to the current XP's, else the
                environment's Dora directory.
            environment: resolves ``//reference`` paths (built from the environment variables when None).
        """
        return load_frozen_compression_model(checkpoint_path, device, xps_root=xps_root, environment=environment)

    @staticmethod
    def wrapped_model_from_checkpoint(
        cfg: omegaconf.DictConfig,
        checkpoint_path: Path | str,
        device: torch.device | str = "cpu",
        xps_root: Path | None = None,
        environment: tp.Any = None,
    ) -> tp.Any:
        """`model_from_checkpoint`, wrapped as ``cfg`` asks (e.g. interleaved stereo) and checked against it.

        ``cfg.sample_rate`` and ``cfg.channels`` must match the model: a ValueError names both values otherwise.

        Args:
            cfg: the solver config (wrapper settings, ``sample_rate``, ``channels``).
            checkpoint_path: what to load (as in `model_from_checkpoint`).
            device: device of the returned model.
            xps_root: the Dora ``xps`` folder to resolve signatures.
            environment: resolves ``//reference`` paths.

        Returns:
            The wrapped, frozen compression model.
        """
        from audiocraft.models import builders as model_builders

        model = CompressionSolver.model_from_checkpoint(checkpoint_path, device, xps_root, environment)
        model = model_builders.get_wrapped_compression_model(model, cfg)
        check_compression_model(model, cfg.get("sample_rate"), cfg.get("channels"), str(checkpoint_path))
        return model


def _summarize_codebook_metrics(metrics: dict[str, tp.Any]) -> dict[str, tp.Any]:
    """Average the per-level quantizer metrics over the levels used in this step.

    ``<prefix>_usage_q<k>`` and ``<prefix>_perplexity_q<k>`` become ``codebook_usage`` and ``codebook_perplexity``;
    other entries pass through.
    """
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
