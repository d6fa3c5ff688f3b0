"""Caches for LM training: per-file embeddings (e.g. of a conditioning model) and batches of precomputed codes.

Part of audiocraft-core (training layer). Files are written atomically and read with ``weights_only=True``.
`EmbeddingCache` stores one tensor per audio file, keyed by a hash of its path; `CachedBatchWriter` /
`CachedBatchLoader` store and replay the batches of an epoch (e.g. EnCodec codes) so that later epochs skip
the codec.
"""

from __future__ import annotations

import hashlib
import logging
import typing as tp
from collections import OrderedDict
from pathlib import Path

import torch

from .checkpoint import atomic_torch_save

logger = logging.getLogger(__name__)


class EmbeddingCache:
    """Per-file embedding cache on disk, with a small in-memory LRU.

    Args:
        cache_path: folder of the cache.
        device: where returned embeddings go.
        compute_embed_fn: ``(path, x, idx) -> Tensor``, the full embedding of the file behind ``path``.
        extract_embed_fn: ``(full_embed, x, idx) -> Tensor``, the part for item ``idx`` of ``x`` (default: all).
        max_in_memory: embeddings kept in memory.
    """

    def __init__(self, cache_path: str | Path, device: str | torch.device,
                 compute_embed_fn: tp.Callable[[Path, tp.Any, int], torch.Tensor],
                 extract_embed_fn: tp.Callable[[torch.Tensor, tp.Any, int], torch.Tensor] | None = None,
                 max_in_memory: int = 256):
        self.cache_path = Path(cache_path)
        self.cache_path.mkdir(parents=True, exist_ok=True)
        self.device = device
        self._compute = compute_embed_fn
        self._extract = extract_embed_fn or (lambda embed, x, idx: embed)
        self._memory: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.max_in_memory = max_in_memory

    def _file(self, path: str | Path) -> Path:
        return self.cache_path / (hashlib.sha1(str(path).encode()).hexdigest() + ".pt")

    def _get_full(self, path: str | Path, x: tp.Any, idx: int) -> torch.Tensor:
        key = str(path)
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        file = self._file(path)
        if file.exists():
            try:
                embed = torch.load(file, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise RuntimeError(f"corrupt embedding cache file {file} (for {path}); delete it") from exc
        else:
            embed = self._compute(Path(path), x, idx).detach().cpu()
            atomic_torch_save(embed, file)
        self._memory[key] = embed
        while len(self._memory) > self.max_in_memory:
            self._memory.popitem(last=False)
        return embed

    def get_embed_from_cache(self, paths: list[str | Path], x: tp.Any) -> torch.Tensor:
        """Embeddings of a batch ``[B, ...]`` (computed and stored on a miss)."""
        embeds = [self._extract(self._get_full(path, x, idx), x, idx) for idx, path in enumerate(paths)]
        return torch.stack(embeds).to(self.device)

    def populate_embed_cache(self, paths: list[str | Path], x: tp.Any) -> None:
        """Compute and store missing embeddings without returning them."""
        for idx, path in enumerate(paths):
            if not self._file(path).exists():
                atomic_torch_save(self._compute(Path(path), x, idx).detach().cpu(), self._file(path))


class CachedBatchWriter:
    """Writes the batches of each epoch to ``<folder>/epoch_<e>/rank_<r>/batch_<i>.pt`` (one item list each)."""

    def __init__(self, cache_folder: str | Path, rank: int = 0):
        self.cache_folder = Path(cache_folder)
        self.rank = rank
        self._epoch: int | None = None
        self._index = 0

    def start_epoch(self, epoch: int) -> None:
        self._epoch = epoch
        self._index = 0

    def save(self, *content: torch.Tensor | list) -> Path:
        """Store one batch: each argument is batched along dim 0 (tensors) or a list of per-item values."""
        if self._epoch is None:
            raise RuntimeError("call start_epoch before save")
        size = len(content[0])
        items = [tuple(part[i].detach().cpu() if isinstance(part, torch.Tensor) else part[i] for part in content)
                 for i in range(size)]
        path = self.cache_folder / f"epoch_{self._epoch}" / f"rank_{self.rank}" / f"batch_{self._index:07d}.pt"
        atomic_torch_save(items, path)
        self._index += 1
        return path


class CachedBatchLoader:
    """Replays the batches of an epoch written by `CachedBatchWriter` (all ranks), regrouped by ``batch_size``.

    Args:
        cache_folder: the writer's folder.
        batch_size: items per returned batch.
        min_length: epochs of the cache are reused cyclically: epoch ``e`` reads ``epoch_{e % available}``.
    """

    def __init__(self, cache_folder: str | Path, batch_size: int, min_length: int = 1):
        self.cache_folder = Path(cache_folder)
        self.batch_size = batch_size
        self.min_length = min_length
        self._epoch = 0

    def _epochs(self) -> list[Path]:
        return sorted(self.cache_folder.glob("epoch_*"), key=lambda p: int(p.name.split("_")[1]))

    def start_epoch(self, epoch: int) -> None:
        self._epoch = epoch

    def _files(self) -> list[Path]:
        epochs = self._epochs()
        if not epochs:
            raise FileNotFoundError(f"no cached epoch in {self.cache_folder}")
        folder = epochs[self._epoch % len(epochs)]
        return sorted(folder.glob("rank_*/batch_*.pt"), key=lambda p: (p.name, p.parent.name))

    def __len__(self) -> int:
        items = sum(len(torch.load(f, weights_only=True)) for f in self._files())
        return max(self.min_length, items // self.batch_size)

    def __iter__(self) -> tp.Iterator[list]:
        pending: list = []
        for file in self._files():
            pending.extend(torch.load(file, map_location="cpu", weights_only=True))
            while len(pending) >= self.batch_size:
                batch, pending = pending[:self.batch_size], pending[self.batch_size:]
                yield _collate(batch)


def _collate(items: list[tuple]) -> list:
    out: list = []
    for parts in zip(*items):
        if all(isinstance(p, torch.Tensor) for p in parts):
            out.append(torch.stack(parts))
        else:
            out.append(list(parts))
    return out
