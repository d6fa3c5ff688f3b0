"""Scale-invariant signal-to-noise ratio as a loss (audiocraft-core, training losses).

`SISNR` returns the *negated* SI-SNR in dB, averaged over batch, channels and (optionally
overlapping) segments, so that lower is better and it can be minimised directly; the
compression solver also reports it under the name ``sisnr`` at the evaluate stage, as upstream does.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def _frames(signal: torch.Tensor, frame: int, stride: int) -> torch.Tensor:
    """Cut the last axis into frames of `frame` samples every `stride` samples (zero padding the tail).

    Args:
        signal: tensor `[..., T]`.
        frame: frame length in samples.
        stride: hop between frames in samples.

    Returns:
        A strided view `[..., ceil(T / stride), frame]`.
    """
    *leading, length = signal.shape
    n_frames = math.ceil(length / stride)
    needed = (n_frames - 1) * stride + frame
    padded = F.pad(signal, (0, needed - length)).contiguous()
    strides = list(padded.stride())
    return padded.as_strided([*leading, n_frames, frame], strides[:-1] + [stride, 1])


class SISNR(nn.Module):
    """Negated scale-invariant SNR, `-SI-SNR` in dB (lower is better).

    Args:
        sample_rate: sample rate of the signals, used to turn `segment` into samples.
        segment: length in seconds of the chunks the SI-SNR is computed on; None uses the whole signal.
        overlap: overlap between consecutive chunks (0.5 is 50 %).
        epsilon: numerical floor; scaled by the chunk length.
    """

    def __init__(self, sample_rate: int = 16000, segment: float | None = 20, overlap: float = 0.5,
                 epsilon: float = torch.finfo(torch.float32).eps):
        super().__init__()
        self.sample_rate = sample_rate
        self.segment = segment
        self.overlap = overlap
        self.epsilon = epsilon

    def forward(self, out_sig: torch.Tensor, ref_sig: torch.Tensor) -> torch.Tensor:
        """Compute `-SI-SNR(out_sig, ref_sig)`.

        Args:
            out_sig: estimate `[B, C, T]`.
            ref_sig: reference `[B, C, T]`.

        Returns:
            A scalar tensor.
        """
        if out_sig.shape != ref_sig.shape or ref_sig.dim() != 3:
            raise ValueError(f"SISNR expects two [B, C, T] tensors of equal shape, got "
                             f"{tuple(out_sig.shape)} and {tuple(ref_sig.shape)}")
        length = ref_sig.shape[-1]
        if self.segment is None:
            frame = stride = length
        else:
            frame = int(self.segment * self.sample_rate)
            stride = int(frame * (1 - self.overlap))
        eps = self.epsilon * frame  # the floor grows with the chunk length
        ref = _frames(ref_sig, frame, stride)
        est = _frames(out_sig, frame, stride)
        ref = ref - ref.mean(-1, keepdim=True)
        est = est - est.mean(-1, keepdim=True)
        ref_energy = ref.pow(2).sum(-1, keepdim=True)
        dot = (ref * est).sum(-1, keepdim=True)
        proj = dot * ref / (eps + ref_energy)
        noise = est - proj
        sisnr = 10 * (torch.log10(eps + proj.pow(2).sum(-1)) - torch.log10(eps + noise.pow(2).sum(-1)))
        return -sisnr.mean()
