"""KL divergence between the label distributions a classifier gives to generated and reference audio.

Part of `audiocraft.metrics` (layer: metrics). `KLDivergenceMetric` takes any classifier (a torch module or a
callable returning logits or probabilities); `PasstKLDivergenceMetric` uses the PaSST AudioSet classifier
(`[passt]` extra, local weights), as upstream AudioCraft does. Per-item KL values are summed with their
count, so the result is exact across workers. Keys and numerics follow upstream: `kld` (= `kld_pq`),
`kld_qp`, `kld_both`.
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ._audio import as_sample_rates, as_sizes, check_pair, convert_audio, model_attr
from ._base import Metric
from .embeddings import PasstModel, segments


def kl_divergence(pred_probs: torch.Tensor, target_probs: torch.Tensor, epsilon: float = 1e-6) -> torch.Tensor:
    """Per-item KL divergence `sum_k q_k (log q_k - log(p_k + epsilon))` with p = `pred_probs`, q = `target_probs`.

    This is KL(target || pred), the quantity upstream AudioCraft reports as `kld_pq` (and `kld`).

    Args:
        pred_probs: Class probabilities of the generated audio `[B, K]`.
        target_probs: Class probabilities of the reference audio `[B, K]`.
        epsilon: Floor added to `pred_probs` before the log.

    Returns:
        KL divergence per item `[B]`.
    """
    if pred_probs.shape != target_probs.shape:
        raise ValueError(f"probability shapes differ: {tuple(pred_probs.shape)} vs {tuple(target_probs.shape)}")
    kl = torch.nn.functional.kl_div((pred_probs + epsilon).log(), target_probs, reduction="none")
    return kl.sum(-1)


Classifier = torch.nn.Module | Callable[[torch.Tensor], torch.Tensor]


class KLDivergenceMetric(Metric):
    """KL divergence between classifier label distributions of generated and reference audio.

    Each item is trimmed to its valid length, converted to the classifier's sample rate and channels, cut into
    pieces of at most `max_duration` seconds (pieces not longer than `min_duration` are dropped), classified,
    and the probabilities of its pieces are averaged. An item with no usable piece is skipped (for both sides).

    Subclasses may instead override `_get_label_distribution(x, sizes, sample_rates)` as in upstream.

    Args:
        classifier: Module or callable mapping audio `[1, C, T]` to logits / probabilities `[1, K]`.
        sample_rate: Sample rate the classifier expects (default: `classifier.sample_rate`).
        channels: Channels the classifier expects (default: `classifier.channels`, else 1).
        outputs: "logits" (softmax is applied) or "probs".
        max_duration: Longest piece fed to the classifier, in seconds (None: whole items).
        min_duration: Pieces of at most this many seconds are ignored.
    """

    kld_pq_sum: torch.Tensor
    kld_qp_sum: torch.Tensor
    weight: torch.Tensor

    def __init__(
        self,
        classifier: Classifier | None = None,
        sample_rate: int | None = None,
        channels: int | None = None,
        outputs: str = "logits",
        max_duration: float | None = None,
        min_duration: float = 0.0,
    ) -> None:
        super().__init__()
        if outputs not in ("logits", "probs"):
            raise ValueError(f"outputs={outputs!r}; expected 'logits' or 'probs'")
        self.classifier = classifier
        self.outputs = outputs
        self.model_sample_rate = sample_rate or model_attr(classifier, "sample_rate", None)
        self.model_channels = int(channels or model_attr(classifier, "channels", 1))
        self.max_duration = max_duration
        self.min_duration = min_duration
        if classifier is not None and self.model_sample_rate is None:
            raise ValueError(
                "KLDivergenceMetric needs the classifier's sample_rate "
                "(pass sample_rate= or give the classifier a `sample_rate` attribute)"
            )
        self.add_state("kld_pq_sum", torch.tensor(0.0, dtype=torch.float64))
        self.add_state("kld_qp_sum", torch.tensor(0.0, dtype=torch.float64))
        self.add_state("weight", torch.tensor(0, dtype=torch.int64))

    def _probs(self, wav: torch.Tensor) -> torch.Tensor:
        assert self.classifier is not None
        with torch.no_grad():
            out = self.classifier(wav)
        if not isinstance(out, torch.Tensor) or out.dim() != 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"the classifier must return [N, num_classes], got {shape}")
        return torch.softmax(out.float(), dim=-1) if self.outputs == "logits" else out.float()

    def _get_label_distribution(
        self, x: torch.Tensor, sizes: Sequence[int], sample_rates: Sequence[int]
    ) -> list[torch.Tensor | None]:
        """Class probabilities `[K]` of each item of `x` `[B, C, T]`, or None when an item has no usable piece."""
        if self.classifier is None:
            raise NotImplementedError("pass a classifier to KLDivergenceMetric or override _get_label_distribution")
        assert self.model_sample_rate is not None
        rate = int(self.model_sample_rate)
        max_frames = None if self.max_duration is None else int(self.max_duration * rate)
        min_frames = int(self.min_duration * rate)
        out: list[torch.Tensor | None] = []
        for wav, size, sr in zip(x, sizes, sample_rates):
            wav = convert_audio(wav[None, :, :size], sr, rate, self.model_channels)[0]
            pieces = segments(wav, max_frames, min_frames)
            out.append(torch.stack([self._probs(p)[0] for p in pieces]).mean(0) if pieces else None)
        return out

    def update(
        self,
        preds: torch.Tensor,
        targets: torch.Tensor,  # type: ignore[override]
        sizes: torch.Tensor | Sequence[int] | None = None,
        sample_rates: torch.Tensor | Sequence[int] | int | None = None,
    ) -> None:
        """Adds a batch of generated audio `preds` and references `targets` `[B, C, T]`.

        Args:
            preds: Generated audio `[B, C, T]`.
            targets: Reference audio `[B, C, T]`.
            sizes: Valid length of each item `[B]`.
            sample_rates: Sample rate of each item (int or `[B]`); default: the classifier's.
        """
        check_pair(preds, targets)
        if preds.shape[0] == 0:
            raise ValueError("cannot update KLDivergenceMetric with an empty batch")
        lengths = as_sizes(sizes, preds)
        rates = as_sample_rates(
            sample_rates if sample_rates is not None else int(self.model_sample_rate or 0), preds.shape[0]
        )
        p_all = self._get_label_distribution(preds, lengths, rates)
        q_all = self._get_label_distribution(targets, lengths, rates)
        pairs = [(p, q) for p, q in zip(p_all, q_all) if p is not None and q is not None]
        if not pairs:
            return
        p = torch.stack([a for a, _ in pairs])
        q = torch.stack([b for _, b in pairs])
        kld_pq = kl_divergence(p, q)
        if torch.isnan(kld_pq).any():
            raise ValueError("KL divergence is NaN: check the classifier's outputs")
        kld_qp = kl_divergence(q, p)
        self.kld_pq_sum += kld_pq.double().sum().to(self.kld_pq_sum.device)
        self.kld_qp_sum += kld_qp.double().sum().to(self.kld_qp_sum.device)
        self.weight += len(pairs)

    def compute(self) -> dict[str, float]:
        """Returns `{"kld", "kld_pq", "kld_qp", "kld_both"}` averaged over all items on all workers."""
        states = self.reduced_states()
        weight = int(states["weight"])
        if weight == 0:
            raise RuntimeError("KLDivergenceMetric.compute() called with no scored item")
        kld_pq = float(states["kld_pq_sum"]) / weight
        kld_qp = float(states["kld_qp_sum"]) / weight
        return {"kld": kld_pq, "kld_pq": kld_pq, "kld_qp": kld_qp, "kld_both": kld_pq + kld_qp}


class PasstKLDivergenceMetric(KLDivergenceMetric):
    """KL divergence with the PaSST AudioSet classifier, as in upstream AudioCraft.

    Needs the `[passt]` extra and local weights (nothing is downloaded). Items are cut into pieces of
    `pretrained_length` seconds at 32 kHz; pieces of 0.15 s or less are ignored.

    Args:
        pretrained_length: 10 (default), 20 or 30: the PaSST variant of `weights_path`.
        weights_path: Local PaSST checkpoint (config key `metrics.kld.passt.weights_path`).
    """

    def __init__(self, pretrained_length: float | None = None, weights_path: str | Path | None = None) -> None:
        if weights_path is None:
            raise ValueError(
                "PasstKLDivergenceMetric needs weights_path= (a local PaSST checkpoint; config key "
                "metrics.kld.passt.weights_path): weights are never downloaded at run time"
            )
        model = PasstModel(weights_path, pretrained_length=pretrained_length, mode="logits")
        super().__init__(
            model,
            sample_rate=model.sample_rate,
            channels=1,
            outputs="logits",
            max_duration=model.max_duration,
            min_duration=0.15,
        )
