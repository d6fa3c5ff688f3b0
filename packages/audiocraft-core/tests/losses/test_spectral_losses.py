"""Spectral losses against direct computations with torch.stft / torchaudio."""

import math

import pytest
import torch
import torchaudio
from torch.nn import functional as F

from audiocraft.losses import MelSpectrogramL1Loss, MRSTFTLoss, MultiScaleMelSpectrogramLoss, STFTLoss, get_loss


@pytest.fixture(scope="module")
def pair():
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(2, 1, 4000, generator=gen)
    x = y + 0.3 * torch.randn(2, 1, 4000, generator=gen)
    return x, y


def _mag(x, n_fft, hop, win):
    spec = torch.stft(x.view(-1, x.shape[-1]), n_fft, hop, win, torch.hann_window(win), return_complex=True)
    return torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=1e-7))


def test_mrstft_matches_direct_formula(pair):
    x, y = pair
    eps = torch.finfo(torch.float32).eps
    loss = MRSTFTLoss(factor_sc=0.5, factor_mag=0.5)
    sc, mag = 0.0, 0.0
    for n_fft, hop, win in [(1024, 120, 600), (2048, 240, 1200), (512, 50, 240)]:
        xm, ym = _mag(x, n_fft, hop, win), _mag(y, n_fft, hop, win)
        sc += torch.norm(ym - xm, p="fro") / (torch.norm(ym, p="fro") + eps)
        mag += F.l1_loss(torch.log(eps + ym), torch.log(eps + xm))
    expected = 0.5 * sc / 3 + 0.5 * mag / 3
    assert loss(x, y).item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss(y, y).item() == pytest.approx(0.0, abs=1e-6)
    assert STFTLoss()(y, y).item() == pytest.approx(0.0, abs=1e-6)


def _upstream_style_mel(x, n_fft, hop, n_mels, sr, f_min, normalized, log, floor=1e-5):
    transform = torchaudio.transforms.MelSpectrogram(
        n_mels=n_mels,
        sample_rate=sr,
        n_fft=n_fft,
        hop_length=hop,
        win_length=n_fft,
        f_min=f_min,
        normalized=normalized,
        window_fn=torch.hann_window,
        center=False,
    )
    p = (n_fft - hop) // 2
    x = F.pad(x, (p, p), "reflect")
    length = x.shape[-1]
    n_frames = (length - n_fft) / hop + 1
    x = F.pad(x, (0, (math.ceil(n_frames) - 1) * hop + n_fft - length))
    mel = transform(x)
    if log:
        mel = torch.log10(floor + mel)
    return mel.reshape(mel.shape[0], -1, mel.shape[-1])


def test_msspec_matches_two_branch_definition(pair):
    x, y = pair
    loss = MultiScaleMelSpectrogramLoss(
        16000, range_start=6, range_end=9, n_mels=32, f_min=64, normalized=True, alphas=True
    )
    expected, total = 0.0, 0.0
    for i in range(6, 9):
        n = 2**i
        alpha = math.sqrt(n - 1)
        lin = [_upstream_style_mel(s, n, n // 4, 32, 16000, 64, True, False) for s in (x, y)]
        log = [_upstream_style_mel(s, n, n // 4, 32, 16000, 64, True, True) for s in (x, y)]
        expected += F.l1_loss(*lin) + alpha * F.mse_loss(*log)
        total += alpha + 1
    assert loss(x, y).item() == pytest.approx((expected / total).item(), rel=1e-5)
    assert loss(y, y).item() == pytest.approx(0.0, abs=1e-7)


def test_mel_l1_frames_and_value(pair):
    x, y = pair
    loss = MelSpectrogramL1Loss(16000, n_fft=512, hop_length=128, win_length=512, n_mels=40, f_min=64)
    mel = loss.melspec(y)
    assert mel.shape == (2, 40, math.ceil(4000 / 128))
    expected = F.l1_loss(
        _upstream_style_mel(x, 512, 128, 40, 16000, 64, False, True),
        _upstream_style_mel(y, 512, 128, 40, 16000, 64, False, True),
    )
    assert loss(x, y).item() == pytest.approx(expected.item(), rel=1e-5)


def test_get_loss_reads_config_sections():
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(
        {
            "sample_rate": 16000,
            "l1": {},
            "sisnr": {"sample_rate": "${sample_rate}", "segment": 5.0},
            "mrstft": {"factor_sc": 0.5, "factor_mag": 0.5, "normalized": False},
            "msspec": {"sample_rate": "${sample_rate}", "bogus": 1},
        }
    )
    assert isinstance(get_loss("l1", cfg), torch.nn.L1Loss)
    sisnr = get_loss("sisnr", cfg)
    assert sisnr.sample_rate == 16000 and sisnr.segment == 5.0
    assert get_loss("mrstft", cfg).factor_sc == 0.5
    with pytest.raises(ValueError, match="msspec.*bogus"):
        get_loss("msspec", cfg)
    with pytest.raises(ValueError, match="expected one of"):
        get_loss("nope", cfg)
