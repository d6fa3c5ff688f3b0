"""Datasets returning segments together with metadata (``SegmentWithAttributes``) read from JSON sidecars.

Part of ``audiocraft-data``. ``InfoAudioDataset`` always returns ``(wav, AudioInfo)``-style items when
``return_info`` is set; the music and sound datasets build on it. Metadata lives in a JSON file next to
each audio file (``song.wav`` -> ``song.json``, also inside zip archives), or where the manifest's
``info_path`` says. The keyword helpers normalise metadata values the way upstream AudioCraft does.
"""

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ._manifest import AudioMeta
from .audio_dataset import AudioDataset
from .conditions import ConditioningAttributes, SegmentWithAttributes
from .zip import PathInZip, ZipArchiveCache, is_zip_path, open_file_in_zip

logger = logging.getLogger(__name__)

__all__ = [
    "AudioInfo",
    "InfoAudioDataset",
    "info_json_path",
    "load_info_json",
    "get_keyword_or_keyword_list",
    "get_string",
    "get_keyword",
    "get_keyword_list",
]

# SegmentInfo fields (and AudioInfo's cached tokens): not text conditions
_SEGMENT_FIELDS = frozenset(
    {"meta", "seek_time", "n_frames", "total_frames", "sample_rate", "channels", "audio_tokens"}
)


@dataclass
class AudioInfo(SegmentWithAttributes):
    """Segment info with no attributes: the base of the dataset infos.

    Attributes:
        audio_tokens (torch.Tensor, optional): codes of the segment, when training from cached tokens.
    """

    audio_tokens: torch.Tensor | None = None

    def to_condition_attributes(self) -> ConditioningAttributes:
        """No conditions."""
        return ConditioningAttributes()


def info_json_path(meta: AudioMeta) -> str:
    """Where the JSON sidecar of ``meta`` lives: ``meta.info_path`` or the audio path with a ``.json`` suffix."""
    if meta.info_path is not None:
        return str(meta.info_path)
    if is_zip_path(meta.path):
        pz = PathInZip(meta.path)
        return str(PathInZip.from_paths(pz.zip_path, str(Path(pz.file_path).with_suffix(".json"))))
    return str(Path(meta.path).with_suffix(".json"))


def load_info_json(path: str, zip_cache: ZipArchiveCache | None = None) -> dict[str, Any] | None:
    """Read a JSON sidecar (plain file or zip member); None if it does not exist.

    Raises:
        ValueError: naming the file if it is not a JSON object.
    """
    try:
        if is_zip_path(path):
            with open_file_in_zip(path, cache=zip_cache) as fp:
                text = fp.read().decode("utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"metadata file {path}: invalid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"metadata file {path}: expected a JSON object, got {type(data).__name__}")
    return data


class InfoAudioDataset(AudioDataset):
    """``AudioDataset`` whose items carry an ``AudioInfo`` (a ``SegmentWithAttributes``) when ``return_info`` is True.

    Takes the same arguments as :class:`audiocraft.data.audio_dataset.AudioDataset` (``path_mapper`` plays
    the role of upstream's cluster-specific dataset mappers).
    """

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, SegmentWithAttributes]:  # type: ignore
        if not self.return_info:
            wav = super().__getitem__(index)
            assert isinstance(wav, torch.Tensor)
            return wav
        wav, info = super().__getitem__(index)  # type: ignore[misc]
        return wav, AudioInfo(**info.to_dict())

    def _load_info(self, meta: AudioMeta) -> dict[str, Any] | None:
        return load_info_json(info_json_path(meta), self._zip_cache)


def get_keyword_or_keyword_list(value: Any) -> str | list[str] | None:
    """Normalise one keyword, or a list of keywords."""
    if isinstance(value, list):
        return get_keyword_list(value)
    return get_keyword(value)


def get_string(value: Any) -> str | None:
    """Strip a string; None for missing, empty, non-string or ``'None'`` values."""
    if value is None or not isinstance(value, str) or len(value) == 0 or value == "None":
        return None
    return value.strip()


def get_keyword(value: Any) -> str | None:
    """Strip and lower-case a keyword; None for missing, empty, non-string or ``'None'`` values."""
    if value is None or not isinstance(value, str) or len(value) == 0 or value == "None":
        return None
    return value.strip().lower()


def get_keyword_list(values: Any) -> list[str] | None:
    """Normalise a list of keywords (or a comma/space separated string); None if nothing is left."""
    if isinstance(values, str):
        values = [v.strip() for v in re.split(r"[,\s]", values)]
    elif isinstance(values, float) and math.isnan(values):
        values = []
    if not isinstance(values, list):
        logger.debug("unexpected keyword list %r", values)
        values = [str(values)]
    keywords = [get_keyword(v) for v in values]
    kept = [k for k in keywords if k is not None]
    return kept or None
