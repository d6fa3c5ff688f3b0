"""Melody conditioning (layer: audiocraft-conditioners, private): ``ChromaStemConditioner``.

``ChromaStemConditioner`` (MusicGen's melody conditioning) is the chromagram of the reference audio's melodic
stems (vocals + other, separated by demucs, the ``[demucs]`` extra), projected to the model's width. The
chromagram itself is :class:`audiocraft.data.chroma.ChromaExtractor` (the one implementation, shared with the
chroma metric; ``ChromaExtractor`` and ``chroma_filterbank`` are re-exported here and by ``audiocraft.conditioners``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from audiocraft.data.audio import audio_read
from audiocraft.data.audio_utils import convert_audio
from audiocraft.data.chroma import ChromaExtractor, chroma_filterbank
from audiocraft.data.conditions import WavCondition

from ._autocast import TorchAutocast
from ._cache import EmbeddingCache
from ._demucs import load_demucs
from ._waveform import WaveformConditioner

__all__ = ["ChromaExtractor", "ChromaStemConditioner", "chroma_filterbank"]

logger = logging.getLogger(__name__)


class ChromaStemConditioner(WaveformConditioner):
    """Melody conditioner: chromagram of the melodic stems of the reference audio.

    Drums and bass dominate a chromagram, so, as upstream, demucs first separates the stems and only vocals +
    other are kept. Differences from upstream, on purpose: the demucs model is ``demucs_model`` (a name found in
    the local Hugging Face cache, a folder or a file; never downloaded), and ``demucs_model=None`` is a documented
    mode without separation (the chromagram of the whole mix, no demucs needed).

    Args:
        output_dim: Width of the returned embeddings.
        sample_rate: Sample rate of the conditions and of the chroma extractor.
        n_chroma: Number of chroma bins.
        radix2_exp: The chroma window is ``2 ** radix2_exp`` samples.
        duration: Training segment duration, in seconds: with ``match_len_on_eval`` every chromagram is cut or
            repeated to the length of this duration.
        match_len_on_eval: Cut or repeat (periodically) every chromagram to the training length; masking is then off.
        eval_wavs: Manifest folder of audio used as conditions in eval mode instead of the batch's (so that
            evaluation does not see the test set's melodies).
        n_eval_wavs: Number of those waveforms to load.
        cache_path: Folder of an on-disk cache of whole-file chromagrams (conditions with paths and seek times).
        device: Device of demucs and of the extractor.
        demucs_model: demucs model name, folder or file; None for no separation (not an upstream argument).
        **kwargs: Further :class:`ChromaExtractor` arguments.
    """

    def __init__(
        self,
        output_dim: int,
        sample_rate: int,
        n_chroma: int,
        radix2_exp: int,
        duration: float,
        match_len_on_eval: bool = True,
        eval_wavs: str | None = None,
        n_eval_wavs: int = 0,
        cache_path: str | Path | None = None,
        device: torch.device | str = "cpu",
        demucs_model: str | None = "htdemucs",
        **kwargs: Any,
    ) -> None:
        super().__init__(dim=n_chroma, output_dim=output_dim, device=device)
        self.autocast = TorchAutocast(enabled=str(device) != "cpu", device_type=str(device), dtype=torch.float32)
        self.sample_rate = sample_rate
        self.match_len_on_eval = match_len_on_eval
        if match_len_on_eval:
            self._use_masking = False
        self.duration = duration
        self.demucs_model = demucs_model
        self.stem_indices: torch.Tensor | None = None
        if demucs_model is not None:
            demucs = load_demucs(demucs_model).to(device)
            self.__dict__["demucs"] = demucs  # frozen, outside the state dict (as upstream)
            sources: list[str] = list(demucs.sources)
            self.stem_indices = torch.tensor(
                [sources.index("vocals"), sources.index("other")], dtype=torch.long, device=device
            )
        self.chroma = ChromaExtractor(sample_rate=sample_rate, n_chroma=n_chroma, radix2_exp=radix2_exp, **kwargs).to(
            device
        )
        self.chroma_len = self._get_chroma_len()
        self.eval_wavs: torch.Tensor | None = self._load_eval_wavs(eval_wavs, n_eval_wavs)
        self.cache: EmbeddingCache | None = None
        if cache_path is not None:
            self.cache = EmbeddingCache(
                Path(cache_path) / "wav",
                self.device,
                compute_embed_fn=self._get_full_chroma_for_cache,
                extract_embed_fn=self._extract_chroma_chunk,
            )

    def _downsampling_factor(self) -> float:
        return self.chroma.winhop

    def _load_eval_wavs(self, path: str | None, num_samples: int) -> torch.Tensor | None:
        """The first ``num_samples`` segments (``duration`` long, mono) of the manifest at ``path``."""
        if path is None:
            return None
        from audiocraft.data.audio_dataset import AudioDataset

        logger.info("Loading evaluation wavs from %s", path)
        try:
            dataset = AudioDataset.from_meta(
                path,
                segment_duration=self.duration,
                min_audio_duration=self.duration,
                sample_rate=self.sample_rate,
                channels=1,
            )
        except ValueError as exc:
            raise ValueError(f"eval_wavs {path}: {exc}") from exc
        if len(dataset) == 0:
            raise ValueError(f"no evaluation wav of at least {self.duration} s in {path}")
        eval_wavs = dataset.collater([dataset[i] for i in range(num_samples)])
        assert isinstance(eval_wavs, torch.Tensor)
        return eval_wavs.to(self.device)

    def reset_eval_wavs(self, eval_wavs: torch.Tensor | None) -> None:
        """Replace the evaluation waveforms ``[N, 1, T]`` (None: use the batch's)."""
        self.eval_wavs = eval_wavs

    def has_eval_wavs(self) -> bool:
        """Whether evaluation waveforms are set."""
        return self.eval_wavs is not None

    def _sample_eval_wavs(self, num_samples: int) -> torch.Tensor:
        """``num_samples`` evaluation waveforms in random order (repeated when there are fewer)."""
        assert self.eval_wavs is not None
        out = self.eval_wavs
        if num_samples > len(out):
            out = out.repeat(num_samples // len(out) + 1, 1, 1)
        return out[torch.randperm(len(out))][:num_samples]

    def _get_chroma_len(self) -> int:
        """Chromagram frames of a training segment."""
        dummy = torch.zeros((1, int(self.sample_rate * self.duration)), device=self.device)
        return int(self.chroma(dummy).shape[1])

    @torch.no_grad()
    def _get_stemmed_wav(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Vocals + other of ``wav`` ``[B, C, T]``, mono at :attr:`sample_rate` (the mix itself without demucs)."""
        if self.stem_indices is None:
            return convert_audio(wav, sample_rate, self.sample_rate, 1)
        from demucs.apply import apply_model
        from demucs.audio import convert_audio as demucs_convert_audio

        demucs = self.__dict__["demucs"]
        with self.autocast:
            wav = demucs_convert_audio(wav, sample_rate, demucs.samplerate, demucs.audio_channels)
            stems = apply_model(demucs, wav, device=self.device)
            mix = stems[:, self.stem_indices].sum(1)
            return demucs_convert_audio(mix, demucs.samplerate, self.sample_rate, 1)

    @torch.no_grad()
    def _extract_chroma(self, wav: torch.Tensor) -> torch.Tensor:
        with self.autocast:
            return self.chroma(wav)

    @torch.no_grad()
    def _compute_wav_embedding(self, wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Chromagram of the stems of ``wav``; a null condition (one sample) skips separation."""
        if wav.shape[-1] == 1:
            return self._extract_chroma(wav)
        return self._extract_chroma(self._get_stemmed_wav(wav, sample_rate))

    @torch.no_grad()
    def _get_full_chroma_for_cache(self, path: str | Path, x: WavCondition, idx: int) -> torch.Tensor:
        """Chromagram ``[frames, n_chroma]`` of the whole file at ``path``."""
        wav, sr = audio_read(path)
        wav = convert_audio(wav[None].to(self.device), sr, self.sample_rate, to_channels=1)
        return self._compute_wav_embedding(wav, self.sample_rate)[0]

    def _extract_chroma_chunk(self, full_chroma: torch.Tensor, x: WavCondition, idx: int) -> torch.Tensor:
        """The frames of item ``idx``'s segment (from its seek time, as long as its audio) in a whole-file chroma."""
        seek_time = x.seek_time[idx]
        if seek_time is None:
            raise ValueError("WavCondition.seek_time is required to cut chroma chunks out of the cache")
        frame_rate = self.sample_rate / self._downsampling_factor()
        target_length = int(frame_rate * x.wav.shape[-1] / self.sample_rate)
        index = int(frame_rate * seek_time)
        out = full_chroma.float()[index : index + target_length]
        out = F.pad(out[None], (0, 0, 0, target_length - out.shape[0]))[0]
        return out.to(self.device)

    @torch.no_grad()
    def _get_wav_embedding(self, x: WavCondition) -> torch.Tensor:
        """Chromagram ``[B, frames, n_chroma]``: of the evaluation wavs (eval mode), the cache, or the batch."""
        no_undefined_paths = all(p is not None for p in x.path)
        no_nullified_cond = x.wav.shape[-1] > 1
        if not self.training and self.eval_wavs is not None:
            chroma = self._compute_wav_embedding(self._sample_eval_wavs(len(x.wav)), self.sample_rate)
        elif self.cache is not None and no_undefined_paths and no_nullified_cond:
            chroma = self.cache.get_embed_from_cache([Path(p) for p in x.path if p is not None], x)
        else:
            if any(sr != x.sample_rate[0] for sr in x.sample_rate):
                raise ValueError(f"all conditions of a batch must share one sample rate, got {x.sample_rate}")
            chroma = self._compute_wav_embedding(x.wav, x.sample_rate[0])
        if self.match_len_on_eval:
            frames = chroma.shape[1]
            if frames > self.chroma_len:
                chroma = chroma[:, : self.chroma_len]
            elif frames < self.chroma_len:
                chroma = chroma.repeat(1, math.ceil(self.chroma_len / frames), 1)[:, : self.chroma_len]
        return chroma

    def tokenize(self, x: WavCondition) -> WavCondition:
        """The condition on :attr:`device`; fills the cache for conditions that all have paths."""
        x = super().tokenize(x)
        if self.cache is not None and all(p is not None for p in x.path):
            self.cache.populate_embed_cache([Path(p) for p in x.path if p is not None], x)
        return x
