"""Chromagram extraction in PyTorch (no librosa), for the chroma cosine similarity metric.

Part of `audiocraft.metrics` (layer: metrics). `chroma_filterbank` builds the usual STFT-to-chroma weights:
each FFT bin is mapped to a fractional pitch class, spread over the neighbouring chroma bins with a Gaussian
as wide as the bin, each FFT bin's column normalised to unit L2 norm, then weighted by a wide Gaussian over
octaves centred 5 octaves above A0 (880 Hz), with the first chroma bin on C. This is the design of
librosa's `filters.chroma`, which upstream's `ChromaExtractor` uses; `ChromaExtractor` mirrors upstream's
module (spectrogram, filterbank, normalisation, optional argmax).
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio
from torch import nn


def chroma_filterbank(sample_rate: int, n_fft: int, n_chroma: int = 12, tuning: float = 0.0,
                      ctroct: float = 5.0, octwidth: float | None = 2.0, base_c: bool = True) -> torch.Tensor:
    """STFT-to-chroma weights `[n_chroma, n_fft // 2 + 1]`.

    Args:
        sample_rate: Sample rate of the audio.
        n_fft: FFT size.
        n_chroma: Number of chroma bins per octave.
        tuning: Tuning deviation from A440, in fractions of a chroma bin.
        ctroct: Centre (in octaves above A0 = 27.5 Hz) of the octave weighting.
        octwidth: Width (in octaves) of the octave weighting; None disables it.
        base_c: Put C in the first chroma bin (else A).
    """
    freqs = np.linspace(0, sample_rate, n_fft, endpoint=False)[1:]
    a440 = 440.0 * 2.0 ** (tuning / n_chroma)
    octs = np.log2(freqs / (a440 / 16))  # octaves above A0
    bins = n_chroma * octs
    bins = np.concatenate([[bins[0] - 1.5 * n_chroma], bins])  # the DC bin sits 1.5 octaves below bin 1
    widths = np.concatenate([np.maximum(bins[1:] - bins[:-1], 1.0), [1.0]])
    dist = bins[None, :] - np.arange(n_chroma)[:, None]
    half = round(n_chroma / 2)
    dist = np.remainder(dist + half + 10 * n_chroma, n_chroma) - half  # wrap to [-n_chroma/2, n_chroma/2)
    weights = np.exp(-0.5 * (2 * dist / widths[None, :]) ** 2)
    weights = weights / np.maximum(np.linalg.norm(weights, axis=0, keepdims=True), np.finfo(float).tiny)
    if octwidth is not None:
        weights = weights * np.exp(-0.5 * ((bins / n_chroma - ctroct) / octwidth) ** 2)[None, :]
    if base_c:
        weights = np.roll(weights, -3 * (n_chroma // 12), axis=0)
    return torch.from_numpy(np.ascontiguousarray(weights[:, : n_fft // 2 + 1])).float()


class ChromaExtractor(nn.Module):
    """Normalised chromagram `[B, frames, n_chroma]` of mono audio `[B, 1, T]` or `[B, T]`.

    Args:
        sample_rate: Sample rate of the audio.
        n_chroma: Number of chroma bins.
        radix2_exp: Window length is `2 ** radix2_exp` samples unless `winlen` is given.
        nfft: FFT size (default: window length).
        winlen: Window length.
        winhop: Hop length (default: window length // 4).
        argmax: Replace each frame by the one-hot vector of its strongest chroma bin.
        norm: Norm used to normalise each frame (default: max norm).
    """

    def __init__(self, sample_rate: int, n_chroma: int = 12, radix2_exp: int = 12, nfft: int | None = None,
                 winlen: int | None = None, winhop: int | None = None, argmax: bool = False,
                 norm: float = math.inf) -> None:
        super().__init__()
        self.winlen = winlen or 2 ** radix2_exp
        self.nfft = nfft or self.winlen
        self.winhop = winhop or self.winlen // 4
        self.sample_rate = sample_rate
        self.n_chroma = n_chroma
        self.norm = norm
        self.argmax = argmax
        self.register_buffer("fbanks", chroma_filterbank(sample_rate, self.nfft, n_chroma), persistent=False)
        self.spec = torchaudio.transforms.Spectrogram(n_fft=self.nfft, win_length=self.winlen, hop_length=self.winhop,
                                                      power=2, center=True, pad=0, normalized=True)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Chromagram `[B, frames, n_chroma]` (frames = T // winhop + 1 for T >= nfft)."""
        if wav.dim() == 3:
            if wav.shape[1] != 1:
                raise ValueError(f"ChromaExtractor expects mono audio [B, 1, T], got {tuple(wav.shape)}")
            wav = wav[:, 0]
        if wav.shape[-1] < self.nfft:
            pad = self.nfft - wav.shape[-1]
            wav = F.pad(wav, (pad // 2, pad - pad // 2))
        spec = self.spec(wav)
        chroma = torch.einsum("cf,bft->bct", self.fbanks, spec)
        chroma = F.normalize(chroma, p=self.norm, dim=-2, eps=1e-6).transpose(1, 2)
        if self.argmax:
            idx = chroma.argmax(-1, keepdim=True)
            chroma = torch.zeros_like(chroma).scatter_(-1, idx, 1.0)
        return chroma
