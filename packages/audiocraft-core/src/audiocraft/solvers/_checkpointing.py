"""Checkpoint saving, loading, ``continue_from`` resolution and resume reporting for `StandardSolver`.

Part of audiocraft-core (training layer). Kept apart from the training loop in `audiocraft.solvers.base`.
Every epoch ends with ``checkpoint.th`` (``save_last``), ``checkpoint_<epoch>.th`` every ``save_every``
epochs (optionally only the ``keep_every_states`` sources), and pruning to ``keep_last`` epoch files. The
state holds the RNG states, so resuming from it replays the next epoch exactly.

Mid-epoch checkpoints (``checkpoint.save_every_updates = N``, off by default; not in upstream AudioCraft, whose
killed runs redo their epoch): every N updates of the train stage, ``checkpoint.th`` is rewritten with the full
state plus a ``'train_position'`` entry (updates done, running metric averages, the solver's per-epoch state). A
resumed run skips the batches already seen (the loaders are pure functions of ``(seed, epoch, index)``), puts the
random generators back as they were right after the last saved update, and continues: it loses at most N updates
and ends bit-identical to an uninterrupted run. End-of-epoch checkpoints have no ``'train_position'`` (upstream's
layout). Temporary files left by a write that was killed are removed on resume.
"""

from __future__ import annotations

import fnmatch
import math
import numbers
import re
import typing as tp
from pathlib import Path

import flashy
import torch
from omegaconf import DictConfig, OmegaConf

from audiocraft.models.loaders import PRETRAINED_PREFIX as _PRETRAINED_PREFIX  # defined once, with its lookup

from ..optim import fsdp
from ..utils import checkpoint
from ..utils.rng import set_rng_state
from ..utils.utils import EpochSampler, config_diff, model_hash
from ._state_fit import summarize_load_error

TRAIN_POSITION_KEY = "train_position"
# audiocraft.models.export.atomic_write names its temporary files `.<name>.<12 hex digits>.tmp<suffix>`.
_TEMPORARY_FILE_RE = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp(\.[^/]*)?$")


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


class ResumableAverage:
    """Running mean of step metrics (flashy's ``averager()`` with beta=1) whose sums can be saved and restored.

    Args:
        state: ``{'total': {...}, 'count': {...}}`` from `state_dict` (a resumed epoch), or None.
    """

    def __init__(self, state: dict | None = None):
        self.total: dict[str, float] = dict((state or {}).get("total", {}))
        self.count: dict[str, float] = dict((state or {}).get("count", {}))

    def __call__(self, metrics: dict) -> dict[str, float]:
        for key, value in metrics.items():
            self.total[key] = self.total.get(key, 0.0) + float(value)
            self.count[key] = self.count.get(key, 0.0) + 1.0
        return self.value()

    def value(self) -> dict[str, float]:
        return {key: total / self.count[key] for key, total in self.total.items()}

    def state_dict(self) -> dict:
        return {"total": dict(self.total), "count": dict(self.count)}


def iterate_from(loader: tp.Iterable, batches: int) -> tp.Iterator:
    """An iterator over ``loader`` that starts after its first ``batches`` batches.

    A DataLoader over an `EpochSampler` skips the indices without loading them; any other iterable is advanced
    batch by batch (its items must not depend on the global random generators, which the caller restores next).
    """
    sampler = getattr(loader, "sampler", None)
    batch_size = getattr(loader, "batch_size", None)
    # isinstance last: mypy narrows `sampler` to the left operand's type after `is`
    if (
        batches
        and batch_size
        and getattr(getattr(loader, "batch_sampler", None), "sampler", None) is sampler
        and isinstance(sampler, EpochSampler)
    ):
        sampler.skip_next(batches * batch_size)
        return iter(loader)
    iterator = iter(loader)
    for done in range(batches):
        try:
            next(iterator)
        except StopIteration:
            raise RuntimeError(
                f"cannot resume mid-epoch: the train loader ran out after {done} of the {batches} "
                "batches already trained on"
            ) from None
    return iterator


def remove_temporary_files(folder: Path) -> list[Path]:
    """Delete the temporary files that a killed atomic write left in ``folder`` and ``folder/exported``."""
    removed = []
    for sub in (Path(folder), Path(folder) / "exported"):
        if not sub.is_dir():
            continue
        for path in sub.iterdir():
            if _TEMPORARY_FILE_RE.match(path.name) and path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


