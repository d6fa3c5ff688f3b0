"""Samples manager: the generate stage's audio, epoch by epoch, in the XP folder, with a JSON sidecar each.

Each sample's metadata (source clip, checkpoint, conditions, prompt, generation arguments) is written beside it, and
its reference audio in ``reference/``.

Part of audiocraft-core (training layer). Layout, under ``<xp folder>/<generate.path>`` (``samples``)::

    <epoch>/<id>.<format>          generated audio
    <epoch>/<id>.json              metadata of that sample (the JSON sidecar)
    <epoch>/<id>_prompt.<format>   the prompt, when there is one
    reference/<id>.<format>        the reference (ground truth) audio

When the generate stage passes the source segments (``sources=``, the ``SegmentInfo`` of each batch item, as both
shipped solvers do), ``<id>`` is ``<clip stem>_<offset in ms>ms_<8-hex hash>`` (e.g. ``train_004_0ms_1a2b3c4d``)
and the sidecar's ``source`` says which clip (manifest, file path, offset, duration) and ``checkpoint`` which
weights (XP signature and folder, epoch). Difference from upstream: upstream names a sample by a hash alone and its
JSON has neither ``source`` nor ``checkpoint``; the folder per epoch, the ``reference/`` folder and the other JSON
keys are upstream's (upstream's reader builds its samples from those keys). Without
``sources`` the ids are upstream's hashes.

Audio is written with `audiocraft.data.audio.audio_write` and the ``generate.audio`` config section.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import typing as tp
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

logger = logging.getLogger(__name__)


@dataclass
class ReferenceSample:
    """A stored prompt or reference audio file.

    Attributes:
        id: its id (file stem).
        path: the audio file.
        duration: its duration in seconds.
    """

    id: str
    path: str
    duration: float


@dataclass
class Sample:
    """One generated sample and what it was generated from.

    Attributes:
        id: the sample id (file stem, see the module docstring).
        path: the audio file.
        epoch: the epoch that generated it.
        duration: its duration in seconds.
        conditioning: the conditions (text attributes) used, JSON-able.
        prompt: the stored prompt, if any.
        reference: the stored reference audio, if any.
        generation_args: the generation parameters.
        extra: free-form additions.
        source: the clip it comes from: ``manifest``, ``path``, ``offset`` and ``duration`` (seconds); None when
            the generate stage did not pass its sources.
        checkpoint: the weights that generated it: ``xp_sig``, ``xp_folder``, ``epoch``.
    """

    id: str
    path: str
    epoch: int
    duration: float
    conditioning: dict[str, tp.Any] | None = None
    prompt: ReferenceSample | None = None
    reference: ReferenceSample | None = None
    generation_args: dict[str, tp.Any] | None = None
    extra: dict[str, tp.Any] = field(default_factory=dict)
    source: dict[str, tp.Any] | None = None
    checkpoint: dict[str, tp.Any] | None = None

    def __hash__(self) -> int:
        return hash(self.id)

    def audio(self) -> tuple[torch.Tensor, int]:
        """The generated audio ``[C, T]`` and its sample rate."""
        from audiocraft.data.audio import audio_read

        return audio_read(self.path)

    def audio_prompt(self) -> tuple[torch.Tensor, int] | None:
        """The prompt audio and its sample rate (None without a prompt)."""
        from audiocraft.data.audio import audio_read

        return audio_read(self.prompt.path) if self.prompt is not None else None

    def audio_reference(self) -> tuple[torch.Tensor, int] | None:
        """The reference audio and its sample rate (None without a reference)."""
        from audiocraft.data.audio import audio_read

        return audio_read(self.reference.path) if self.reference is not None else None


def _plain(value: tp.Any) -> tp.Any:
    """JSON-able view of conditions (ConditioningAttributes, tensors, ...)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, torch.Tensor):
        return value.tolist() if value.numel() <= 16 else f"<tensor {list(value.shape)}>"
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "text") and isinstance(value.text, dict):  # ConditioningAttributes
        return {k: _plain(v) for k, v in value.text.items()}
    return str(value)


