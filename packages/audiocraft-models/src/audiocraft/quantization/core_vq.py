"""Vector quantization with EMA codebooks (layer: audiocraft-models, quantization).

:class:`EuclideanCodebook` holds ``bins`` code vectors, initialised by k-means on the first training batch and
then updated by exponential moving averages; codes whose usage falls below a threshold are replaced by vectors of
the current batch. :class:`VectorQuantization` adds the straight-through estimator, commitment loss and optional
orthogonal regularisation; :class:`ResidualVectorQuantization` chains them on successive residuals.
Under ``torch.distributed`` the codebooks stay identical on all workers: the k-means result and replaced codes are
broadcast from rank 0 and the EMA statistics are averaged over workers before each update.
Buffer names (``inited``, ``cluster_size``, ``embed``, ``embed_avg``) are upstream AudioCraft's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from . import _distrib

__all__ = ["EuclideanCodebook", "VectorQuantization", "ResidualVectorQuantization", "kmeans"]


def _ema_inplace(moving_avg: torch.Tensor, new: torch.Tensor, decay: float) -> None:
    moving_avg.data.mul_(decay).add_(new, alpha=1 - decay)


def _laplace_smoothing(x: torch.Tensor, n_categories: int, epsilon: float = 1e-5) -> torch.Tensor:
    return (x + epsilon) / (x.sum() + n_categories * epsilon)


def _uniform_init(*shape: int) -> torch.Tensor:
    t = torch.empty(shape)
    nn.init.kaiming_uniform_(t)
    return t


def _sample_vectors(samples: torch.Tensor, num: int) -> torch.Tensor:
    """``num`` rows of ``samples`` [N, D], without replacement when N >= num."""
    n = samples.shape[0]
    if n >= num:
        indices = torch.randperm(n, device=samples.device)[:num]
    else:
        indices = torch.randint(0, n, (num,), device=samples.device)
    return samples[indices]


def kmeans(samples: torch.Tensor, num_clusters: int, num_iters: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on ``samples`` [N, D].

    Returns:
        The centroids [num_clusters, D] and the size of each cluster at the last iteration [num_clusters].
    """
    dtype = samples.dtype
    means = _sample_vectors(samples, num_clusters)
    bins = torch.zeros(num_clusters, dtype=torch.long, device=samples.device)
    for _ in range(num_iters):
        # Squared distances through a matmul: no [N, C, D] temporary (upstream's form), same argmin up to ties.
        dists = samples.pow(2).sum(1, keepdim=True) - 2 * samples @ means.t() + means.pow(2).sum(1)[None]
        buckets = dists.min(dim=-1).indices
        bins = torch.bincount(buckets, minlength=num_clusters)
        zero_mask = bins == 0
        new_means = F.one_hot(buckets, num_clusters).to(dtype).t() @ samples
        new_means = new_means / bins.masked_fill(zero_mask, 1)[..., None]
        means = torch.where(zero_mask[..., None], means, new_means)
    return means, bins


def _orthogonal_loss(t: torch.Tensor) -> torch.Tensor:
    """Mean squared off-diagonal cosine similarity of the rows of ``t`` (eq. 2 of arXiv:2112.00384)."""
    n = t.shape[0]
    normed = F.normalize(t, p=2, dim=-1)
    cosine_sim = normed @ normed.t()
    return ((cosine_sim - torch.eye(n, device=t.device)) ** 2).sum() / (n**2)


