"""``SoundDataset``: sound-effect segments with a text description, and upstream's batch mixing augmentation.

Part of ``audiocraft-data``. Items are ``(wav [C, T], SoundInfo)``; the description comes from a JSON
sidecar next to the audio file or, failing that, from ``external_metadata_source/<stem>.json``. When a
sidecar holds several descriptions, one is drawn per item with an RNG seeded by ``(shuffle_seed, epoch,
index)``. The collater can mix pairs of items at a random SNR (``aug_p``, ``mix_p``), with randomness
derived from the batch content so that it is reproducible too.
"""

import hashlib
import random
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch

from ._manifest import AudioMeta
from .conditions import ConditioningAttributes, SegmentWithAttributes, WavCondition
from .info_audio_dataset import (
    _SEGMENT_FIELDS,
    InfoAudioDataset,
    get_keyword_or_keyword_list,
    info_json_path,
    load_info_json,
)
from .zip import is_zip_path

__all__ = ["SoundInfo", "SoundDataset", "mix_samples", "snr_mixer"]

EPS = torch.finfo(torch.float32).eps
TARGET_LEVEL_LOWER = -35
TARGET_LEVEL_UPPER = -15


@dataclass
class SoundInfo(SegmentWithAttributes):
    """Segment info with a sound description.

    Attributes:
        description (str, optional): what the sound is.
        self_wav (WavCondition, optional): the segment itself, as a waveform condition.
    """

    description: str | None = None
    self_wav: WavCondition | None = None

    @property
    def has_sound_meta(self) -> bool:
        """Whether a description was found."""
        return self.description is not None

    def to_condition_attributes(self) -> ConditioningAttributes:
        """``description`` as a text condition, ``self_wav`` as a waveform condition."""
        out = ConditioningAttributes()
        for f in fields(self):
            key, value = f.name, getattr(self, f.name)
            if key in _SEGMENT_FIELDS:
                continue
            if key == "self_wav":
                out.wav[key] = value
            else:
                out.text[key] = value
        return out

    @staticmethod
    def attribute_getter(attribute: str) -> Any:
        """The normaliser applied to a metadata field when loading it (None: kept as is)."""
        return get_keyword_or_keyword_list if attribute == "description" else None

    @classmethod
    def from_dict(cls, dictionary: dict, fields_required: bool = False) -> "SoundInfo":
        """Build from sidecar + segment fields.

        Raises:
            KeyError: with ``fields_required``, for a missing field.
        """
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "self_wav":
                continue
            if f.name not in dictionary:
                if fields_required:
                    raise KeyError(f"Unexpected missing key: {f.name}")
                continue
            getter = cls.attribute_getter(f.name)
            values[f.name] = getter(dictionary[f.name]) if getter else dictionary[f.name]
        return cls(**values)


