"""audiocraft.data.chroma: the one chromagram (the conditioners' fixture test compares it with upstream's output)."""

import math

import numpy as np
import pytest
import torch

from audiocraft.data.chroma import ChromaExtractor, PowerSpectrogram, chroma_filterbank


def _tone(freq: float, seconds: float = 1.0, sr: int = 16000) -> torch.Tensor:
    t = torch.arange(int(seconds * sr)) / sr
    return torch.sin(2 * math.pi * freq * t)[None, None]


def test_power_spectrogram_is_the_window_normalised_reflect_padded_stft() -> None:
    wav = torch.randn(2, 1000, generator=torch.Generator().manual_seed(0))
    spec = PowerSpectrogram(n_fft=256, win_length=256, hop_length=64)(wav)
    x = np.pad(wav.numpy().astype(np.float64), ((0, 0), (128, 128)), mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(256) / 256)  # periodic Hann
    frames = np.stack([x[:, i * 64 : i * 64 + 256] for i in range(1000 // 64 + 1)], axis=-1)  # [B, 256, frames]
    expected = np.abs(np.fft.rfft(frames * window[None, :, None], axis=1)) ** 2 / (window**2).sum()
    assert spec.shape == (2, 129, 1000 // 64 + 1)
    np.testing.assert_allclose(spec.numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("note, pitch_class", [(69, 9), (60, 0), (66, 6)])
def test_a_tone_lands_in_its_pitch_class(note: int, pitch_class: int) -> None:
    chroma = ChromaExtractor(16000, radix2_exp=11)(_tone(440.0 * 2 ** ((note - 69) / 12)))
    assert chroma.shape == (1, 16000 // 512 + 1, 12)
    assert (chroma[0, 2:-2].argmax(-1) == pitch_class).all()
    torch.testing.assert_close(chroma.amax(-1), torch.ones(chroma.shape[:2]))  # max norm per frame


def test_filterbank_columns_before_octave_weighting_have_unit_norm() -> None:
    flat = chroma_filterbank(16000, 2048, octwidth=None)
    assert flat.shape == (12, 1025) and flat.dtype == torch.float32
    torch.testing.assert_close(flat.norm(dim=0), torch.ones(1025))


def test_short_audio_is_padded_and_stereo_is_refused() -> None:
    extractor = ChromaExtractor(16000, radix2_exp=10)
    assert extractor(torch.zeros(3, 1, 1)).shape == (3, 1024 // 256 + 1, 12)  # a null condition
    with pytest.raises(ValueError, match=r"mono audio \[B, 1, T\], got \(1, 2, 4000\)"):
        extractor(torch.zeros(1, 2, 4000))
    assert list(extractor.state_dict()) == ["spec.window"]  # upstream's layout (torchaudio Spectrogram)
