"""Objective metrics for audio synthesis and generation.

SI-SNR, spectral distances, PESQ, ViSQOL, RVM, FAD, KL divergence, CLAP text consistency and chroma cosine
similarity.

Public surface of the `audiocraft-metrics` distribution (layer: metrics, depending only on torch, torchaudio,
numpy, scipy and audiocraft-data). Every metric is a stateful `torch.nn.Module` with `update(...)` and
`compute()`, whose states are sums and counts reduced across torch.distributed workers. Names are exported
lazily (PEP 562): importing this package loads nothing heavy, and optional dependencies (pesq, hear21passt,
transformers for CLAP) are imported only by the classes that need them.
"""

import importlib
from typing import TYPE_CHECKING

__all__ = [
    "CLAPTextConsistencyMetric",
    "ChromaCosineSimilarityMetric",
    "ChromaExtractor",
    "ClapArchitecture",
    "ClapModel",
    "EmbeddingStats",
    "FrechetAudioDistanceMetric",
    "KLDivergenceMetric",
    "MelSpectrogramDistance",
    "Metric",
    "MultiResolutionSTFTDistance",
    "PasstKLDivergenceMetric",
    "PasstModel",
    "PesqMetric",
    "RelativeVolumeMel",
    "SISNR",
    "TextConsistencyMetric",
    "VGGish",
    "ViSQOL",
    "chroma_filterbank",
    "frechet_distance",
    "kl_divergence",
    "si_snr",
]

_WHERE = {
    "CLAPTextConsistencyMetric": "clap_consistency",
    "ChromaCosineSimilarityMetric": "chroma_cosinesim",
    "ChromaExtractor": "chroma",
    "ClapArchitecture": "embeddings",
    "ClapModel": "embeddings",
    "EmbeddingStats": "fad",
    "FrechetAudioDistanceMetric": "fad",
    "KLDivergenceMetric": "kld",
    "MelSpectrogramDistance": "spectral",
    "Metric": "_base",
    "MultiResolutionSTFTDistance": "spectral",
    "PasstKLDivergenceMetric": "kld",
    "PasstModel": "embeddings",
    "PesqMetric": "pesq",
    "RelativeVolumeMel": "rvm",
    "SISNR": "sisnr",
    "TextConsistencyMetric": "clap_consistency",
    "VGGish": "embeddings",
    "ViSQOL": "visqol",
    "chroma_filterbank": "chroma",
    "frechet_distance": "fad",
    "kl_divergence": "kld",
    "si_snr": "sisnr",
}

if TYPE_CHECKING:
    from ._base import Metric
    from .chroma import ChromaExtractor, chroma_filterbank
    from .chroma_cosinesim import ChromaCosineSimilarityMetric
    from .clap_consistency import CLAPTextConsistencyMetric, TextConsistencyMetric
    from .embeddings import ClapArchitecture, ClapModel, PasstModel, VGGish
    from .fad import EmbeddingStats, FrechetAudioDistanceMetric, frechet_distance
    from .kld import KLDivergenceMetric, PasstKLDivergenceMetric, kl_divergence
    from .pesq import PesqMetric
    from .rvm import RelativeVolumeMel
    from .sisnr import SISNR, si_snr
    from .spectral import MelSpectrogramDistance, MultiResolutionSTFTDistance
    from .visqol import ViSQOL


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
