"""``MusicDataset``: music segments with their metadata (title, artist, key, bpm, genre, ...) as conditions.

Part of ``audiocraft-data``. Each item is ``(wav [C, T], MusicInfo)``; ``MusicInfo.to_condition_attributes()``
gives the text conditions (description, genre, ...), the ``self_wav`` waveform condition and the joint
embedding conditions, as upstream AudioCraft's MusicDataset does. The text augmentations (``merge_text_p``,
``drop_desc_p``, ``drop_other_p``) and paraphrases follow upstream, but draw from an RNG seeded by
``(shuffle_seed, epoch, index)`` so that they are reproducible like the segments.
"""

import gzip
import json
import logging
import random
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch

from .conditions import ConditioningAttributes, JointEmbedCondition, WavCondition
from .info_audio_dataset import (
    _SEGMENT_FIELDS,
    AudioInfo,
    InfoAudioDataset,
    get_keyword,
    get_keyword_list,
    get_string,
)

logger = logging.getLogger(__name__)

__all__ = ["MusicInfo", "MusicDataset", "Paraphraser", "augment_music_info_description", "get_musical_key", "get_bpm"]

_AUGMENT_FIELDS = ("key", "bpm", "genre", "moods", "instrument", "keywords")


def get_musical_key(value: Any) -> str | None:
    """Lower-cased key (``'a minor'``); None when missing or when several keys are given (``'C, G'``)."""
    if value is None or not isinstance(value, str) or len(value) == 0 or value == "None" or "," in value:
        return None
    return value.strip().lower()


def get_bpm(value: Any) -> float | None:
    """Tempo as a float; None when missing or not a number."""
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@dataclass
class MusicInfo(AudioInfo):
    """Segment info with music metadata.

    Attributes:
        title, artist, key, genre, name, instrument, description (str, optional): text metadata.
        bpm (float, optional): tempo.
        moods, keywords (list[str], optional): keyword lists.
        self_wav (WavCondition, optional): the segment itself, as a waveform condition.
        joint_embed (dict[str, JointEmbedCondition]): joint audio/text conditions by attribute.
    """

    title: str | None = None
    artist: str | None = None  # also used to keep artists from overlapping between splits
    key: str | None = None
    bpm: float | None = None
    genre: str | None = None
    moods: list | None = None
    keywords: list | None = None
    description: str | None = None
    name: str | None = None
    instrument: str | None = None
    self_wav: WavCondition | None = None
    joint_embed: dict[str, JointEmbedCondition] = field(default_factory=dict)

    @property
    def has_music_meta(self) -> bool:
        """Whether music metadata was found (``name`` is set)."""
        return self.name is not None

    def to_condition_attributes(self) -> ConditioningAttributes:
        """Text conditions for every metadata field (lists joined by spaces), ``self_wav`` and joint embeddings."""
        out = ConditioningAttributes()
        for f in fields(self):
            key, value = f.name, getattr(self, f.name)
            if key in _SEGMENT_FIELDS:
                continue
            if key == "self_wav":
                out.wav[key] = value
            elif key == "joint_embed":
                out.joint_embed.update(value)
            else:
                out.text[key] = " ".join(value) if isinstance(value, list) else value
        return out

    @staticmethod
    def attribute_getter(attribute: str) -> Any:
        """The normaliser applied to a metadata field when loading it (None: kept as is)."""
        if attribute == "bpm":
            return get_bpm
        if attribute == "key":
            return get_musical_key
        if attribute in ("moods", "keywords"):
            return get_keyword_list
        if attribute in ("genre", "name", "instrument"):
            return get_keyword
        if attribute in ("title", "artist", "description"):
            return get_string
        return None

    @classmethod
    def from_dict(cls, dictionary: dict, fields_required: bool = False) -> "MusicInfo":
        """Build from sidecar + segment fields, normalising values.

        Raises:
            KeyError: with ``fields_required``, for a missing metadata field (``keywords`` is optional).
        """
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in ("self_wav", "joint_embed"):
                continue
            if f.name not in dictionary:
                if fields_required and f.name not in ("keywords", "audio_tokens"):
                    raise KeyError(f"Unexpected missing key: {f.name}")
                continue
            value = dictionary[f.name]
            getter = cls.attribute_getter(f.name)
            values[f.name] = getter(value) if getter else value
        return cls(**values)


def augment_music_info_description(
    music_info: MusicInfo,
    merge_text_p: float = 0.0,
    drop_desc_p: float = 0.0,
    drop_other_p: float = 0.0,
    rng: random.Random | None = None,
) -> MusicInfo:
    """Merge other metadata fields into the description (upstream's text augmentation).

    With probability ``merge_text_p``, the fields key, bpm, genre, moods, instrument and keywords are written
    as ``"name: value"`` pairs (each kept with probability ``drop_other_p``, as upstream does), shuffled, and
    appended to the description, which is itself dropped with probability ``drop_desc_p``.

    Args:
        music_info (MusicInfo): the info to augment (not modified).
        merge_text_p (float): probability of merging the other fields.
        drop_desc_p (float): probability of dropping the original description when merging.
        drop_other_p (float): probability of keeping each other field when merging.
        rng (random.Random, optional): randomness source (the global ``random`` module if None).

    Returns:
        MusicInfo: a copy with the new description.
    """
    r: Any = rng if rng is not None else random

    def keep(name: str, value: Any) -> bool:
        valid = name in _AUGMENT_FIELDS and value is not None and isinstance(value, (int, float, str, list))
        return r.uniform(0, 1) < drop_other_p and valid

    def as_text(value: Any) -> str:
        return ", ".join(value) if isinstance(value, list) else str(value)

    description = music_info.description
    metadata_text = ""
    if r.uniform(0, 1) < merge_text_p:
        pairs = [
            f"{f.name}: {as_text(getattr(music_info, f.name))}"
            for f in fields(music_info)
            if keep(f.name, getattr(music_info, f.name))
        ]
        r.shuffle(pairs)
        metadata_text = ". ".join(pairs)
        description = description if not r.uniform(0, 1) < drop_desc_p else None
    if description is None:
        description = metadata_text if len(metadata_text) > 1 else None
    else:
        description = ". ".join([description.rstrip("."), metadata_text])
    description = description.strip() if description else None
    out = replace(music_info)
    out.description = description
    return out


