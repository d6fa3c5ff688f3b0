"""The sampling helpers under their former private path: see :mod:`audiocraft.models.sampling`."""

from __future__ import annotations

from .sampling import multinomial, sample_top_k, sample_top_p

__all__ = ["multinomial", "sample_top_k", "sample_top_p"]
