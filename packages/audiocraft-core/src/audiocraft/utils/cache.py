"""Caches for LM training: per-file embeddings (e.g. of a conditioning model) and batches of precomputed codes.

Part of audiocraft-core (training layer). `EmbeddingCache` stores one tensor per audio file, keyed by a hash of its
path; it is owned by audiocraft-conditioners (whose conditioners use it) and re-exported here under upstream's path
``audiocraft.utils.cache``.

`CachedBatchWriter` / `CachedBatchLoader` store and replay the training batches of each epoch (e.g. the codes of a
frozen compression model with their segment infos) so that a later run skips audio decoding and the codec. The
on-disk layout is upstream AudioCraft's: ``<cache>/<epoch:05d>/<update:06d>.zip``, one zip per update whose entries
``0, 1, ...`` each hold one ``torch.save``d item (the tuple of its values, as given to ``save``). A cache written by
upstream (or by one worker here) is read as is. Deliberate differences from upstream, for multi-worker safety and
cost: each worker writes its own shard ``<update:06d>.<rank>-of-<world>.zip`` (no ``broadcast_object`` of every
batch to rank 0, no barrier per batch); the loader concatenates the shards of an update in rank order, which gives
the item order of upstream's merged zip. Shards are written atomically (temporary file + rename), read with
``torch.load(weights_only=True)`` (non-tensor classes such as ``MusicInfo`` must be listed in ``allowed_types``), and
a missing or corrupt shard raises an error naming the file.
"""

from __future__ import annotations

import io
import logging
import pickle
import re
import typing as tp
import zipfile
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import flashy
import torch

from audiocraft.conditioners import EmbeddingCache
from audiocraft.models.export import atomic_write

__all__ = ["CacheError", "CachedBatchLoader", "CachedBatchWriter", "EmbeddingCache"]

logger = logging.getLogger(__name__)

_SHARD_RE = re.compile(r"^(?P<index>\d{6})(?:\.(?P<rank>\d+)-of-(?P<world>\d+))?\.zip$")


class CacheError(RuntimeError):
    """A batch cache is missing, incomplete or unreadable (the message names the file)."""


def _epoch_folder(cache_folder: Path, epoch: int) -> Path:
    return cache_folder / f"{epoch:05d}"


def _shard_name(index: int, rank: int, world_size: int) -> str:
    if world_size == 1:
        return f"{index:06d}.zip"  # upstream's name: a one-worker cache is an upstream cache
    return f"{index:06d}.{rank}-of-{world_size}.zip"


def _detached(value: tp.Any) -> tp.Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()  # a row of a batch is a view: saving it would save the whole batch
    return value


class CachedBatchWriter:
    """Writes the training batches of each epoch as zip shards (see the module docstring for the layout).

    Call `start_epoch` at the beginning of each epoch, then `save` once per update with the batch parts. Each
    worker writes its own files, so no collective call is made. A loader may later read the cache with a
    smaller per-worker batch (or another number of workers), never with more items per update than were written.

    Args:
        cache_folder: root of the cache.
        rank: this worker's rank (default: flashy's, 0 without torch.distributed).
        world_size: number of workers writing (default: flashy's).
    """

    def __init__(self, cache_folder: str | Path, rank: int | None = None, world_size: int | None = None):
        self.cache_folder = Path(cache_folder)
        self.rank = flashy.distrib.rank() if rank is None else rank
        self.world_size = flashy.distrib.world_size() if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"CachedBatchWriter: rank {self.rank} outside world size {self.world_size}")
        self._current_epoch: int | None = None
        self._current_index = 0

    def start_epoch(self, epoch: int) -> None:
        """Begin writing ``epoch``: the update counter restarts at 0.

        This worker's shards left in the epoch's folder by an earlier (interrupted or longer) write are removed so
        that none is replayed.

        Args:
            epoch: the epoch about to be written.
        """
        self._current_epoch = epoch
        self._current_index = 0
        folder = _epoch_folder(self.cache_folder, epoch)
        folder.mkdir(parents=True, exist_ok=True)
        for path in folder.iterdir():
            match = _SHARD_RE.match(path.name)
            if match and _shard_rank(match) == (self.rank, self.world_size):
                path.unlink()

    def save(self, *content: torch.Tensor | Sequence[tp.Any]) -> Path:
        """Store this worker's part of one update.

        Args:
            *content: batch parts, each a tensor batched along dim 0 or a sequence with one value per item
                (e.g. a list of ``MusicInfo``); item ``i`` is stored as ``(content[0][i], content[1][i], ...)``.
                Tensors nested inside values are saved as they are (store compact copies, e.g. ``.short()``).

        Returns:
            the written shard.
        """
        if self._current_epoch is None:
            raise RuntimeError("CachedBatchWriter.save: call start_epoch(epoch) first")
        if not content:
            raise ValueError("CachedBatchWriter.save: nothing to save")
        sizes = {len(part) for part in content}
        if len(sizes) != 1:
            raise ValueError(f"CachedBatchWriter.save: batch parts have different lengths {sorted(sizes)}")
        path = _epoch_folder(self.cache_folder, self._current_epoch) / _shard_name(
            self._current_index, self.rank, self.world_size
        )

        def write(tmp: Path) -> None:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
                for idx, values in enumerate(zip(*content)):
                    buffer = io.BytesIO()
                    torch.save(tuple(_detached(v) for v in values), buffer)
                    zf.writestr(str(idx), buffer.getvalue())

        atomic_write(path, write)
        self._current_index += 1
        return path


