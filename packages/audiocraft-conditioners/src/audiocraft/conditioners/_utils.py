"""The conditioners' tensor helpers under their former private path: see :mod:`audiocraft.conditioners.utils`."""

from __future__ import annotations

from .utils import collate, create_sin_embedding, hash_trick, length_to_mask

__all__ = ["collate", "create_sin_embedding", "hash_trick", "length_to_mask"]
