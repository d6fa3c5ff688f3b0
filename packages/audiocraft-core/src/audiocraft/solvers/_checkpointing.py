"""Checkpoint saving, loading, ``continue_from`` resolution and resume reporting for `StandardSolver`.

Part of audiocraft-core (training layer). Kept apart from the training loop in `audiocraft.solvers.base`.
Every epoch ends with ``checkpoint.th`` (``save_last``), ``checkpoint_<epoch>.th`` every ``save_every``
epochs (optionally only the ``keep_every_states`` sources), and pruning to ``keep_last`` epoch files. The
state holds the RNG states, so resuming from it replays the next epoch exactly.
"""

from __future__ import annotations

import math
import numbers
import typing as tp
from pathlib import Path

import flashy
import torch
from omegaconf import DictConfig, OmegaConf

from ..optim import fsdp
from ..utils import checkpoint
from ..utils.utils import config_diff, model_hash

_PRETRAINED_PREFIX = "//pretrained/"


def config_to_yaml(cfg: tp.Any) -> str:
    """YAML text of a config, resolved when possible (stored as ``'xp.cfg'`` in checkpoints)."""
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(cfg)
    try:
        return OmegaConf.to_yaml(cfg, resolve=True)
    except Exception:  # unresolvable interpolation (e.g. a missing environment variable)
        return OmegaConf.to_yaml(cfg, resolve=False)


def xp_config_yaml(solver: tp.Any) -> str:
    """The XP config as stored in checkpoints (``device: auto`` replaced by the device actually used)."""
    cfg = solver.xp.cfg
    if isinstance(cfg, DictConfig) and cfg.get("device") == "auto":
        cfg = cfg.copy()
        cfg.device = str(solver.device)
    return config_to_yaml(cfg)


class _YamlConfigSource:
    """State source storing the XP config as a YAML string (write only)."""

    def __init__(self, solver: tp.Any):
        self.solver = solver

    def state_dict(self) -> str:
        return xp_config_yaml(self.solver)

    def load_state_dict(self, state: tp.Any) -> None:
        return None


def plain_metrics(metrics: dict) -> dict:
    """Metrics as python numbers and strings (tensors and numpy scalars are converted)."""
    out: dict = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out[key] = plain_metrics(value)
        elif isinstance(value, torch.Tensor):
            out[key] = value.item() if value.numel() == 1 else value.tolist()
        elif hasattr(value, "item") and not isinstance(value, (str, bytes)):
            out[key] = value.item()
        elif isinstance(value, numbers.Number) and not isinstance(value, (bool, int, float)):
            out[key] = float(value)  # type: ignore[arg-type]
        else:
            out[key] = value
    return out


