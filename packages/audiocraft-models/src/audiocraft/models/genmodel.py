"""The generation API shared by MusicGen and AudioGen: a language model over the codes of a compression model.

Layer: audiocraft-models, models. :class:`BaseGenModel` holds the LM and the compression model and gives upstream
AudioCraft's API: ``generate``, ``generate_unconditional``, ``generate_continuation``, ``generate_audio``,
``set_custom_progress_callback``, and generation longer than the training window (``max_duration``) by sliding
windows that overlap by ``max_duration - extend_stride`` seconds, with upstream's arithmetic.

Additions (upstream has none of these):

* reproducibility: every generation method takes ``seed`` or ``generator`` (keyword only); the generator reaches
  the LM's sampler and is shared by the windows of a long generation, so the same call with the same seed gives
  the same tokens and audio;
* streaming output: :meth:`BaseGenModel.stream` runs a generation method and yields decoded audio chunks while it
  runs, and :meth:`BaseGenModel.set_custom_audio_callback` receives them from any generation call. The
  concatenated chunks equal the one-shot audio. A causal EnCodec decodes each chunk with its streaming decoder; a
  non-causal compression model (MusicGen's published 32 kHz EnCodec, the stereo wrapper) re-decodes the codes so far
  and emits the samples whose receptive field is complete (:class:`AudioStreamer`).

Bad input raises a ValueError naming what is wrong where upstream asserts.
"""

from __future__ import annotations

import bisect
import inspect
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from audiocraft.conditioners import ConditioningAttributes, TorchAutocast
from audiocraft.data.audio_utils import convert_audio
from audiocraft.data.conditions import JointEmbedCondition

from ..modules.codebooks_patterns import Pattern
from ._stereo import wrap_compression_model
from .encodec import CompressionModel, EncodecModel
from .lm import LMModel

__all__ = [
    "BaseGenModel",
    "AudioStreamer",
    "GenerationOutput",
    "ProgressCallback",
    "AudioCallback",
    "default_device",
    "load_pretrained_parts",
]

ProgressCallback = Callable[[int, int], None]
"""Called with (generated steps, total steps) during generation."""
AudioCallback = Callable[[torch.Tensor], None]
"""Called with each chunk of decoded audio while streaming."""
GenerationOutput = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
"""Generated audio, or (audio, tokens) when the tokens are returned too."""
FrameCallback = Callable[[torch.Tensor], None]

# Code frames of right context held back by the re-decoding streamer of non-causal compression models. Measured
# right receptive fields: 0.72 frames for encodec_musicgen_32khz, 3.7 frames for the debug compression model (its
# hop is 1280 samples); tests/models/test_musicgen.py checks that streamed audio equals one-shot audio for both.
DEFAULT_LOOKAHEAD_FRAMES = 8


def _is_streamable(model: CompressionModel) -> bool:
    return isinstance(model, EncodecModel) and bool(model.causal)


class AudioStreamer:
    """Turns code frames arriving in order into audio chunks whose concatenation is ``model.decode(all codes)``.

    Args:
        model: the compression model.
        chunk_frames: decode once at least this many new frames are available.
        callback: receives each audio chunk ``[B, C, n]``.
        lookahead_frames: for non-causal models, frames of right context held back before audio is emitted.
    """

    def __init__(
        self,
        model: CompressionModel,
        chunk_frames: int,
        callback: AudioCallback,
        lookahead_frames: int = DEFAULT_LOOKAHEAD_FRAMES,
    ) -> None:
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be at least 1, got {chunk_frames}")
        self.model = model
        self.chunk_frames = chunk_frames
        self.callback = callback
        self.lookahead_frames = lookahead_frames
        self.streaming = _is_streamable(model)
        self._pending: list[torch.Tensor] = []
        self._num_pending = 0
        self._codes: list[torch.Tensor] = []  # every frame so far (re-decoding mode)
        self._emitted = 0  # samples emitted (re-decoding mode)
        self._stack = ExitStack()
        if self.streaming:
            assert isinstance(model, EncodecModel)
            self._stack.enter_context(model.streaming())

    @torch.no_grad()
    def push(self, frames: torch.Tensor) -> None:
        """Add code frames ``[B, K, n]`` (the next ones in time)."""
        if frames.shape[-1] == 0:
            return
        self._pending.append(frames)
        self._num_pending += frames.shape[-1]
        if self._num_pending >= self.chunk_frames:
            self._decode(final=False)

    @torch.no_grad()
    def close(self) -> None:
        """Emit the audio of every frame not emitted yet, and leave the decoder's streaming mode."""
        try:
            self._decode(final=True)
            if self.streaming:
                tail = self.model.decoder.flush()  # type: ignore[union-attr, operator]
                if tail is not None and tail.shape[-1]:
                    self.callback(self.model.postprocess(tail))  # type: ignore[union-attr, operator]
        finally:
            self._stack.close()

    def _decode(self, final: bool) -> None:
        new = torch.cat(self._pending, dim=-1) if self._pending else None
        self._pending, self._num_pending = [], 0
        if self.streaming:
            if new is not None:
                self.callback(self.model.decode(new, None))
            return
        if new is not None:
            self._codes.append(new)
        if not self._codes:
            return
        codes = torch.cat(self._codes, dim=-1)
        self._codes = [codes]
        step = int(getattr(self.model, "num_virtual_steps", 1))  # codes interleaved per timestep decode in pairs
        frames = codes.shape[-1] if final else codes.shape[-1] - codes.shape[-1] % step
        if frames == 0:
            return
        audio = self.model.decode(codes[..., :frames], None)
        ready = audio.shape[-1] if final else audio.shape[-1] * max(0, frames - self.lookahead_frames) // frames
        if ready > self._emitted:
            self.callback(audio[..., self._emitted : ready])
            self._emitted = ready


