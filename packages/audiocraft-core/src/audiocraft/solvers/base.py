"""`StandardSolver`: the training loop shared by every AudioCraft task solver, on top of flashy's BaseSolver.

Part of audiocraft-core (training layer). An epoch runs the ``train`` and ``valid`` stages, then
``evaluate`` and ``generate`` every ``evaluate.every`` / ``generate.every`` epochs and at the last epoch, and
ends with a checkpoint (see `audiocraft.solvers._checkpointing`). Subclasses implement `build_model`,
`build_dataloaders`, `run_step`, `evaluate` and `generate`, and may override `best_metric_name`.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import typing as tp
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path

import flashy
import torch
from omegaconf import DictConfig
from torch import nn

from ..environment import AudioCraftEnvironment
from ..optim import ModuleDictEMA, fsdp
from ..optim.builders import get_ema
from ..utils import _media
from ..utils.autocast import TorchAutocast
from ..utils.best_state import BestStateDictManager
from ..utils.deadlock import DeadlockDetect
from ..utils.profiler import Profiler
from ..utils.rng import RNGState
from ..utils.utils import copy_state, dict_from_config, model_hash, set_loader_epoch, with_rank_rng
from ._checkpointing import CheckpointMixin, ResumableAverage, _YamlConfigSource, iterate_from, plain_metrics


class StandardSolver(CheckpointMixin, ABC, flashy.BaseSolver):  # type: ignore[misc]
    """Base solver with the ``train`` / ``valid`` / ``evaluate`` / ``generate`` stages.

    Args:
        cfg: the full training config (the Dora XP config).
        environment: team/cluster environment (built from the environment variables when None).
    """

    def __init__(self, cfg: DictConfig, environment: AudioCraftEnvironment | None = None):
        super().__init__()
        # flashy registers the config object itself; we store it as YAML text (weights_only checkpoints).
        self.stateful.sources["xp.cfg"] = flashy.state.WriteOnlyWrapper(_YamlConfigSource(self))
        self.logger.info("Instantiating solver %s for XP %s", self.__class__.__name__, self.xp.sig)
        self.logger.info("All XP logs are stored in %s", self.xp.folder)
        self.cfg = cfg
        self.environment = environment if environment is not None else AudioCraftEnvironment()
        self.device = cfg.device
        self.model: nn.Module
        self.config_changes: list = []
        self._continue_best_source_keys = ["best_state", "fsdp_best_state"]
        self._fsdp_modules: list[nn.Module] = []
        self._ema_sources: nn.ModuleDict = nn.ModuleDict()
        self.ema: ModuleDictEMA | None = None
        self.dataloaders: dict[str, tp.Any] = {}
        self._log_updates = self.cfg.logging.get("log_updates", 10)
        self.grad_accum_steps = int(self.cfg.optim.get("grad_accum_steps") or 1)
        self._micro_steps = 0
        if self.cfg.logging.log_tensorboard:
            self.init_tensorboard(**self.cfg.get("tensorboard"))
        if self.cfg.logging.log_wandb:
            if "wandb" not in sys.modules and importlib.util.find_spec("wandb") is None:  # flashy: 'NoneType'.config
                raise ImportError(
                    "logging.log_wandb=true but wandb is not installed: pip install "
                    "'audiocraft-core[wandb]', or set logging.log_wandb=false"
                )
            self.init_wandb(**self.cfg.get("wandb"))
        dtype_best: torch.dtype | None = None
        if self.cfg.fsdp.use:
            dtype_best = getattr(torch, self.cfg.fsdp.param_dtype)
        elif self.cfg.autocast:
            dtype_best = getattr(torch, self.cfg.autocast_dtype)
        self.best_state = BestStateDictManager(dtype=dtype_best)
        self.fsdp_best_state: dict[str, tp.Any] = {}
        self.register_stateful("best_state", "fsdp_best_state")
        self._new_best_state = False
        self.build_dataloaders()
        if self.cfg.execute_only is None:
            for split in ("train", "valid"):
                if split not in self.dataloaders:
                    raise ValueError(f"{self.__class__.__name__}.build_dataloaders must provide the {split!r} split")
        self.train_updates_per_epoch = (
            len(self.dataloaders["train"]) // self.grad_accum_steps if "train" in self.dataloaders else 0
        )
        if self.cfg.optim.updates_per_epoch:
            self.train_updates_per_epoch = self.cfg.optim.updates_per_epoch
        self.total_updates = self.train_updates_per_epoch * self.cfg.optim.epochs
        self._log_batch_semantics()
        self.build_model()
        self.logger.info("Model hash: %s", model_hash(self.model))
        if "model" not in self.stateful.sources:
            raise RuntimeError("build_model must register the model: self.register_stateful('model')")
        self.profiler = Profiler(self.model, folder=self.folder, **self.cfg.profiler)
        self.initialize_ema()
        self.register_stateful("ema")
        self.deadlock_detect = DeadlockDetect(**self.cfg.deadlock)
        self.rng_state = RNGState()
        self.register_stateful("rng_state")  # last: captured when the checkpoint is written
        model_size = sum(p.numel() for p in self.model.parameters() if p.requires_grad) / 1e6
        self.logger.info("Model size: %.2f M params", model_size)
        self.logger.info("Base memory usage, with model, grad and optim: %.2f GB", model_size * 4 * 4 / 1000)

    def _log_batch_semantics(self) -> None:
        dataset = self.cfg.get("dataset")
        if dataset is None or dataset.get("batch_size") is None:
            return
        world = flashy.distrib.world_size()
        per_worker = dataset.batch_size
        self.logger.info(
            "Batch size: %d per worker x %d worker(s) = %d per update (dataset.batch_size is the "
            "global batch, split across workers)%s",
            per_worker,
            world,
            per_worker * world,
            f"; x{self.grad_accum_steps} gradient accumulation" if self.grad_accum_steps > 1 else "",
        )

    # ---- configuration helpers -----------------------------------------------------------------------
    @property
    def autocast(self) -> TorchAutocast:
        """``with self.autocast:`` runs under torch.autocast when ``autocast=true``."""
        return TorchAutocast(
            enabled=self.cfg.autocast, device_type=self.device, dtype=getattr(torch, self.cfg.autocast_dtype)
        )

    @property
    def best_metric_name(self) -> str | None:
        """Valid-stage metric (lower is better) that selects the best state; None keeps the last state."""
        return None

    @property
    def log_updates(self) -> int:
        """Number of progress-log lines per stage (``logging.log_updates``)."""
        return self._log_updates

    @property
    def is_training(self) -> bool:
        """Whether the current stage is ``train``."""
        return self.current_stage == "train"

    # ---- registration --------------------------------------------------------------------------------
    def _get_state_source(self, name: str) -> flashy.state.StateDictSource:
        return self.stateful.sources[name]

    def register_best_state(self, *args: str) -> None:
        """Keep the best state of these (already registered) stateful sources; used by evaluate/generate."""
        for name in args:
            if name not in self.stateful.sources:
                raise ValueError(f"register {name!r} with register_stateful before register_best_state")
            self.best_state.register(name, self._get_state_source(name))

    register_best = register_best_state

    def register_ema(self, *args: str) -> None:
        """Average these modules with an EMA (``optim.ema``); call from `build_model`."""
        if self.ema is not None:
            raise RuntimeError("cannot register EMA sources once the EMA is built")
        for name in args:
            self._ema_sources[name] = getattr(self, name)

    def wrap_with_fsdp(self, model: nn.Module, *args: tp.Any, **kwargs: tp.Any) -> nn.Module:
        """Wrap ``model`` with FSDP when ``fsdp.use`` (else return it unchanged), with the ``fsdp`` section.

        Args:
            model: the module to wrap.
            *args: ignored (upstream's signature).
            **kwargs: ignored (upstream's signature).

        Returns:
            The wrapped (or the same) module.
        """
        model = fsdp.wrap_with_fsdp(
            self.cfg.fsdp.use,
            self.device,
            model,
            **{k: v for k, v in dict_from_config(self.cfg.fsdp).items() if k not in ("use", "per_block")},
        )
        if model.__class__.__name__ == "FullyShardedDataParallel":
            self._fsdp_modules.append(model)
        return model

    def initialize_ema(self) -> None:
        """Build the EMA of the registered sources when ``optim.ema.use``."""
        self.ema = get_ema(self._ema_sources, self.cfg.optim.ema)
        if self.ema is None:
            self.logger.info("No EMA on the model.")
        else:
            if not self.cfg.optim.ema.updates or self.cfg.optim.ema.updates <= 0:
                raise ValueError(f"optim.ema.updates must be > 0, got {self.cfg.optim.ema.updates}")
            self.logger.info("EMA with decay %s every %d updates", self.ema.decay, self.cfg.optim.ema.updates)

    # ---- best state and EMA swaps --------------------------------------------------------------------
    def update_best_state_from_stage(self, stage_name: str = "valid") -> None:
        """Copy the live states to the best state when ``best_metric_name`` improved in ``stage_name``."""
        if self.best_metric_name is None:
            self._new_best_state = True
            self.logger.info("Updating best state with current state.")
        else:
            metrics = self._pending_metrics.get(stage_name, {})
            if self.best_metric_name not in metrics:
                raise KeyError(
                    f"best metric {self.best_metric_name!r} missing from the {stage_name} metrics ({sorted(metrics)})"
                )
            current = metrics[self.best_metric_name]
            past = [m[stage_name][self.best_metric_name] for m in self.history if stage_name in m]
            old_best = min(past + [float("inf")])
            self._new_best_state = current <= old_best
            if self._new_best_state:
                self.logger.info("New best state with %s=%.3f (was %.3f)", self.best_metric_name, current, old_best)
        if self._new_best_state:
            if self.cfg.fsdp.use:
                with fsdp.switch_to_full_state_dict(self._fsdp_modules):
                    for name in self.best_state.states:
                        self.best_state.update(name, self._get_state_source(name))
                    self.fsdp_best_state.update(self.best_state.state_dict())
            for name in self.best_state.states:
                self.best_state.update(name, self._get_state_source(name))

    def _load_new_state_dict(self, state_dict: dict) -> dict:
        old_states = {}
        for name, new_state in state_dict.items():
            source = self._get_state_source(name)
            current = source.state_dict()
            old_states[name] = copy_state(current)
            if isinstance(current, dict) and isinstance(new_state, dict):
                new_state = {**current, **new_state}  # e.g. integer buffers the EMA does not average
            source.load_state_dict(new_state)
        return old_states

    def _restore_states(self, old_states: dict) -> None:
        for name, old_state in old_states.items():
            self._get_state_source(name).load_state_dict(old_state)

    @contextmanager
    def swap_best_state(self) -> tp.Iterator[None]:
        """Run the block with the best states loaded, then put the live states back."""
        old_states = self._load_new_state_dict(self.best_state.state_dict())
        try:
            yield
        finally:
            self._restore_states(old_states)

    @contextmanager
    def swap_ema_state(self) -> tp.Iterator[None]:
        """Run the block with the EMA states loaded (no-op without EMA), then put the live states back."""
        if self.ema is None:
            yield
            return
        old_states = self._load_new_state_dict(self.ema.state_dict()["state"])
        try:
            yield
        finally:
            self._restore_states(old_states)

    # ---- abstract contract ---------------------------------------------------------------------------
    @abstractmethod
    def build_model(self) -> None:
        """Create ``self.model`` (and optimizer...) and register them with `register_stateful`."""

    @abstractmethod
    def build_dataloaders(self) -> None:
        """Fill ``self.dataloaders`` with the ``train``, ``valid``, ``evaluate``, ``generate`` splits."""

    @abstractmethod
    def run_step(self, idx: int, batch: tp.Any, metrics: dict) -> dict:
        """One train or valid step on ``batch``; returns the step's metrics."""

    @abstractmethod
    def evaluate(self) -> dict:
        """Evaluate stage; returns metrics."""

    @abstractmethod
    def generate(self) -> dict | None:
        """Generate stage (samples written with the samples manager)."""

    def show(self) -> None:
        """Log the model and its parameter counts (``show=true``)."""
        self.log_model_summary(self.model)
        for name, child in self.model.named_children():
            count = sum(p.numel() for p in child.parameters())
            self.logger.info("  %s: %.3f M params", name, count / 1e6)

    def log_model_summary(self, model: nn.Module) -> None:
        """Log ``model`` and its parameter count and size."""
        self.logger.info(model)
        count = sum(p.numel() for p in model.parameters())
        self.logger.info("Parameters: %d (%.3f M), size: %.1f MB", count, count / 1e6, count * 4 / 2**20)

    # ---- media (flashy's own media path needs torchcodec / torchvision: see audiocraft.utils._media) ---------
    @property
    def media_logging_enabled(self) -> bool:
        """Whether tensorboard or wandb logging is on with ``with_media_logging`` (stages log media only then)."""
        return any(
            self.cfg.logging.get(f"log_{name}") and self.cfg.get(name, {}).get("with_media_logging")
            for name in ("tensorboard", "wandb")
        )

    def log_audio(self, stage_name: str, key: str, audio: torch.Tensor, sample_rate: int, **kwargs: tp.Any) -> None:
        """Log audio [C, T] and its mel-spectrogram image to the local, tensorboard and wandb loggers.

        ``kwargs`` go to `audiocraft.data.audio.audio_write` for the local copy (``<xp>/outputs/<stage>_<epoch>/
        <key>.wav`` and ``<key>.png``); ``spectrogram=False`` logs the audio alone.
        """
        _media.log_audio(
            self.result_logger._experiment_loggers, stage_name, key, audio, sample_rate, self.epoch, **kwargs
        )

    def log_image(self, stage_name: str, key: str, image: torch.Tensor, **kwargs: tp.Any) -> None:
        """Log an image [C, H, W] (uint8, or float in [0, 1]) to the local (PNG), tensorboard and wandb loggers."""
        if kwargs:
            raise TypeError(f"log_image takes no extra arguments, got {sorted(kwargs)}")
        _media.log_image(self.result_logger._experiment_loggers, stage_name, key, image, self.epoch)

    # ---- optimisation helper -------------------------------------------------------------------------
    def backward_and_update(
        self,
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        model: nn.Module | None = None,
        lr_scheduler: tp.Any = None,
    ) -> dict[str, float]:
        """Backward of ``loss`` with gradient accumulation, sync across workers, clipping and the update.

        With ``optim.grad_accum_steps = k``, the loss is divided by k and the optimizer steps every k calls.
        Gradients are averaged across workers, clipped to ``optim.max_norm`` (when > 0), then the optimizer
        and the schedule step.

        Returns:
            ``{'grad_norm': ...}`` (when clipping) on update calls, ``{}`` otherwise.
        """
        model = model if model is not None else self.model
        (loss / self.grad_accum_steps).backward()
        self._micro_steps += 1
        if self._micro_steps % self.grad_accum_steps != 0:
            return {}
        metrics: dict[str, float] = {}
        if flashy.distrib.is_distributed():
            flashy.distrib.sync_model(model)
        max_norm = self.cfg.optim.get("max_norm") or 0.0
        if max_norm > 0:
            metrics["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if lr_scheduler is not None:
            lr_scheduler.step()
        return metrics

    # ---- stages --------------------------------------------------------------------------------------
    def common_train_valid(self, dataset_split: str, **kwargs: tp.Any) -> dict:
        """Run `run_step` over a split: ``optim.updates_per_epoch`` updates in train, the loader in valid.

        In train, a mid-epoch checkpoint is written every ``checkpoint.save_every_updates`` updates, and an
        epoch restored from one continues after its last saved update (see `audiocraft.solvers._checkpointing`).
        """
        self.model.train(self.is_training)
        loader = self.dataloaders[dataset_split]
        set_loader_epoch(loader, self.epoch)
        if self.is_training:
            updates_per_epoch = self.train_updates_per_epoch * self.grad_accum_steps
        else:
            updates_per_epoch = len(loader)
        position = self.take_train_position() if self.is_training else None
        start = position["updates"] * self.grad_accum_steps if position else 0
        save_every = self.save_every_updates if self.is_training else 0
        self._micro_steps = start
        if self.is_training:  # no gradient left over from an incomplete accumulation window
            self.model.zero_grad(set_to_none=True)
        if self.cfg.benchmark_no_load:
            self.logger.warning("benchmark_no_load: re-using the first batch for every step")
            batch = next(iter(loader))
            loader = [batch] * updates_per_epoch
        batches = iterate_from(loader, start)  # created now: a DataLoader draws its base seed here
        if position is not None:
            self.resume_train_position(position)
        lp = self.log_progress(self.current_stage, batches, total=updates_per_epoch - start, updates=self.log_updates)
        average = ResumableAverage(position["average"] if position else None)
        instant_average = flashy.averager()
        metrics: dict = average.value()
        steps = position["steps"] if position else 0
        with self.profiler, self.deadlock_detect:
            for idx, batch in enumerate(lp, start=start):
                self.deadlock_detect.update("batch")
                if idx >= updates_per_epoch:
                    break
                metrics = self.run_step(idx, batch, {})
                steps += 1
                self.deadlock_detect.update("step")
                if (
                    self.ema is not None
                    and self.is_training
                    and (idx + 1) % (self.cfg.optim.ema.updates * self.grad_accum_steps) == 0
                ):
                    self.ema.step()
                self.deadlock_detect.update("ema")
                self.profiler.step()
                instant = instant_average(metrics)
                if lp.update(**instant):
                    instant_average = flashy.averager()
                metrics = average(metrics)
                self.deadlock_detect.update("end_batch")
                if save_every and (idx + 1) % (save_every * self.grad_accum_steps) == 0 and idx + 1 < updates_per_epoch:
                    self.save_mid_epoch_checkpoint((idx + 1) // self.grad_accum_steps, steps, average)
        if steps < updates_per_epoch and self.is_training:
            self.logger.warning("The %s loader ran out after %d of %d steps", dataset_split, steps, updates_per_epoch)
        return flashy.distrib.average_metrics(metrics, steps)

    def train(self) -> dict:
        """Train stage: `common_train_valid` on the ``train`` split."""
        return self.common_train_valid("train")

    def valid(self) -> dict:
        """Valid stage: `common_train_valid` on the ``valid`` split."""
        return self.common_train_valid("valid")

    def should_run_stage(self, stage_name: str) -> bool:
        """``evaluate`` / ``generate`` run every ``<stage>.every`` epochs and at the last epoch."""
        every = self.cfg[stage_name].get("every", None)
        return self.epoch == self.cfg.optim.epochs or bool(every and self.epoch % every == 0)

    def run_epoch(self) -> None:
        """Train, valid (with EMA weights), update the best state, then evaluate / generate if due."""
        self.run_stage("train", self.train)
        with torch.no_grad():
            with self.swap_ema_state():
                self.run_stage("valid", self.valid)
                self.update_best_state_from_stage("valid")
            with self.swap_best_state():
                if self.should_run_stage("evaluate"):
                    self.run_stage("evaluate", self.evaluate)
                if self.should_run_stage("generate"):
                    self.run_stage("generate", with_rank_rng()(self.generate))

    def commit(self, save_checkpoints: bool = True) -> None:  # type: ignore[override]
        """Append the epoch's metrics to the history, write checkpoints and Dora's history file."""
        self.history.append(plain_metrics(self._pending_metrics))
        if save_checkpoints:
            self.save_checkpoints()
        self._start_epoch()
        if flashy.distrib.is_rank_zero():
            self.xp.link.update_history(self.history)

    def should_stop_training(self) -> bool:
        """Whether every epoch of ``optim.epochs`` has run."""
        return self.epoch > self.cfg.optim.epochs

    def run(self) -> None:
        """Restore (or start), then run epochs until ``optim.epochs``."""
        if not self.state_dict():
            raise RuntimeError("nothing registered as stateful")
        self.restore(replay_metrics=True)
        self.log_hyperparams(dict_from_config(self.cfg))
        try:
            for _ in range(self.epoch, self.cfg.optim.epochs + 1):
                if self.should_stop_training():
                    return
                self.run_epoch()
                self.commit()
        except RuntimeError as exc:
            if flashy.distrib.is_distributed() and _is_lost_worker(exc):
                raise WorkerLostError(
                    f"worker {flashy.distrib.rank()}/{flashy.distrib.world_size()}: another training worker stopped "
                    f"during epoch {self.epoch} ({exc.__class__.__name__}: {str(exc).splitlines()[0][:300]}). Its "
                    f"own log says why (<xp>/solver.log.<rank>). Run the same command again to resume from the last "
                    f"checkpoint, {self.checkpoint_path()}."
                ) from exc
            raise

    def run_summary(self) -> dict[str, str | None]:
        """Where this run's results are: XP signature and folder, exported model, latest samples folder.

        Returns:
            ``sig`` and ``folder``; ``exported`` (the solver's ``export_path`` file or ``export_folder``, e.g. the
            compression and language-model solvers', when it exists, else None) and
            ``samples`` (``<xp>/<generate.path>/<latest epoch>``, None before the first generate stage).
        """
        export = getattr(self, "export_path", None) or getattr(self, "export_folder", None)
        generate = self.cfg.get("generate") or {}
        samples = Path(self.folder) / (generate.get("path") or "samples")
        epochs = sorted((int(p.name) for p in samples.glob("[0-9]*") if p.name.isdigit()), reverse=True)
        return {
            "sig": self.xp.sig,
            "folder": str(self.folder),
            "exported": str(export) if export is not None and Path(export).exists() else None,
            "samples": str(samples / str(epochs[0])) if epochs else None,
        }

    def log_run_summary(self) -> str:
        """Log (rank 0) the one line of `run_summary` that ends every run.

        Returns:
            The line.
        """
        summary = self.run_summary()
        line = (
            f"Run summary: XP {summary['sig']} | folder {summary['folder']} | "
            f"exported model: {summary['exported'] or 'none'} | samples: {summary['samples'] or 'none'}"
        )
        if flashy.distrib.is_rank_zero():
            self.logger.info(line)
        return line

    def run_one_stage(self, stage_name: str) -> None:
        """Run only ``stage_name`` (``execute_only``) with the best state; committed unless ``execute_inplace``."""
        fn = {"generate": with_rank_rng()(self.generate), "evaluate": self.evaluate, "valid": self.valid}
        if stage_name not in fn:
            raise ValueError(f"execute_only={stage_name!r} is not supported; expected one of {sorted(fn)}")
        self._start_epoch()
        with torch.no_grad(), self.swap_best_state():
            self.run_stage(stage_name, fn[stage_name])
        if not self.cfg.execute_inplace:
            self.commit(save_checkpoints=False)


class WorkerLostError(RuntimeError):
    """Another distributed worker died (or stopped answering) during training."""


def _is_lost_worker(exc: BaseException) -> bool:
    # gloo and nccl report a peer that died or hung in a collective with these messages.
    text = str(exc)
    return any(
        marker in text
        for marker in (
            "Connection closed by peer",
            "Connection reset by peer",
            "remote worker crashing",
            "Timed out waiting",
            "NCCL communicator",
            "Broken pipe",
        )
    )


def accepts_environment(klass: type) -> bool:
    """Whether ``klass(cfg, environment=...)`` is valid (solvers may keep upstream's ``__init__(cfg)``)."""
    params = inspect.signature(klass).parameters.values()
    return any(p.name == "environment" or p.kind is p.VAR_KEYWORD for p in params)