class CheckpointMixin:
    """Checkpoint logic of `StandardSolver` (expects the attributes it defines)."""

    cfg: DictConfig
    _continue_best_source_keys: list[str]

    # ---- paths ---------------------------------------------------------------------------------------
    def checkpoint_path(self, **kwargs: tp.Any) -> Path:  # type: ignore[override]
        """Path of the last checkpoint of this XP (``<xp folder>/checkpoint.th``)."""
        kwargs.setdefault("use_fsdp", self.cfg.fsdp.use)
        return self.folder / checkpoint.checkpoint_name(**kwargs)  # type: ignore[attr-defined]

    def epoch_checkpoint_path(self, epoch: int, **kwargs: tp.Any) -> Path:
        kwargs.setdefault("use_fsdp", self.cfg.fsdp.use)
        return self.folder / checkpoint.checkpoint_name(str(epoch), **kwargs)  # type: ignore[attr-defined]

    def checkpoint_path_with_name(self, name: str, **kwargs: tp.Any) -> Path:
        kwargs.setdefault("use_fsdp", self.cfg.fsdp.use)
        return self.folder / checkpoint.checkpoint_name(name=name, **kwargs)  # type: ignore[attr-defined]

    @property
    def xps_root(self) -> Path:
        """The Dora folder holding every XP (to resolve signatures)."""
        return Path(self.xp.dora.dir) / self.xp.dora.xps  # type: ignore[attr-defined]

    # ---- saving --------------------------------------------------------------------------------------
    def save_checkpoints(self) -> None:
        """Write ``checkpoint.th``, ``checkpoint_<epoch>.th`` when due, then prune to ``keep_last``."""
        is_sharded = self.cfg.fsdp.use
        if not flashy.distrib.is_rank_zero() and not is_sharded:
            return
        self.logger.info("Model hash: %s", model_hash(self.model))  # type: ignore[attr-defined]
        state = self.state_dict()  # type: ignore[attr-defined]
        epoch = self.epoch - 1  # type: ignore[attr-defined]  # history already holds this epoch
        ckpt = self.cfg.checkpoint
        if ckpt.save_every and epoch % ckpt.save_every == 0:
            minimal = state
            if ckpt.keep_every_states:
                minimal = {name: value for name, value in state.items()
                           if name in ckpt.keep_every_states or name in ("xp.cfg", "xp.sig", "history")}
            checkpoint.save_checkpoint(minimal, self.epoch_checkpoint_path(epoch), is_sharded)
        if ckpt.save_last:
            checkpoint.save_checkpoint(state, self.checkpoint_path(), is_sharded)
        checkpoint.flush_stale_checkpoints(self.checkpoint_path(), ckpt.get("keep_last"))

    # ---- loading -------------------------------------------------------------------------------------
    def load_from_pretrained(self, name: str) -> dict:
        raise NotImplementedError(f"{self.__class__.__name__} cannot load pretrained models ({name})")

    def _log_config_changes(self, state: dict) -> None:
        stored = state.get("xp.cfg")
        if not isinstance(stored, str):
            return
        try:
            old = OmegaConf.to_container(OmegaConf.create(stored), resolve=False)
            new = OmegaConf.to_container(OmegaConf.create(xp_config_yaml(self)), resolve=False)
        except Exception as exc:  # pragma: no cover - corrupt yaml
            self.logger.warning("Could not compare with the stored config: %s", exc)  # type: ignore[attr-defined]
            return
        assert isinstance(old, dict) and isinstance(new, dict)
        diffs = [d for d in config_diff(old, new) if not d[0].startswith(("dora.", "slurm."))]
        if diffs:
            lines = "\n".join(f"  {key}: {a!r} -> {b!r}" for key, a, b in diffs)
            self.logger.warning(  # type: ignore[attr-defined]
                "The config differs from the one stored in this XP's checkpoint (%d keys; a default yaml was "
                "edited?). The current values are used:\n%s", len(diffs), lines)
            self.config_changes = diffs

    def load_checkpoints(self, load_best: bool = False, ignore_state_keys: list[str] | None = None) -> dict | None:
        """Load this XP's last checkpoint, or else the one named by ``continue_from``.

        Args:
            load_best: load the best state into the live sources (always done when continuing from another XP).
            ignore_state_keys: sources not to load (e.g. ``['optimizer']``).
        Returns:
            The loaded state, or None if there was nothing to load.
        """
        ignore_state_keys = list(ignore_state_keys or [])
        is_sharded = self.cfg.fsdp.use
        state: dict | None = None
        source: checkpoint.CheckpointSource | None = None
        current = self.checkpoint_path()
        rank0 = self.checkpoint_path(use_fsdp=False)
        continue_from = self.cfg.get("continue_from") or None
        continue_pretrained = str(continue_from or "").startswith(_PRETRAINED_PREFIX)
        if rank0.exists():
            self.logger.info("Loading existing checkpoint: %s", current)  # type: ignore[attr-defined]
            checkpoint.check_sharded_checkpoint(current, rank0)
            state = checkpoint.load_checkpoint(current, is_sharded)
            source = checkpoint.CheckpointSource.CURRENT_XP
            self._log_config_changes(state)
        elif continue_from and not continue_pretrained:
            self.logger.info("Continuing from checkpoint: %s", continue_from)  # type: ignore[attr-defined]
            path = checkpoint.resolve_checkpoint_path(continue_from, use_fsdp=False, xps_root=self.xps_root,
                                                      environment=self.environment)  # type: ignore[attr-defined]
            if path is None:
                raise RuntimeError(f"could not resolve continue_from={continue_from!r}: no checkpoint at that path "
                                   f"or signature (XPs are looked up in {self.xps_root})")
            state = checkpoint.load_checkpoint(path, is_sharded)
            source = checkpoint.CheckpointSource.OTHER
        elif continue_pretrained:
            assert continue_from is not None
            state = self.load_from_pretrained(continue_from[len(_PRETRAINED_PREFIX):])
            source = checkpoint.CheckpointSource.PRETRAINED
            load_best = True

        if state is not None and source != checkpoint.CheckpointSource.CURRENT_XP:
            self.logger.info("Checkpoint is not from this XP: loading its best state only.")  # type: ignore
            load_best = True
            state = {key: state[key] for key in self._continue_best_source_keys if key in state}
            if state.get("fsdp_best_state"):
                state.pop("best_state", None)
            elif self.cfg.fsdp.use and "best_state" in state:
                state["fsdp_best_state"] = state.pop("best_state")

        if state is not None:
            for key in set(ignore_state_keys):
                state.pop(key, None)
            if load_best and not ("best_state" in state or "fsdp_best_state" in state):
                raise RuntimeError("asked to load the best state, but the checkpoint has no 'best_state'")
            self.load_state_dict(state)  # type: ignore[attr-defined]

        epoch = float(self.epoch)  # type: ignore[attr-defined]
        avg_epoch = flashy.distrib.average_metrics({"epoch": epoch})["epoch"]
        if not math.isclose(avg_epoch, epoch):
            raise RuntimeError(f"inconsistent checkpoints across workers: our epoch is {epoch}, average {avg_epoch}")

        if load_best:
            self.logger.info("Loading the best state into the live sources.")  # type: ignore[attr-defined]
            if not self.cfg.fsdp.use and getattr(self, "fsdp_best_state", None):
                self.best_state.load_state_dict(self.fsdp_best_state)  # type: ignore[attr-defined]
            if self.cfg.fsdp.use:
                with fsdp.switch_to_full_state_dict(self._fsdp_modules):  # type: ignore[attr-defined]
                    self.load_state_dict(self.fsdp_best_state)  # type: ignore[attr-defined]
            else:
                self._load_new_state_dict(self.best_state.state_dict())  # type: ignore[attr-defined]
            if self.ema is not None:  # type: ignore[attr-defined]
                self.logger.info("Re-initializing EMA from the best state")  # type: ignore[attr-defined]
                self.initialize_ema()  # type: ignore[attr-defined]
        return state

    def restore(self, load_best: bool = False, replay_metrics: bool = False,
                ignore_state_keys: list[str] | None = None) -> bool:
        """Restore weights and history of this XP (or ``continue_from``); optionally replay past metrics."""
        self.logger.info("Restoring weights and history.")  # type: ignore[attr-defined]
        restored = self.load_checkpoints(load_best, ignore_state_keys)
        self.logger.info("Model hash: %s", model_hash(self.model))  # type: ignore[attr-defined]
        if replay_metrics and len(self.history) > 0:  # type: ignore[attr-defined]
            self.logger.info("Replaying past metrics...")  # type: ignore[attr-defined]
            for epoch, stages in enumerate(self.history):  # type: ignore[attr-defined]
                for stage_name, metrics in stages.items():
                    self.result_logger._log_summary(  # type: ignore[attr-defined]
                        stage_name, metrics, step=epoch + 1, step_name="epoch",
                        formatter=self.get_formatter(stage_name))  # type: ignore[attr-defined]
        return restored is not None
