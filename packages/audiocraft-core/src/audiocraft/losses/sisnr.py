"""Scale-invariant signal-to-noise ratio as a loss (audiocraft-core, training losses).

`SISNR` returns the *negated* SI-SNR in dB, averaged over batch, channels and (optionally
overlapping) segments, so that lower is better and it can be minimised directly; the
compression solver also reports it under the name ``sisnr`` at the evaluate stage, as upstream does.
The SI-SNR itself is `audiocraft.metrics.si_snr` (one implementation for the loss and the metric).
"""

from __future__ import annotations

import torch
from torch import nn

from audiocraft.metrics.sisnr import si_snr


class SISNR(nn.Module):
    """Negated scale-invariant SNR, `-SI-SNR` in dB (lower is better).

    Args:
        sample_rate: sample rate of the signals, used to turn `segment` into samples.
        segment: length in seconds of the chunks the SI-SNR is computed on; None uses the whole signal.
        overlap: overlap between consecutive chunks (0.5 is 50 %).
        epsilon: numerical floor; scaled by the chunk length.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        segment: float | None = 20,
        overlap: float = 0.5,
        epsilon: float = torch.finfo(torch.float32).eps,
    ):
        super().__init__()
        self.sample_rate = sample_rate
        self.segment = segment
        self.overlap = overlap
        self.epsilon = epsilon

    def forward(self, out_sig: torch.Tensor, ref_sig: torch.Tensor) -> torch.Tensor:
        """Compute `-SI-SNR(out_sig, ref_sig)`, the mean over items, channels and chunks.

        Args:
            out_sig: estimate `[B, C, T]`.
            ref_sig: reference `[B, C, T]`.

        Returns:
            A scalar tensor.

        Raises:
            ValueError: unless both are `[B, C, T]` tensors of equal shape.
        """
        if out_sig.shape != ref_sig.shape or ref_sig.dim() != 3:
            raise ValueError(
                f"SISNR expects two [B, C, T] tensors of equal shape, got "
                f"{tuple(out_sig.shape)} and {tuple(ref_sig.shape)}"
            )
        return -si_snr(out_sig, ref_sig, self.sample_rate, self.segment, self.overlap, self.epsilon).mean()
