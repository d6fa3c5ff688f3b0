"""Training checkpoints: naming, atomic saving, safe loading, resolution of ``continue_from`` and pruning.

Part of audiocraft-core (training layer). A training checkpoint is a plain dict of containers, numbers,
strings and tensors (the training config is stored as a YAML string under ``'xp.cfg'``), so it loads with
``torch.load(..., weights_only=True)``. Files are written with audiocraft-models' one atomic writer
(`audiocraft.models.export.atomic_torch_save`, re-exported here): a temporary file in the same folder, flushed
to disk and moved in place with ``os.replace``, so a reader never sees a half-written checkpoint, even if the
writer is killed mid-write.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import typing as tp
from enum import Enum
from pathlib import Path

import torch

from audiocraft.models.export import atomic_torch_save

if tp.TYPE_CHECKING:
    from ..environment import AudioCraftEnvironment

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointSource",
    "SIG_PREFIX",
    "atomic_torch_save",
    "check_sharded_checkpoint",
    "checkpoint_name",
    "epoch_checkpoints",
    "flush_stale_checkpoints",
    "is_sharded_checkpoint",
    "load_checkpoint",
    "resolve_checkpoint_path",
    "save_checkpoint",
]

SIG_PREFIX = "//sig/"
"""Prefix of a checkpoint path naming a Dora XP by signature (``//sig/<sig>``)."""
_SIG_RE = re.compile(r"^[0-9a-f]{8}$")


class CheckpointSource(Enum):
    """Where a loaded checkpoint comes from."""

    CURRENT_XP = "current_xp"
    PRETRAINED = "pretrained"
    OTHER = "other"


def _rank() -> int:
    # Read the rank without requiring torch.distributed to be initialised (same rule as dora/flashy).
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return int(os.environ.get("RANK", 0))


def checkpoint_name(name: str | None = None, rank: int | None = None, use_fsdp: bool = False) -> str:
    """Checkpoint file name: ``checkpoint[_<name>].th[.<rank>]``.

    Args:
        name: suffix of the stem; None for the last checkpoint, an epoch number or ``'best'`` otherwise.
        rank: worker rank (read from the environment when None); only used for sharded (FSDP) checkpoints.
        use_fsdp: whether checkpoints are sharded across ranks.

    Returns:
        The file name.
    """
    if rank is None:
        rank = _rank()
    suffix = f".{rank}" if (use_fsdp and rank > 0) else ""
    name_part = f"_{name}" if name is not None else ""
    return f"checkpoint{name_part}.th{suffix}"


def is_sharded_checkpoint(path: Path) -> bool:
    """Whether ``path`` names a per-rank shard (``checkpoint.th.<rank>``)."""
    return re.search(r"\.th\.\d+$", Path(path).name) is not None


def resolve_checkpoint_path(
    sig_or_path: str | Path,
    name: str | None = None,
    use_fsdp: bool = False,
    xps_root: Path | None = None,
    environment: AudioCraftEnvironment | None = None,
) -> Path | None:
    """Resolve a checkpoint from a Dora signature or a path.

    Accepted forms: ``//sig/<SIG>``, a bare signature ``<SIG>`` (8 hex digits) when no such file exists,
    ``//reference/...`` (resolved by ``environment``), a checkpoint file, or a folder holding one.

    Args:
        sig_or_path: what to resolve.
        name: checkpoint name suffix (see `checkpoint_name`).
        use_fsdp: whether to look for a per-rank shard.
        xps_root: the Dora ``xps`` folder (``<dora.dir>/xps``); needed to resolve signatures.
        environment: resolves ``//reference``; needed only for such paths.

    Returns:
        The checkpoint path if it exists, else None.
    """
    text = str(sig_or_path)
    path: Path
    sig = None
    if text.startswith(SIG_PREFIX):
        sig = text[len(SIG_PREFIX) :].strip("/")
    elif _SIG_RE.match(text) and not Path(text).exists():
        sig = text
    if sig is not None:
        if xps_root is None:
            raise ValueError(f"cannot resolve signature {text!r} without the Dora xps folder")
        path = Path(xps_root) / sig
    elif text.startswith("//reference"):
        if environment is None:
            raise ValueError(f"cannot resolve {text!r} without an AudioCraftEnvironment")
        path = environment.resolve_reference_path(text)
    else:
        path = Path(text)
    if path.is_dir():
        path = path / checkpoint_name(name, use_fsdp=use_fsdp)
    return path if path.exists() else None


def save_checkpoint(state: tp.Any, checkpoint_path: Path | str, is_sharded: bool = False) -> None:
    """Atomically write ``state`` to ``checkpoint_path`` (temp file in the same folder, fsync, os.replace).

    Args:
        state: the checkpoint content (containers, numbers, strings, tensors).
        checkpoint_path: destination file.
        is_sharded: kept for upstream compatibility; every rank writes its own file when sharded.
    """
    try:
        atomic_torch_save(state, Path(checkpoint_path))
    except Exception as exc:
        if _disk_full(exc):  # torch reports a full disk as "[enforce fail at inline_container.cc] unexpected pos"
            raise OSError(
                errno.ENOSPC,
                f"no space left on device while writing checkpoint {checkpoint_path}; the "
                "previous checkpoint is kept intact. Free some space and run the same command again to "
                "resume from it",
                str(checkpoint_path),
            ) from exc
        raise
    logger.info("Checkpoint saved to %s", checkpoint_path)


def _disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` or an exception it was raised from is ENOSPC (no space left) or EDQUOT (quota)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        current = current.__cause__ or current.__context__
    return False


def load_checkpoint(checkpoint_path: Path | str, is_sharded: bool = False) -> tp.Any:
    """Load a checkpoint with ``weights_only=True``.

    Raises:
        FileNotFoundError: if the file does not exist.
        RuntimeError: naming the file, if it cannot be read (corrupt, or holding pickled objects).
    """
    checkpoint_path = Path(checkpoint_path)
    if not checkpoint_path.exists():
        raise FileNotFoundError(f"checkpoint {checkpoint_path} does not exist")
    try:
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RuntimeError(
            f"could not load checkpoint {checkpoint_path}: {exc.__class__.__name__}: {exc}. "
            "Training checkpoints must hold only containers, numbers, strings and tensors "
            "(weights_only=True); a checkpoint written by upstream AudioCraft holding OmegaConf objects "
            "must be converted first (see docs/TRAINING.md)."
        ) from exc
    logger.info("Checkpoint loaded from %s", checkpoint_path)
    return state


def epoch_checkpoints(folder: Path, rank_suffix: str = "") -> list[tuple[int, Path]]:
    """List ``checkpoint_<epoch>.th`` files of ``folder`` sorted by epoch."""
    found = []
    for path in Path(folder).glob(f"checkpoint_*.th{rank_suffix}"):
        if rank_suffix == "" and is_sharded_checkpoint(path):
            continue
        stem = path.name.split(".", 1)[0]
        epoch_part = stem.split("_", 1)[1]
        if epoch_part.isdigit():
            found.append((int(epoch_part), path))
    return sorted(found)


def flush_stale_checkpoints(checkpoint_path: Path, keep_last: int | None = None) -> list[Path]:
    """Delete the oldest ``checkpoint_<epoch>.th`` files next to ``checkpoint_path``, keeping ``keep_last``.

    Args:
        checkpoint_path: the last checkpoint (its folder is scanned).
        keep_last: how many epoch checkpoints to keep; None or <= 0 keeps them all.

    Returns:
        The removed files.
    """
    if keep_last is None or keep_last <= 0:
        return []
    rank = _rank()
    suffix = f".{rank}" if rank > 0 else ""
    files = [path for _, path in epoch_checkpoints(Path(checkpoint_path).parent, suffix)]
    to_flush = files[: max(0, len(files) - keep_last)]
    for path in to_flush:
        logger.info("Removing stale checkpoint %s (keep_last=%d)", path, keep_last)
        path.unlink(missing_ok=True)
    return to_flush


def check_sharded_checkpoint(checkpoint_path: Path, rank0_checkpoint_path: Path) -> None:
    """Sanity check for sharded checkpoints: every shard must sit beside the rank 0 file."""
    if is_sharded_checkpoint(checkpoint_path) and not Path(rank0_checkpoint_path).exists():
        raise RuntimeError(f"shard {checkpoint_path} found without its rank 0 checkpoint {rank0_checkpoint_path}")
