"""Spectral distances between estimated and reference audio: log-mel L1 and multi-resolution STFT.

Part of `audiocraft.metrics` (layer: metrics). Both are stateful metrics that accumulate sums of per-element
errors and element counts, so they reduce exactly across workers. They are the evaluation counterparts of the
`mel` and `mrstft` training losses of upstream AudioCraft (they are not differentiable training losses here,
although nothing prevents computing them under autograd through `distance()`).
"""

from collections.abc import Sequence

import torch
import torchaudio

from ._audio import as_sizes, check_pair
from ._base import Metric


class MelSpectrogramDistance(Metric):
    """Mean absolute (L1) or squared (L2) difference between log-mel spectrograms.

    `log10(mel + floor_level)` is computed for both signals and the error is averaged over every
    (item, channel, mel band, frame) seen.

    Args:
        sample_rate: Sample rate of the audio.
        n_fft: FFT size.
        hop_length: Hop between frames (default `n_fft // 4`).
        win_length: Window length (default `n_fft`).
        n_mels: Number of mel bands.
        f_min: Lowest mel frequency in Hz.
        f_max: Highest mel frequency in Hz (default Nyquist).
        log: Compare log10 mel magnitudes (True) or linear ones.
        floor_level: Floor added before the log.
        normalized: Normalise the STFT by the window norm (as upstream's mel loss).
        p: 1 for L1, 2 for squared error.
    """

    error_sum: torch.Tensor
    count: torch.Tensor

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 1024,
        hop_length: int | None = None,
        win_length: int | None = None,
        n_mels: int = 80,
        f_min: float = 0.0,
        f_max: float | None = None,
        log: bool = True,
        floor_level: float = 1e-5,
        normalized: bool = False,
        p: int = 1,
    ) -> None:
        super().__init__()
        if p not in (1, 2):
            raise ValueError(f"p must be 1 or 2, got {p}")
        self.n_fft = n_fft
        self.log = log
        self.floor_level = floor_level
        self.p = p
        self.melspec = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            hop_length=hop_length or n_fft // 4,
            win_length=win_length or n_fft,
            n_mels=n_mels,
            f_min=f_min,
            f_max=f_max,
            normalized=normalized,
            center=False,
            power=1.0,
        )
        self.add_state("error_sum", torch.tensor(0.0, dtype=torch.float64))
        self.add_state("count", torch.tensor(0, dtype=torch.int64))

    def _mel(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.shape[-1] < self.n_fft:
            wav = torch.nn.functional.pad(wav, (0, self.n_fft - wav.shape[-1]))
        mel = self.melspec(wav)
        return torch.log10(self.floor_level + mel) if self.log else mel

    def distance(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """Per-element error `[B, C, n_mels, frames]` between `estimate` and `reference` `[B, C, T]`."""
        diff = self._mel(estimate) - self._mel(reference)
        return diff.abs() if self.p == 1 else diff.pow(2)

    @torch.no_grad()
    def update(
        self,
        preds: torch.Tensor,
        targets: torch.Tensor,  # type: ignore[override]
        sizes: torch.Tensor | Sequence[int] | None = None,
    ) -> None:
        """Adds a batch of estimates `preds` and references `targets` `[B, C, T]`, trimmed to `sizes` `[B]`."""
        check_pair(preds, targets)
        lengths = as_sizes(sizes, preds)
        if all(n == preds.shape[-1] for n in lengths):
            errors = [self.distance(preds, targets)]
        else:
            errors = [self.distance(p[None, :, :n], t[None, :, :n]) for p, t, n in zip(preds, targets, lengths)]
        for e in errors:
            self.error_sum += e.double().sum().to(self.error_sum.device)
            self.count += e.numel()

    def compute(self) -> float:
        """Mean error over everything seen on all workers."""
        states = self.reduced_states()
        if int(states["count"]) == 0:
            raise RuntimeError("MelSpectrogramDistance.compute() called before any update()")
        return float(states["error_sum"]) / int(states["count"])


class MultiResolutionSTFTDistance(Metric):
    """Multi-resolution STFT distance: spectral convergence and log-magnitude L1, averaged over resolutions.

    For each resolution and each (item, channel), spectral convergence is `||S_ref - S_est||_F / ||S_ref||_F`
    and the log-magnitude distance is the mean of `|log S_ref - log S_est|` (magnitudes floored at `eps`).
    Both are averaged over items, channels and resolutions; `compute()` returns
    `{"sc": ..., "mag": ..., "mrstft": factor_sc * sc + factor_mag * mag}`.

    Args:
        fft_sizes: FFT size of each resolution.
        hop_sizes: Hop of each resolution.
        win_lengths: Window length of each resolution.
        factor_sc: Weight of spectral convergence in `mrstft`.
        factor_mag: Weight of the log-magnitude distance in `mrstft`.
        eps: Magnitude floor.
    """

    sc_sum: torch.Tensor
    mag_sum: torch.Tensor
    count: torch.Tensor

    def __init__(
        self,
        fft_sizes: Sequence[int] = (1024, 2048, 512),
        hop_sizes: Sequence[int] = (120, 240, 50),
        win_lengths: Sequence[int] = (600, 1200, 240),
        factor_sc: float = 0.1,
        factor_mag: float = 0.1,
        eps: float = 1e-7,
    ) -> None:
        super().__init__()
        if not len(fft_sizes) == len(hop_sizes) == len(win_lengths):
            raise ValueError(
                "fft_sizes, hop_sizes and win_lengths must have the same length, got "
                f"{len(fft_sizes)}, {len(hop_sizes)}, {len(win_lengths)}"
            )
        self.resolutions = list(zip(fft_sizes, hop_sizes, win_lengths))
        self.factor_sc = factor_sc
        self.factor_mag = factor_mag
        self.eps = eps
        for i, (_, _, win) in enumerate(self.resolutions):
            self.register_buffer(f"window_{i}", torch.hann_window(win), persistent=False)
        self.add_state("sc_sum", torch.tensor(0.0, dtype=torch.float64))
        self.add_state("mag_sum", torch.tensor(0.0, dtype=torch.float64))
        self.add_state("count", torch.tensor(0, dtype=torch.int64))

    def _magnitude(self, wav: torch.Tensor, index: int) -> torch.Tensor:
        n_fft, hop, win = self.resolutions[index]
        flat = wav.reshape(-1, wav.shape[-1])
        spec = torch.stft(flat, n_fft, hop, win, window=getattr(self, f"window_{index}"), return_complex=True)
        return spec.abs().clamp(min=self.eps).reshape(*wav.shape[:-1], *spec.shape[-2:])

    def distance(self, estimate: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Spectral convergence and log-magnitude distance per `[B, C]`, averaged over the resolutions."""
        sc = torch.zeros(estimate.shape[:-1], device=estimate.device)
        mag = torch.zeros(estimate.shape[:-1], device=estimate.device)
        for i in range(len(self.resolutions)):
            s_est, s_ref = self._magnitude(estimate, i), self._magnitude(reference, i)
            sc = sc + torch.linalg.vector_norm(s_ref - s_est, dim=(-2, -1)) / torch.linalg.vector_norm(
                s_ref, dim=(-2, -1)
            )
            mag = mag + (s_ref.log() - s_est.log()).abs().mean(dim=(-2, -1))
        n = len(self.resolutions)
        return sc / n, mag / n

    @torch.no_grad()
    def update(
        self,
        preds: torch.Tensor,
        targets: torch.Tensor,  # type: ignore[override]
        sizes: torch.Tensor | Sequence[int] | None = None,
    ) -> None:
        """Adds a batch of estimates `preds` and references `targets` `[B, C, T]`, trimmed to `sizes` `[B]`."""
        check_pair(preds, targets)
        lengths = as_sizes(sizes, preds)
        if all(n == preds.shape[-1] for n in lengths):
            pairs = [self.distance(preds, targets)]
        else:
            pairs = [self.distance(p[None, :, :n], t[None, :, :n]) for p, t, n in zip(preds, targets, lengths)]
        for sc, mag in pairs:
            self.sc_sum += sc.double().sum().to(self.sc_sum.device)
            self.mag_sum += mag.double().sum().to(self.mag_sum.device)
            self.count += sc.numel()

    def compute(self) -> dict[str, float]:
        """Returns `{"sc", "mag", "mrstft"}` over everything seen on all workers."""
        states = self.reduced_states()
        count = int(states["count"])
        if count == 0:
            raise RuntimeError("MultiResolutionSTFTDistance.compute() called before any update()")
        sc = float(states["sc_sum"]) / count
        mag = float(states["mag_sum"]) / count
        return {"sc": sc, "mag": mag, "mrstft": self.factor_sc * sc + self.factor_mag * mag}
