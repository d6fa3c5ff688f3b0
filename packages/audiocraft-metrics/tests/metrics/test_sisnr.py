"""Known-answer tests for SI-SNR (function and metric, upstream sign convention)."""

import math

import pytest
import torch

from audiocraft.metrics import SISNR, si_snr


def _noise_at_snr(ref: torch.Tensor, snr_db: float, seed: int) -> torch.Tensor:
    """Noise orthogonal to the (centred) reference, scaled so that ref + noise has exactly `snr_db` SI-SNR."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    ref_c = ref - ref.mean(-1, keepdim=True)
    noise = noise - noise.mean(-1, keepdim=True)
    noise = noise - (noise * ref_c).sum(-1, keepdim=True) / ref_c.pow(2).sum(-1, keepdim=True) * ref_c
    scale = torch.sqrt(ref_c.pow(2).sum(-1, keepdim=True) / noise.pow(2).sum(-1, keepdim=True) / 10 ** (snr_db / 10))
    return noise * scale


@pytest.fixture
def ref() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return 0.1 * torch.randn(2, 1, 16000, generator=g, dtype=torch.float64)


def test_signal_with_itself_is_limited_only_by_epsilon(ref: torch.Tensor) -> None:
    eps = torch.finfo(torch.float32).eps
    value = si_snr(ref, ref)
    energy = (ref - ref.mean(-1, keepdim=True)).pow(2).sum(-1)
    # the residual is ~eps^2 / energy, negligible next to the epsilon floor: SI-SNR = 10 log10((eps + E) / eps)
    expected = 10 * torch.log10((eps * 16000 + energy) / (eps * 16000))
    torch.testing.assert_close(value[..., 0], expected, rtol=1e-5, atol=1e-5)
    assert (value > 40).all()


@pytest.mark.parametrize("scale", [0.25, 3.0, -1.0])
def test_scaled_copies_are_perfect(ref: torch.Tensor, scale: float) -> None:
    value = si_snr(scale * ref, ref, epsilon=1e-20)
    assert (value > 150).all(), value  # no noise at all: only float64 rounding is left


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 30.0])
def test_noise_at_known_snr(ref: torch.Tensor, snr_db: float) -> None:
    est = 0.7 * ref + _noise_at_snr(0.7 * ref, snr_db, seed=1)
    value = si_snr(est, ref, epsilon=1e-20)
    torch.testing.assert_close(value, torch.full_like(value, snr_db), rtol=0, atol=1e-6)


def test_metric_reports_upstream_sign_and_averages_over_items(ref: torch.Tensor) -> None:
    est = torch.cat([ref[:1] + _noise_at_snr(ref[:1], 10.0, 2), ref[1:] + _noise_at_snr(ref[1:], 20.0, 3)])
    metric = SISNR(sample_rate=16000, segment=None, epsilon=1e-20)
    metric.update(est[:1], ref[:1])
    metric.update(est[1:], ref[1:])
    assert metric.compute() == pytest.approx(-15.0, abs=1e-5)  # upstream logs -SI-SNR: lower is better
    positive = SISNR(sample_rate=16000, segment=None, epsilon=1e-20, negate=False)
    positive.update(est, ref)
    assert positive.compute() == pytest.approx(15.0, abs=1e-5)
    # calling the module gives the batch value like upstream's loss, without touching the state
    assert float(metric(est, ref)) == pytest.approx(-15.0, abs=1e-5)
    metric.reset()
    with pytest.raises(RuntimeError, match="before any update"):
        metric.compute()


def test_segments_match_independent_chunks() -> None:
    g = torch.Generator().manual_seed(4)
    ref = torch.randn(1, 1, 4000, generator=g, dtype=torch.float64)
    est = ref + 0.3 * torch.randn(1, 1, 4000, generator=g, dtype=torch.float64)
    # 0.25 s chunks at 8 kHz (2000 samples) with 50 % overlap: starts 0, 1000, 2000, 3000 (the last zero-padded)
    value = si_snr(est, ref, sample_rate=8000, segment=0.25, overlap=0.5)
    assert value.shape == (1, 1, 4)
    padded_ref = torch.nn.functional.pad(ref, (0, 1000))
    padded_est = torch.nn.functional.pad(est, (0, 1000))
    for k, start in enumerate([0, 1000, 2000, 3000]):
        chunk = si_snr(padded_est[..., start : start + 2000], padded_ref[..., start : start + 2000])
        assert value[0, 0, k].item() == pytest.approx(chunk.item(), abs=1e-9)


def test_sizes_ignore_padding(ref: torch.Tensor) -> None:
    est = ref + 0.05 * torch.randn_like(ref)
    garbage_est = est.clone()
    garbage_est[1, :, 8000:] = 5.0
    metric = SISNR(segment=None)
    metric.update(garbage_est, ref, sizes=torch.tensor([16000, 8000]))
    expected = (si_snr(est[:1], ref[:1]).sum() + si_snr(est[1:, :, :8000], ref[1:, :, :8000]).sum()) / 2
    assert metric.compute() == pytest.approx(-expected.item(), rel=1e-9)
    with pytest.raises(ValueError, match="sizes"):
        metric.update(est, ref, sizes=[16000])
    assert math.isfinite(metric.compute())
