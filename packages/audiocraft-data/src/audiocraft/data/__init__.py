"""``audiocraft.data``: audio I/O, manifests, datasets and condition types (package ``audiocraft-data``).

The bottom layer of the AudioCraft package DAG: it depends only on torch, numpy, soundfile, julius
and tqdm (PyAV optionally). It also holds what the packages above share: the DSP (``chroma``: the chromagram), the
one atomic file writer (``atomic``) and the reader of laion-CLAP checkpoints (``laion_clap``, torch only).
Public names are loaded lazily (PEP 562), so importing the package is cheap.
Upstream module paths (``audiocraft.data.audio``, ``audiocraft.data.audio_dataset``, ...) work too.
"""

import importlib
from typing import Any

__all__ = [
    # audio I/O
    "audio_info",
    "audio_read",
    "audio_write",
    "AudioFileInfo",
    "AudioFileError",
    # audio utils
    "convert_audio",
    "convert_audio_channels",
    "normalize_audio",
    "normalize_loudness",
    "f32_pcm",
    "i16_pcm",
    # manifests and datasets
    "AudioMeta",
    "SegmentInfo",
    "ManifestError",
    "load_audio_meta",
    "save_audio_meta",
    "find_audio_files",
    "scan_audio_files",
    "AudioDataset",
    "InfoAudioDataset",
    "AudioInfo",
    "MusicDataset",
    "MusicInfo",
    "SoundDataset",
    "SoundInfo",
    # conditions
    "ConditioningAttributes",
    "WavCondition",
    "JointEmbedCondition",
    "SymbolicCondition",
    "SegmentWithAttributes",
    # zip
    "PathInZip",
    "ZipArchiveCache",
    # DSP
    "ChromaExtractor",
    "chroma_filterbank",
    # atomic file writing
    "atomic_write",
    "atomic_torch_save",
    # submodules (upstream does `from audiocraft.data import audio_dataset`)
    "audio",
    "audio_dataset",
    "audio_utils",
    "info_audio_dataset",
    "music_dataset",
    "sound_dataset",
    "zip",
    "conditions",
    "chroma",
    "atomic",
    "laion_clap",
]

_WHERE = {
    "audio_info": "audio",
    "audio_read": "audio",
    "audio_write": "audio",
    "AudioFileInfo": "audio",
    "AudioFileError": "audio",
    "convert_audio": "audio_utils",
    "convert_audio_channels": "audio_utils",
    "normalize_audio": "audio_utils",
    "normalize_loudness": "audio_utils",
    "f32_pcm": "audio_utils",
    "i16_pcm": "audio_utils",
    "AudioMeta": "audio_dataset",
    "SegmentInfo": "audio_dataset",
    "ManifestError": "audio_dataset",
    "load_audio_meta": "audio_dataset",
    "save_audio_meta": "audio_dataset",
    "find_audio_files": "audio_dataset",
    "scan_audio_files": "audio_dataset",
    "AudioDataset": "audio_dataset",
    "InfoAudioDataset": "info_audio_dataset",
    "AudioInfo": "info_audio_dataset",
    "MusicDataset": "music_dataset",
    "MusicInfo": "music_dataset",
    "SoundDataset": "sound_dataset",
    "SoundInfo": "sound_dataset",
    "ConditioningAttributes": "conditions",
    "WavCondition": "conditions",
    "JointEmbedCondition": "conditions",
    "SymbolicCondition": "conditions",
    "SegmentWithAttributes": "conditions",
    "PathInZip": "zip",
    "ZipArchiveCache": "zip",
    "ChromaExtractor": "chroma",
    "chroma_filterbank": "chroma",
    "atomic_write": "atomic",
    "atomic_torch_save": "atomic",
}
_SUBMODULES = {
    "audio",
    "audio_dataset",
    "audio_utils",
    "info_audio_dataset",
    "music_dataset",
    "sound_dataset",
    "zip",
    "conditions",
    "example",
    "metadata",
    "chroma",
    "atomic",
    "laion_clap",
}


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
    return sorted(__all__)
