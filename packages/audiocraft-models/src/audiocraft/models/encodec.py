"""Compression models: the interface of audio tokenizers, and EnCodec (layer: audiocraft-models, models).

:class:`CompressionModel` is the abstract interface a language model needs from an audio tokenizer (encode audio to
integer codes [B, K, T], decode them back, frame rate, cardinality...). :class:`EncodecModel` implements it with an
injected encoder, decoder and quantizer, with upstream AudioCraft's numerics: ``encode`` returns ``(codes, scale)``,
``decode`` does not trim, ``forward`` trims to the input length and returns a
:class:`~audiocraft.quantization.QuantizedResult`. A causal EnCodec also streams (``with model.streaming():``).
The wrapper of Descript's DAC lives in :mod:`audiocraft.models.dac` (extra ``[dac]``).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from pathlib import Path

import torch
from torch import nn

from ..modules.streaming import StreamingModule
from ..quantization import BaseQuantizer, QuantizedResult
from ..quantization.vq import check_codes

logger = logging.getLogger(__name__)

__all__ = ["CompressionModel", "EncodecModel"]


class CompressionModel(ABC, nn.Module):
    """Interface of compression models used as audio tokenizers by language models."""

    @abstractmethod
    def forward(self, x: torch.Tensor) -> QuantizedResult:
        """Audio [B, C, T] -> QuantizedResult whose ``x`` is the reconstruction [B, C, T]."""

    @abstractmethod
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Audio [B, C, T] -> (codes [B, K, F], optional scale [B, 1])."""

    @abstractmethod
    def decode(self, codes: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """Codes [B, K, F] (+ scale) -> audio [B, C, T]."""

    @abstractmethod
    def decode_latent(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, K, F] -> continuous latent [B, D, F]."""

    @property
    @abstractmethod
    def channels(self) -> int:
        """Audio channels."""

    @property
    @abstractmethod
    def frame_rate(self) -> float:
        """Code frames per second."""

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """Audio sample rate."""

    @property
    @abstractmethod
    def cardinality(self) -> int:
        """Number of values of each code."""

    @property
    @abstractmethod
    def num_codebooks(self) -> int:
        """Number of codebooks in use."""

    @property
    @abstractmethod
    def total_codebooks(self) -> int:
        """Number of codebooks available."""

    @abstractmethod
    def set_num_codebooks(self, n: int) -> None:
        """Set the number of codebooks in use."""

    @staticmethod
    def get_pretrained(
        name: str | Path, device: torch.device | str = "cpu", cache_dir: str | Path | None = None
    ) -> CompressionModel:
        """Load a pretrained compression model, in eval mode (delegates to ``loaders.load_compression_model``).

        Args:
            name: one of
                - a name of ``loaders.NAMED_MODELS``: ``debug_compression_model`` (a tiny random model built
                  locally, no file), ``dac_44khz``, ``dac_24khz``, ``dac_16khz`` (Descript's DAC, extra ``[dac]``),
                - a local exported checkpoint file, or a folder holding ``compression_state_dict.bin``,
                - ``//pretrained/NAME``: NAME under ``$AUDIOCRAFT_PRETRAINED_DIR`` (or the rules above),
                - a Hugging Face hub repo id holding ``compression_state_dict.bin`` (extra ``[hub]``).
            device: device of the returned model.
            cache_dir: hub cache folder (the ``dac_*`` models are looked up there too: ``DAC(cache_dir=...)``).

        Returns:
            The model, on ``device``, in eval mode.
        """
        from . import loaders

        return loaders.load_compression_model(name, device=device, cache_dir=cache_dir)


class EncodecModel(CompressionModel, StreamingModule):
    """EnCodec: encoder -> quantizer -> decoder on raw waveforms.

    Args:
        encoder: maps audio [B, C, T] to a latent [B, D, F].
        decoder: maps a latent [B, D, F] back to audio [B, C, F * hop].
        quantizer: quantizes the latent.
        frame_rate: latent frames per second (``sample_rate // hop_length``).
        sample_rate: audio sample rate.
        channels: audio channels.
        causal: whether encoder and decoder are causal (then renormalisation is not allowed).
        renormalize: normalise each input by its RMS volume before encoding, and scale the output back.
    """

    # Plain attributes overriding the abstract properties.
    frame_rate: float = 0  # type: ignore[assignment]
    sample_rate: int = 0  # type: ignore[assignment]
    channels: int = 0  # type: ignore[assignment]

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        quantizer: BaseQuantizer,
        frame_rate: int,
        sample_rate: int,
        channels: int,
        causal: bool = False,
        renormalize: bool = False,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.quantizer = quantizer
        self.frame_rate = frame_rate
        self.sample_rate = sample_rate
        self.channels = channels
        self.renormalize = renormalize
        self.causal = causal
        if causal and renormalize:
            raise ValueError(
                "a causal EncodecModel does not support renormalize=True "
                "(the volume would be computed on future samples)"
            )

    @property
    def total_codebooks(self) -> int:  # type: ignore[override]
        """Number of codebooks of the quantizer."""
        return self.quantizer.total_codebooks

    @property
    def num_codebooks(self) -> int:  # type: ignore[override]
        """Number of codebooks in use."""
        return self.quantizer.num_codebooks

    def set_num_codebooks(self, n: int) -> None:
        """Use the first ``n`` codebooks of the quantizer."""
        self.quantizer.set_num_codebooks(n)

    @property
    def cardinality(self) -> int:  # type: ignore[override]
        """Codebook size."""
        return self.quantizer.bins  # type: ignore[return-value]

    def check_audio(self, x: torch.Tensor, sample_rate: int | None = None) -> None:
        """Raise a ValueError saying what was expected if ``x`` is not [B, channels, T] audio at the model's rate."""
        if sample_rate is not None and int(sample_rate) != int(self.sample_rate):
            raise ValueError(
                f"this model expects audio at {self.sample_rate} Hz, got {sample_rate} Hz; "
                "resample it first (e.g. with julius.resample_frac)"
            )
        if x.dim() != 3 or x.shape[1] != self.channels:
            raise ValueError(
                f"expected audio of shape [B, {self.channels}, T] ({self.channels} channel(s)), "
                f"got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(f"expected floating point audio, got dtype {x.dtype}")

    def preprocess(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Renormalise ``x`` [B, C, T] by its RMS volume if enabled; return it and the scale [B, 1] (or None)."""
        if not self.renormalize:
            return x, None
        mono = x.mean(dim=1, keepdim=True)
        volume = mono.pow(2).mean(dim=2, keepdim=True).sqrt()
        scale = 1e-8 + volume
        return x / scale, scale.view(-1, 1)

    def postprocess(self, x: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """Undo :meth:`preprocess` on audio [B, C, T]."""
        if scale is not None:
            if not self.renormalize:
                raise ValueError("a scale was given but this model does not renormalize its input")
            x = x * scale.view(-1, 1, 1)
        return x

    def forward(self, x: torch.Tensor) -> QuantizedResult:
        """Encode, quantize and decode ``x`` [B, C, T]; ``result.x`` is the reconstruction trimmed to T."""
        self.check_audio(x)
        length = x.shape[-1]
        x, scale = self.preprocess(x)
        emb = self.encoder(x)
        q_res = self.quantizer(emb, self.frame_rate)
        out = self.decoder(q_res.x)
        if out.shape[-1] < length:
            raise RuntimeError(f"decoder output ({out.shape[-1]} samples) is shorter than the input ({length})")
        q_res.x = self.postprocess(out[..., :length], scale)
        return q_res

    def encode(self, x: torch.Tensor, sample_rate: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encode audio to codes.

        Args:
            x: audio [B, C, T] at the model's sample rate.
            sample_rate: optional sample rate of ``x``, checked against the model's.

        Returns:
            codes [B, K, ceil(T / hop_length)] (int64) and scale [B, 1] (None unless ``renormalize``).
            In streaming mode, the codes of the frames completed by this chunk.
        """
        self.check_audio(x, sample_rate)
        x, scale = self.preprocess(x)
        emb = self.encoder(x)
        return self.quantizer.encode(emb), scale

    def decode(self, codes: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """Decode codes [B, K, F] to audio [B, C, F * hop_length] (not trimmed to any input length)."""
        emb = self.decode_latent(codes)
        return self.postprocess(self.decoder(emb), scale)

    def decode_latent(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, K, F] -> quantized latent [B, D, F]."""
        bins = getattr(self.quantizer, "bins", None)
        if bins is not None:
            check_codes(codes, int(bins), self.total_codebooks)
        return self.quantizer.decode(codes)

    def fold_weight_norm(self) -> int:
        """Fold every weight-normed convolution into a plain ``weight`` (faster inference, same outputs).

        The state-dict keys then become ``...conv.weight`` instead of upstream's ``weight_g``/``weight_v``; a
        model that keeps weight norm loads such a state dict too.

        Returns:
            The number of convolutions folded.
        """
        from ..modules.weight_norm import has_weight_norm, remove_weight_norm

        count = 0
        for module in self.modules():
            if has_weight_norm(module):
                remove_weight_norm(module)
                count += 1
        return count

    def flush_encode(self) -> torch.Tensor | None:
        """In streaming mode, emit the codes of the last, incomplete frame (zero padded, as offline).

        Returns:
            codes [B, K, F'] or None if no sample is pending.
        """
        emb = self.encoder.flush()  # type: ignore[operator]
        return None if emb is None else self.quantizer.encode(emb)


def __getattr__(name: str) -> object:
    # Keep `from audiocraft.models.encodec import DAC` (upstream's path) working without importing `dac` eagerly.
    if name == "DAC":
        from .dac import DAC

        return DAC
    if name == "InterleaveStereoCompressionModel":  # upstream's path; defined in ._stereo
        from ._stereo import InterleaveStereoCompressionModel

        return InterleaveStereoCompressionModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