class CheckpointMixin:
    """Checkpoint logic of `StandardSolver` (expects the attributes it defines)."""

    cfg: DictConfig
    _continue_best_source_keys: list[str]
    _train_position: dict | None  # set by load_checkpoints from a mid-epoch checkpoint, taken once by the train stage

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
                minimal = {
                    name: value
                    for name, value in state.items()
                    if name in ckpt.keep_every_states or name in ("xp.cfg", "xp.sig", "history")
                }
            checkpoint.save_checkpoint(minimal, self.epoch_checkpoint_path(epoch), is_sharded)
        if ckpt.save_last:
            checkpoint.save_checkpoint(state, self.checkpoint_path(), is_sharded)
        checkpoint.flush_stale_checkpoints(self.checkpoint_path(), ckpt.get("keep_last"))

    # ---- mid-epoch checkpoints -----------------------------------------------------------------------
    @property
    def save_every_updates(self) -> int:
        """``checkpoint.save_every_updates`` (0 when off)."""
        value = self.cfg.checkpoint.get("save_every_updates") or 0
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"checkpoint.save_every_updates must be a positive integer or null, got {value!r}")
        return value

    def epoch_state_dict(self) -> dict:
        """Per-epoch state of the solver outside its stateful sources (e.g. a generator seeded every epoch).

        Saved in mid-epoch checkpoints and given back to `load_epoch_state_dict` when the epoch resumes.
        """
        return {}

    def load_epoch_state_dict(self, state: dict) -> None:
        """Restore what `epoch_state_dict` returned (called at the resumed update, before its step)."""

    def _global_batch(self) -> int | None:
        dataset = self.cfg.get("dataset")
        if dataset is None or dataset.get("batch_size") is None:
            return None
        return int(dataset.batch_size) * flashy.distrib.world_size()

    def save_mid_epoch_checkpoint(self, updates: int, steps: int, average: ResumableAverage) -> None:
        """Rewrite ``checkpoint.th`` after ``updates`` updates of this epoch's train stage.

        Every worker must call it: the running metric sums differ between workers, and rank 0 stores them all.
        """
        averages: list = [average.state_dict()]
        if flashy.distrib.is_distributed():
            averages = [None] * flashy.distrib.world_size()
            torch.distributed.all_gather_object(averages, average.state_dict())
        if not flashy.distrib.is_rank_zero() and not self.cfg.fsdp.use:
            return
        state = self.state_dict()  # type: ignore[attr-defined]
        state[TRAIN_POSITION_KEY] = {
            "epoch": self.epoch,  # type: ignore[attr-defined]
            "updates": updates,
            "steps": steps,
            "averages": averages,  # type: ignore
            "grad_accum_steps": self.grad_accum_steps,  # type: ignore[attr-defined]
            "global_batch": self._global_batch(),  # type: ignore
            "world_size": flashy.distrib.world_size(),
            "epoch_state": self.epoch_state_dict(),
        }
        checkpoint.save_checkpoint(state, self.checkpoint_path(), self.cfg.fsdp.use)
        self.logger.info("Mid-epoch checkpoint: epoch %d, update %d", self.epoch, updates)  # type: ignore

    def _check_train_position(self, position: dict, path: Path) -> None:
        expected = {"grad_accum_steps": self.grad_accum_steps, "global_batch": self._global_batch()}  # type: ignore
        for key, value in expected.items():
            if position.get(key) != value:
                raise RuntimeError(
                    f"{path} was written in the middle of epoch {position['epoch']} (after {position['updates']} "
                    f"updates) with {key}={position.get(key)}, but the config now gives {value}: the rest of the "
                    "epoch cannot be replayed. Resume with the same config, or delete the checkpoint to restart."
                )
        if position["updates"] >= self.train_updates_per_epoch:  # type: ignore[attr-defined]
            raise RuntimeError(
                f"{path} was written after {position['updates']} updates of epoch {position['epoch']}, but an epoch "
                f"now has {self.train_updates_per_epoch} updates (optim.updates_per_epoch changed?). Resume with "  # type: ignore
                "the same config, or delete the checkpoint to restart."
            )
        if position.get("world_size") != flashy.distrib.world_size():
            self.logger.warning(  # type: ignore[attr-defined]
                "Resuming mid-epoch on %d workers from a checkpoint written on %s: the same global batches are "
                "replayed, but sums run in another order (not bit-identical).",
                flashy.distrib.world_size(),
                position.get("world_size"),
            )

    def take_train_position(self) -> dict | None:
        """The position to resume the current epoch's train stage from (once), or None to start it afresh."""
        position = getattr(self, "_train_position", None)
        self._train_position = None
        if position is None or position["epoch"] != self.epoch:  # type: ignore[attr-defined]
            return None
        self._check_train_position(position, position["path"])
        averages = position["averages"]
        rank = flashy.distrib.rank() if len(averages) == flashy.distrib.world_size() else 0
        return {**position, "average": averages[rank]}  # this worker's running sums

    def resume_train_position(self, position: dict) -> None:
        """Put the generators and the per-epoch state back as right after the saved update."""
        set_rng_state(position["rng_state"])
        self.load_epoch_state_dict(position.get("epoch_state") or {})

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
        # keys out of the XP signature (dora.exclude: logging.*, num_threads, ...) are meant to vary between runs
        exclude = list(OmegaConf.select(self.cfg, "dora.exclude", default=None) or [])
        deliberate = [d for d in diffs if any(fnmatch.fnmatchcase(d[0], str(pattern)) for pattern in exclude)]
        if deliberate:
            self.logger.info(  # type: ignore[attr-defined]
                "Set for this run (keys outside the XP signature): %s",
                ", ".join(f"{key}={b!r}" for key, _, b in deliberate),
            )
        diffs = [d for d in diffs if d not in deliberate]
        if diffs:
            lines = "\n".join(f"  {key}: {a!r} -> {b!r}" for key, a, b in diffs)
            self.logger.warning(  # type: ignore[attr-defined]
                "The config differs from the one stored in this XP's checkpoint (%d keys; a default yaml was "
                "edited?). The current values are used:\n%s",
                len(diffs),
                lines,
            )
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
            position = state.pop(TRAIN_POSITION_KEY, None)
            if position is not None:  # checked when the train stage resumes (an eval-only solver never does)
                self._train_position = {**position, "rng_state": state.get("rng_state"), "path": current}
                self.logger.info(  # type: ignore[attr-defined]
                    "Resuming epoch %d after its update %d (mid-epoch checkpoint)",
                    position["epoch"],
                    position["updates"],
                )
        elif continue_from and not continue_pretrained:
            self.logger.info("Continuing from checkpoint: %s", continue_from)  # type: ignore[attr-defined]
            path = checkpoint.resolve_checkpoint_path(
                continue_from,
                use_fsdp=False,
                xps_root=self.xps_root,
                environment=self.environment,  # type: ignore[attr-defined]
            )
            if path is None:
                raise RuntimeError(
                    f"could not resolve continue_from={continue_from!r}: no checkpoint at that path "
                    f"or signature (XPs are looked up in {self.xps_root})"
                )
            state = checkpoint.load_checkpoint(path, is_sharded)
            source = checkpoint.CheckpointSource.OTHER
        elif continue_pretrained:
            assert continue_from is not None
            state = self.load_from_pretrained(continue_from[len(_PRETRAINED_PREFIX) :])
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
            try:
                if self.cfg.fsdp.use:
                    with fsdp.switch_to_full_state_dict(self._fsdp_modules):  # type: ignore[attr-defined]
                        self.load_state_dict(self.fsdp_best_state)  # type: ignore[attr-defined]
                else:
                    self._load_new_state_dict(self.best_state.state_dict())  # type: ignore[attr-defined]
            except RuntimeError as exc:  # another architecture: one line naming the checkpoint, not torch's hundred
                where = f" ({path})" if source == checkpoint.CheckpointSource.OTHER else ""
                short = summarize_load_error(exc, f"continue_from={continue_from!r}{where}")
                if short is None or source == checkpoint.CheckpointSource.CURRENT_XP:
                    raise
                raise short from None
            if self.ema is not None:  # type: ignore[attr-defined]
                self.logger.info("Re-initializing EMA from the best state")  # type: ignore[attr-defined]
                self.initialize_ema()  # type: ignore[attr-defined]
        return state

    def restore(
        self, load_best: bool = False, replay_metrics: bool = False, ignore_state_keys: list[str] | None = None
    ) -> bool:
        """Restore weights and history of this XP (or ``continue_from``); optionally replay past metrics."""
        if flashy.distrib.is_rank_zero():
            for path in remove_temporary_files(self.folder):  # type: ignore[attr-defined]
                self.logger.info("Removed %s, left by an interrupted write", path)  # type: ignore[attr-defined]
        restored = self.load_checkpoints(load_best, ignore_state_keys)
        if restored is not None:  # a fresh XP has nothing to restore (upstream logs "Restoring" there too)
            self.logger.info("Restored weights and history.")  # type: ignore[attr-defined]
        self.logger.info("Model hash: %s", model_hash(self.model))  # type: ignore[attr-defined]
        if replay_metrics and len(self.history) > 0:  # type: ignore[attr-defined]
            self.logger.info("Replaying past metrics...")  # type: ignore[attr-defined]
            for epoch, stages in enumerate(self.history):  # type: ignore[attr-defined]
                for stage_name, metrics in stages.items():
                    self.result_logger._log_summary(  # type: ignore[attr-defined]
                        stage_name,
                        metrics,
                        step=epoch + 1,
                        step_name="epoch",
                        formatter=self.get_formatter(stage_name),  # type: ignore[attr-defined]
                    )
        return restored is not None
