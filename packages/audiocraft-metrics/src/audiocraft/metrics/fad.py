"""Fréchet Audio Distance in PyTorch/SciPy, from embedding statistics that can be saved and reused.

Part of `audiocraft.metrics` (layer: metrics). `frechet_distance` gives the Fréchet distance between two
Gaussians from their means and covariances. `EmbeddingStats` accumulates the sufficient statistics of a set
of embeddings (count, sum, sum of outer products: all additive, so exact across workers) and saves them to a
file that `torch.load(weights_only=True)` reads back. `FrechetAudioDistanceMetric` embeds generated and
reference audio with any embedding model (a torch module or a callable; see `audiocraft.metrics.embeddings`
for VGGish, PaSST and CLAP adapters) and compares the two Gaussians. Unlike upstream AudioCraft, no
TensorFlow and no external checkout are needed.
"""

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from ._audio import as_sample_rates, as_sizes, convert_audio, model_attr
from ._base import Metric, all_reduce_sum

ArrayLike = np.ndarray | torch.Tensor


def _to_numpy(x: ArrayLike) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    d^2 = |mu1 - mu2|^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr((sigma1 sigma2)^(1/2)), computed in float64 with
    `scipy.linalg.sqrtm`. When the product is singular, `eps` is added to both diagonals; tiny imaginary parts
    from numerical error are dropped (large ones raise).

    Args:
        mu1: Mean `[D]` of the first set.
        sigma1: Covariance `[D, D]` of the first set.
        mu2: Mean `[D]` of the second set.
        sigma2: Covariance `[D, D]` of the second set.
        eps: Diagonal offset used when the covariance product is singular.

    Returns:
        The distance (the squared Fréchet distance d^2, as FAD reports it).
    """
    m1, m2 = _to_numpy(mu1).reshape(-1), _to_numpy(mu2).reshape(-1)
    s1, s2 = np.atleast_2d(_to_numpy(sigma1)), np.atleast_2d(_to_numpy(sigma2))
    if m1.shape != m2.shape:
        raise ValueError(f"mean shapes differ: {m1.shape} vs {m2.shape}")
    if s1.shape != s2.shape or s1.shape != (m1.size, m1.size):
        raise ValueError(f"covariances {s1.shape} and {s2.shape} do not match means of size {m1.size}")
    diff = m1 - m2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(s1 @ s2)
    if caught or not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"sqrtm gave a large imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


class EmbeddingStats:
    """Sufficient statistics of a set of embeddings: count, sum `[D]` and sum of outer products `[D, D]`.

    All three are additive, so statistics from several batches, files or workers merge by summation.

    Args:
        dim: Embedding dimension.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.count = torch.zeros((), dtype=torch.float64)
        self.sum = torch.zeros(dim, dtype=torch.float64)
        self.sum_outer = torch.zeros(dim, dim, dtype=torch.float64)

    def add(self, embeddings: torch.Tensor) -> None:
        """Adds embeddings `[N, D]` (or `[D]`)."""
        emb = embeddings.detach().reshape(-1, embeddings.shape[-1]).cpu().double()
        if emb.shape[-1] != self.dim:
            raise ValueError(f"embedding dimension {emb.shape[-1]} differs from the statistics' {self.dim}")
        self.count += emb.shape[0]
        self.sum += emb.sum(0)
        self.sum_outer += emb.T @ emb

    def merge(self, other: "EmbeddingStats") -> "EmbeddingStats":
        """Returns new statistics holding both `self` and `other`."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of dimension {self.dim} and {other.dim}")
        out = EmbeddingStats(self.dim)
        out.count, out.sum, out.sum_outer = (
            self.count + other.count,
            self.sum + other.sum,
            self.sum_outer + other.sum_outer,
        )
        return out

    def all_reduce(self) -> "EmbeddingStats":
        """Returns the statistics summed over all torch.distributed workers (a copy)."""
        out = EmbeddingStats(self.dim)
        out.count, out.sum, out.sum_outer = (
            all_reduce_sum(self.count),
            all_reduce_sum(self.sum),
            all_reduce_sum(self.sum_outer),
        )
        return out

    @property
    def mu(self) -> torch.Tensor:
        """Mean `[D]`."""
        if self.count < 1:
            raise RuntimeError("no embedding was added to these statistics")
        return self.sum / self.count

    @property
    def sigma(self) -> torch.Tensor:
        """Unbiased covariance `[D, D]` (as numpy.cov), needs at least 2 embeddings."""
        if self.count < 2:
            raise RuntimeError(f"a covariance needs at least 2 embeddings, got {int(self.count)}")
        mu = self.mu
        return (self.sum_outer - self.count * torch.outer(mu, mu)) / (self.count - 1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors describing the statistics (also `mu` and `sigma`, for tools that only read those)."""
        out = {"count": self.count, "sum": self.sum, "sum_outer": self.sum_outer}
        if self.count >= 2:
            out.update(mu=self.mu, sigma=self.sigma)
        return out

    def save(self, path: str | Path) -> None:
        """Saves the statistics to `path` (a torch file holding only tensors), atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self.state_dict(), tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "EmbeddingStats":
        """Loads statistics written by `save` (or a `.npz` holding `mu` and `sigma` plus optionally `count`)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"FAD reference statistics not found: {path}")
        try:
            if path.suffix == ".npz":
                with np.load(path) as data:
                    state = {k: torch.from_numpy(data[k]) for k in data.files}
            else:
                state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"could not read FAD statistics from {path}: {exc}") from exc
        if not isinstance(state, dict):
            raise ValueError(f"{path} does not hold a dict of statistics")
        if {"count", "sum", "sum_outer"} <= set(state):
            stats = cls(int(state["sum"].shape[-1]))
            stats.count = state["count"].double().reshape(())
            stats.sum, stats.sum_outer = state["sum"].double(), state["sum_outer"].double()
            return stats
        if {"mu", "sigma"} <= set(state):
            count = float(state["count"]) if "count" in state else 2.0
            return cls.from_moments(state["mu"], state["sigma"], count)
        raise ValueError(f"{path} holds keys {sorted(state)}; expected count/sum/sum_outer or mu/sigma")

    @classmethod
    def from_moments(cls, mu: ArrayLike, sigma: ArrayLike, count: float) -> "EmbeddingStats":
        """Builds statistics equivalent to `count` embeddings of mean `mu` and covariance `sigma`."""
        mu_t = torch.as_tensor(np.asarray(_to_numpy(mu)))
        sigma_t = torch.as_tensor(np.asarray(_to_numpy(sigma)))
        stats = cls(mu_t.numel())
        stats.count = torch.tensor(float(count), dtype=torch.float64)
        stats.sum = mu_t * count
        stats.sum_outer = sigma_t * (count - 1) + count * torch.outer(mu_t, mu_t)
        return stats


