"""Single- and multi-resolution STFT losses (audiocraft-core, training losses).

Spectral convergence plus log-magnitude L1 over one or several STFT resolutions, with the
definitions, argument names and defaults of upstream AudioCraft (after Parallel WaveGAN).
Estimate and reference go through a single batched STFT call per resolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

_EPS = torch.finfo(torch.float32).eps


def _stft_magnitude(
    x: torch.Tensor, n_fft: int, hop_length: int, win_length: int, window: torch.Tensor | None, normalized: bool
) -> torch.Tensor:
    """Magnitude STFT of `x` `[B, C, T]` -> `[B, C, n_fft // 2 + 1, frames]` (floored at sqrt(1e-7))."""
    batch, channels, length = x.shape
    spec = torch.stft(
        x.reshape(-1, length), n_fft, hop_length, win_length, window, normalized=normalized, return_complex=True
    )
    power = spec.real.pow(2) + spec.imag.pow(2)
    return power.clamp(min=1e-7).sqrt().view(batch, channels, *spec.shape[1:])


class SpectralConvergenceLoss(nn.Module):
    """Spectral convergence: `||Y - X||_F / (||Y||_F + eps)` on magnitude spectrograms.

    Args:
        epsilon: numerical floor of the denominator.
    """

    def __init__(self, epsilon: float = _EPS):
        super().__init__()
        self.epsilon = epsilon

    def forward(self, x_mag: torch.Tensor, y_mag: torch.Tensor) -> torch.Tensor:
        """Args: x_mag, y_mag: magnitudes of estimate and reference, same shape. Returns a scalar."""
        return torch.linalg.vector_norm(y_mag - x_mag) / (torch.linalg.vector_norm(y_mag) + self.epsilon)


class LogSTFTMagnitudeLoss(nn.Module):
    """L1 distance between log magnitudes, `mean|log(eps + Y) - log(eps + X)|`.

    Args:
        epsilon: floor added before the log.
    """

    def __init__(self, epsilon: float = _EPS):
        super().__init__()
        self.epsilon = epsilon

    def forward(self, x_mag: torch.Tensor, y_mag: torch.Tensor) -> torch.Tensor:
        """Args: x_mag, y_mag: magnitudes of estimate and reference, same shape. Returns a scalar."""
        return F.l1_loss(torch.log(self.epsilon + y_mag), torch.log(self.epsilon + x_mag))


class STFTLosses(nn.Module):
    """Spectral convergence and log-magnitude losses at one STFT resolution.

    Args:
        n_fft: FFT size.
        hop_length: hop in samples.
        win_length: window length in samples.
        window: name of a torch window function (`hann_window`, ...).
        normalized: whether the STFT is normalized.
        epsilon: numerical floor.
    """

    def __init__(
        self,
        n_fft: int = 1024,
        hop_length: int = 120,
        win_length: int = 600,
        window: str = "hann_window",
        normalized: bool = False,
        epsilon: float = _EPS,
    ):
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.normalized = normalized
        self.register_buffer("window", getattr(torch, window)(win_length))
        self.spectral_convergenge_loss = SpectralConvergenceLoss(epsilon)  # upstream's spelling
        self.log_stft_magnitude_loss = LogSTFTMagnitudeLoss(epsilon)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x: estimate `[B, C, T]`; y: reference `[B, C, T]`. Returns (spectral convergence, log-mag)."""
        window: torch.Tensor = self.window  # type: ignore[assignment]  # a registered buffer
        mags = _stft_magnitude(
            torch.cat([x, y], dim=0), self.n_fft, self.hop_length, self.win_length, window, self.normalized
        )
        x_mag, y_mag = mags.chunk(2, dim=0)
        return self.spectral_convergenge_loss(x_mag, y_mag), self.log_stft_magnitude_loss(x_mag, y_mag)


class STFTLoss(nn.Module):
    """Single-resolution STFT loss: `factor_sc * sc + factor_mag * mag`.

    Args:
        n_fft: FFT size.
        hop_length: hop in samples.
        win_length: window length in samples.
        window: name of a torch window function.
        normalized: whether the STFT is normalized.
        factor_sc: weight of the spectral convergence term.
        factor_mag: weight of the log-magnitude term.
        epsilon: numerical floor.
    """

    def __init__(
        self,
        n_fft: int = 1024,
        hop_length: int = 120,
        win_length: int = 600,
        window: str = "hann_window",
        normalized: bool = False,
        factor_sc: float = 0.1,
        factor_mag: float = 0.1,
        epsilon: float = _EPS,
    ):
        super().__init__()
        self.loss = STFTLosses(n_fft, hop_length, win_length, window, normalized, epsilon)
        self.factor_sc = factor_sc
        self.factor_mag = factor_mag

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Args: x: estimate `[B, C, T]`; y: reference `[B, C, T]`. Returns a scalar."""
        sc_loss, mag_loss = self.loss(x, y)
        return self.factor_sc * sc_loss + self.factor_mag * mag_loss


class MRSTFTLoss(nn.Module):
    """Multi-resolution STFT loss: both terms averaged over the resolutions, then weighted.

    Args:
        n_ffts: FFT size of each resolution.
        hop_lengths: hop of each resolution.
        win_lengths: window length of each resolution.
        window: name of a torch window function.
        factor_sc: weight of the spectral convergence term.
        factor_mag: weight of the log-magnitude term.
        normalized: whether the STFTs are normalized.
        epsilon: numerical floor.
    """

    def __init__(
        self,
        n_ffts: Sequence[int] = (1024, 2048, 512),
        hop_lengths: Sequence[int] = (120, 240, 50),
        win_lengths: Sequence[int] = (600, 1200, 240),
        window: str = "hann_window",
        factor_sc: float = 0.1,
        factor_mag: float = 0.1,
        normalized: bool = False,
        epsilon: float = _EPS,
    ):
        super().__init__()
        if not len(n_ffts) == len(hop_lengths) == len(win_lengths):
            raise ValueError(
                f"MRSTFTLoss: n_ffts {list(n_ffts)}, hop_lengths {list(hop_lengths)} and "
                f"win_lengths {list(win_lengths)} must have the same length"
            )
        self.stft_losses = nn.ModuleList(
            STFTLosses(n_fft, hop, win, window, normalized, epsilon)
            for n_fft, hop, win in zip(n_ffts, hop_lengths, win_lengths)
        )
        self.factor_sc = factor_sc
        self.factor_mag = factor_mag

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Args: x: estimate `[B, C, T]`; y: reference `[B, C, T]`. Returns a scalar."""
        sc_total = x.new_zeros(())
        mag_total = x.new_zeros(())
        for loss in self.stft_losses:
            sc_loss, mag_loss = loss(x, y)
            sc_total = sc_total + sc_loss
            mag_total = mag_total + mag_loss
        count = len(self.stft_losses)
        return self.factor_sc * sc_total / count + self.factor_mag * mag_total / count