class SoundDataset(InfoAudioDataset):
    """Sound segments with descriptions; items are ``(wav [C, T], SoundInfo)``.

    Args:
        info_fields_required (bool): the sidecar must hold every SoundInfo field.
        external_metadata_source (str, optional): folder of ``<audio stem>.json`` files used when there is
            no sidecar next to the audio.
        aug_p (float): probability of mixing a batch in the collater.
        mix_p (float): fraction of the batch that is mixed (and the batch size after mixing).
        mix_snr_low (int): lowest SNR of a mix, in dB.
        mix_snr_high (int): highest SNR of a mix, in dB.
        mix_min_overlap (float): minimum overlap of the two mixed items.
        **kwargs: :class:`audiocraft.data.audio_dataset.AudioDataset` arguments (``return_info`` is forced on).
    """

    def __init__(
        self,
        *args: Any,
        info_fields_required: bool = True,
        external_metadata_source: str | None = None,
        aug_p: float = 0.0,
        mix_p: float = 0.0,
        mix_snr_low: int = -5,
        mix_snr_high: int = 5,
        mix_min_overlap: float = 0.5,
        **kwargs: Any,
    ):
        kwargs["return_info"] = True
        super().__init__(*args, **kwargs)
        self.info_fields_required = info_fields_required
        self.external_metadata_source = external_metadata_source
        if aug_p > 0 and mix_p <= 0:
            raise ValueError("SoundDataset: aug_p > 0 needs a mixing proportion mix_p > 0")
        if aug_p > 0 and self.channels != 1:
            raise ValueError(f"SoundDataset: audio mixing needs mono audio, got channels={self.channels}")
        self.aug_p = aug_p
        self.mix_p = mix_p
        self.mix_snr_low = mix_snr_low
        self.mix_snr_high = mix_snr_high
        self.mix_min_overlap = mix_min_overlap

    def _get_info_path(self, meta: AudioMeta) -> str:
        """The sidecar of ``meta`` (next to the audio, or in ``external_metadata_source``).

        Raises:
            FileNotFoundError: naming the audio file when neither exists.
        """
        local = info_json_path(meta)
        if meta.info_path is not None or is_zip_path(local) or Path(local).exists():
            return local
        if self.external_metadata_source:
            external = Path(self.external_metadata_source) / Path(local).name
            if external.exists():
                return str(external)
        where = f"{local} and in {self.external_metadata_source}" if self.external_metadata_source else local
        raise FileNotFoundError(f"no metadata JSON for {meta.path} (looked for {where})")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, SoundInfo]:  # type: ignore[override]
        wav, info = super().__getitem__(index)  # type: ignore[misc]
        info_data = info.to_dict()
        sound_data = load_info_json(self._get_info_path(info.meta), self._zip_cache)
        if sound_data is not None:
            sound_data.update(info_data)
            try:
                sound_info = SoundInfo.from_dict(sound_data, fields_required=self.info_fields_required)
            except KeyError as exc:
                raise KeyError(f"metadata of {info.meta.path}: {exc.args[0]}") from None
            if isinstance(sound_info.description, list):
                sound_info.description = random.Random(self.item_seed(index, salt=2)).choice(sound_info.description)
        else:
            sound_info = SoundInfo.from_dict(info_data, fields_required=False)
        sound_info.self_wav = WavCondition(
            wav=wav[None],
            length=torch.tensor([info.n_frames]),
            sample_rate=[sound_info.sample_rate],
            path=[info.meta.path],
            seek_time=[info.seek_time],
        )
        return wav, sound_info

    def collater(self, samples: list[Any]) -> tuple[torch.Tensor, list[SoundInfo]]:  # type: ignore[override]
        """Batch items, then mix pairs of them with probability ``aug_p`` (reproducibly for a given batch)."""
        wav, segment_infos = super().collater(samples)  # type: ignore[misc]
        infos: list[SoundInfo] = list(segment_infos)  # type: ignore[arg-type]  # items are SoundInfo
        if self.aug_p > 0:
            key = "|".join(f"{i.meta.path}@{i.seek_time:.6f}" for i in infos)
            seed = int.from_bytes(hashlib.sha256(f"{self.shuffle_seed}:{key}".encode()).digest()[:8], "little") >> 1
            generator = torch.Generator().manual_seed(seed)
            wav, infos = mix_samples(
                wav, infos, self.aug_p, self.mix_p, self.mix_snr_low, self.mix_snr_high, self.mix_min_overlap, generator
            )
        return wav, infos


def _rms(x: torch.Tensor) -> torch.Tensor:
    return x.pow(2).mean(1).sqrt()


def _normalize(audio: torch.Tensor, target_level: float = -25) -> torch.Tensor:
    return audio * (10 ** (target_level / 20) / (_rms(audio) + EPS)).unsqueeze(1)


def _randint(low: int, high: int, generator: torch.Generator) -> int:
    return int(torch.randint(low, high, (1,), generator=generator).item()) if high > low else low