class Paraphraser:
    """Replace descriptions by paraphrases read from a JSON file (``{info_path: [paraphrase, ...]}``).

    Args:
        paraphrase_source (str or Path): ``.json`` or ``.json.gz`` file.
        paraphrase_p (float): probability of using a paraphrase.
    """

    def __init__(self, paraphrase_source: str | Path, paraphrase_p: float = 0.0):
        self.paraphrase_p = paraphrase_p
        opener: Any = gzip.open if str(paraphrase_source).lower().endswith(".gz") else open
        with opener(paraphrase_source, "rb") as fp:
            self.paraphrase_source = json.loads(fp.read())
        self._missing: set[str] = set()

    def sample(self, audio_path: str, description: str | None, rng: random.Random | None = None) -> str | None:
        """Maybe return a paraphrase of the description of ``audio_path``."""
        r: Any = rng if rng is not None else random
        if r.random() >= self.paraphrase_p:
            return description
        info_path = str(Path(audio_path).with_suffix(".json"))
        if info_path not in self.paraphrase_source:
            if info_path not in self._missing:
                logger.warning("%s not in paraphrase source", info_path)
                self._missing.add(info_path)
            return description
        return r.choice(self.paraphrase_source[info_path])

    sample_paraphrase = sample


class MusicDataset(InfoAudioDataset):
    """Music segments with metadata from JSON sidecars; items are ``(wav [C, T], MusicInfo)``.

    Args:
        info_fields_required (bool): every MusicInfo field (but ``keywords``) must be in the sidecar.
        merge_text_p (float): probability of merging other metadata into the description.
        drop_desc_p (float): probability of dropping the description when merging.
        drop_other_p (float): probability of keeping each other field when merging.
        joint_embed_attributes (list[str]): attributes for which a ``JointEmbedCondition`` is built.
        paraphrase_source (str, optional): JSON file of paraphrases (see :class:`Paraphraser`).
        paraphrase_p (float): probability of using a paraphrase.
        **kwargs: :class:`audiocraft.data.audio_dataset.AudioDataset` arguments (``return_info`` is forced on).
    """

    def __init__(
        self,
        *args: Any,
        info_fields_required: bool = True,
        merge_text_p: float = 0.0,
        drop_desc_p: float = 0.0,
        drop_other_p: float = 0.0,
        joint_embed_attributes: list[str] | None = None,
        paraphrase_source: str | None = None,
        paraphrase_p: float = 0.0,
        **kwargs: Any,
    ):
        kwargs["return_info"] = True
        super().__init__(*args, **kwargs)
        self.info_fields_required = info_fields_required
        self.merge_text_p = merge_text_p
        self.drop_desc_p = drop_desc_p
        self.drop_other_p = drop_other_p
        self.joint_embed_attributes = list(joint_embed_attributes or [])
        self.paraphraser = Paraphraser(paraphrase_source, paraphrase_p) if paraphrase_source is not None else None

    def __getitem__(self, index: int) -> tuple[torch.Tensor, MusicInfo]:  # type: ignore[override]
        wav, info = super().__getitem__(index)  # type: ignore[misc]
        info_data = info.to_dict()
        music_data = self._load_info(info.meta)
        rng = random.Random(self.item_seed(index, salt=1))
        if music_data is not None:
            music_data.update(info_data)
            try:
                music_info = MusicInfo.from_dict(music_data, fields_required=self.info_fields_required)
            except KeyError as exc:
                raise KeyError(f"metadata of {info.meta.path}: {exc.args[0]}") from None
            if self.paraphraser is not None:
                music_info.description = self.paraphraser.sample(info.meta.path, music_info.description, rng)
            if self.merge_text_p:
                music_info = augment_music_info_description(
                    music_info, self.merge_text_p, self.drop_desc_p, self.drop_other_p, rng
                )
        else:
            music_info = MusicInfo.from_dict(info_data, fields_required=False)
        music_info.self_wav = WavCondition(
            wav=wav[None],
            length=torch.tensor([info.n_frames]),
            sample_rate=[info.sample_rate],
            path=[info.meta.path],
            seek_time=[info.seek_time],
        )
        for attribute in self.joint_embed_attributes:
            music_info.joint_embed[attribute] = JointEmbedCondition(
                wav[None],
                [getattr(music_info, attribute)],
                torch.tensor([info.n_frames]),
                sample_rate=[info.sample_rate],
                path=[info.meta.path],
                seek_time=[info.seek_time],
            )
        return wav, music_info
