"""Residual vector quantization: k-means init, EMA, dead codes, dropout, codebook counts, metrics."""

from __future__ import annotations

import math

import pytest
import torch

from audiocraft.quantization import DummyQuantizer, QuantizedResult, ResidualVectorQuantizer
from audiocraft.quantization.core_vq import EuclideanCodebook, kmeans


def _clustered(n_clusters: int = 8, dim: int = 4, per_cluster: int = 64, seed: int = 0) -> torch.Tensor:
    """Points around `n_clusters` well separated centres, as a latent [B, dim, T]."""
    gen = torch.Generator().manual_seed(seed)
    centres = 10 * torch.randn(n_clusters, dim, generator=gen)
    points = centres.repeat_interleave(per_cluster, 0) + 0.01 * torch.randn(
        n_clusters * per_cluster, dim, generator=gen
    )
    points = points[torch.randperm(points.shape[0], generator=gen)]
    return points.t().reshape(dim, 4, -1).permute(1, 0, 2).contiguous()  # [4, dim, T]


def test_kmeans_finds_the_clusters() -> None:
    torch.manual_seed(0)
    x = _clustered(n_clusters=2).permute(0, 2, 1).reshape(-1, 4)
    means, sizes = kmeans(x, 2, num_iters=20)
    assert sorted(sizes.tolist()) == [64, 64]
    assert torch.cdist(x, means).min(dim=1).values.max() < 0.1  # each point is next to its blob's centroid


def test_kmeans_init_on_first_batch_then_exact_codes() -> None:
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(
        dimension=4, n_q=2, bins=16, kmeans_init=True, kmeans_iters=20, threshold_ema_dead_code=0
    )
    layer0 = rvq.vq.layers[0]._codebook
    assert float(layer0.inited) == 0.0 and torch.count_nonzero(layer0.embed) == 0
    x = _clustered(n_clusters=4)
    rvq.train()
    rvq(x, frame_rate=50)
    assert all(float(layer._codebook.inited) == 1.0 for layer in rvq.vq.layers)
    rvq.eval()
    res = rvq(x, frame_rate=50)
    # 4 well separated blobs, 16 codes: level 0 alone reconstructs every point within the noise,
    # which also shows the first EMA update kept the k-means codes.
    first = rvq.vq.layers[0].decode(res.codes[:, 0])
    assert (first - x).abs().max() < 0.1
    assert 4 / 16 <= float(res.metrics["rvq_usage_q0"]) <= 1.0
    assert 4.0 - 1e-3 <= float(res.metrics["rvq_perplexity_q0"]) <= 16.0
    assert set(res.metrics) == {"rvq_usage_q0", "rvq_perplexity_q0", "rvq_usage_q1", "rvq_perplexity_q1"}


def test_ema_moves_codes_towards_data() -> None:
    torch.manual_seed(0)
    book = EuclideanCodebook(dim=2, codebook_size=1, kmeans_init=False, decay=0.5, threshold_ema_dead_code=0)
    book.cluster_size.fill_(1.0)
    book.embed_avg.copy_(book.embed)
    target = torch.tensor([[3.0, -2.0]]).repeat(16, 1)
    book.train()
    for _ in range(30):
        book(target)
    torch.testing.assert_close(book.embed, target[:1], atol=1e-3, rtol=0)


def test_dead_codes_are_replaced_by_batch_vectors_and_kept() -> None:
    torch.manual_seed(0)
    book = EuclideanCodebook(dim=3, codebook_size=16, kmeans_init=False, decay=0.99, threshold_ema_dead_code=2)
    book.cluster_size.fill_(10.0)
    book.cluster_size[[3, 7]] = 0.5  # dead
    book.embed_avg.copy_(book.embed * 10.0)
    batch = 100 + torch.randn(40, 3)  # far from every initial code
    old = book.embed.clone()
    replaced = book.expire_codes_(batch)
    assert replaced.nonzero().flatten().tolist() == [3, 7]
    for i in (3, 7):
        assert (book.embed[i] - batch).abs().sum(1).min() == 0  # an exact batch vector
    untouched = torch.ones(16, dtype=torch.bool)
    untouched[[3, 7]] = False
    assert torch.equal(book.embed[untouched], old[untouched])
    # A training step keeps the replacement (its EMA statistics were reset with it).
    book.train()
    book(batch)
    assert (book.embed[[3, 7]] - 100).abs().max() < 10


