"""Mel-spectrogram losses: single-scale L1 and multi-scale (msspec) (audiocraft-core, training losses).

Same definitions, argument names and defaults as upstream AudioCraft. Unlike upstream, the
multi-scale loss computes each scale's mel spectrogram once (the log branch is derived from the
linear one) and runs estimate and reference through a single batched transform.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn
from torch.nn import functional as F
from torchaudio.transforms import MelSpectrogram


def _pad_to_full_frames(x: torch.Tensor, kernel_size: int, stride: int) -> torch.Tensor:
    """Zero-pad the end of `x` `[..., T]` so that every frame of `kernel_size` every `stride` is full.

    Same arithmetic as `audiocraft.modules.conv.pad_for_conv1d` (padding_total=0), kept here so the
    losses do not depend on the model modules.
    """
    length = x.shape[-1]
    n_frames = (length - kernel_size) / stride + 1
    ideal_length = (math.ceil(n_frames) - 1) * stride + kernel_size
    return F.pad(x, (0, ideal_length - length))


class MelSpectrogramWrapper(nn.Module):
    """Mel spectrogram with "same" padding (ceil(T / hop) frames) and optional log10 scaling.

    Args:
        n_fft: FFT size.
        hop_length: hop in samples (cast to int).
        win_length: window length, None for `n_fft`.
        n_mels: number of mel bins.
        sample_rate: sample rate of the input.
        f_min: lowest mel frequency.
        f_max: highest mel frequency, None for Nyquist.
        log: whether to return `log10(floor_level + mel)`.
        normalized: whether the STFT is window-normalized.
        floor_level: floor added before the log.
    """

    def __init__(
        self,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int | None = None,
        n_mels: int = 80,
        sample_rate: float = 22050,
        f_min: float = 0.0,
        f_max: float | None = None,
        log: bool = True,
        normalized: bool = False,
        floor_level: float = 1e-5,
    ):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = int(hop_length)
        with warnings.catch_warnings():
            # Small FFTs (msspec's 2**6 scale) leave some of the 64 mel bands empty, as upstream: expected.
            warnings.filterwarnings("ignore", message="At least one mel filterbank has all zero values")
            self.mel_transform = MelSpectrogram(
                n_mels=n_mels,
                sample_rate=int(sample_rate),
                n_fft=n_fft,
                hop_length=self.hop_length,
                win_length=win_length,
                f_min=f_min,
                f_max=f_max,
                normalized=normalized,
                window_fn=torch.hann_window,
                center=False,
            )
        self.floor_level = floor_level
        self.log = log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: audio `[B, C, T]` or `[B, T]`. Returns `[B, C * n_mels, ceil(T / hop)]`."""
        if x.dim() == 2:
            x = x.unsqueeze(1)
        pad = (self.n_fft - self.hop_length) // 2
        x = F.pad(x, (pad, pad), "reflect")
        x = _pad_to_full_frames(x, self.n_fft, self.hop_length)
        mel = self.mel_transform(x)
        batch, channels, n_mels, frames = mel.shape
        if self.log:
            mel = torch.log10(self.floor_level + mel)
        return mel.reshape(batch, channels * n_mels, frames)


class MelSpectrogramL1Loss(nn.Module):
    """L1 distance between (log) mel spectrograms.

    Args:
        sample_rate: sample rate of the input.
        n_fft: FFT size.
        hop_length: hop in samples.
        win_length: window length in samples.
        n_mels: number of mel bins.
        f_min: lowest mel frequency.
        f_max: highest mel frequency, None for Nyquist.
        log: whether to compare log10 mels.
        normalized: whether the STFT is window-normalized.
        floor_level: floor added before the log.
    """

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int = 1024,
        n_mels: int = 80,
        f_min: float = 0.0,
        f_max: float | None = None,
        log: bool = True,
        normalized: bool = False,
        floor_level: float = 1e-5,
    ):
        super().__init__()
        self.melspec = MelSpectrogramWrapper(
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            n_mels=n_mels,
            sample_rate=sample_rate,
            f_min=f_min,
            f_max=f_max,
            log=log,
            normalized=normalized,
            floor_level=floor_level,
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Args: x: estimate `[B, C, T]`; y: reference `[B, C, T]`. Returns a scalar."""
        s_x, s_y = self.melspec(torch.cat([x, y], dim=0)).chunk(2, dim=0)
        return F.l1_loss(s_x, s_y)


class MultiScaleMelSpectrogramLoss(nn.Module):
    """Multi-scale mel loss (msspec): at each scale `2**i`, L1 on linear mels + alpha * MSE on log mels.

    Scales run over `i in range(range_start, range_end)` with `n_fft = win = 2**i`, `hop = 2**i / 4`.

    Args:
        sample_rate: sample rate of the input.
        range_start: first power of two.
        range_end: last power of two (excluded).
        n_mels: number of mel bins.
        f_min: lowest mel frequency.
        f_max: highest mel frequency, None for Nyquist.
        normalized: window-normalize the STFTs and divide the loss by the sum of the weights.
        alphas: weight the log terms by `sqrt(2**i - 1)` (else 1).
        floor_level: floor added before the log.
    """

    def __init__(
        self,
        sample_rate: int,
        range_start: int = 6,
        range_end: int = 11,
        n_mels: int = 64,
        f_min: float = 0.0,
        f_max: float | None = None,
        normalized: bool = False,
        alphas: bool = True,
        floor_level: float = 1e-5,
    ):
        super().__init__()
        self.normalized = normalized
        self.floor_level = floor_level
        self.mels = nn.ModuleList(
            MelSpectrogramWrapper(
                n_fft=2**i,
                hop_length=(2**i) / 4,
                win_length=2**i,
                n_mels=n_mels,
                sample_rate=sample_rate,
                f_min=f_min,
                f_max=f_max,
                log=False,
                normalized=normalized,
                floor_level=floor_level,
            )
            for i in range(range_start, range_end)
        )
        self.alphas = [math.sqrt(2**i - 1) if alphas else 1.0 for i in range(range_start, range_end)]
        self.total = sum(alpha + 1 for alpha in self.alphas)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Args: x: estimate `[B, C, T]`; y: reference `[B, C, T]`. Returns a scalar."""
        both = torch.cat([x, y], dim=0)
        loss = x.new_zeros(())
        for mel, alpha in zip(self.mels, self.alphas):
            lin = mel(both)
            log = torch.log10(self.floor_level + lin)
            lin_x, lin_y = lin.chunk(2, dim=0)
            log_x, log_y = log.chunk(2, dim=0)
            loss = loss + F.l1_loss(lin_x, lin_y) + alpha * F.mse_loss(log_x, log_y)
        if self.normalized:
            loss = loss / self.total
        return loss
