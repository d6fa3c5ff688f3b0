"""`MusicGenSolver`: trains a conditioned transformer LM over the codes of a frozen compression model.

Part of audiocraft-core (task solvers; ``solver=musicgen``).

A step turns a batch of audio and its metadata (`audiocraft.data.music_dataset.MusicDataset`) into codes, on the
fly through ``compression_model_checkpoint`` or from the code cache (``cache.path``; ``cache.write=true`` fills
it), and into condition tensors through the LM's provider after classifier-free-guidance and attribute dropout
(seeded generators, saved with the checkpoint). The loss is the cross-entropy of each codebook over the steps that
the interleaving pattern and the padding leave valid (``ce``, ``ppl``, ``ce_q{k}``, ``ppl_q{k}``), with autocast
(fp16 with a grad scaler, or bf16) and FSDP on CUDA, and gradient accumulation (``optim.grad_accum_steps``).
The evaluate stage adds the objective metrics of `audiocraft.solvers._lm_generation` that ``evaluate.metrics``
turns on; generate writes unprompted and prompted samples. At the end of training the best state is exported to
``<xp>/exported/`` (``state_dict.bin`` + ``compression_state_dict.bin``), which ``MusicGen.get_pretrained`` loads.
"""

from __future__ import annotations

import typing as tp
from pathlib import Path

import flashy
import omegaconf
import torch

from . import base, builders
from ._lm_export import EXPORT_DIR, export_lm_folder_on_rank_zero
from ._lm_generation import evaluate_audio_generation, generate_audio, run_generate_step
from ._lm_training import (
    DropoutRNGState,
    check_lm_fits_compression,
    compute_cross_entropy,
    exported_lm_as_pretrained,
    info_from_plain,
    info_to_plain,
    keep_used_attributes,
    load_compression_for_lm,
    padding_mask_from_infos,
)
from ._lora import apply_lora

__all__ = ["MusicGenSolver"]


