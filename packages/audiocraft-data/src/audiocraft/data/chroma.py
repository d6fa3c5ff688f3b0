"""Chromagram extraction (layer: audiocraft-data, public): upstream's ``ChromaExtractor`` in plain torch.

The one implementation of the chromagram: the melody conditioner (``audiocraft.conditioners.ChromaStemConditioner``)
and the chroma cosine similarity metric (``audiocraft.metrics.ChromaCosineSimilarityMetric``) both use it, and
upstream's paths ``audiocraft.modules.chroma``, ``audiocraft.conditioners`` and ``audiocraft.metrics.chroma``
re-export it.

Upstream computes a power spectrogram with torchaudio and maps it to pitch classes with librosa's
``filters.chroma``. Here both are plain torch (no torchaudio, no librosa): the STFT is ``torch.stft`` with the same
periodic Hann window, reflection padding and window normalisation as
``torchaudio.transforms.Spectrogram(normalized=True, power=2)``, and :func:`chroma_filterbank` builds librosa's
chroma filters (default arguments: A440 tuning, octave weighting centred 5 octaves above A0 with a 2-octave
Gaussian, unit L2 norm per FFT bin, C first) in float64, cast to float32 as librosa does. The conditioners' known-answer
test compares with upstream's output at ``atol=1e-5``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ChromaExtractor", "PowerSpectrogram", "chroma_filterbank"]


def chroma_filterbank(
    sample_rate: int,
    n_fft: int,
    n_chroma: int = 12,
    tuning: float = 0.0,
    ctroct: float = 5.0,
    octwidth: float | None = 2.0,
    base_c: bool = True,
) -> torch.Tensor:
    """Weights ``[n_chroma, n_fft // 2 + 1]`` from FFT bins to chroma bins (librosa's chroma filters).

    Each FFT bin has a fractional pitch class; its weight on each chroma bin is a Gaussian of the circular
    distance, as wide as the FFT bin is in chroma units (at least one chroma bin).

    Args:
        sample_rate: Sample rate of the audio.
        n_fft: FFT size.
        n_chroma: Chroma bins per octave.
        tuning: Deviation from A440, in fractions of a chroma bin.
        ctroct: Centre of the octave weighting, in octaves above A0 (27.5 Hz).
        octwidth: Standard deviation of the octave weighting, in octaves (None: no weighting).
        base_c: Start the chroma bins at C (else at A).
    """
    dtype = torch.float64
    freqs = torch.arange(1, n_fft, dtype=dtype) * (sample_rate / n_fft)
    a440 = 440.0 * 2.0 ** (tuning / n_chroma)
    pitch = n_chroma * torch.log2(freqs / (a440 / 16))  # chroma units above A0
    pitch = torch.cat([pitch[:1] - 1.5 * n_chroma, pitch])  # the DC bin, 1.5 octaves below the first bin
    width = torch.cat([torch.clamp(pitch[1:] - pitch[:-1], min=1.0), torch.ones(1, dtype=dtype)])
    half = float(round(n_chroma / 2))
    distance = (
        torch.remainder(pitch[None, :] - torch.arange(n_chroma, dtype=dtype)[:, None] + half + 10 * n_chroma, n_chroma)
        - half
    )
    weights = torch.exp(-0.5 * (2 * distance / width[None, :]) ** 2)
    norms = weights.pow(2).sum(0, keepdim=True).sqrt()
    weights = weights / torch.where(norms < torch.finfo(dtype).tiny, torch.ones_like(norms), norms)
    if octwidth is not None:
        weights = weights * torch.exp(-0.5 * ((pitch / n_chroma - ctroct) / octwidth) ** 2)[None, :]
    if base_c:
        weights = torch.roll(weights, -3 * (n_chroma // 12), dims=0)
    return weights[:, : n_fft // 2 + 1].to(torch.float32).contiguous()


class PowerSpectrogram(nn.Module):
    """torchaudio's ``Spectrogram(n_fft, win_length, hop_length, power=2, normalized=True)`` in plain torch.

    Same module layout as torchaudio's: a persistent ``window`` buffer (periodic Hann), so that the state-dict key of
    upstream's chroma conditioner, ``chroma.spec.window``, loads.
    """

    window: torch.Tensor

    def __init__(self, n_fft: int, win_length: int, hop_length: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.win_length = win_length
        self.hop_length = hop_length
        self.register_buffer("window", torch.hann_window(win_length))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Power spectrogram ``[..., n_fft // 2 + 1, frames]`` normalised by the window's energy."""
        shape = wav.shape
        spec = torch.stft(
            wav.reshape(-1, shape[-1]),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            normalized=False,
            onesided=True,
            return_complex=True,
        )
        spec = spec / self.window.pow(2.0).sum().sqrt()
        return spec.abs().pow(2.0).reshape(shape[:-1] + spec.shape[-2:])


class ChromaExtractor(nn.Module):
    """Normalised chromagram ``[B, frames, n_chroma]`` of audio ``[B, 1, T]`` (or ``[B, T]``).

    Args:
        sample_rate: Sample rate of the audio.
        n_chroma: Number of chroma bins.
        radix2_exp: The window is ``2 ** radix2_exp`` samples long (unless ``winlen`` is given).
        nfft: FFT size (default: the window length).
        winlen: Window length.
        winhop: Hop length (default: a quarter of the window).
        argmax: Replace each frame by the one-hot vector of its strongest bin.
        norm: Norm of the per-frame normalisation (default: max).
    """

    fbanks: torch.Tensor

    def __init__(
        self,
        sample_rate: int,
        n_chroma: int = 12,
        radix2_exp: int = 12,
        nfft: int | None = None,
        winlen: int | None = None,
        winhop: int | None = None,
        argmax: bool = False,
        norm: float = math.inf,
    ) -> None:
        super().__init__()
        self.winlen = winlen or 2**radix2_exp
        self.nfft = nfft or self.winlen
        self.winhop = winhop or (self.winlen // 4)
        self.sample_rate = sample_rate
        self.n_chroma = n_chroma
        self.norm = norm
        self.argmax = argmax
        self.register_buffer("fbanks", chroma_filterbank(sample_rate, self.nfft, n_chroma), persistent=False)
        self.spec = PowerSpectrogram(n_fft=self.nfft, win_length=self.winlen, hop_length=self.winhop)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Chromagram ``[B, frames, n_chroma]``; audio shorter than ``nfft`` (a null condition) is zero-padded.

        Raises:
            ValueError: ``wav`` is ``[B, C, T]`` with more than one channel (upstream fails there too).
        """
        if wav.dim() == 3 and wav.shape[1] != 1:
            raise ValueError(f"ChromaExtractor expects mono audio [B, 1, T], got {tuple(wav.shape)}")
        length = wav.shape[-1]
        if length < self.nfft:
            pad = self.nfft - length
            wav = F.pad(wav, (pad // 2, pad - pad // 2))
        spec = self.spec(wav)
        if spec.dim() == 4:  # [B, 1, F, frames]
            spec = spec.squeeze(1)
        chroma = torch.einsum("cf,...ft->...ct", self.fbanks, spec)
        chroma = F.normalize(chroma, p=self.norm, dim=-2, eps=1e-6).transpose(-1, -2)
        if self.argmax:
            chroma = torch.zeros_like(chroma).scatter_(-1, chroma.argmax(-1, keepdim=True), 1.0)
        return chroma
