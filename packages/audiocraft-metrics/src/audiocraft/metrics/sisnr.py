"""Scale-invariant signal-to-noise ratio (SI-SNR) as a function and as a stateful metric.

Part of `audiocraft.metrics` (layer: metrics). `si_snr` returns the usual SI-SNR in dB (higher is better).
`SISNR` accumulates it over an evaluation and, by default, reports it with upstream AudioCraft's sign: upstream's
compression evaluate stage reports `sisnr` from its *loss* module `audiocraft.losses.SISNR`, which returns
`-1 * SI-SNR`, so a good reconstruction gives a negative number (e.g. -12.0 means 12 dB SI-SNR). Chunking
(`segment`, `overlap`) and the epsilon handling follow that loss module so that the numbers agree.
"""

import math

import torch
import torch.nn.functional as F

from ._audio import as_sizes, check_pair
from ._base import Metric

_EPS = torch.finfo(torch.float32).eps


def _frames(x: torch.Tensor, frame: int, stride: int) -> torch.Tensor:
    """Cuts `x` `[*, T]` into `ceil(T / stride)` frames of `frame` samples, zero-padding the end: `[*, F, frame]`."""
    length = x.shape[-1]
    n_frames = max(1, math.ceil(length / stride))
    total = (n_frames - 1) * stride + frame
    x = F.pad(x, (0, total - length))
    return x.unfold(-1, frame, stride)


def si_snr(
    estimate: torch.Tensor,
    reference: torch.Tensor,
    sample_rate: int = 16000,
    segment: float | None = None,
    overlap: float = 0.5,
    epsilon: float = _EPS,
) -> torch.Tensor:
    """Scale-invariant SNR in dB of `estimate` against `reference`, per channel and per chunk.

    Both signals are centred (mean removed) in each chunk; the estimate is split into its projection on the
    reference and the remainder, and SI-SNR = 10 log10(|proj|^2 / |remainder|^2). As in upstream AudioCraft,
    `epsilon` is scaled by the chunk length and added to every energy.

    Args:
        estimate: Estimated signal `[B, C, T]`.
        reference: Reference signal `[B, C, T]`.
        sample_rate: Sample rate, used to turn `segment` into samples.
        segment: Chunk length in seconds; None scores the whole signal as one chunk.
        overlap: Overlap between consecutive chunks (0.5 = 50 %).
        epsilon: Numerical floor (multiplied by the chunk length).

    Returns:
        SI-SNR in dB, `[B, C, F]` with F the number of chunks (1 when `segment` is None). Higher is better.
    """
    check_pair(estimate, reference)
    length = reference.shape[-1]
    if segment is None:
        frame = stride = length
    else:
        frame = int(segment * sample_rate)
        stride = int(frame * (1 - overlap))
        if frame <= 0 or stride <= 0:
            raise ValueError(f"segment={segment} s and overlap={overlap} give an empty chunk or stride")
    eps = epsilon * frame
    ref = _frames(reference, frame, stride)
    est = _frames(estimate, frame, stride)
    ref = ref - ref.mean(-1, keepdim=True)
    est = est - est.mean(-1, keepdim=True)
    dot = (ref * est).sum(-1, keepdim=True)
    proj = dot * ref / (eps + ref.pow(2).sum(-1, keepdim=True))
    noise = est - proj
    return 10 * (torch.log10(eps + proj.pow(2).sum(-1)) - torch.log10(eps + noise.pow(2).sum(-1)))


class SISNR(Metric):
    """SI-SNR metric, reported with upstream AudioCraft's sign by default.

    The value is the mean SI-SNR over every (item, channel, chunk) seen, summed exactly across workers.
    With `negate=True` (default) `compute()` returns `-mean`, the number upstream's compression evaluate stage
    logs as `sisnr` (lower is better; -20 means 20 dB). With `negate=False` it returns the usual positive SI-SNR.

    Calling the module (`metric(estimate, reference)`) returns the value for that batch alone, with the same
    sign convention, without touching the running state, like upstream's loss module `SISNR`.

    Args:
        sample_rate: Sample rate of the audio.
        segment: Chunk length in seconds (upstream default 20; the compression configs use `sisnr.segment`).
            None scores whole items.
        overlap: Chunk overlap.
        epsilon: Numerical floor.
        negate: Report `-SI-SNR` as upstream does.
    """

    sisnr_sum: torch.Tensor
    count: torch.Tensor

    def __init__(
        self,
        sample_rate: int = 16000,
        segment: float | None = 20,
        overlap: float = 0.5,
        epsilon: float = _EPS,
        negate: bool = True,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.segment = segment
        self.overlap = overlap
        self.epsilon = epsilon
        self.negate = negate
        self.add_state("sisnr_sum", torch.tensor(0.0, dtype=torch.float64))
        self.add_state("count", torch.tensor(0, dtype=torch.int64))

    def _scores(self, estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        return si_snr(estimate, reference, self.sample_rate, self.segment, self.overlap, self.epsilon)

    def forward(self, out_sig: torch.Tensor, ref_sig: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Returns the batch value (same sign convention as `compute`), leaving the state untouched.

        Args:
            out_sig: Estimate `[B, C, T]`.
            ref_sig: Reference `[B, C, T]`.
        """
        value = self._scores(out_sig, ref_sig).mean()
        return -value if self.negate else value

    @torch.no_grad()
    def update(
        self,
        preds: torch.Tensor,
        targets: torch.Tensor,  # type: ignore[override]
        sizes: torch.Tensor | list[int] | None = None,
    ) -> None:
        """Adds a batch.

        Args:
            preds: Estimates `[B, C, T]`.
            targets: References `[B, C, T]`.
            sizes: Valid length of each item `[B]` (padding beyond it is ignored); None uses all of `T`.
        """
        check_pair(preds, targets)
        lengths = as_sizes(sizes, preds)
        if all(n == preds.shape[-1] for n in lengths):
            scores = [self._scores(preds, targets)]
        else:
            scores = [self._scores(p[None, :, :n], t[None, :, :n]) for p, t, n in zip(preds, targets, lengths)]
        for s in scores:
            self.sisnr_sum += s.double().sum().to(self.sisnr_sum.device)
            self.count += s.numel()

    def compute(self) -> float:
        """Mean SI-SNR over everything seen on all workers (negated when `negate`)."""
        states = self.reduced_states()
        count = int(states["count"])
        if count == 0:
            raise RuntimeError("SISNR.compute() called before any update()")
        value = float(states["sisnr_sum"]) / count
        return -value if self.negate else value