class MusicGenSolver(base.StandardSolver):
    """Solver for the MusicGen training task (https://arxiv.org/abs/2306.05284).

    Args:
        cfg: the full training config.
        environment: team/cluster environment, see `StandardSolver`.
    """

    DATASET_TYPE: builders.DatasetType = builders.DatasetType.MUSIC

    def __init__(self, cfg: omegaconf.DictConfig, environment: tp.Any = None):
        if str(cfg.device) == "cpu" and cfg.fsdp.use:
            raise ValueError("fsdp.use=true needs CUDA (device=cuda); set fsdp.use=false on CPU")
        autocast_off = str(cfg.device) == "cpu" and bool(cfg.autocast)
        if autocast_off:
            # Upstream's configs turn fp16 autocast on; on CPU it would be slow and keep a half-precision best state.
            with omegaconf.open_dict(cfg):
                cfg.autocast = False
        pretrained = exported_lm_as_pretrained(cfg.get("continue_from"))
        if pretrained is not None:  # continue_from=<exported folder>: read it as a release package
            with omegaconf.open_dict(cfg):
                cfg.continue_from = pretrained
        self._best_metric_name: str | None = "ce"
        self._cached_batch_writer: tp.Any = None
        self._cached_batch_loader: tp.Any = None
        super().__init__(cfg, environment)
        if autocast_off:
            self.logger.warning("autocast=true is ignored on CPU (autocast is for CUDA: fp16 with a grad scaler, bf16)")
        self.generation_params = {k: self.cfg.generate.lm[k] for k in ("use_sampling", "temperature", "top_k", "top_p")}
        self._setup_cache()
        world = flashy.distrib.world_size()
        per_step = self.cfg.dataset.batch_size  # already per worker: audiocraft.train splits the global batch
        self.logger.info(
            "Batch: %d items per step per worker, %d accumulation step(s), %d worker(s): global batch %d per update",
            per_step,
            self.grad_accum_steps,
            world,
            per_step * world * self.grad_accum_steps,
        )

    # ---- set-up --------------------------------------------------------------------------------------
    def _setup_cache(self) -> None:
        from ..utils.cache import CachedBatchLoader, CachedBatchWriter

        cache: tp.Any = self.cfg.get("cache") or {}
        if not cache.get("path"):
            return
        if cache.get("write"):
            self._cached_batch_writer = CachedBatchWriter(Path(cache.path))
            if cache.get("write_num_shards", 1) > 1:
                self.logger.warning("Multiple shard cache: best_metric_name is set to None.")
                self._best_metric_name = None
        else:
            # Items are (codes, plain info dict) pairs (see _lm_training.info_to_plain): no class to allow.
            self._cached_batch_loader = CachedBatchLoader(  # dataset.batch_size is per worker here (see train.py)
                Path(cache.path),
                self.cfg.dataset.batch_size,
                num_workers=max(1, self.cfg.dataset.num_workers),
                min_length=self.cfg.optim.updates_per_epoch or 1,
            )
            self.dataloaders["original_train"] = self.dataloaders["train"]
            self.dataloaders["train"] = self._cached_batch_loader

    def get_formatter(self, stage_name: str) -> flashy.Formatter:
        """Formatter of the logged metrics of every stage; per-codebook values are left out of the log lines.

        Args:
            stage_name: the stage being logged (the same format for all).

        Returns:
            The flashy formatter.
        """
        return flashy.Formatter(
            {"lr": ".2E", "ce": ".3f", "ppl": ".3f", "grad_norm": ".3E"}, exclude_keys=["ce_q*", "ppl_q*"]
        )

    @property
    def best_metric_name(self) -> str | None:
        """Name of the valid metric that selects the best state (``ce``), or None when it is not tracked."""
        return self._best_metric_name

    def build_model(self) -> None:
        """The frozen compression model (checked against the LM), the LM, its optimizer, schedule and scaler."""
        from audiocraft.models import builders as model_builders

        self.compression_model = load_compression_for_lm(self.cfg, self.device, self.environment)
        check_lm_fits_compression(self.cfg, self.compression_model)
        self.logger.info(
            "Compression model has %d codebooks with %d cardinality, and a framerate of %d",
            self.compression_model.num_codebooks,
            self.compression_model.cardinality,
            self.compression_model.frame_rate,
        )
        self.model = model_builders.get_lm_model(self.cfg).to(self.device)
        self.model = apply_lora(self.model, self.cfg.get("lora"))  # lora.use=true: adapters only train (_lora)
        self.dropout_rng = DropoutRNGState(self.model)
        if self.cfg.fsdp.use:
            if self.cfg.autocast:
                raise ValueError("autocast=true cannot be used with fsdp.use=true (FSDP has its own mixed precision)")
            inner = self.model
            self.model = self.wrap_with_fsdp(self.model)
            inner.__dict__["_fsdp"] = self.model  # compute_predictions runs through the FSDP wrapper
        self.register_ema("model")
        groups: tp.Any = builders.get_optim_parameter_groups(self.model)  # torch accepts parameter groups
        self.optimizer = builders.get_optimizer(groups, self.cfg.optim)
        self.lr_scheduler = builders.get_lr_scheduler(self.optimizer, self.cfg.schedule, self.total_updates)
        self.register_stateful("compression_model", "model", "optimizer", "dropout_rng")
        if self.lr_scheduler is not None:
            self.register_stateful("lr_scheduler")
        self.register_best_state("model")
        if self.cfg.autocast_dtype not in ("float16", "bfloat16"):
            raise ValueError(f"autocast_dtype must be float16 or bfloat16, got {self.cfg.autocast_dtype!r}")
        self.scaler: tp.Any = None
        need_scaler = (
            self.cfg.fsdp.param_dtype == "float16"
            if self.cfg.fsdp.use
            else self.cfg.autocast and self.cfg.autocast_dtype == "float16"
        )
        if need_scaler:
            if self.cfg.fsdp.use:
                from torch.distributed.fsdp.sharded_grad_scaler import ShardedGradScaler

                self.scaler = ShardedGradScaler()
            else:
                self.scaler = torch.amp.GradScaler("cuda")
            self.register_stateful("scaler")

    def build_dataloaders(self) -> None:
        """Music (or sound) loaders of the train / valid / evaluate / generate splits of ``datasource``."""
        self.dataloaders = builders.get_audio_datasets(
            self.cfg, dataset_type=self.DATASET_TYPE, environment=self.environment
        )

    def show(self) -> None:
        """Log the compression model and the LM."""
        self.logger.info("Compression model:")
        self.log_model_summary(self.compression_model)
        self.logger.info("LM model:")
        self.log_model_summary(self.model)

    def load_state_dict(self, state: dict) -> None:
        """Load a training checkpoint's state, merging upstream's separate ``condition_provider`` into the model.

        Args:
            state: the checkpoint's state dict.
        """
        if "condition_provider" in state:  # upstream's older checkpoints kept the provider apart
            model_state = state["model"]
            for key, value in state.pop("condition_provider").items():
                model_state["condition_provider." + key] = value
        super().load_state_dict(state)

    def load_from_pretrained(self, name: str) -> dict:
        """Best state to fine-tune from (``continue_from=//pretrained/NAME``).

        Args:
            name: a released MusicGen / AudioGen repo (read from the local Hugging Face cache), or an exported
                folder / ``state_dict.bin``.

        Returns:
            ``{"best_state": {"model": LM state dict}}``.
        """
        from audiocraft.models import loaders

        lm_pkg = loaders.load_lm_model_ckpt(name)
        return {"best_state": {"model": lm_pkg["best_state"]}}

    # ---- train / valid -------------------------------------------------------------------------------
    def _info_class(self) -> type:
        from audiocraft.data.music_dataset import MusicInfo
        from audiocraft.data.sound_dataset import SoundInfo

        return SoundInfo if self.DATASET_TYPE is builders.DatasetType.SOUND else MusicInfo

    def _prepare_tokens_and_attributes(self, batch: tp.Any) -> tuple[dict, torch.Tensor, torch.Tensor]:
        """Condition tensors, codes ``[B, K, T]`` and padding mask ``[B, K, T]`` of a batch.

        Deliberate difference from upstream: upstream runs this whole method under ``torch.no_grad()``, so the
        conditioners' own parameters (LUT embeddings, the output projection after T5 / CLAP / chroma) sit in the
        optimizer but never receive a gradient and stay at their initialisation. Here only the frozen compression
        model runs without gradients; the condition tensors keep their graph, so those parameters train.
        """
        if self._cached_batch_loader is not None and self.current_stage == "train":
            tokens, plain_infos = batch
            infos = [info_from_plain(self._info_class(), info, tok) for info, tok in zip(plain_infos, tokens)]
            audio, audio_tokens = None, tokens.to(self.device).long()
        else:
            audio, infos = batch
            if audio.shape[0] != len(infos):
                raise ValueError(f"the batch holds {audio.shape[0]} audio items but {len(infos)} infos")
            audio, audio_tokens = audio.to(self.device), None
        model: tp.Any = self.model
        used = set(model.condition_provider.conditioners) | {
            name for kind in model.att_dropout.p.values() for name in kind
        }
        attributes = keep_used_attributes([info.to_condition_attributes() for info in infos], used)
        attributes = model.att_dropout(model.cfg_dropout(attributes))
        tokenized = model.condition_provider.tokenize(attributes)
        if audio_tokens is None:
            with torch.no_grad():
                audio_tokens, scale = self.compression_model.encode(audio)
            if scale is not None:
                raise RuntimeError("compression models that rescale their input are not supported by the LM")
        with self.autocast:
            condition_tensors = model.condition_provider(tokenized)
        padding_mask = torch.ones_like(audio_tokens, dtype=torch.bool)
        if self.cfg.tokens.padding_with_special_token:
            audio_tokens, padding_mask = padding_mask_from_infos(
                audio_tokens, infos, self.compression_model.frame_rate, model.special_token_id
            )
        if self._cached_batch_writer is not None and self.current_stage == "train":
            if int(audio_tokens.max()) >= 2**15:
                raise ValueError(f"code {int(audio_tokens.max())} does not fit the cache's int16")
            self._cached_batch_writer.save(audio_tokens.short().cpu(), [info_to_plain(info) for info in infos])
        return condition_tensors, audio_tokens, padding_mask

    def _backward_and_update(self, loss: torch.Tensor, metrics: dict) -> None:
        """Backward (scaled with fp16) and, every ``optim.grad_accum_steps`` calls, clip and step."""
        if self.scaler is None and not self.cfg.fsdp.use:
            metrics.update(self.backward_and_update(loss, self.optimizer, self.model, self.lr_scheduler))
            return
        loss = loss / self.grad_accum_steps
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        self._micro_steps += 1
        if self._micro_steps % self.grad_accum_steps != 0:
            return
        if self.cfg.fsdp.use:
            flashy.distrib.average_tensors(self.model.buffers())
        else:
            flashy.distrib.sync_model(self.model)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.cfg.optim.max_norm:
            model: tp.Any = self.model
            clip = (
                model.clip_grad_norm_
                if self.cfg.fsdp.use
                else (lambda norm: torch.nn.utils.clip_grad_norm_(model.parameters(), norm))
            )
            metrics["grad_norm"] = clip(self.cfg.optim.max_norm)
        if self.scaler is None:
            self.optimizer.step()
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
            metrics["grad_scale"] = self.scaler.get_scale()
        if self.lr_scheduler is not None:
            self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def run_step(self, idx: int, batch: tp.Any, metrics: dict) -> dict:
        """One training (with an update every ``optim.grad_accum_steps`` steps) or valid step."""
        condition_tensors, audio_tokens, padding_mask = self._prepare_tokens_and_attributes(batch)
        self.deadlock_detect.update("tokens_and_conditions")
        model: tp.Any = self.model
        with self.autocast:
            output = model.compute_predictions(audio_tokens, [], condition_tensors)
            ce, ce_per_codebook = compute_cross_entropy(output.logits, audio_tokens, padding_mask & output.mask)
        self.deadlock_detect.update("loss")
        if self.is_training:
            if not torch.isfinite(ce):
                raise FloatingPointError(
                    f"non-finite cross-entropy at epoch {self.epoch}, step {idx}: the model "
                    f"diverged; the last checkpoint ({self.checkpoint_path()}) is kept intact"
                )
            metrics["lr"] = self.optimizer.param_groups[0]["lr"]
            self._backward_and_update(ce, metrics)
            self.deadlock_detect.update("optim")
        metrics["ce"] = ce.detach()
        metrics["ppl"] = torch.exp(ce.detach())
        for k, ce_q in enumerate(ce_per_codebook):
            metrics[f"ce_q{k + 1}"] = ce_q
            metrics[f"ppl_q{k + 1}"] = torch.exp(ce_q)
        return metrics

    def train(self) -> dict:
        """Train stage (fills the code cache with ``cache.write``, or reads it with ``cache.path``)."""
        if self._cached_batch_writer is not None:
            self._cached_batch_writer.start_epoch(self.epoch)
        if self._cached_batch_loader is not None:
            self._cached_batch_loader.start_epoch(self.epoch)
        return super().train()

    def run_epoch(self) -> None:
        """Run one epoch's stages, or nothing when the epoch belongs to another job's shard of the code cache."""
        cache = self.cfg.get("cache") or {}
        if cache.get("write") and (self.epoch - 1) % cache.get("write_num_shards", 1) != cache.get("write_shard", 0):
            return  # this job writes another shard of the cache
        super().run_epoch()

    # ---- evaluate / generate -------------------------------------------------------------------------
    run_generate_step = run_generate_step

    def evaluate(self) -> dict:
        """Cross-entropy on the evaluate split (``evaluate.metrics.base``) and the objective metrics turned on."""
        self.model.eval()
        with torch.no_grad():
            metrics: dict = {}
            if self.cfg.evaluate.metrics.base:
                metrics.update(self.common_train_valid("evaluate"))
            return {**metrics, **evaluate_audio_generation(self)}

    def generate(self) -> dict:
        """Unprompted and prompted samples of the generate split, with their conditions (samples manager)."""
        self.model.eval()
        with torch.no_grad():
            return generate_audio(self)

    # ---- export at the end of training ---------------------------------------------------------------
    @property
    def export_folder(self) -> Path:
        """``<xp>/exported``: ``state_dict.bin`` + ``compression_state_dict.bin`` (``MusicGen.get_pretrained``)."""
        return Path(self.folder) / EXPORT_DIR

    def run(self) -> None:
        """Train, then export the best state (rank 0 writes, every worker waits for the outcome)."""
        super().run()
        if self.cfg.execute_only is None and self.epoch > self.cfg.optim.epochs and not self.cfg.cache.get("write"):
            self.export()

    def export(self) -> None:
        """Export the best state of the last checkpoint to `export_folder`."""
        export_lm_folder_on_rank_zero(
            self.checkpoint_path(use_fsdp=False),
            self.export_folder,
            self.cfg,
            self.compression_model,
            self.environment,
            log=self.logger,
        )
