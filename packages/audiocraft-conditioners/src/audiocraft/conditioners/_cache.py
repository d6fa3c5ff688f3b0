"""On-disk cache of per-file embeddings (layer: audiocraft-conditioners, private).

Moved here from audiocraft-core's ``audiocraft.utils.cache`` (which re-exports it under upstream's path): the chroma
and CLAP conditioners compute the embedding of a whole audio file once, store it keyed by a hash of the file's
path, and cut each training segment's part out of it. Files are written atomically (the data layer's
:func:`audiocraft.data.atomic.atomic_torch_save`) and read with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from audiocraft.data.atomic import atomic_torch_save


class EmbeddingCache:
    """Per-file embedding cache on disk, with a small in-memory LRU.

    Args:
        cache_path: folder of the cache.
        device: where returned embeddings go.
        compute_embed_fn: ``(path, x, idx) -> Tensor``, the full embedding of the file behind ``path``.
        extract_embed_fn: ``(full_embed, x, idx) -> Tensor``, the part for item ``idx`` of ``x`` (default: all).
        max_in_memory: embeddings kept in memory.
    """

    def __init__(
        self,
        cache_path: str | Path,
        device: str | torch.device,
        compute_embed_fn: Callable[[Path, Any, int], torch.Tensor],
        extract_embed_fn: Callable[[torch.Tensor, Any, int], torch.Tensor] | None = None,
        max_in_memory: int = 256,
    ) -> None:
        self.cache_path = Path(cache_path)
        self.cache_path.mkdir(parents=True, exist_ok=True)
        self.device = device
        self._compute = compute_embed_fn
        self._extract = extract_embed_fn or (lambda embed, x, idx: embed)
        self._memory: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.max_in_memory = max_in_memory

    def _file(self, path: str | Path) -> Path:
        return self.cache_path / (hashlib.sha1(str(path).encode()).hexdigest() + ".pt")

    def _get_full(self, path: str | Path, x: Any, idx: int) -> torch.Tensor:
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

    def get_embed_from_cache(self, paths: Sequence[str | Path], x: Any) -> torch.Tensor:
        """Embeddings of a batch ``[B, ...]`` (computed and stored on a miss)."""
        embeds = [self._extract(self._get_full(path, x, idx), x, idx) for idx, path in enumerate(paths)]
        return torch.stack(embeds).to(self.device)

    def populate_embed_cache(self, paths: Sequence[str | Path], x: Any) -> None:
        """Compute and store missing embeddings without returning them."""
        for idx, path in enumerate(paths):
            if not self._file(path).exists():
                atomic_torch_save(self._compute(Path(path), x, idx).detach().cpu(), self._file(path))
