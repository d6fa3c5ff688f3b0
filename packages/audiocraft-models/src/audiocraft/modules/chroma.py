"""Compatibility path ``audiocraft.modules.chroma`` (audiocraft-models): upstream's ChromaExtractor.

The extractor lives in ``audiocraft.data.chroma`` (torch only, equal to upstream's librosa/torchaudio version; the
melody conditioner and the chroma metric use it); this module keeps upstream's import
``from audiocraft.modules.chroma import ChromaExtractor`` working.
"""

from __future__ import annotations

from audiocraft.data.chroma import ChromaExtractor

__all__ = ["ChromaExtractor"]
