"""PESQ on a synthetic voiced signal: clean vs degraded, within the reference implementation's range."""

import math

import pytest
import torch

from audiocraft.metrics import PesqMetric

# PESQ is the [pesq] extra: the metrics test environment should install it (hatch.toml). Without it, the error
# naming the extra is still tested (test_pesq_extra.py).
pytest.importorskip("pesq", reason="the [pesq] extra (pip install 'audiocraft-metrics[pesq]') is not installed")


def voiced(seconds: float = 3.0, sr: int = 16000) -> torch.Tensor:
    """A speech-like signal: a gliding 140 Hz harmonic source, syllable-rate envelope with pauses."""
    t = torch.arange(int(seconds * sr), dtype=torch.float64) / sr
    f0 = 140 + 20 * torch.sin(2 * math.pi * 0.5 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / sr
    source = sum(torch.sin(k * phase) / k for k in range(1, 20))
    envelope = torch.sin(2 * math.pi * 2 * t).clamp(min=0) ** 2
    return (0.3 * source * envelope).float()[None, None]


def noisy(clean: torch.Tensor, snr_db: float, seed: int = 0) -> torch.Tensor:
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(seed))
    noise = noise * torch.sqrt(clean.pow(2).mean() / noise.pow(2).mean() / 10 ** (snr_db / 10))
    return clean + noise


def test_clean_vs_degraded_wideband_at_48k() -> None:
    clean = voiced(sr=48000)  # resampled to 16 kHz inside the metric
    metric = PesqMetric(sample_rate=48000)
    metric.update(clean, clean.clone())
    clean_score = metric.compute()
    assert 4.5 <= clean_score <= 4.65  # P.862.2 wide-band MOS-LQO tops out at ~4.64
    scores = []
    for snr in (30, 10):
        metric.reset()
        metric.update(noisy(clean, snr), clean)
        scores.append(metric.compute())
    assert 1.0 <= scores[1] < scores[0] < clean_score


def test_narrowband_silence_skipped_and_averaging() -> None:
    clean = voiced(sr=16000)
    metric = PesqMetric(sample_rate=16000, mode="nb")
    silence = torch.zeros_like(clean)
    metric.update(torch.cat([clean, silence]), torch.cat([clean, silence]))
    states = metric.reduced_states()
    assert int(states["total"]) == 1 and int(states["skipped"]) == 1
    assert 4.3 <= metric.compute() <= 4.6
    with pytest.raises(ValueError, match="mode"):
        PesqMetric(16000, mode="xx")
