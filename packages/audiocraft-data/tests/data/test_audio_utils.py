"""Tests for audiocraft.data.audio_utils and the BS.1770 loudness implementation."""

import math

import pytest
import torch

from audiocraft.data._loudness import integrated_loudness
from audiocraft.data.audio_utils import (
    convert_audio,
    convert_audio_channels,
    f32_pcm,
    i16_pcm,
    normalize_audio,
    normalize_loudness,
)


def test_convert_channels():
    stereo = torch.stack([torch.ones(10), -torch.ones(10) * 0.5])
    assert torch.allclose(convert_audio_channels(stereo, 1), torch.full((1, 10), 0.25))
    assert convert_audio_channels(stereo[:1], 2).shape == (2, 10)
    assert convert_audio_channels(torch.randn(3, 4, 10), 2).shape == (3, 2, 10)
    with pytest.raises(ValueError, match="upmixed"):
        convert_audio_channels(stereo, 5)


def test_convert_audio_resamples(tone):
    wav = tone(1.0, 32000, 2, freq=200.0)
    out = convert_audio(wav, 32000, 16000, 1)
    assert out.shape == (1, 16000)
    ref = tone(1.0, 16000, 2, freq=200.0).mean(0, keepdim=True)
    assert (out[:, 200:-200] - ref[:, 200:-200]).abs().max() < 1e-2
    assert torch.equal(convert_audio(wav, 32000, 32000, 2), wav)


def test_loudness_known_values():
    sr = 48000
    t = torch.arange(3 * sr) / sr
    sine = torch.sin(2 * math.pi * 997 * t)[None]
    # BS.1770: a 0 dBFS 997 Hz sine in one channel reads -3.01 LUFS. Like torchaudio (and so upstream),
    # the filter outputs are clamped to [-1, 1], so check at -6 dBFS where nothing clamps.
    assert integrated_loudness(sine * 0.5, sr).item() == pytest.approx(-3.01 - 6.02, abs=0.06)
    assert integrated_loudness(sine * 0.25, sr).item() == pytest.approx(-3.01 - 12.04, abs=0.06)
    # the same signal on two channels adds 3 dB
    assert integrated_loudness(sine.repeat(2, 1) * 0.25, sr).item() == pytest.approx(-3.01 - 9.03, abs=0.06)
    with pytest.raises(ValueError, match="400 ms"):
        integrated_loudness(sine[:, :100], sr)


def test_normalize_strategies(tone):
    sr = 16000
    wav = tone(1.0, sr, 2) * 0.1
    peak = normalize_audio(wav, strategy="peak", peak_clip_headroom_db=3)
    assert peak.abs().max().item() == pytest.approx(10 ** (-3 / 20), rel=1e-5)
    rms = normalize_audio(wav, strategy="rms", rms_headroom_db=20)
    assert rms.mean(0).pow(2).mean().sqrt().item() == pytest.approx(0.1, rel=1e-4)
    loud = normalize_loudness(wav, sr, loudness_headroom_db=16)
    assert integrated_loudness(loud, sr).item() == pytest.approx(-16, abs=0.05)
    clipped = normalize_audio(wav * 100, strategy="clip", peak_clip_headroom_db=0)
    assert clipped.abs().max().item() == pytest.approx(1.0)
    silence = torch.zeros(1, sr)
    assert torch.equal(normalize_audio(silence, strategy="peak"), silence)
    assert torch.equal(normalize_loudness(silence, sr), silence)
    with pytest.raises(ValueError, match="expected one of"):
        normalize_audio(wav, strategy="nope")
    with pytest.raises(ValueError, match="sample_rate"):
        normalize_audio(wav, strategy="loudness")


def test_pcm_conversions():
    wav = torch.tensor([[-1.0, -0.5, 0.0, 0.5, 1.0]])
    pcm = i16_pcm(wav)
    assert pcm.dtype == torch.int16 and pcm.tolist() == [[-32767, -16384, 0, 16384, 32767]]
    assert torch.allclose(f32_pcm(i16_pcm(wav * 0.5)), wav * 0.5, atol=1 / 2**15)
    assert f32_pcm(torch.tensor([2**31 - 1], dtype=torch.int32)).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="clip"):
        i16_pcm(wav * 1.5)
