"""Small tensor helpers of the conditioners (layer: audiocraft-conditioners, public).

``collate``, ``hash_trick`` and ``length_to_mask`` are upstream's ``audiocraft.utils.utils`` helpers; audiocraft-core
re-exports them there (it sits above this package, so it imports them from this public module).
``create_sin_embedding`` is the fuser's (audiocraft-models' ``audiocraft.modules.transformer`` uses it too).
"""

from __future__ import annotations

import hashlib

import torch
from torch.nn.utils.rnn import pad_sequence

__all__ = ["collate", "create_sin_embedding", "hash_trick", "length_to_mask"]


def hash_trick(word: str, vocab_size: int) -> int:
    """Bucket of ``word`` among ``vocab_size`` bins: ``int(sha256(word.encode('utf-8')).hexdigest(), 16) % vocab_size``.

    Upstream's ``audiocraft.utils.utils.hash_trick``; the sha256 makes it stable across processes (``hash()`` is not).
    """
    return int(hashlib.sha256(word.encode("utf-8")).hexdigest(), 16) % vocab_size


def length_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """Boolean mask ``[B, max_len]`` that is True on the first ``lengths[b]`` steps of each row.

    Without ``max_len`` the mask is as long as the longest item, and never shorter than 1 (so that a batch whose
    items all have length 0 still gives one masked step, as upstream's helper does).
    """
    if lengths.dim() != 1:
        raise ValueError(f"lengths must be a 1-d tensor, got shape {tuple(lengths.shape)}")
    final_length = int(lengths.max().item()) if not max_len else max_len
    final_length = max(final_length, 1)
    return torch.arange(final_length, device=lengths.device)[None, :] < lengths[:, None]


def collate(tensors: list[torch.Tensor], dim: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack tensors that differ in size along ``dim`` into one batch, right-padding them with zeros.

    Returns:
        The batch (a new leading dimension, ``dim`` padded to the longest item) and the length of each item ``[B]``.
    """
    moved = [x.transpose(0, dim) for x in tensors]
    lengths = torch.tensor([len(x) for x in moved], dtype=torch.long)
    padded = pad_sequence(moved).transpose(0, 1).transpose(1, dim + 1)
    return padded, lengths


def create_sin_embedding(
    positions: torch.Tensor, dim: int, max_period: float = 10000, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Sinusoidal embedding ``[cos(phase), sin(phase)]`` with ``phase = t / max_period ** (i / (dim / 2 - 1))``.

    Upstream's formula (``audiocraft.modules.transformer.create_sin_embedding``, which re-exports this one): the
    fuser's cross-attention positions and the transformer's positional embedding.

    Args:
        positions (torch.Tensor): positions, e.g. ``[B, T, 1]``.
        dim (int): embedding dimension, even.
        max_period (float): longest period.
        dtype (torch.dtype): computation and output dtype.

    Returns:
        torch.Tensor: ``positions.shape[:-1] + (dim,)``.
    """
    if dim % 2:
        raise ValueError(f"sinusoidal embedding dim must be even, got {dim}")
    half = dim // 2
    positions = positions.to(dtype)
    exponents = torch.arange(half, device=positions.device, dtype=dtype).view(1, 1, -1) / (half - 1)
    phase = positions / torch.full([], max_period, device=positions.device, dtype=dtype) ** exponents
    return torch.cat([torch.cos(phase), torch.sin(phase)], dim=-1)
