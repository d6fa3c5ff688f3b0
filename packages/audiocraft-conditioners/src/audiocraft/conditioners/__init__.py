"""Conditioning for audio language models (distribution ``audiocraft-conditioners``, above audiocraft-data).

Tokenizers, the text / waveform / joint-embedding conditioners, the :class:`ConditioningProvider`, the
:class:`ConditionFuser` and the condition dropout modules, under upstream AudioCraft's names, constructor
signatures and state-dict keys. The condition *types* live one layer down, in ``audiocraft.data.conditions``, so
that datasets can build them without importing conditioners; they are re-exported here.

Every name is loaded on first access (PEP 562), so ``import audiocraft.conditioners`` is cheap and the optional
dependencies (spaCy, transformers, demucs) are imported only by the classes that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # static view of the lazy names below
    from audiocraft.data.chroma import ChromaExtractor, chroma_filterbank
    from audiocraft.data.conditions import (
        ConditioningAttributes,
        JointEmbedCondition,
        SegmentWithAttributes,
        SymbolicCondition,
        WavCondition,
    )

    from ._autocast import TorchAutocast
    from ._base import BaseConditioner, ConditionType, TextCondition, TextConditioner
    from ._cache import EmbeddingCache
    from ._chroma import ChromaStemConditioner
    from ._clap import CLAPEmbeddingConditioner
    from ._dropout import (
        AttributeDropout,
        ClassifierFreeGuidanceDropout,
        DropoutModule,
        dropout_condition,
        nullify_condition,
        nullify_joint_embed,
        nullify_wav,
    )
    from ._fuser import ConditionFuser
    from ._joint import JointEmbeddingConditioner
    from ._provider import ConditioningProvider
    from ._streaming import StreamingStateModule
    from ._t5 import T5Conditioner
    from ._text import LUTConditioner
    from ._tokenizers import NoopTokenizer, Tokenizer, WhiteSpaceTokenizer
    from ._waveform import WaveformConditioner

_WHERE: dict[str, str] = {
    # condition types (audiocraft-data)
    "ConditioningAttributes": "audiocraft.data.conditions",
    "JointEmbedCondition": "audiocraft.data.conditions",
    "SegmentWithAttributes": "audiocraft.data.conditions",
    "SymbolicCondition": "audiocraft.data.conditions",
    "WavCondition": "audiocraft.data.conditions",
    # interface
    "BaseConditioner": "._base",
    "ConditionType": "._base",
    "TextCondition": "._base",
    "TextConditioner": "._base",
    # text
    "Tokenizer": "._tokenizers",
    "NoopTokenizer": "._tokenizers",
    "WhiteSpaceTokenizer": "._tokenizers",
    "LUTConditioner": "._text",
    "T5Conditioner": "._t5",
    # waveform and joint embedding
    "WaveformConditioner": "._waveform",
    "ChromaExtractor": "audiocraft.data.chroma",  # the one chromagram, shared with the metrics
    "ChromaStemConditioner": "._chroma",
    "chroma_filterbank": "audiocraft.data.chroma",
    "JointEmbeddingConditioner": "._joint",
    "CLAPEmbeddingConditioner": "._clap",
    # dropout
    "nullify_condition": "._dropout",
    "nullify_wav": "._dropout",
    "nullify_joint_embed": "._dropout",
    "dropout_condition": "._dropout",
    "DropoutModule": "._dropout",
    "AttributeDropout": "._dropout",
    "ClassifierFreeGuidanceDropout": "._dropout",
    # provider and fuser
    "ConditioningProvider": "._provider",
    "ConditionFuser": "._fuser",
    "StreamingStateModule": "._streaming",
    # helpers the conditioners share with training code (core re-exports them under upstream's paths)
    "EmbeddingCache": "._cache",
    "TorchAutocast": "._autocast",
}

__all__ = [
    "AttributeDropout",
    "BaseConditioner",
    "CLAPEmbeddingConditioner",
    "ChromaExtractor",
    "ChromaStemConditioner",
    "ClassifierFreeGuidanceDropout",
    "ConditionFuser",
    "ConditionType",
    "ConditioningAttributes",
    "ConditioningProvider",
    "DropoutModule",
    "EmbeddingCache",
    "JointEmbedCondition",
    "JointEmbeddingConditioner",
    "LUTConditioner",
    "NoopTokenizer",
    "SegmentWithAttributes",
    "StreamingStateModule",
    "SymbolicCondition",
    "T5Conditioner",
    "TextCondition",
    "TextConditioner",
    "Tokenizer",
    "TorchAutocast",
    "WavCondition",
    "WaveformConditioner",
    "WhiteSpaceTokenizer",
    "chroma_filterbank",
    "dropout_condition",
    "nullify_condition",
    "nullify_joint_embed",
    "nullify_wav",
]


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
