"""Known-answer tests for the mel-spectrogram and multi-resolution STFT distances."""

import math

import pytest
import torch

from audiocraft.metrics import MelSpectrogramDistance, MultiResolutionSTFTDistance


@pytest.fixture
def noise() -> torch.Tensor:
    return 0.5 * torch.randn(2, 1, 8000, generator=torch.Generator().manual_seed(0))


def test_mel_distance_identical_is_zero_and_gain_gives_log_ratio(noise: torch.Tensor) -> None:
    metric = MelSpectrogramDistance(sample_rate=16000, n_fft=512, n_mels=40)
    metric.update(noise, noise)
    assert metric.compute() == 0.0
    metric.reset()
    metric.update(2 * noise, noise)  # |log10(2m) - log10(m)| = log10(2) wherever m >> floor_level
    assert metric.compute() == pytest.approx(math.log10(2), abs=2e-3)


def test_mel_distance_variable_lengths(noise: torch.Tensor) -> None:
    metric = MelSpectrogramDistance(sample_rate=16000, n_fft=512, n_mels=40)
    padded = noise.clone()
    padded[1, :, 4000:] = 0
    est = padded.clone()
    est[1, :, 4000:] = 1.0  # beyond the valid length: must be ignored
    metric.update(est, padded, sizes=[8000, 4000])
    assert metric.compute() == 0.0


def test_mrstft_known_answers(noise: torch.Tensor) -> None:
    metric = MultiResolutionSTFTDistance(fft_sizes=[512, 256], hop_sizes=[128, 64], win_lengths=[400, 200])
    metric.update(noise, noise)
    assert metric.compute() == {"sc": 0.0, "mag": 0.0, "mrstft": 0.0}
    metric.reset()
    metric.update(2 * noise, noise)
    out = metric.compute()
    assert out["sc"] == pytest.approx(1.0, abs=1e-5)  # ||S - 2S|| / ||S||
    assert out["mag"] == pytest.approx(math.log(2), abs=1e-3)
    assert out["mrstft"] == pytest.approx(0.1 * (1 + math.log(2)), abs=1e-3)


def test_mrstft_rejects_mismatched_resolutions() -> None:
    with pytest.raises(ValueError, match="same length"):
        MultiResolutionSTFTDistance(fft_sizes=[512], hop_sizes=[128, 64], win_lengths=[400])