class EuclideanCodebook(nn.Module):
    """Codebook of ``codebook_size`` vectors of size ``dim``, nearest neighbour in Euclidean distance.

    Args:
        dim: vector dimension.
        codebook_size: number of codes.
        kmeans_init: initialise the codes with k-means on the first batch seen (else uniform random init).
        kmeans_iters: k-means iterations.
        decay: EMA decay of the codebook statistics.
        epsilon: Laplace smoothing of the cluster sizes.
        threshold_ema_dead_code: codes whose EMA cluster size falls below this are replaced by batch vectors
            (0 disables replacement).
    """

    inited: torch.Tensor
    cluster_size: torch.Tensor
    embed: torch.Tensor
    embed_avg: torch.Tensor

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        kmeans_init: bool = False,
        kmeans_iters: int = 10,
        decay: float = 0.8,
        epsilon: float = 1e-5,
        threshold_ema_dead_code: float = 2,
    ) -> None:
        super().__init__()
        self.decay = decay
        self.codebook_size = codebook_size
        self.kmeans_iters = kmeans_iters
        self.epsilon = epsilon
        self.threshold_ema_dead_code = threshold_ema_dead_code
        embed = torch.zeros(codebook_size, dim) if kmeans_init else _uniform_init(codebook_size, dim)
        self.register_buffer("inited", torch.Tensor([not kmeans_init]))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed", embed)
        self.register_buffer("embed_avg", embed.clone())

    @torch.no_grad()
    def init_embed_(self, data: torch.Tensor) -> None:
        """Run k-means on ``data`` [N, D] if the codebook is not initialised yet (then sync across workers)."""
        if self.inited:
            return
        embed, cluster_size = kmeans(data, self.codebook_size, self.kmeans_iters)
        self.embed.data.copy_(embed)
        # `embed_avg` is the EMA of the sums of the vectors assigned to each code, so that
        # embed = embed_avg / cluster_size. Upstream stored the means here, which made the first EMA update divide
        # every code by its cluster size; storing the sums keeps the k-means codes.
        self.embed_avg.data.copy_(embed * cluster_size[:, None])
        self.cluster_size.data.copy_(cluster_size)
        self.inited.data.fill_(1.0)
        _distrib.broadcast_tensors(self.buffers())

    @torch.no_grad()
    def expire_codes_(self, batch_samples: torch.Tensor) -> torch.Tensor:
        """Replace the codes used less than the threshold by random vectors of ``batch_samples`` [N, D].

        The replaced codes also get their EMA statistics reset to ``threshold`` uses of the new vector, so the EMA
        update that follows keeps them (upstream only overwrote ``embed``, which that update then discarded).

        Returns:
            The boolean mask of the replaced codes [codebook_size].
        """
        expired: torch.Tensor = self.cluster_size < self.threshold_ema_dead_code
        if self.threshold_ema_dead_code == 0 or not torch.any(expired):
            return torch.zeros_like(expired)
        new_codes = _sample_vectors(batch_samples, self.codebook_size)
        self.embed.data.copy_(torch.where(expired[..., None], new_codes, self.embed))
        count = torch.full_like(self.cluster_size, float(self.threshold_ema_dead_code))
        self.cluster_size.data.copy_(torch.where(expired, count, self.cluster_size))
        self.embed_avg.data.copy_(torch.where(expired[..., None], new_codes * count[:, None], self.embed_avg))
        _distrib.broadcast_tensors(self.buffers())
        return expired

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code of each row of ``x`` [N, D] -> [N]."""
        embed = self.embed.t()
        dist = -(x.pow(2).sum(1, keepdim=True) - 2 * x @ embed + embed.pow(2).sum(0, keepdim=True))
        return dist.max(dim=-1).indices

    def dequantize(self, embed_ind: torch.Tensor) -> torch.Tensor:
        """Code vectors of the indices ``embed_ind`` [...] -> [..., D]."""
        return F.embedding(embed_ind, self.embed)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[..., D] -> indices [...]."""
        shape = x.shape
        return self.quantize(rearrange(x, "... d -> (...) d")).view(*shape[:-1])

    def decode(self, embed_ind: torch.Tensor) -> torch.Tensor:
        """Indices [...] -> vectors [..., D]."""
        return self.dequantize(embed_ind)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Quantize ``x`` [..., D]; in training mode also update the codebook.

        Returns:
            The quantized vectors [..., D] and their indices [...].
        """
        shape, dtype = x.shape, x.dtype
        flat = rearrange(x, "... d -> (...) d")
        self.init_embed_(flat)
        embed_ind = self.quantize(flat)
        embed_onehot = F.one_hot(embed_ind, self.codebook_size).type(dtype)
        embed_ind = embed_ind.view(*shape[:-1])
        quantize = self.dequantize(embed_ind)
        if self.training:
            with torch.no_grad():
                # Buffers are in sync here, so every worker takes the same expiry decision.
                self.expire_codes_(flat)
                counts = _distrib.all_reduce_mean_(embed_onehot.sum(0))
                embed_sum = _distrib.all_reduce_mean_((flat.t() @ embed_onehot).t().contiguous())
                _ema_inplace(self.cluster_size, counts, self.decay)
                _ema_inplace(self.embed_avg, embed_sum, self.decay)
                cluster_size = (
                    _laplace_smoothing(self.cluster_size, self.codebook_size, self.epsilon) * self.cluster_size.sum()
                )
                self.embed.data.copy_(self.embed_avg / cluster_size.unsqueeze(1))
        return quantize, embed_ind


class VectorQuantization(nn.Module):
    """One vector quantization level: optional projection, EMA codebook, straight-through estimator, penalties.

    Args:
        dim: input dimension.
        codebook_size: number of codes.
        codebook_dim: codebook dimension (a linear projection is added when it differs from ``dim``).
        decay: EMA decay.
        epsilon: Laplace smoothing.
        kmeans_init: k-means initialisation on the first batch.
        kmeans_iters: k-means iterations.
        threshold_ema_dead_code: dead code threshold.
        channels_last: inputs are [B, T, D] instead of [B, D, T].
        commitment_weight: weight of the commitment loss.
        orthogonal_reg_weight: weight of the orthogonal regularisation of the codebook.
        orthogonal_reg_active_codes_only: regularise only the codes used in the batch.
        orthogonal_reg_max_codes: regularise at most this many random codes.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        codebook_dim: int | None = None,
        decay: float = 0.8,
        epsilon: float = 1e-5,
        kmeans_init: bool = False,
        kmeans_iters: int = 10,
        threshold_ema_dead_code: float = 2,
        channels_last: bool = False,
        commitment_weight: float = 1.0,
        orthogonal_reg_weight: float = 0.0,
        orthogonal_reg_active_codes_only: bool = False,
        orthogonal_reg_max_codes: int | None = None,
    ) -> None:
        super().__init__()
        codebook_dim = dim if codebook_dim is None else codebook_dim
        projection = codebook_dim != dim
        self.project_in: nn.Module = nn.Linear(dim, codebook_dim) if projection else nn.Identity()
        self.project_out: nn.Module = nn.Linear(codebook_dim, dim) if projection else nn.Identity()
        self.epsilon = epsilon
        self.commitment_weight = commitment_weight
        self.orthogonal_reg_weight = orthogonal_reg_weight
        self.orthogonal_reg_active_codes_only = orthogonal_reg_active_codes_only
        self.orthogonal_reg_max_codes = orthogonal_reg_max_codes
        self._codebook = EuclideanCodebook(
            dim=codebook_dim,
            codebook_size=codebook_size,
            kmeans_init=kmeans_init,
            kmeans_iters=kmeans_iters,
            decay=decay,
            epsilon=epsilon,
            threshold_ema_dead_code=threshold_ema_dead_code,
        )
        self.codebook_size = codebook_size
        self.channels_last = channels_last

    @property
    def codebook(self) -> torch.Tensor:
        """The code vectors [codebook_size, codebook_dim]."""
        return self._codebook.embed

    @property
    def inited(self) -> torch.Tensor:
        """1 once the codebook is initialised."""
        return self._codebook.inited

    def _preprocess(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.channels_last else rearrange(x, "b d n -> b n d")

    def _postprocess(self, quantize: torch.Tensor) -> torch.Tensor:
        return quantize if self.channels_last else rearrange(quantize, "b n d -> b d n")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[B, D, T] -> indices [B, T]."""
        return self._codebook.encode(self.project_in(self._preprocess(x)))

    def decode(self, embed_ind: torch.Tensor) -> torch.Tensor:
        """Indices [B, T] -> [B, D, T]."""
        return self._postprocess(self.project_out(self._codebook.decode(embed_ind)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantize [B, D, T].

        Returns:
            The quantized tensor [B, D, T] (straight-through in training), the indices [B, T] and the loss [1].
        """
        device = x.device
        x = self.project_in(self._preprocess(x))
        quantize, embed_ind = self._codebook(x)
        if self.training:
            quantize = x + (quantize - x).detach()
        loss = torch.tensor([0.0], device=device, requires_grad=self.training)
        if self.training:
            if self.commitment_weight > 0:
                loss = loss + F.mse_loss(quantize.detach(), x) * self.commitment_weight
            if self.orthogonal_reg_weight > 0:
                codebook = self.codebook
                if self.orthogonal_reg_active_codes_only:
                    codebook = codebook[torch.unique(embed_ind)]
                num_codes = codebook.shape[0]
                if self.orthogonal_reg_max_codes is not None and num_codes > self.orthogonal_reg_max_codes:
                    codebook = codebook[torch.randperm(num_codes, device=device)[: self.orthogonal_reg_max_codes]]
                loss = loss + _orthogonal_loss(codebook) * self.orthogonal_reg_weight
        quantize = self._postprocess(self.project_out(quantize))
        return quantize, embed_ind, loss


class ResidualVectorQuantization(nn.Module):
    """A stack of :class:`VectorQuantization` levels, each quantizing the residual of the previous ones.

    Follows Algorithm 1 of SoundStream (arXiv:2107.03312). Keyword arguments go to every level.
    """

    def __init__(self, *, num_quantizers: int, **kwargs: object) -> None:
        super().__init__()
        self.layers: list[VectorQuantization] = nn.ModuleList(  # type: ignore[assignment]
            [VectorQuantization(**kwargs) for _ in range(num_quantizers)]  # type: ignore[arg-type]
        )

    def forward(self, x: torch.Tensor, n_q: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantize [B, D, T] with the first ``n_q`` levels (all by default).

        Returns:
            The quantized latent [B, D, T], the indices [n_q, B, T] and the per-level losses [n_q, 1].
        """
        quantized_out: torch.Tensor | float = 0.0
        residual = x
        all_losses, all_indices = [], []
        for layer in self.layers[: n_q or len(self.layers)]:
            quantized, indices, loss = layer(residual)
            residual = residual - quantized
            quantized_out = quantized_out + quantized
            all_indices.append(indices)
            all_losses.append(loss)
        return quantized_out, torch.stack(all_indices), torch.stack(all_losses)  # type: ignore[return-value]

    def encode(self, x: torch.Tensor, n_q: int | None = None) -> torch.Tensor:
        """[B, D, T] -> indices [n_q, B, T]."""
        residual = x
        all_indices = []
        for layer in self.layers[: n_q or len(self.layers)]:
            indices = layer.encode(residual)
            residual = residual - layer.decode(indices)
            all_indices.append(indices)
        return torch.stack(all_indices)

    def decode(self, q_indices: torch.Tensor) -> torch.Tensor:
        """Indices [K, B, T] -> latent [B, D, T], the sum of the first K levels' codes."""
        quantized_out = torch.tensor(0.0, device=q_indices.device)
        for layer, indices in zip(self.layers, q_indices):
            quantized_out = quantized_out + layer.decode(indices)
        return quantized_out
