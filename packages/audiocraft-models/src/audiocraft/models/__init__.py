"""Models: compression models (EnCodec), their builders, loaders and export (layer: audiocraft-models).

Names are resolved lazily (PEP 562): ``import audiocraft.models`` imports nothing heavy, and optional backends
(huggingface_hub, safetensors, dac) are only imported by the functions that need them.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CompressionModel",
    "EncodecModel",
    "DAC",
    "builders",
    "loaders",
    "export",
    "get_debug_compression_model",
    "load_compression_model",
    "export_encodec",
    "MusicGen",
    "AudioGen",
    "genmodel",
    "musicgen",
    "audiogen",
    "LMModel",
    "lm",
    "load_lm_model",
    "get_debug_lm_model",
]

_WHERE = {
    "CompressionModel": "encodec",
    "EncodecModel": "encodec",
    "DAC": "dac",
    "get_debug_compression_model": "builders",
    "load_compression_model": "loaders",
    "export_encodec": "export",
    "MusicGen": "musicgen",
    "AudioGen": "audiogen",
    "LMModel": "lm",
    "load_lm_model": "loaders",
    "get_debug_lm_model": "builders",
}
_SUBMODULES = {"builders", "loaders", "export", "encodec", "dac", "testing", "genmodel", "musicgen", "audiogen", "lm"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    elif name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