def _shard_rank(match: re.Match) -> tuple[int, int]:
    if match["rank"] is None:
        return 0, 1
    return int(match["rank"]), int(match["world"])


class CachedBatchLoader:
    """Replays the batches of a cache written by `CachedBatchWriter`; iterable like a DataLoader.

    Each update's zip (or its per-worker shards, concatenated in rank order) holds ``N`` items; worker ``r`` of
    ``W`` reads items ``[r * batch_size, (r + 1) * batch_size)``, so ``W * batch_size <= N`` is required. Each
    yielded batch is a list with one element per part given to ``save``: tensors stacked along a new dim 0,
    other values as a tuple. Epoch ``e`` reads the folder written at epoch ``e`` (as upstream: no reuse of
    another epoch's segments); iteration ends at the first missing update, an error if it comes before
    ``min_length`` updates.

    Args:
        cache_folder: root of the cache.
        batch_size: items per batch on this worker.
        num_workers: threads reading shards ahead.
        min_length: the number of updates each epoch must have (e.g. ``optim.updates_per_epoch``).
        allowed_types: classes (besides tensors and builtins) the items hold, e.g. ``[MusicInfo, AudioMeta]``;
            they are allowed for this ``weights_only`` load only.
        rank: this worker's rank (default: flashy's).
        world_size: number of workers reading (default: flashy's).
    """

    def __init__(
        self,
        cache_folder: str | Path,
        batch_size: int,
        num_workers: int = 10,
        min_length: int = 1,
        allowed_types: Sequence[type] = (),
        rank: int | None = None,
        world_size: int | None = None,
    ):
        self.cache_folder = Path(cache_folder)
        self.batch_size = batch_size
        self.num_workers = max(1, num_workers)
        self.min_length = min_length
        self.allowed_types: list[tp.Callable | tuple[tp.Callable, str]] = list(allowed_types)
        self.rank = flashy.distrib.rank() if rank is None else rank
        self.world_size = flashy.distrib.world_size() if world_size is None else world_size
        self._current_epoch: int | None = None
        self.sampler = None  # a DataLoader attribute that solvers read

    def start_epoch(self, epoch: int) -> None:
        """Read ``epoch``'s folder from now on."""
        self._current_epoch = epoch

    def epochs(self) -> list[int]:
        """The epochs present in the cache."""
        if not self.cache_folder.is_dir():
            return []
        return sorted(int(p.name) for p in self.cache_folder.iterdir() if p.is_dir() and p.name.isdigit())

    def _folder(self) -> Path:
        epoch = self._current_epoch
        if epoch is None:  # before start_epoch (a solver sizing its epochs): the first cached epoch
            available = self.epochs()
            if not available:
                raise CacheError(f"no cached epoch in {self.cache_folder}: fill the cache first (cache.write=true)")
            epoch = available[0]
        folder = _epoch_folder(self.cache_folder, epoch)
        if not folder.is_dir():
            raise CacheError(
                f"the batch cache has no epoch {epoch}: {folder} does not exist (cached epochs: "
                f"{self.epochs() or 'none'}); fill it for this epoch with cache.write=true, "
                "or train for fewer epochs"
            )
        return folder

    def _shards(self, folder: Path) -> list[list[Path]]:
        """The shard files of each update of ``folder``, in update then rank order (checked complete)."""
        found: dict[int, dict[tuple[int, int], Path]] = {}
        for path in folder.iterdir():
            match = _SHARD_RE.match(path.name)
            if match:
                found.setdefault(int(match["index"]), {})[_shard_rank(match)] = path
        updates: list[list[Path]] = []
        for index in range(max(found, default=-1) + 1):
            shards = found.get(index)
            if shards is None:
                raise CacheError(
                    f"batch cache shard {folder / _shard_name(index, 0, 1)} is missing "
                    f"(later updates exist in {folder})"
                )
            worlds = {world for _, world in shards}
            if len(worlds) > 1:
                raise CacheError(
                    f"update {index} of {folder} was written with several world sizes: "
                    f"{sorted(p.name for p in shards.values())}"
                )
            world = worlds.pop()
            missing = [folder / _shard_name(index, r, world) for r in range(world) if (r, world) not in shards]
            if missing:
                raise CacheError(f"batch cache shard {missing[0]} is missing")
            updates.append([shards[(r, world)] for r in range(world)])
        return updates

    def __len__(self) -> int:
        return len(self._shards(self._folder()))

    def _read_update(self, index: int, shards: list[Path]) -> list[tuple[Path, str, bytes]]:
        """The raw entries of this worker's items of update ``index`` (file reads only: run in threads)."""
        needed = self.batch_size * self.world_size
        start = self.rank * self.batch_size
        entries: list[tuple[Path, str]] = []
        for shard in shards:
            try:
                with zipfile.ZipFile(shard) as zf:
                    entries.extend((shard, name) for name in sorted(zf.namelist(), key=int))
            except (OSError, zipfile.BadZipFile, ValueError) as exc:
                raise CacheError(f"corrupt batch cache shard {shard}: {exc}") from exc
        if len(entries) < needed:
            raise CacheError(
                f"update {index} of the batch cache ({shards[0].parent}) holds {len(entries)} items, "
                f"but {self.world_size} worker(s) x batch size {self.batch_size} = {needed} are needed"
            )
        wanted = entries[start : start + self.batch_size]
        raw: list[tuple[Path, str, bytes]] = []
        for shard in dict.fromkeys(shard for shard, _ in wanted):
            try:
                with zipfile.ZipFile(shard) as zf:
                    raw.extend((shard, name, zf.read(name)) for s, name in wanted if s == shard)
            except (OSError, zipfile.BadZipFile) as exc:
                raise CacheError(f"corrupt batch cache shard {shard}: {exc}") from exc
        return raw

    def _decode(self, raw: list[tuple[Path, str, bytes]]) -> list:
        # Unpickled in the iterating thread: torch's safe_globals allowlist is process-wide, not per thread.
        items = []
        with torch.serialization.safe_globals(self.allowed_types):
            for shard, name, data in raw:
                try:
                    items.append(torch.load(io.BytesIO(data), map_location="cpu", weights_only=True))
                except Exception as exc:
                    hint = (
                        " (list the classes it holds in allowed_types)"
                        if isinstance(exc, pickle.UnpicklingError)
                        else ""
                    )
                    raise CacheError(f"corrupt batch cache shard {shard} (entry {name}){hint}: {exc}") from exc
        return [torch.stack(part) if isinstance(part[0], torch.Tensor) else part for part in zip(*items)]

    def __iter__(self) -> Iterator[list]:
        """Yield the batches of the current epoch, as given to `CachedBatchWriter.save` (see the class doc)."""
        folder = self._folder()
        updates = self._shards(folder)
        if len(updates) < self.min_length:
            raise CacheError(
                f"the batch cache epoch {folder} should have at least {self.min_length} updates, but "
                f"{folder / _shard_name(len(updates), 0, 1)} does not exist"
            )
        with ThreadPoolExecutor(self.num_workers) as pool:
            queue: deque[Future] = deque()
            next_index = 0
            for _ in range(min(2 * self.num_workers, len(updates))):
                queue.append(pool.submit(self._read_update, next_index, updates[next_index]))
                next_index += 1
            try:
                while queue:
                    batch = self._decode(queue.popleft().result())
                    if next_index < len(updates):
                        queue.append(pool.submit(self._read_update, next_index, updates[next_index]))
                        next_index += 1
                    yield batch
            finally:
                for future in queue:
                    future.cancel()
