"""Relative volume mel (RVM): how loud the mel-spectrogram error is relative to the reference, in dB.

Part of `audiocraft.metrics` (layer: metrics). Numerics follow upstream AudioCraft's `RelativeVolumeMel`:
both signals are divided by the reference RMS (gain limited to `max_initial_gain` dB), the magnitude mel
spectrograms are compared, and for each time-frequency bin the error volume minus the reference volume
(floored at `min_activity_volume`) is clamped to [`min_relative_volume`, `max_relative_volume`] dB, then averaged
over time for each mel band. `rvm` is the mean over bands, `rvm_{k}` the mean over the k-th group of bands
(low to high frequencies). -10 means that the error is on average 10 dB below the reference.

Calling the module (`rvm(estimate, ground_truth)`) returns upstream's dict for that batch (RMS taken over the
whole batch, as upstream does). The stateful form (`update` / `compute`) normalises each item by its own RMS
and averages per-item values, so that the result does not depend on how items are batched or split between
workers.
"""

from collections.abc import Sequence

import torch
import torchaudio

from ._audio import as_sizes, check_pair
from ._base import Metric


def db_to_scale(volume: float | torch.Tensor) -> float | torch.Tensor:
    """Amplitude ratio of a volume in dB."""
    return 10 ** (volume / 20)


def scale_to_db(scale: torch.Tensor, min_volume: float = -120) -> torch.Tensor:
    """Volume in dB of an amplitude ratio, floored at `min_volume` dB."""
    return 20 * torch.log10(scale.clamp(min=db_to_scale(min_volume)))


class RelativeVolumeMel(Metric):
    """Relative volume mel spectrogram distance, in dB (lower is better).

    Args:
        sample_rate: Sample rate of the audio.
        n_mels: Number of mel bands.
        n_fft: FFT size.
        hop_length: Hop between frames.
        min_relative_volume: Lower clamp of the relative error volume, in dB.
        max_relative_volume: Upper clamp of the relative error volume, in dB.
        max_initial_gain: Largest gain (dB) applied when normalising by the reference RMS.
        min_activity_volume: Floor (dB) of the reference mel volume.
        num_aggregated_bands: Number of band groups reported as `rvm_0 ... rvm_{n-1}`.
    """

    band_sum: torch.Tensor
    count: torch.Tensor

    def __init__(
        self,
        sample_rate: int = 24000,
        n_mels: int = 80,
        n_fft: int = 512,
        hop_length: int = 128,
        min_relative_volume: float = -25,
        max_relative_volume: float = 25,
        max_initial_gain: float = 25,
        min_activity_volume: float = -25,
        num_aggregated_bands: int = 4,
    ) -> None:
        super().__init__()
        if not 1 <= num_aggregated_bands <= n_mels:
            raise ValueError(f"num_aggregated_bands={num_aggregated_bands} must be in [1, n_mels={n_mels}]")
        self.melspec = torchaudio.transforms.MelSpectrogram(
            n_mels=n_mels, n_fft=n_fft, hop_length=hop_length, normalized=True, sample_rate=sample_rate, power=2
        )
        self.min_relative_volume = min_relative_volume
        self.max_relative_volume = max_relative_volume
        self.max_initial_gain = max_initial_gain
        self.min_activity_volume = min_activity_volume
        self.num_aggregated_bands = num_aggregated_bands
        self.add_state("band_sum", torch.zeros(n_mels, dtype=torch.float64))
        self.add_state("count", torch.tensor(0, dtype=torch.int64))

    def relative_volume(
        self, estimate: torch.Tensor, ground_truth: torch.Tensor, per_item: bool = False
    ) -> torch.Tensor:
        """Clamped relative error volume in dB, `[*, n_mels, frames]` for inputs `[*, T]`.

        With `per_item`, each item along the first dimension is normalised by its own RMS, else by the RMS of
        the whole tensor (upstream behaviour).
        """
        min_scale = float(db_to_scale(-self.max_initial_gain))
        if per_item:
            dims = tuple(range(1, ground_truth.dim()))
            std = ground_truth.pow(2).mean(dim=dims, keepdim=True).sqrt().clamp(min=min_scale)
        else:
            std = ground_truth.pow(2).mean().sqrt().clamp(min=min_scale)
        z_gt = self.melspec(ground_truth / std).sqrt()
        z_est = self.melspec(estimate / std).sqrt()
        ref_db = scale_to_db(z_gt, self.min_activity_volume)
        delta_db = scale_to_db((z_gt - z_est).abs(), min_volume=-120)
        return (delta_db - ref_db).clamp(self.min_relative_volume, self.max_relative_volume)

    def _aggregate(self, per_band: torch.Tensor) -> dict[str, torch.Tensor]:
        chunks = per_band.chunk(self.num_aggregated_bands, dim=0)
        metrics = {f"rvm_{k}": chunk.mean() for k, chunk in enumerate(chunks)}
        metrics["rvm"] = per_band.mean()
        return metrics

    def forward(self, estimate: torch.Tensor, ground_truth: torch.Tensor) -> dict[str, torch.Tensor]:  # type: ignore[override]
        """Upstream's batch RVM: `{"rvm": ..., "rvm_0": ..., ...}` for audio `[*, T]`; the state is untouched."""
        relative_db = self.relative_volume(estimate, ground_truth)
        dims = [d for d in range(relative_db.dim()) if d != relative_db.dim() - 2]
        return self._aggregate(relative_db.mean(dim=dims))

    @torch.no_grad()
    def update(
        self,
        preds: torch.Tensor,
        targets: torch.Tensor,  # type: ignore[override]
        sizes: torch.Tensor | Sequence[int] | None = None,
    ) -> None:
        """Adds a batch of estimates `preds` and references `targets` `[B, C, T]`, trimmed to `sizes` `[B]`.

        Each item contributes the time- and channel-averaged relative volume of each mel band.
        """
        check_pair(preds, targets)
        lengths = as_sizes(sizes, preds)
        if all(n == preds.shape[-1] for n in lengths):
            rel = self.relative_volume(preds, targets, per_item=True)  # [B, C, M, F]
            per_item = rel.mean(dim=(1, 3))
        else:
            per_item = torch.stack(
                [
                    self.relative_volume(p[None, :, :n], t[None, :, :n], per_item=True).mean(dim=(0, 1, 3))
                    for p, t, n in zip(preds, targets, lengths)
                ]
            )
        self.band_sum += per_item.double().sum(0).to(self.band_sum.device)
        self.count += per_item.shape[0]

    def compute(self) -> dict[str, float]:  # type: ignore[override]
        """Returns `{"rvm", "rvm_0", ..., "rvm_{n-1}"}` averaged over items on all workers."""
        states = self.reduced_states()
        if int(states["count"]) == 0:
            raise RuntimeError("RelativeVolumeMel.compute() called before any update()")
        per_band = states["band_sum"] / int(states["count"])
        return {k: float(v) for k, v in self._aggregate(per_band).items()}