class SampleManager:
    """Writes and lists the samples of an XP.

    Args:
        xp: the Dora XP (its folder and ``cfg.generate`` section are used).
        map_reference_to_sample_id: name a sample after its reference audio (so that the same reference gets the
            same id at every epoch, as reconstructions do); otherwise ids hash the index, prompt and conditions.
    """

    def __init__(self, xp: tp.Any, map_reference_to_sample_id: bool = False):
        self.xp = xp
        generate = xp.cfg.get("generate") or {}
        self.base_folder = Path(xp.folder) / (generate.get("path") or "samples")
        self.reference_folder = self.base_folder / "reference"
        self.audio_kwargs = {k: v for k, v in dict(generate.get("audio") or {}).items() if v is not None}
        self.audio_kwargs.pop("sample_rate", None)
        self.map_reference_to_sample_id = map_reference_to_sample_id
        self.samples: list[Sample] = []
        self._load_samples()

    @property
    def latest_epoch(self) -> int:
        """The highest epoch with stored samples (0 when there is none)."""
        return max((s.epoch for s in self.samples), default=0)

    def _load_samples(self) -> None:
        for meta in sorted(self.base_folder.glob("[0-9]*/*.json")):
            data = json.loads(meta.read_text())
            for key in ("prompt", "reference"):
                if data.get(key):
                    data[key] = ReferenceSample(**data[key])
            self.samples.append(Sample(**data))

    @staticmethod
    def _get_sample_id(index: int, prompt_wav: torch.Tensor | None, conditions: tp.Any) -> str:
        hasher = hashlib.sha1()
        hasher.update(str(index).encode())
        if prompt_wav is not None:
            hasher.update(prompt_wav.detach().cpu().float().numpy().tobytes())
        if conditions is not None:
            hasher.update(json.dumps(_plain(conditions), sort_keys=True).encode())
        return hasher.hexdigest()[:16]

    @staticmethod
    def _get_tensor_id(wav: torch.Tensor) -> str:
        return hashlib.sha1(wav.detach().cpu().float().numpy().tobytes()).hexdigest()[:16]

    def _source(self, source: tp.Any) -> dict[str, tp.Any] | None:
        """JSON view of the clip a sample comes from (a ``SegmentInfo``, or an already plain mapping)."""
        if source is None or isinstance(source, dict):
            return source
        meta = source.meta
        rate = getattr(source, "sample_rate", None)
        frames = getattr(source, "n_frames", None)
        datasource = self.xp.cfg.get("datasource") or {}
        return {
            "manifest": datasource.get("generate"),
            "path": str(meta.path),
            "offset": float(source.seek_time),
            "duration": frames / rate if frames is not None and rate else None,
        }

    @staticmethod
    def _named_id(source: dict[str, tp.Any], digest: str) -> str:
        """``<clip stem>_<offset in ms>ms_<8 hex>``: readable, and unique per clip, offset and content."""
        stem = slugify(Path(source["path"]).stem) or "clip"
        return f"{stem}_{round(1000 * source['offset'])}ms_{digest[:8]}"

    def _checkpoint(self, epoch: int) -> dict[str, tp.Any]:
        return {"xp_sig": getattr(self.xp, "sig", None), "xp_folder": str(self.xp.folder), "epoch": epoch}

    def _sample_rate(self, sample_rate: int | None) -> int:
        if sample_rate is not None:
            return sample_rate
        generate = self.xp.cfg.get("generate") or {}
        rate = (generate.get("audio") or {}).get("sample_rate") or self.xp.cfg.get("sample_rate")
        if rate is None:
            raise ValueError("no sample rate: set generate.audio.sample_rate or sample_rate in the config")
        return int(rate)

    def _store_audio(self, wav: torch.Tensor, stem_path: Path, sample_rate: int, overwrite: bool = False) -> Path:
        from audiocraft.data.audio import audio_write

        existing = sorted(stem_path.parent.glob(stem_path.name + ".*"))
        existing = [p for p in existing if p.suffix != ".json"]
        if existing and not overwrite:
            return existing[0]
        return Path(audio_write(stem_path, wav.detach().cpu(), sample_rate, make_parent_dir=True, **self.audio_kwargs))

    def add_sample(
        self,
        sample_wav: torch.Tensor,
        epoch: int,
        index: int = 0,
        conditions: tp.Any = None,
        prompt_wav: torch.Tensor | None = None,
        ground_truth_wav: torch.Tensor | None = None,
        generation_args: dict | None = None,
        sample_rate: int | None = None,
        source: tp.Any = None,
    ) -> Sample:
        """Store one sample, its JSON sidecar and its reference.

        Args:
            sample_wav: generated audio ``[C, T]``.
            epoch: current epoch.
            index: index of the sample in the batch (part of its id).
            conditions: conditions used (text attributes are kept in the metadata).
            prompt_wav: prompt audio ``[C, T]``.
            ground_truth_wav: reference audio ``[C, T]``, stored in ``reference/``.
            generation_args: generation parameters to record.
            sample_rate: audio sample rate (default: ``generate.audio.sample_rate`` or ``sample_rate``).
            source: the clip the sample comes from (the batch item's ``SegmentInfo``): names the sample after it
                and goes to the sidecar's ``source``.

        Returns:
            The stored `Sample`.
        """
        rate = self._sample_rate(sample_rate)
        if self.map_reference_to_sample_id and ground_truth_wav is not None:
            sample_id = self._get_tensor_id(ground_truth_wav)
        else:
            sample_id = self._get_sample_id(index, prompt_wav, conditions)
        source_info = self._source(source)
        if source_info is not None:
            sample_id = self._named_id(source_info, sample_id)
        folder = self.base_folder / str(epoch)
        path = self._store_audio(sample_wav, folder / sample_id, rate, overwrite=True)
        prompt = reference = None
        if prompt_wav is not None:
            prompt_path = self._store_audio(prompt_wav, folder / f"{sample_id}_prompt", rate, overwrite=True)
            prompt = ReferenceSample(sample_id, str(prompt_path), prompt_wav.shape[-1] / rate)
        if ground_truth_wav is not None:
            ref_id = self._get_tensor_id(ground_truth_wav) if not self.map_reference_to_sample_id else sample_id
            ref_path = self._store_audio(ground_truth_wav, self.reference_folder / ref_id, rate)
            reference = ReferenceSample(ref_id, str(ref_path), ground_truth_wav.shape[-1] / rate)
        sample = Sample(
            sample_id,
            str(path),
            epoch,
            sample_wav.shape[-1] / rate,
            _plain(conditions),
            prompt,
            reference,
            _plain(generation_args),
            source=source_info,
            checkpoint=self._checkpoint(epoch),
        )
        meta = folder / f"{sample_id}.json"
        meta.write_text(json.dumps(asdict(sample), indent=2))
        self.samples = [s for s in self.samples if not (s.id == sample_id and s.epoch == epoch)] + [sample]
        return sample

    def add_samples(
        self,
        samples_wavs: torch.Tensor,
        epoch: int,
        conditioning: list | None = None,
        prompt_wavs: torch.Tensor | None = None,
        ground_truth_wavs: torch.Tensor | None = None,
        generation_args: dict | None = None,
        sample_rate: int | None = None,
        sources: list | None = None,
    ) -> list[Sample]:
        """Store a batch of samples ``[B, C, T]`` (with optional per-item conditions, prompts, references).

        Args:
            samples_wavs: generated audio ``[B, C, T]``.
            epoch: current epoch.
            conditioning: per-item conditions.
            prompt_wavs: per-item prompts ``[B, C, T]``.
            ground_truth_wavs: per-item references ``[B, C, T]``.
            generation_args: generation parameters to record.
            sample_rate: audio sample rate, see `add_sample`.
            sources: per-item source clips (``SegmentInfo``), see `add_sample`.

        Returns:
            The stored samples, in batch order.
        """
        out = []
        for idx, wav in enumerate(samples_wavs):
            out.append(
                self.add_sample(
                    wav,
                    epoch,
                    idx,
                    conditioning[idx] if conditioning is not None else None,
                    prompt_wavs[idx] if prompt_wavs is not None else None,
                    ground_truth_wavs[idx] if ground_truth_wavs is not None else None,
                    generation_args,
                    sample_rate,
                    sources[idx] if sources is not None else None,
                )
            )
        return out

    def get_samples(
        self,
        epoch: int = -1,
        max_epoch: int = -1,
        exclude_prompted: bool = False,
        exclude_unprompted: bool = False,
        exclude_conditioned: bool = False,
        exclude_unconditioned: bool = False,
    ) -> set[Sample]:
        """Samples of ``epoch`` (-1: the latest epoch not above ``max_epoch``), filtered.

        Args:
            epoch: the epoch (-1: the latest one not above ``max_epoch``).
            max_epoch: upper bound on the epoch when ``epoch`` is -1 (-1: none).
            exclude_prompted: leave out samples with a prompt.
            exclude_unprompted: leave out samples without a prompt.
            exclude_conditioned: leave out samples with conditions.
            exclude_unconditioned: leave out samples without conditions.

        Returns:
            The matching samples.
        """
        if epoch < 0:
            epochs = [s.epoch for s in self.samples if max_epoch < 0 or s.epoch <= max_epoch]
            epoch = max(epochs, default=0)
        out = set()
        for s in self.samples:
            if s.epoch != epoch:
                continue
            if (exclude_prompted and s.prompt) or (exclude_unprompted and not s.prompt):
                continue
            if (exclude_conditioned and s.conditioning) or (exclude_unconditioned and not s.conditioning):
                continue
            out.add(s)
        return out


def slugify(value: tp.Any) -> str:
    """File-name friendly text."""
    return re.sub(r"[^\w\-]+", "_", str(value)).strip("_")[:100]
