"""Known-answer tests of the SI-SNR loss."""

import math

import pytest
import torch

from audiocraft.losses import SISNR


def _orthogonal_noise(ref: torch.Tensor, snr_db: float, seed: int = 0) -> torch.Tensor:
    """Zero-mean noise orthogonal to the (centered) reference, at exactly `snr_db` below it."""
    gen = torch.Generator().manual_seed(seed)
    ref_c = ref - ref.mean(-1, keepdim=True)
    noise = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    noise = noise - noise.mean(-1, keepdim=True)
    noise = noise - (noise * ref_c).sum(-1, keepdim=True) / ref_c.pow(2).sum(-1, keepdim=True) * ref_c
    target = ref_c.pow(2).sum(-1, keepdim=True) / 10 ** (snr_db / 10)
    return noise * (target / noise.pow(2).sum(-1, keepdim=True)).sqrt()


def _sine(length: int, freq: float = 440.0, sr: int = 16000) -> torch.Tensor:
    t = torch.arange(length, dtype=torch.float64) / sr
    return torch.sin(2 * math.pi * freq * t)


def test_scaled_copy_is_near_perfect_and_scale_invariant():
    ref = _sine(16000).view(1, 1, -1).float()
    loss = SISNR(sample_rate=16000, segment=None)
    assert loss(0.5 * ref, ref).item() < -60  # -SI-SNR: very negative for a perfect (scaled) copy
    est = ref + 0.1 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(1))
    assert loss(3.0 * est, ref).item() == pytest.approx(loss(est, ref).item(), abs=1e-4)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_orthogonal_noise_gives_the_exact_snr(snr_db):
    ref = torch.stack([_sine(8000, 220.0), _sine(8000, 330.0)]).view(2, 1, -1)
    est = (2.0 * ref + _orthogonal_noise(2.0 * ref, snr_db)).float()
    value = SISNR(sample_rate=16000, segment=None)(est, ref.float())
    assert -value.item() == pytest.approx(snr_db, abs=1e-3)


def test_segments_average_per_chunk_values():
    # 2 s at 1 kHz: first second clean-ish at 30 dB, second second at 0 dB.
    sr = 1000
    ref = _sine(2 * sr, 37.0, sr).view(1, 1, -1)
    est = ref.clone()
    est[..., :sr] += _orthogonal_noise(ref[..., :sr], 30.0)
    est[..., sr:] += _orthogonal_noise(ref[..., sr:], 0.0)
    loss = SISNR(sample_rate=sr, segment=1.0, overlap=0.0)
    whole = SISNR(sample_rate=sr, segment=None)
    first = whole(est[..., :sr].float(), ref[..., :sr].float())
    second = whole(est[..., sr:].float(), ref[..., sr:].float())
    assert -first.item() == pytest.approx(30.0, abs=1e-2)
    assert loss(est.float(), ref.float()).item() == pytest.approx((first + second).item() / 2, abs=1e-3)
    # With 50 % overlap the chunks are [0, 1), [0.5, 1.5), [1, 2), [1.5, 2) + zero padding: 4 chunks.
    overlapped = SISNR(sample_rate=sr, segment=1.0, overlap=0.5)
    chunks = []
    padded = torch.nn.functional.pad(est.float(), (0, sr // 2)), torch.nn.functional.pad(ref.float(), (0, sr // 2))
    for start in range(0, 2 * sr, sr // 2):
        chunks.append(whole(padded[0][..., start : start + sr], padded[1][..., start : start + sr]))
    assert overlapped(est.float(), ref.float()).item() == pytest.approx(torch.stack(chunks).mean().item(), abs=1e-3)


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match="equal shape"):
        SISNR()(torch.zeros(1, 1, 10), torch.zeros(1, 1, 11))


@pytest.mark.parametrize("segment,overlap", [(None, 0.5), (0.3, 0.5), (0.25, 0.0)])
def test_loss_is_the_negated_metric_function(segment, overlap):
    from audiocraft import metrics

    gen = torch.Generator().manual_seed(3)
    ref = torch.randn(3, 2, 4321, generator=gen)
    est = (ref + 0.5 * torch.randn(ref.shape, generator=gen)).requires_grad_()
    loss = SISNR(sample_rate=8000, segment=segment, overlap=overlap)(est, ref)
    expected = -metrics.si_snr(est, ref, 8000, segment, overlap).mean()
    assert torch.equal(loss, expected)
    assert torch.equal(loss, metrics.SISNR(sample_rate=8000, segment=segment, overlap=overlap)(est, ref))
    loss.backward()  # the loss stays differentiable
    assert est.grad is not None and torch.isfinite(est.grad).all() and est.grad.abs().sum() > 0
