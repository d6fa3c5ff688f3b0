"""MusicGen: text (and melody) to music with upstream AudioCraft's API (layer: audiocraft-models, models).

``MusicGen.get_pretrained(name)`` loads a folder in upstream's published layout (``state_dict.bin`` +
``compression_state_dict.bin``), a ``//pretrained/NAME``, a hub repo id (``facebook/musicgen-small``, ``-medium``,
``-large``, ``-melody``, ``-stereo-*``...; read from the local Hugging Face cache with ``HF_HUB_OFFLINE=1``) or
``'debug'``, a tiny random model built in place. Generation is that of :class:`~audiocraft.models.genmodel.BaseGenModel`
plus melody conditioning (:meth:`MusicGen.generate_with_chroma`) whose reference is re-sliced for each window of a
long generation, as upstream.

Deliberate differences from upstream: the ``'debug'`` model needs no download (its text conditioner uses the
``noop`` tokenizer, upstream's downloads a spaCy model); bad arguments raise ValueError / RuntimeError instead of
asserting; ``cfg_coef_beta`` (upstream 1.4's double classifier-free guidance, ``LMModel.generate``) is passed to the
LM only when set.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from audiocraft.conditioners import ConditioningAttributes, WavCondition
from audiocraft.data.audio_utils import convert_audio

from . import builders
from .genmodel import BaseGenModel, GenerationOutput, default_device, load_pretrained_parts

__all__ = ["MusicGen", "MelodyList", "MelodyType"]

MelodyList = list[torch.Tensor | None]
"""One melody waveform (or None) per prompt."""
MelodyType = torch.Tensor | MelodyList
"""A batch of melody waveforms, or a list of them."""

# Upstream's deprecated short names.
_HF_MODEL_CHECKPOINTS_MAP = {
    "small": "facebook/musicgen-small",
    "medium": "facebook/musicgen-medium",
    "large": "facebook/musicgen-large",
    "melody": "facebook/musicgen-melody",
}


class MusicGen(BaseGenModel):
    """MusicGen: a language model over the codes of a compression model, conditioned on text and melody.

    Arguments: see :class:`~audiocraft.models.genmodel.BaseGenModel`.
    """

    default_duration = 15  # upstream's effective default duration

    @staticmethod
    def get_pretrained(
        name: str | Path = "facebook/musicgen-melody", device: torch.device | str | None = None
    ) -> MusicGen:
        """Load a pretrained MusicGen, in eval mode.

        Args:
            name: ``'debug'`` (tiny random model, no file), a local folder holding ``state_dict.bin`` and
                ``compression_state_dict.bin``, ``//pretrained/NAME``, or a hub repo id: ``facebook/musicgen-small``
                (300M), ``-medium`` (1.5B), ``-large`` (3.3B), ``-melody`` (1.5B, text and melody),
                ``-stereo-small`` / ``-stereo-medium`` / ``-stereo-large`` / ``-stereo-melody`` /
                ``-stereo-melody-large``... (extra ``[hub]``; offline with ``HF_HUB_OFFLINE=1``). The short
                names ``small``, ``medium``, ``large``, ``melody`` are deprecated (a warning maps them).
            device: device of the model (default: cuda if available, else cpu).
        """
        device = default_device(device)
        if str(name) == "debug":
            return MusicGen(
                "debug",
                builders.get_debug_compression_model(device),
                builders.get_debug_lm_model(device),
                max_duration=30,
            )
        if str(name) in _HF_MODEL_CHECKPOINTS_MAP:
            warnings.warn(
                "MusicGen pretrained model relying on deprecated checkpoint mapping. "
                f"Please use full pre-trained id instead: facebook/musicgen-{name}",
                stacklevel=2,
            )
            name = _HF_MODEL_CHECKPOINTS_MAP[str(name)]
        compression_model, lm = load_pretrained_parts(name, device, kind="MusicGen")
        if "self_wav" in lm.condition_provider.conditioners:
            from audiocraft.conditioners import ChromaStemConditioner

            melody = lm.condition_provider.conditioners["self_wav"]
            if isinstance(melody, ChromaStemConditioner):  # as upstream: chroma cut/repeated to the training length
                melody.match_len_on_eval = True
                melody._use_masking = False
        return MusicGen(str(name), compression_model, lm)

    def set_generation_params(
        self,
        use_sampling: bool = True,
        top_k: int = 250,
        top_p: float = 0.0,
        temperature: float = 1.0,
        duration: float = 30.0,
        cfg_coef: float = 3.0,
        cfg_coef_beta: float | None = None,
        two_step_cfg: bool = False,
        extend_stride: float = 18,
    ) -> None:
        """Set the generation parameters (upstream's defaults; the constructor then sets ``duration=15``).

        Args:
            use_sampling: sample (else greedy argmax).
            top_k: sample among the k most probable codes (when ``top_p`` is 0).
            top_p: nucleus sampling threshold (used when > 0).
            temperature: softmax temperature.
            duration: seconds of audio to generate (past ``max_duration``, windows slide by ``extend_stride``).
            cfg_coef: classifier-free guidance coefficient.
            cfg_coef_beta: double CFG coefficient of upstream 1.4 (text pushed over the ``self_wav`` condition, see
                ``LMModel.generate``); None: plain CFG. Needs an LM whose ``generate`` takes it.
            two_step_cfg: guidance in two forward passes instead of one batch.
            extend_stride: seconds added by each window of a long generation (less than ``max_duration``).
        """
        self._store_generation_params(
            use_sampling=use_sampling,
            top_k=top_k,
            top_p=top_p,
            temperature=temperature,
            duration=duration,
            cfg_coef=cfg_coef,
            cfg_coef_beta=cfg_coef_beta,
            two_step_cfg=two_step_cfg,
            extend_stride=extend_stride,
        )

    def generate_with_chroma(
        self,
        descriptions: list[str | None],
        melody_wavs: MelodyType,
        melody_sample_rate: int,
        progress: bool = False,
        return_tokens: bool = False,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> GenerationOutput:
        """Generate one sample per description, following the chroma (melody) of a reference waveform.

        Args:
            descriptions: text conditions.
            melody_wavs: ``[B, C, T]`` (or ``[C, T]`` for one description), or a list of ``[C, T]`` / None.
            melody_sample_rate: sample rate of the melodies.
            progress: report progress.
            return_tokens: also return the codes.
            seed: seed of the sampler.
            generator: random generator of the sampler, instead of ``seed``.
        """
        if isinstance(melody_wavs, torch.Tensor):
            if melody_wavs.dim() == 2:
                melody_wavs = melody_wavs[None]
            if melody_wavs.dim() != 3:
                raise ValueError(f"melody wavs must have shape [B, C, T], got {tuple(melody_wavs.shape)}")
            melodies: MelodyList = list(melody_wavs)
        else:
            melodies = list(melody_wavs)
            for index, melody in enumerate(melodies):
                if melody is not None and melody.dim() != 2:
                    raise ValueError(f"melody {index} must have shape [C, T], got {tuple(melody.shape)}")
        melodies = [
            None if wav is None else convert_audio(wav, melody_sample_rate, self.sample_rate, self.audio_channels)
            for wav in melodies
        ]
        attributes, prompt_tokens = self._prepare_tokens_and_attributes(list(descriptions), None, melodies)
        tokens = self._generate_tokens(
            attributes, prompt_tokens, progress, generator=self._make_generator(seed, generator)
        )
        return self._output(tokens, return_tokens)

    def _no_melody(self) -> WavCondition:
        return WavCondition(
            torch.zeros((1, 1, 1), device=self.device),
            torch.tensor([0], device=self.device),
            sample_rate=[self.sample_rate],
            path=[None],
            seek_time=[None],
        )

    @torch.no_grad()
    def _prepare_tokens_and_attributes(  # type: ignore[override]
        self,
        descriptions: list[str | None],
        prompt: torch.Tensor | None,
        melody_wavs: MelodyList | None = None,
    ) -> tuple[list[ConditioningAttributes], torch.Tensor | None]:
        """Conditions (text, and a melody or an empty one under ``self_wav``) and the prompt's codes."""
        attributes, prompt_tokens = super()._prepare_tokens_and_attributes(descriptions, prompt)
        if melody_wavs is None:
            for attr in attributes:
                attr.wav["self_wav"] = self._no_melody()
            return attributes, prompt_tokens
        if "self_wav" not in self.lm.condition_provider.conditioners:
            raise RuntimeError(
                "This model doesn't support melody conditioning. Use the `melody` model "
                "(e.g. facebook/musicgen-melody)."
            )
        if len(melody_wavs) != len(descriptions):
            raise ValueError(
                f"number of melody wavs must match number of descriptions! got melody "
                f"len={len(melody_wavs)}, and descriptions len={len(descriptions)}"
            )
        for attr, melody in zip(attributes, melody_wavs):
            if melody is None:
                attr.wav["self_wav"] = self._no_melody()
            else:
                attr.wav["self_wav"] = WavCondition(
                    melody[None].to(device=self.device),
                    torch.tensor([melody.shape[-1]], device=self.device),
                    sample_rate=[self.sample_rate],
                    path=[None],
                    seek_time=[None],
                )
        return attributes, prompt_tokens

    def _window_attributes(
        self, attributes: list[ConditioningAttributes], time_offset: float
    ) -> list[ConditioningAttributes]:
        """Re-slice each melody for the window at ``time_offset``.

        Each window gets ``max_duration`` seconds of the melody from the window's start, repeated periodically
        when the melody is shorter (upstream's arithmetic).
        """
        initial_position = int(time_offset * self.sample_rate)
        target_length = int(self.max_duration * self.sample_rate)
        out = []
        for attr in attributes:
            ref = attr.wav.get("self_wav")
            if ref is None or int(ref.length.reshape(-1)[0]) == 0:
                out.append(attr)
                continue
            wav_length = int(ref.length.reshape(-1)[0])
            positions = torch.arange(initial_position, initial_position + target_length, device=ref.wav.device)
            window = ConditioningAttributes(
                text=dict(attr.text),
                wav=dict(attr.wav),
                joint_embed=dict(attr.joint_embed),
                symbolic=dict(attr.symbolic),
            )
            window.wav["self_wav"] = WavCondition(
                ref.wav[..., positions % wav_length],
                torch.full_like(ref.length, target_length),
                [self.sample_rate] * ref.wav.size(0),
                [None],
                [0.0],
            )
            out.append(window)
        return out
