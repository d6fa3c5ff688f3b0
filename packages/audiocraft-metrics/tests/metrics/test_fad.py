"""Fréchet distance against the closed form, reusable statistics, and the FAD metric with pluggable embedders."""

import numpy as np
import pytest
import torch

from audiocraft.metrics import EmbeddingStats, FrechetAudioDistanceMetric, frechet_distance


def _random_spd(dim: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((dim, dim))
    return a @ a.T + dim * np.eye(dim)


def test_frechet_distance_diagonal_closed_form() -> None:
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))  # 5 + (1 + 1 + 4)
    assert expected == pytest.approx(11.0)
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(11.0, abs=1e-9)


def test_frechet_distance_full_covariance_closed_form() -> None:
    sigma = _random_spd(6, 0)
    mu1, mu2 = np.zeros(6), np.full(6, 0.5)
    # sigma2 = 4 sigma commutes with sigma: Tr(sqrt(sigma * 4 sigma)) = 2 Tr(sigma)
    expected = 6 * 0.25 + np.trace(sigma) + 4 * np.trace(sigma) - 2 * 2 * np.trace(sigma)
    got = frechet_distance(torch.from_numpy(mu1), torch.from_numpy(sigma), mu2, 4 * sigma)
    assert got == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu1, sigma, mu1, sigma) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_singular_and_bad_shapes() -> None:
    sigma = np.zeros((3, 3))
    assert frechet_distance(np.zeros(3), sigma, np.ones(3), sigma) == pytest.approx(3.0, abs=1e-4)
    with pytest.raises(ValueError, match="mean shapes"):
        frechet_distance(np.zeros(3), sigma, np.zeros(2), np.zeros((2, 2)))


def test_embedding_stats_moments_merge_and_files(tmp_path) -> None:
    rng = np.random.default_rng(1)
    data = rng.standard_normal((50, 4)) @ rng.standard_normal((4, 4)) + 3
    a, b = EmbeddingStats(4), EmbeddingStats(4)
    a.add(torch.from_numpy(data[:20]))
    b.add(torch.from_numpy(data[20:]))
    merged = a.merge(b)
    np.testing.assert_allclose(merged.mu.numpy(), data.mean(0), rtol=1e-12)
    np.testing.assert_allclose(merged.sigma.numpy(), np.cov(data, rowvar=False), rtol=1e-10)
    merged.save(tmp_path / "ref_stats.pt")
    loaded = EmbeddingStats.load(tmp_path / "ref_stats.pt")
    np.testing.assert_allclose(loaded.sigma.numpy(), merged.sigma.numpy())
    np.savez(tmp_path / "moments.npz", mu=data.mean(0), sigma=np.cov(data, rowvar=False))
    from_npz = EmbeddingStats.load(tmp_path / "moments.npz")
    np.testing.assert_allclose(from_npz.sigma.numpy(), np.cov(data, rowvar=False), rtol=1e-10)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        EmbeddingStats.load(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="dimension"):
        a.add(torch.zeros(2, 3))


class FrameFeatures(torch.nn.Module):
    """A deterministic embedder at 8 kHz: per 800-sample frame, [log energy, mean |diff|, zero crossings]."""

    sample_rate = 8000
    channels = 1
    embedding_dim = 3

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        frames = wav[:, 0, : wav.shape[-1] // 800 * 800].reshape(wav.shape[0], -1, 800)
        energy = torch.log(frames.pow(2).mean(-1) + 1e-6)
        roughness = frames.diff(dim=-1).abs().mean(-1)
        crossings = (frames[..., 1:] * frames[..., :-1] < 0).float().mean(-1)
        return torch.stack([energy, roughness, crossings], dim=-1)


def _audio(seed: int, n: int = 4, length: int = 8000, gain: float = 0.3) -> torch.Tensor:
    return gain * torch.randn(n, 1, length, generator=torch.Generator().manual_seed(seed))


def test_fad_matches_statistics_of_the_embeddings(tmp_path) -> None:
    model = FrameFeatures()
    preds, targets = _audio(0, gain=0.5), _audio(1)
    metric = FrechetAudioDistanceMetric(model)
    metric.update(preds[:2], targets[:2], sample_rates=8000)
    metric.update(preds[2:], targets[2:], sample_rates=8000)
    e_pred = model(preds).reshape(-1, 3).double().numpy()
    e_ref = model(targets).reshape(-1, 3).double().numpy()
    expected = frechet_distance(
        e_pred.mean(0), np.cov(e_pred, rowvar=False), e_ref.mean(0), np.cov(e_ref, rowvar=False)
    )
    assert metric.compute() == pytest.approx(expected, rel=1e-9)
    assert expected > 0.1
    # reference statistics saved once, reused without targets
    metric.save_reference_stats(tmp_path / "fad_ref.pt")
    reuse = FrechetAudioDistanceMetric(model, reference_stats=tmp_path / "fad_ref.pt")
    reuse.update(preds, sample_rates=8000)
    assert reuse.compute() == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="another model"):
        FrechetAudioDistanceMetric(model, embedding_dim=5, reference_stats=tmp_path / "fad_ref.pt")


def test_fad_callable_resampling_and_variable_lengths() -> None:
    seen_rates = []

    def embed(wav: torch.Tensor) -> torch.Tensor:  # a plain callable: mean and std per item
        seen_rates.append(wav.shape[-1])
        return torch.stack([wav.mean(dim=(1, 2)), wav.std(dim=(1, 2))], dim=-1)

    metric = FrechetAudioDistanceMetric(embed, sample_rate=8000, embedding_dim=2)
    preds, targets = _audio(2, length=16000), _audio(3, length=16000)
    metric.update(preds, targets, sizes=[16000, 16000, 8000, 4000], sample_rates=[16000] * 4)
    assert seen_rates[:4] == [8000, 8000, 4000, 2000]  # each item trimmed, then resampled 16 kHz -> 8 kHz
    assert metric.compute() >= 0.0
    with pytest.raises(ValueError, match="targets"):
        metric.update(preds, None)
    with pytest.raises(ValueError, match="sample_rate"):
        FrechetAudioDistanceMetric(embed)


def test_fad_same_distribution_is_small_and_shift_is_large() -> None:
    model = FrameFeatures()
    same = FrechetAudioDistanceMetric(model)
    same.update(_audio(4, n=16), _audio(5, n=16))
    louder = FrechetAudioDistanceMetric(model)
    louder.update(_audio(4, n=16, gain=1.0), _audio(5, n=16))
    assert same.compute() < 0.05 < louder.compute()
