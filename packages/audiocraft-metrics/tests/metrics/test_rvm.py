"""Relative volume mel: known answers for identical, scaled and silent estimates."""

import math

import pytest
import torch

from audiocraft.metrics import RelativeVolumeMel


@pytest.fixture
def noise() -> torch.Tensor:
    return 0.3 * torch.randn(3, 1, 12000, generator=torch.Generator().manual_seed(0))


def test_identical_estimate_hits_the_lower_clamp(noise: torch.Tensor) -> None:
    rvm = RelativeVolumeMel(sample_rate=24000)
    out = rvm(noise, noise)
    assert set(out) == {"rvm", "rvm_0", "rvm_1", "rvm_2", "rvm_3"}
    assert all(v.item() == pytest.approx(-25.0) for v in out.values())


def test_half_amplitude_estimate_is_minus_6_db(noise: torch.Tensor) -> None:
    rvm = RelativeVolumeMel(sample_rate=24000)
    rvm.update(0.5 * noise, noise)
    out = rvm.compute()
    assert out["rvm"] == pytest.approx(20 * math.log10(0.5), abs=0.05)  # error = half the reference everywhere
    silent = RelativeVolumeMel(sample_rate=24000, max_relative_volume=25)
    silent.update(torch.zeros_like(noise), noise)
    assert silent.compute()["rvm"] == pytest.approx(0.0, abs=0.05)  # error as loud as the reference


def test_stateful_form_matches_batch_call_per_item_and_ignores_padding(noise: torch.Tensor) -> None:
    est = noise + 0.1 * torch.randn(noise.shape, generator=torch.Generator().manual_seed(1))
    rvm = RelativeVolumeMel(sample_rate=24000, num_aggregated_bands=2)
    per_item = [rvm(est[i : i + 1], noise[i : i + 1]) for i in range(3)]
    rvm.update(est[:2], noise[:2])
    rvm.update(est[2:], noise[2:])
    out = rvm.compute()
    for key in ("rvm", "rvm_0", "rvm_1"):
        assert out[key] == pytest.approx(sum(p[key].item() for p in per_item) / 3, abs=1e-5)
    padded_est, padded_ref = est.clone(), noise.clone()
    padded_est[0, :, 6000:] = 1.0
    rvm.reset()
    rvm.update(padded_est, padded_ref, sizes=[6000, 12000, 12000])
    short = rvm(est[:1, :, :6000], noise[:1, :, :6000])["rvm"].item()
    expected = (short + per_item[1]["rvm"].item() + per_item[2]["rvm"].item()) / 3
    assert rvm.compute()["rvm"] == pytest.approx(expected, abs=1e-5)