class _FrameTracker:
    """Emits the code frames of a pattern's sequence as soon as all their codebooks are generated."""

    def __init__(self, pattern: Pattern, n_q: int, timesteps: int, first: int, sink: FrameCallback) -> None:
        step_of = torch.zeros(n_q, timesteps, dtype=torch.long)
        done = [0] * timesteps
        for step, coords in enumerate(pattern.layout):
            for coord in coords:
                if coord.t < timesteps:
                    step_of[coord.q, coord.t] = step
                    done[coord.t] = max(done[coord.t], step)
        for t in range(1, timesteps):  # frame t is out once every frame before it is
            done[t] = max(done[t], done[t - 1])
        self.step_of = step_of
        self.done = done
        self.emitted = first
        self.sink = sink

    def __call__(self, sequence: torch.Tensor, offset: int) -> None:
        complete = bisect.bisect_right(self.done, offset)
        if complete > self.emitted:
            steps = self.step_of[:, self.emitted : complete].to(sequence.device)
            index = steps[None].expand(sequence.shape[0], -1, -1)
            self.sink(torch.gather(sequence, 2, index))
            self.emitted = complete


class BaseGenModel(ABC):
    """A language model over the codes of a compression model, with upstream AudioCraft's generation API.

    Args:
        name: name of the model.
        compression_model: maps audio to codes and back.
        lm: language model over the codes.
        max_duration: longest audio generated in one window, in seconds (default: the LM's training segment
            duration, ``lm.cfg.dataset.segment_duration``).

    Raises:
        ValueError: when ``max_duration`` is not given and the LM has no training config.
    """

    # Duration set by the constructor through set_generation_params (upstream's subclasses do it in __init__).
    default_duration: float | None = None

    def __init__(
        self, name: str, compression_model: CompressionModel, lm: LMModel, max_duration: float | None = None
    ) -> None:
        self.name = name
        self.compression_model = compression_model
        self.lm = lm
        self.cfg: DictConfig | None = None
        self.compression_model.eval()
        self.lm.eval()
        cfg = getattr(lm, "cfg", None)
        if cfg is not None:
            if not isinstance(cfg, DictConfig):
                raise TypeError(f"lm.cfg must be an omegaconf DictConfig, got {type(cfg).__name__}")
            self.cfg = cfg
            self.compression_model = wrap_compression_model(self.compression_model, cfg)
        if max_duration is None:
            segment = None if self.cfg is None else self.cfg.get("dataset", {}).get("segment_duration")
            if segment is None:
                raise ValueError("pass max_duration: the LM has no training config with dataset.segment_duration")
            max_duration = float(segment)
        self.max_duration: float = float(max_duration)
        self.duration: float = self.max_duration
        # Length of each extension when generating past max_duration; subclasses set it in set_generation_params.
        self.extend_stride: float | None = None
        self.device = next(iter(lm.parameters())).device
        self.generation_params: dict[str, Any] = {}
        self._progress_callback: ProgressCallback | None = None
        self._audio_callback: AudioCallback | None = None
        self._audio_chunk_duration = 1.0
        if self.device.type == "cpu":
            self.autocast = TorchAutocast(enabled=False)
        else:
            self.autocast = TorchAutocast(enabled=True, device_type=self.device.type, dtype=torch.float16)
        if self.default_duration is not None:
            self.set_generation_params(duration=self.default_duration)

    @property
    def frame_rate(self) -> float:
        """Code frames (LM timesteps) per second."""
        return self.compression_model.frame_rate

    @property
    def sample_rate(self) -> int:
        """Sample rate of the generated audio."""
        return self.compression_model.sample_rate

    @property
    def audio_channels(self) -> int:
        """Channels of the generated audio."""
        return self.compression_model.channels

    def set_custom_progress_callback(self, progress_callback: ProgressCallback | None = None) -> None:
        """Receive ``(generated_steps, steps_to_generate)`` instead of the printed progress (None: print)."""
        self._progress_callback = progress_callback

    def set_custom_audio_callback(
        self, audio_callback: AudioCallback | None = None, chunk_duration: float = 1.0
    ) -> None:
        """Receive decoded audio chunks ``[B, C, n]`` while any generation method runs (None: stop).

        Args:
            audio_callback: called with each chunk, in order; the chunks concatenate to the returned audio.
            chunk_duration: seconds of new codes between two decodes.
        """
        if chunk_duration <= 0:
            raise ValueError(f"chunk_duration must be positive, got {chunk_duration}")
        self._audio_callback = audio_callback
        self._audio_chunk_duration = float(chunk_duration)

    @abstractmethod
    def set_generation_params(self, *args: Any, **kwargs: Any) -> None:
        """Set the generation parameters."""

    def _store_generation_params(
        self, *, duration: float, extend_stride: float, temperature: float, **params: Any
    ) -> None:
        """Keep ``duration``, ``extend_stride`` and the keyword arguments of ``lm.generate`` (``temp``...)."""
        self.extend_stride = extend_stride  # checked when a long generation uses it (see _check_extend_stride)
        self.duration = duration
        self.generation_params = {
            "use_sampling": params.pop("use_sampling"),
            "temp": temperature,
            "top_k": params.pop("top_k"),
            "top_p": params.pop("top_p"),
            "cfg_coef": params.pop("cfg_coef"),
            "two_step_cfg": params.pop("two_step_cfg"),
            **{k: v for k, v in params.items() if v is not None},
        }

    @staticmethod
    @abstractmethod
    def get_pretrained(name: str, device: torch.device | str | None = None) -> BaseGenModel:
        """Load a pretrained model."""

    def _check_extend_stride(self, extend_stride: float) -> None:
        # Deliberate difference: upstream asserts extend_stride < max_duration in every set_generation_params call,
        # so a MusicGen trained on segments of 18 s or less cannot even be built (its constructor sets the default
        # stride, 18 s); here the stride is checked when a generation past max_duration uses it.
        if not extend_stride < self.max_duration:
            raise ValueError(
                f"extend_stride ({extend_stride} s) must be shorter than max_duration ({self.max_duration} s)"
            )
        if extend_stride <= 0:
            raise ValueError(f"extend_stride must be positive, got {extend_stride}")

    def _make_generator(self, seed: int | None, generator: torch.Generator | None) -> torch.Generator | None:
        if seed is not None:
            if generator is not None:
                raise ValueError("pass either seed or generator, not both")
            return torch.Generator(device=self.device).manual_seed(int(seed))
        return generator

    @torch.no_grad()
    def _prepare_tokens_and_attributes(
        self,
        descriptions: Sequence[str | None],
        prompt: torch.Tensor | None,
    ) -> tuple[list[ConditioningAttributes], torch.Tensor | None]:
        """Conditions of each description and the codes of the prompt audio (if any).

        Joint-embedding attributes (CLAP) get the description as their text, with an empty waveform: the
        conditioner embeds the text at inference. Upstream never fills ``joint_embed`` here, so its CLAP models
        cannot generate from a description (deliberate difference).
        """
        attributes = [ConditioningAttributes(text={"description": description}) for description in descriptions]
        for attr, description in zip(attributes, descriptions):
            for name in self.lm.condition_provider.joint_embed_conditions:
                attr.joint_embed[name] = JointEmbedCondition(
                    wav=torch.zeros(1, self.audio_channels, 1, device=self.device),
                    text=[description],
                    length=torch.zeros(1, dtype=torch.long, device=self.device),
                    sample_rate=[self.sample_rate],
                    path=[None],
                    seek_time=[None],
                )
        prompt_tokens = None
        if prompt is not None:
            if len(descriptions) != len(prompt):
                raise ValueError(f"{len(prompt)} prompts but {len(descriptions)} descriptions")
            prompt_tokens, scale = self.compression_model.encode(prompt.to(self.device))
            if scale is not None:
                raise ValueError(
                    "the compression model renormalises its input (scale is not None): "
                    "prompts need a model without renormalisation"
                )
        return attributes, prompt_tokens

    def _output(self, tokens: torch.Tensor, return_tokens: bool) -> GenerationOutput:
        audio = self.generate_audio(tokens)
        return (audio, tokens) if return_tokens else audio

    def generate_unconditional(
        self,
        num_samples: int,
        progress: bool = False,
        return_tokens: bool = False,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> GenerationOutput:
        """Generate ``num_samples`` samples without conditions (audio ``[B, C, T]``, and tokens if asked)."""
        descriptions: list[str | None] = [None] * num_samples
        attributes, prompt_tokens = self._prepare_tokens_and_attributes(descriptions, None)
        tokens = self._generate_tokens(
            attributes, prompt_tokens, progress, generator=self._make_generator(seed, generator)
        )
        return self._output(tokens, return_tokens)

    def generate(
        self,
        descriptions: Sequence[str | None],
        progress: bool = False,
        return_tokens: bool = False,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> GenerationOutput:
        """Generate one sample per text description (audio ``[B, C, T]``, and tokens if asked).

        Args:
            descriptions: the text conditions (None: unconditional sample).
            progress: report progress (printed, or to the custom progress callback).
            return_tokens: also return the generated codes ``[B, K, frames]``.
            seed: seed of the sampler (same seed, same output).
            generator: random generator of the sampler, instead of ``seed``.
        """
        attributes, prompt_tokens = self._prepare_tokens_and_attributes(list(descriptions), None)
        tokens = self._generate_tokens(
            attributes, prompt_tokens, progress, generator=self._make_generator(seed, generator)
        )
        return self._output(tokens, return_tokens)

    def _prepare_prompt(self, prompt: torch.Tensor, prompt_sample_rate: int) -> torch.Tensor:
        if prompt.dim() == 2:
            prompt = prompt[None]
        if prompt.dim() != 3:
            raise ValueError(f"prompt must be audio of shape [B, C, T] or [C, T], got shape {tuple(prompt.shape)}")
        return convert_audio(prompt, prompt_sample_rate, self.sample_rate, self.audio_channels)

    def generate_continuation(
        self,
        prompt: torch.Tensor,
        prompt_sample_rate: int,
        descriptions: Sequence[str | None] | None = None,
        progress: bool = False,
        return_tokens: bool = False,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> GenerationOutput:
        """Continue audio prompts (the output starts with the prompt, re-encoded).

        Args:
            prompt: audio ``[B, C, T]`` (or ``[C, T]``), resampled and remixed to the model's format.
            prompt_sample_rate: sample rate of ``prompt``.
            descriptions: optional text condition of each prompt.
            progress: report progress.
            return_tokens: also return the codes.
            seed: seed of the sampler.
            generator: random generator of the sampler, instead of ``seed``.
        """
        prompt = self._prepare_prompt(prompt, prompt_sample_rate)
        if descriptions is None:
            descriptions = [None] * len(prompt)
        attributes, prompt_tokens = self._prepare_tokens_and_attributes(list(descriptions), prompt)
        tokens = self._generate_tokens(
            attributes, prompt_tokens, progress, generator=self._make_generator(seed, generator)
        )
        return self._output(tokens, return_tokens)

    def _window_attributes(
        self, attributes: list[ConditioningAttributes], time_offset: float
    ) -> list[ConditioningAttributes]:
        """Conditions of the window starting at ``time_offset`` seconds of a long generation (default: same)."""
        return attributes

    def _lm_generate(
        self,
        prompt_tokens: torch.Tensor | None,
        attributes: list[ConditioningAttributes],
        max_gen_len: int,
        callback: ProgressCallback | None,
        generator: torch.Generator | None,
        on_frames: FrameCallback | None,
    ) -> torch.Tensor:
        on_step = None
        if on_frames is not None:
            first = 0 if prompt_tokens is None else prompt_tokens.shape[-1]
            pattern = self.lm.pattern_provider.get_pattern(max_gen_len)
            on_step = _FrameTracker(pattern, self.lm.n_q, max_gen_len, first, on_frames)
        params = dict(self.generation_params)
        if params.get("cfg_coef_beta") is None:
            params.pop("cfg_coef_beta", None)  # LMs without double CFG never see the key
        elif "cfg_coef_beta" not in inspect.signature(self.lm.generate).parameters:
            raise TypeError(
                f"cfg_coef_beta (upstream 1.4's double classifier-free guidance) is set but "
                f"{type(self.lm).__name__}.generate has no cfg_coef_beta argument; "
                "set_generation_params(cfg_coef_beta=None) uses plain guidance"
            )
        with self.autocast:
            return self.lm.generate(
                prompt_tokens,
                attributes,
                callback=callback,
                max_gen_len=max_gen_len,
                generator=generator,
                on_step=on_step,
                **params,
            )

    def _generate_tokens(
        self,
        attributes: list[ConditioningAttributes],
        prompt_tokens: torch.Tensor | None,
        progress: bool = False,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Codes ``[B, K, int(duration * frame_rate)]`` for the conditions and prompt (prompt included).

        Past ``max_duration``, windows of at most ``max_duration`` seconds are generated, each one prompted with
        the last ``max_duration - extend_stride`` seconds of the previous one (upstream's arithmetic).
        """
        total_gen_len = int(self.duration * self.frame_rate)
        max_prompt_len = int(min(self.duration, self.max_duration) * self.frame_rate)
        if prompt_tokens is not None and prompt_tokens.shape[-1] > max_prompt_len:
            raise ValueError(
                f"the prompt ({prompt_tokens.shape[-1]} frames) is longer than the audio to generate "
                f"({max_prompt_len} frames)"
            )
        offset = 0

        def _progress(generated: int, to_generate: int) -> None:
            generated += offset
            if self._progress_callback is not None:
                self._progress_callback(generated, to_generate)
            else:
                print(f"{generated: 6d} / {to_generate: 6d}", end="\r")

        callback = _progress if progress else None
        streamer = None
        if self._audio_callback is not None:
            chunk_frames = max(1, int(round(self._audio_chunk_duration * self.frame_rate)))
            streamer = AudioStreamer(self.compression_model, chunk_frames, self._audio_callback)
        on_frames = None if streamer is None else streamer.push
        if streamer is not None and prompt_tokens is not None:
            streamer.push(prompt_tokens)  # the output starts with the prompt; each window emits its new frames only
        try:
            if self.duration <= self.max_duration:
                tokens = self._lm_generate(prompt_tokens, attributes, total_gen_len, callback, generator, on_frames)
            else:
                if self.extend_stride is None:
                    raise ValueError("set extend_stride (set_generation_params) to generate past max_duration")
                self._check_extend_stride(self.extend_stride)
                stride_tokens = int(self.frame_rate * self.extend_stride)
                all_tokens = []
                prompt_length = 0
                if prompt_tokens is not None:
                    all_tokens.append(prompt_tokens)
                    prompt_length = prompt_tokens.shape[-1]
                while offset + prompt_length < total_gen_len:
                    time_offset = offset / self.frame_rate
                    chunk_duration = min(self.duration - time_offset, self.max_duration)
                    max_gen_len = int(chunk_duration * self.frame_rate)
                    window = self._window_attributes(attributes, time_offset)
                    tokens = self._lm_generate(prompt_tokens, window, max_gen_len, callback, generator, on_frames)
                    all_tokens.append(tokens if prompt_tokens is None else tokens[:, :, prompt_tokens.shape[-1] :])
                    prompt_tokens = tokens[:, :, stride_tokens:]
                    prompt_length = prompt_tokens.shape[-1]
                    offset += stride_tokens
                tokens = torch.cat(all_tokens, dim=-1)
        finally:
            if streamer is not None:
                streamer.close()
        return tokens

    def generate_audio(self, gen_tokens: torch.Tensor) -> torch.Tensor:
        """Decode codes ``[B, K, T]`` to audio ``[B, C, T * hop]``."""
        if gen_tokens.dim() != 3:
            raise ValueError(f"expected codes of shape [B, K, T], got shape {tuple(gen_tokens.shape)}")
        with torch.no_grad():
            return self.compression_model.decode(gen_tokens, None)

    def stream(
        self, method: Callable[..., Any], *args: Any, chunk_duration: float = 1.0, **kwargs: Any
    ) -> Iterator[torch.Tensor]:
        """Run a generation method in a background thread and yield its decoded audio chunks as they come.

        ``for chunk in model.stream(model.generate, ["calm piano"], seed=0): ...``; the chunks ``[B, C, n]``
        concatenate to the audio ``method`` returns. An exception of the generation is raised from the iterator.

        Args:
            method: a generation method of this model (``generate``, ``generate_continuation``...).
            *args: its positional arguments.
            chunk_duration: seconds of new codes between two decodes.
            **kwargs: its keyword arguments.
        """
        chunks: queue.Queue[tuple[str, Any]] = queue.Queue()
        previous = (self._audio_callback, self._audio_chunk_duration)
        self.set_custom_audio_callback(lambda chunk: chunks.put(("chunk", chunk)), chunk_duration)

        def _run() -> None:
            try:
                with torch.no_grad():
                    method(*args, **kwargs)
                chunks.put(("done", None))
            except BaseException as exc:  # handed over to the consumer
                chunks.put(("error", exc))

        worker = threading.Thread(target=_run, name=f"{type(self).__name__}-stream", daemon=True)
        worker.start()
        try:
            while True:
                kind, value = chunks.get()
                if kind == "chunk":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    break
        finally:
            worker.join()
            self._audio_callback, self._audio_chunk_duration = previous


def default_device(device: torch.device | str | None) -> torch.device | str:
    """``device``, or upstream's default: ``cuda`` when a GPU is visible, else ``cpu``."""
    if device is not None:
        return device
    return "cuda" if torch.cuda.device_count() else "cpu"


def load_pretrained_parts(
    name: str | Path, device: torch.device | str, kind: str = "MusicGen"
) -> tuple[CompressionModel, LMModel]:
    """Load the compression model and the LM of a folder, ``//pretrained/`` name or hub repo in upstream's layout.

    Errors name the checkpoint and what to do: a folder without ``state_dict.bin``, a checkpoint whose weights do
    not fit the architecture of its config (or that is not a language model), a text encoder (T5) that is not
    available offline.

    Raises:
        CheckpointError: missing or unfit checkpoint.
        FileNotFoundError: a model the checkpoint's conditioners need is not on this machine.
        ImportError: an optional dependency (extra) is missing.
    """
    from . import loaders

    source = str(name)
    folder = Path(loaders.resolve_pretrained(source))
    lm_source, compression_source = source, source
    if folder.is_dir():
        found = {}
        for filename in (loaders.LM_FILENAME, loaders.COMPRESSION_FILENAME):
            stem = Path(filename).stem
            found[filename] = next(
                (f for f in (folder / filename, folder / f"{stem}.safetensors") if f.is_file()), None
            )
            if found[filename] is None:
                raise loaders.CheckpointError(
                    f"{folder / filename} does not exist: a {kind} folder holds {loaders.LM_FILENAME} (the language "
                    f"model) and {loaders.COMPRESSION_FILENAME} (the compression model), as written by "
                    "audiocraft.models.export.export_lm / export_encodec (or `dora run ... solver=...` export); "
                    "pass such a folder, a hub repo id or 'debug'"
                )
        lm_source, compression_source = str(found[loaders.LM_FILENAME]), str(found[loaders.COMPRESSION_FILENAME])
    try:
        lm = loaders.load_lm_model(lm_source, device=device)
    except loaders.CheckpointError as exc:
        raise loaders.CheckpointError(
            f"cannot load the language model of {kind} {source!r}: {exc}. The checkpoint's weights must come from "
            "the architecture its config (xp.cfg) describes: re-export it from its training run "
            "(audiocraft.models.export.export_lm), or check that the folder holds a language model and not another "
            "kind of checkpoint"
        ) from exc
    except ValueError as exc:
        raise loaders.CheckpointError(
            f"{source!r}: {loaders.LM_FILENAME} is not a {kind} language model "
            f"checkpoint that audiocraft-models can build: {exc}"
        ) from exc
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"loading {kind} {source!r}: a model its conditioners need is not available on this machine: {exc}"
        ) from exc
    if not isinstance(lm, LMModel):
        raise loaders.CheckpointError(f"{source!r}: {loaders.LM_FILENAME} holds a {type(lm).__name__}, not an LMModel")
    try:
        compression_model = loaders.load_compression_model(compression_source, device=device)
    except loaders.CheckpointError as exc:
        raise loaders.CheckpointError(
            f"cannot load the compression model of {kind} {source!r}: {exc}. {loaders.COMPRESSION_FILENAME} must "
            "be an exported compression model (audiocraft.models.export.export_encodec)"
        ) from exc
    return compression_model, lm
