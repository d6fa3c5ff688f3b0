"""Chroma cosine similarity between generated and reference audio, for melody-conditioned generation.

Part of `audiocraft.metrics` (layer: metrics). Each item's chromagram (see `audiocraft.metrics.chroma`) is
compared frame by frame with cosine similarity; the sum over frames and the number of frames are accumulated,
so the mean is exact across workers. Matches upstream's `ChromaCosineSimilarityMetric` (and its config
section `metrics.chroma_cosine.chroma_base`).
"""

import math
from collections.abc import Sequence

import torch

from ._audio import as_sample_rates, as_sizes, check_pair, convert_audio
from ._base import Metric
from .chroma import ChromaExtractor


class ChromaCosineSimilarityMetric(Metric):
    """Mean frame-wise cosine similarity between the chromagrams of generated and reference audio.

    Audio is resampled to `sample_rate` and downmixed to mono; for an item of valid length `n` samples (counted
    at `sample_rate`), the first `ceil(n / winhop)` chroma frames are compared, as upstream does.

    Args:
        sample_rate: Sample rate of the chroma extractor.
        n_chroma: Number of chroma bins.
        radix2_exp: Window length exponent (`2 ** radix2_exp` samples).
        argmax: Use one-hot chroma (strongest bin per frame).
        eps: Epsilon of the cosine similarity.
    """

    cosine_sum: torch.Tensor
    weight: torch.Tensor

    def __init__(
        self, sample_rate: int, n_chroma: int = 12, radix2_exp: int = 12, argmax: bool = False, eps: float = 1e-8
    ) -> None:
        super().__init__()
        self.chroma_sample_rate = sample_rate
        self.n_chroma = n_chroma
        self.eps = eps
        self.chroma_extractor = ChromaExtractor(
            sample_rate=sample_rate, n_chroma=n_chroma, radix2_exp=radix2_exp, argmax=argmax
        )
        self.add_state("cosine_sum", torch.tensor(0.0, dtype=torch.float64))
        self.add_state("weight", torch.tensor(0, dtype=torch.int64))

    @torch.no_grad()
    def update(
        self,
        preds: torch.Tensor,
        targets: torch.Tensor,  # type: ignore[override]
        sizes: torch.Tensor | Sequence[int] | None = None,
        sample_rates: torch.Tensor | Sequence[int] | int | None = None,
    ) -> None:
        """Adds a batch.

        Args:
            preds: Generated audio `[B, C, T]`.
            targets: Reference audio `[B, C, T]`.
            sizes: Valid length of each item `[B]`.
            sample_rates: Sample rate of the items (int or `[B]`, all equal); default: `sample_rate`.
        """
        if preds.shape[0] == 0:
            return
        check_pair(preds, targets)
        lengths = as_sizes(sizes, preds)
        rates = as_sample_rates(sample_rates if sample_rates is not None else self.chroma_sample_rate, preds.shape[0])
        if len(set(rates)) > 1:
            raise ValueError(f"all items of a batch must share one sample rate, got {sorted(set(rates))}")
        device = self.cosine_sum.device
        preds = convert_audio(preds.to(device), rates[0], self.chroma_sample_rate, 1)
        targets = convert_audio(targets.to(device), rates[0], self.chroma_sample_rate, 1)
        gen = self.chroma_extractor(preds)
        ref = self.chroma_extractor(targets)
        for i, n in enumerate(lengths):
            n_chroma_rate = n * self.chroma_sample_rate / rates[0]
            frames = min(gen.shape[1], math.ceil(n_chroma_rate / self.chroma_extractor.winhop))
            cosine = torch.nn.functional.cosine_similarity(ref[i, :frames], gen[i, :frames], dim=1, eps=self.eps)
            self.cosine_sum += cosine.double().sum()
            self.weight += frames

    def compute(self) -> float:
        """Mean cosine similarity over all compared frames on all workers."""
        states = self.reduced_states()
        if int(states["weight"]) == 0:
            raise RuntimeError("ChromaCosineSimilarityMetric.compute() called before any update()")
        return float(states["cosine_sum"]) / int(states["weight"])
