"""Chromagram extraction for the chroma cosine similarity metric (layer: metrics): a re-export.

The extractor and its filterbank live one layer down, in :mod:`audiocraft.data.chroma` (plain torch, equal to
upstream's torchaudio + librosa ``ChromaExtractor``), where the melody conditioner uses the same code. This module
keeps ``audiocraft.metrics.chroma`` and ``from audiocraft.metrics import ChromaExtractor, chroma_filterbank``.
"""

from audiocraft.data.chroma import ChromaExtractor, chroma_filterbank

__all__ = ["ChromaExtractor", "chroma_filterbank"]