def snr_mixer(
    clean: torch.Tensor,
    noise: torch.Tensor,
    snr: float,
    min_overlap: float,
    generator: torch.Generator,
    target_level: float = -25,
    clipping_threshold: float = 0.99,
) -> torch.Tensor:
    """Mix ``noise`` into ``clean`` at ``snr`` dB, then set a random level between -35 and -15 dBFS.

    Args:
        clean (torch.Tensor): audio of shape [B, T].
        noise (torch.Tensor): audio of shape [B, T'].
        snr (float): signal-to-noise ratio in dB.
        min_overlap (float): minimum fraction of ``clean`` overlapped by ``noise``.
        generator (torch.Generator): randomness source.
        target_level (float): level both are normalised to before mixing, in dBFS.
        clipping_threshold (float): peaks above it are scaled down.

    Returns:
        torch.Tensor: the mix, of shape [B, T].
    """
    if clean.shape[1] > noise.shape[1]:
        noise = torch.nn.functional.pad(noise, (0, clean.shape[1] - noise.shape[1]))
    else:
        noise = noise[:, : clean.shape[1]]
    clean = _normalize(clean / (clean.abs().max(1)[0].unsqueeze(1) + EPS), target_level)
    noise = _normalize(noise / (noise.abs().max(1)[0].unsqueeze(1) + EPS), target_level)
    noise = noise * (_rms(clean) / (10 ** (snr / 20)) / (_rms(noise) + EPS)).unsqueeze(1)
    start = _randint(0, int(clean.shape[1] * (1 - min_overlap)) + 1, generator)
    mix = clean.clone()
    mix[:, start:] += noise[:, : clean.shape[1] - start]
    level = _randint(TARGET_LEVEL_LOWER, TARGET_LEVEL_UPPER, generator)
    mix = mix * (10 ** (level / 20) / (_rms(mix) + EPS)).unsqueeze(1)
    clipped = (mix.abs() > clipping_threshold).any(1)
    if clipped.any():
        mix[clipped] = mix[clipped] / (mix[clipped].abs().max(1)[0].unsqueeze(1) / (clipping_threshold - EPS))
    return mix


def mix_samples(
    wavs: torch.Tensor,
    infos: list[SoundInfo],
    aug_p: float,
    mix_p: float,
    snr_low: int,
    snr_high: int,
    min_overlap: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, list[SoundInfo]]:
    """Mix pairs of items of a batch (summing audio, joining descriptions), as upstream's SoundDataset does.

    With probability ``aug_p`` the output holds ``int(mix_p * B)`` mixes; otherwise ``int(mix_p * B)``
    unmixed items, so that the batch size does not depend on the draw.

    Args:
        wavs (torch.Tensor): mono audio of shape [B, 1, T].
        infos (list[SoundInfo]): the items' infos.
        aug_p (float): probability of mixing.
        mix_p (float): fraction of the batch kept.
        snr_low (int): lowest SNR in dB.
        snr_high (int): highest SNR in dB.
        min_overlap (float): minimum overlap of the mixed items.
        generator (torch.Generator, optional): randomness source.

    Returns:
        tuple[torch.Tensor, list[SoundInfo]]: audio of shape [B', 1, T] and the matching infos.
    """
    if mix_p == 0:
        return wavs, infos
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    batch = wavs.shape[0]
    k = max(1, int(mix_p * batch))
    if torch.rand(1, generator=gen).item() < aug_p:
        if wavs.shape[1] != 1:
            raise ValueError(f"mix_samples needs mono audio, got {wavs.shape[1]} channels")
        sources = torch.randperm(batch, generator=gen)[:k]
        targets = torch.randperm(batch, generator=gen)[:k]
        snr = _randint(snr_low, snr_high, gen)
        mixed = snr_mixer(wavs[sources, 0], wavs[targets, 0], snr, min_overlap, gen)
        out_infos = []
        for i, j in zip(sources.tolist(), targets.tolist()):
            src, dst = infos[i].description, infos[j].description
            info = replace(infos[i])
            info.description = src if src == dst else f"{src} {dst}"
            out_infos.append(info)
        return mixed[:, None], out_infos
    keep = torch.randperm(batch, generator=gen)[:k]
    return wavs[keep], [infos[i] for i in keep.tolist()]