EmbeddingModel = torch.nn.Module | Callable[[torch.Tensor], torch.Tensor]


class FrechetAudioDistanceMetric(Metric):
    """Fréchet Audio Distance between generated audio and reference audio, with a pluggable embedding model.

    The embedding model takes audio `[B, C, T]` at `sample_rate` with `channels` channels and returns
    embeddings `[B, D]` (one per item) or `[B, F, D]` (one per frame, e.g. VGGish's 0.96 s frames); every
    embedding counts as one sample of the Gaussian. Items are embedded one at a time when their valid lengths
    differ. Adapters in `audiocraft.metrics.embeddings` expose `sample_rate`, `channels` and `embedding_dim`,
    which are then read from the model.

    The reference ("background") side comes either from `targets` passed to `update` or from saved
    statistics (`reference_stats`, written earlier by `save_reference_stats` or `EmbeddingStats.save`); when
    they are given, `targets` are ignored.

    Args:
        embedding_model: Torch module or callable mapping `[B, C, T]` audio to `[B, D]` or `[B, F, D]`.
        sample_rate: Sample rate the model expects (default: `embedding_model.sample_rate`).
        channels: Channels the model expects (default: `embedding_model.channels`, else 1).
        embedding_dim: Embedding size (default: `embedding_model.embedding_dim`, else found at the first batch).
        reference_stats: Path to saved reference statistics, or an `EmbeddingStats`.
        eps: Diagonal offset for singular covariances in `frechet_distance`.
    """

    def __init__(
        self,
        embedding_model: EmbeddingModel,
        sample_rate: int | None = None,
        channels: int | None = None,
        embedding_dim: int | None = None,
        reference_stats: str | Path | EmbeddingStats | None = None,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        self.embedding_model = embedding_model
        sample_rate = sample_rate or model_attr(embedding_model, "sample_rate", None)
        if sample_rate is None:
            raise ValueError(
                "FrechetAudioDistanceMetric needs the embedding model's sample_rate "
                "(pass sample_rate= or give the model a `sample_rate` attribute)"
            )
        self.model_sample_rate = int(sample_rate)
        self.model_channels = int(channels or model_attr(embedding_model, "channels", 1))
        self.eps = eps
        if isinstance(reference_stats, (str, Path)):
            reference_stats = EmbeddingStats.load(reference_stats)
        self.reference_stats = reference_stats
        dim = embedding_dim or model_attr(embedding_model, "embedding_dim", None)
        if dim is None and reference_stats is not None:
            dim = reference_stats.dim
        if dim is not None and reference_stats is not None and int(dim) != reference_stats.dim:
            raise ValueError(
                f"reference statistics have dimension {reference_stats.dim} but the embedding model "
                f"gives {dim}: they were computed with another model"
            )
        self.embedding_dim: int | None = None
        if dim is not None:
            self._init_states(int(dim))

    def _init_states(self, dim: int) -> None:
        self.embedding_dim = dim
        for side in ("pred", "ref"):
            self.add_state(f"{side}_count", torch.zeros((), dtype=torch.float64))
            self.add_state(f"{side}_sum", torch.zeros(dim, dtype=torch.float64))
            self.add_state(f"{side}_sum_outer", torch.zeros(dim, dim, dtype=torch.float64))

    def embed(self, wav: torch.Tensor, sample_rate: int, sizes: Sequence[int] | None = None) -> torch.Tensor:
        """Embeddings `[N, D]` of a batch `[B, C, T]` at `sample_rate`, each item trimmed to `sizes` `[B]`."""
        lengths = as_sizes(sizes, wav)
        if all(n == wav.shape[-1] for n in lengths):
            chunks = [wav]
        else:
            chunks = [w[None, :, :n] for w, n in zip(wav, lengths)]
        out = []
        for chunk in chunks:
            chunk = convert_audio(chunk, sample_rate, self.model_sample_rate, self.model_channels)
            with torch.no_grad():
                emb = self.embedding_model(chunk)
            if not isinstance(emb, torch.Tensor) or emb.dim() not in (2, 3) or emb.shape[0] != chunk.shape[0]:
                shape = tuple(emb.shape) if isinstance(emb, torch.Tensor) else type(emb).__name__
                raise ValueError(
                    f"the embedding model must return [B, D] or [B, F, D] for {chunk.shape[0]} items, got {shape}"
                )
            out.append(emb.reshape(-1, emb.shape[-1]))
        return torch.cat(out, dim=0)

    def _add(self, side: str, emb: torch.Tensor) -> None:
        if self.embedding_dim is None:
            self._init_states(emb.shape[-1])
        if emb.shape[-1] != self.embedding_dim:
            raise ValueError(f"embedding dimension {emb.shape[-1]} differs from the expected {self.embedding_dim}")
        emb = emb.detach().double()
        device = getattr(self, f"{side}_sum").device
        emb = emb.to(device)
        setattr(self, f"{side}_count", getattr(self, f"{side}_count") + emb.shape[0])
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + emb.sum(0))
        setattr(self, f"{side}_sum_outer", getattr(self, f"{side}_sum_outer") + emb.T @ emb)

    def update(
        self,
        preds: torch.Tensor,
        targets: torch.Tensor | None = None,  # type: ignore[override]
        sizes: torch.Tensor | Sequence[int] | None = None,
        sample_rates: torch.Tensor | Sequence[int] | int | None = None,
        stems: list[str] | None = None,
    ) -> None:
        """Embeds a batch of generated audio and, without saved reference statistics, its references.

        Args:
            preds: Generated audio `[B, C, T]`.
            targets: Reference audio `[B, C, T]` (ignored when `reference_stats` was given).
            sizes: Valid length of each item `[B]`.
            sample_rates: Sample rate of the items (int or `[B]`, all equal); default: the model's.
            stems: Accepted for upstream compatibility (names of the items); unused.
        """
        rates = as_sample_rates(sample_rates if sample_rates is not None else self.model_sample_rate, preds.shape[0])
        if len(set(rates)) > 1:
            raise ValueError(f"all items of a batch must share one sample rate, got {sorted(set(rates))}")
        lengths = as_sizes(sizes, preds)
        self._add("pred", self.embed(preds, rates[0], lengths))
        if self.reference_stats is None:
            if targets is None:
                raise ValueError("FrechetAudioDistanceMetric.update() needs targets when no reference_stats are set")
            if targets.shape[0] != preds.shape[0]:
                raise ValueError(f"preds {tuple(preds.shape)} and targets {tuple(targets.shape)} differ in batch size")
            self._add("ref", self.embed(targets, rates[0], lengths))

    def _stats(self, side: str, states: dict[str, torch.Tensor]) -> EmbeddingStats:
        assert self.embedding_dim is not None
        stats = EmbeddingStats(self.embedding_dim)
        stats.count, stats.sum, stats.sum_outer = (
            states[f"{side}_count"].cpu(),
            states[f"{side}_sum"].cpu(),
            states[f"{side}_sum_outer"].cpu(),
        )
        return stats

    def _reduced(self) -> dict[str, torch.Tensor]:
        if self.embedding_dim is None:
            raise RuntimeError(
                "FrechetAudioDistanceMetric has no embedding dimension yet: call update() first or "
                "pass embedding_dim= (needed on every worker)"
            )
        return self.reduced_states()

    def pred_stats(self) -> EmbeddingStats:
        """Statistics of the generated audio seen on all workers."""
        return self._stats("pred", self._reduced())

    def target_stats(self) -> EmbeddingStats:
        """Statistics of the reference audio: the saved ones if given, else those seen on all workers."""
        if self.reference_stats is not None:
            return self.reference_stats
        return self._stats("ref", self._reduced())

    def save_reference_stats(self, path: str | Path) -> None:
        """Saves the reference statistics, to pass later as `reference_stats=path`.

        Collective under torch.distributed: every worker must call it; all write the same content.
        """
        self.target_stats().save(path)

    def compute(self) -> float:
        """FAD between the generated and the reference audio seen so far (on all workers)."""
        states = self._reduced()
        pred = self._stats("pred", states)
        ref = self.reference_stats if self.reference_stats is not None else self._stats("ref", states)
        return frechet_distance(pred.mu, pred.sigma, ref.mu, ref.sigma, eps=self.eps)
