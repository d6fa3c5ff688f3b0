"""Neural network building blocks of the models (layer: audiocraft-models).

Streamable convolutions, LSTM and the SEANet encoder/decoder used by EnCodec, and the streaming API they share.
Names are resolved lazily (PEP 562) so that importing one block does not import the others.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "NormConv1d",
    "NormConv2d",
    "NormConvTranspose1d",
    "NormConvTranspose2d",
    "StreamableConv1d",
    "StreamableConvTranspose1d",
    "pad_for_conv1d",
    "pad1d",
    "unpad1d",
    "StreamableLSTM",
    "SEANetEncoder",
    "SEANetDecoder",
    "SEANetResnetBlock",
    "StreamingModule",
    "StreamingSequential",
    "StreamingTransformer",
    "StreamingTransformerLayer",
    "StreamingMultiheadAttention",
    "RotaryEmbedding",
    "CustomGLU",
    "SwiGLU",
    "GeGLU",
    "ReGLU",
    "get_activation_fn",
]

_WHERE = {
    "NormConv1d": "conv",
    "NormConv2d": "conv",
    "NormConvTranspose1d": "conv",
    "NormConvTranspose2d": "conv",
    "StreamableConv1d": "conv",
    "StreamableConvTranspose1d": "conv",
    "pad_for_conv1d": "conv",
    "pad1d": "conv",
    "unpad1d": "conv",
    "StreamableLSTM": "lstm",
    "SEANetEncoder": "seanet",
    "SEANetDecoder": "seanet",
    "SEANetResnetBlock": "seanet",
    "StreamingModule": "streaming",
    "StreamingSequential": "streaming",
    "StreamingTransformer": "transformer",
    "StreamingTransformerLayer": "transformer",
    "StreamingMultiheadAttention": "transformer",
    "RotaryEmbedding": "rope",
    "CustomGLU": "activations",
    "SwiGLU": "activations",
    "GeGLU": "activations",
    "ReGLU": "activations",
    "get_activation_fn": "activations",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