def test_q_dropout_draws_levels_in_training_only() -> None:
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(dimension=4, n_q=4, bins=16, q_dropout=True, kmeans_iters=2)
    x = torch.randn(2, 4, 20)
    rvq.train()
    seen = {rvq(x, frame_rate=50).codes.shape[1] for _ in range(40)}
    assert seen == {1, 2, 3, 4}
    res = rvq(x, frame_rate=50)
    k = res.codes.shape[1]
    assert float(res.bandwidth) == pytest.approx(k * math.log2(16) * 50 / 1000)
    rvq.eval()
    assert {rvq(x, frame_rate=50).codes.shape[1] for _ in range(5)} == {4}


def test_set_num_codebooks_and_round_trip() -> None:
    torch.manual_seed(0)
    rvq = ResidualVectorQuantizer(dimension=4, n_q=4, bins=32, kmeans_iters=5)
    x = torch.randn(2, 4, 50)
    rvq.train()
    rvq(x, frame_rate=50)
    rvq.eval()
    errors = []
    for n in (1, 2, 3, 4):
        rvq.set_num_codebooks(n)
        assert rvq.num_codebooks == n and rvq.total_codebooks == 4
        codes = rvq.encode(x)
        assert codes.shape == (2, n, 50) and codes.dtype == torch.int64
        decoded = rvq.decode(codes)
        torch.testing.assert_close(decoded, rvq(x, frame_rate=50).x)  # forward == encode + decode in eval
        errors.append(float((decoded - x).pow(2).mean()))
    assert errors == sorted(errors, reverse=True) and errors[-1] < errors[0]
    for bad in (0, 5):
        with pytest.raises(ValueError, match=r"\[1, 4\]"):
            rvq.set_num_codebooks(bad)
    with pytest.raises(ValueError, match=r"\[B, 4, T\]"):
        rvq.encode(torch.randn(2, 3, 10))
    with pytest.raises(ValueError, match="5 codebooks"):
        rvq.decode(torch.zeros(2, 5, 10, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 31\]"):
        rvq.decode(torch.full((2, 2, 10), 32))


def test_penalty_commitment_and_orthogonal_regularisation() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 4, 30, requires_grad=True)
    plain = ResidualVectorQuantizer(dimension=4, n_q=2, bins=16, kmeans_iters=2).train()
    torch.manual_seed(0)
    ortho = ResidualVectorQuantizer(
        dimension=4,
        n_q=2,
        bins=16,
        kmeans_iters=2,
        orthogonal_reg_weight=10.0,
        orthogonal_reg_active_codes_only=True,
        orthogonal_reg_max_codes=8,
    ).train()
    torch.manual_seed(1)
    p_plain = plain(x, frame_rate=50).penalty
    torch.manual_seed(1)
    res = ortho(x, frame_rate=50)
    assert isinstance(res, QuantizedResult)
    assert p_plain is not None and res.penalty is not None
    assert float(p_plain.detach()) > 0 and float(res.penalty.detach()) > float(p_plain.detach())
    res.penalty.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # straight-through: gradients reach the encoder
    plain.eval()
    assert float(plain(x, frame_rate=50).penalty) == 0.0


def test_dummy_quantizer_is_identity() -> None:
    q = DummyQuantizer()
    x = torch.randn(2, 8, 10)
    res = q(x, frame_rate=50)
    assert torch.equal(res.x, x) and res.codes.shape == (2, 1, 8, 10)
    assert float(res.bandwidth) == pytest.approx(8 * 10 * 32 * 50 / 1000)
    assert torch.equal(q.decode(q.encode(x)), x)
    with pytest.raises(AttributeError):
        q.set_num_codebooks(2)
