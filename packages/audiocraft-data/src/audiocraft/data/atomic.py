"""Atomic file writing (layer: audiocraft-data, public): the project's one atomic writer.

:func:`atomic_write` writes a file so that its name never holds a partial (or unchecked) file, even if the writer
is killed: a temporary file in the same folder, flushed to disk, optionally checked, moved in place with
``os.replace``, the folder flushed too. Every package writes through it: audio files and metadata sidecars here, the
conditioners' embedding cache, the release export of audiocraft-models (``audiocraft.models.export.atomic_write``
re-exports it) and the training checkpoints of audiocraft-core (``audiocraft.utils.checkpoint.atomic_torch_save``).

Temporary files are named ``.<name>.<12 hex digits>.tmp<suffix>``: they keep the destination's suffix (so that
format-sniffing writers and loaders see it), and the training checkpointer recognises leftovers by that pattern.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = ["atomic_torch_save", "atomic_write"]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)  # fsync flushes the file (or folder entry), whatever the descriptor's mode
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[Path], None], check: Callable[[Path], None] | None = None) -> Path:
    """Write a file so that ``path`` never holds a partial (or unchecked) file, even if the writer is killed.

    ``write`` fills a temporary file in the same folder (same suffix as ``path``, created with the permissions
    the umask gives, not ``mkstemp``'s 0600), which is flushed to disk, checked, then moved in place with
    ``os.replace``; the folder is flushed too, so that the rename survives a crash. On any error (or interrupt) the
    temporary file is removed and ``path`` keeps what it held before.

    Args:
        path: destination file (its folder is created).
        write: writes the content to the path it is given.
        check: called on the written temporary file before it takes its name; raising aborts the write.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp{path.suffix}"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the kernel applies the umask
    try:
        write(tmp)
        _fsync(tmp)
        if check is not None:
            check(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        _fsync(path.parent)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on folders
        pass
    return path


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` through :func:`atomic_write`.

    Args:
        obj: what to save.
        path: destination file.
    """

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save(obj, f)

    atomic_write(path, write)
