"""Chroma extraction and chroma cosine similarity on pure tones."""

import math

import pytest
import torch

from audiocraft.metrics import ChromaCosineSimilarityMetric, ChromaExtractor, chroma_filterbank

SR = 16000


def tone(freq: float, seconds: float = 2.0, sr: int = SR) -> torch.Tensor:
    t = torch.arange(int(seconds * sr)) / sr
    return (0.5 * torch.sin(2 * math.pi * freq * t))[None, None]


def midi(note: int) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


@pytest.mark.parametrize("note, pitch_class", [(69, 9), (60, 0), (64, 4), (67, 7), (71, 11)])
def test_tone_lands_in_its_pitch_class(note: int, pitch_class: int) -> None:
    chroma = ChromaExtractor(SR, radix2_exp=12)(tone(midi(note)))
    assert chroma.shape[-1] == 12
    assert (chroma[0, 2:-2].argmax(-1) == pitch_class).all()


def test_filterbank_shape_and_octave_weighting() -> None:
    fb = chroma_filterbank(SR, 4096)
    assert fb.shape == (12, 2049)
    bin_a4, bin_a8 = round(440 * 4096 / SR), round(7040 * 4096 / SR)
    # A4 is 4 octaves above A0 and A8 is 8; the octave weighting is a Gaussian centred on 5 with width 2
    expected_ratio = math.exp(-0.5 * (1 / 2) ** 2) / math.exp(-0.5 * (3 / 2) ** 2)
    assert (fb[9, bin_a4] / fb[9, bin_a8]).item() == pytest.approx(expected_ratio, rel=0.1)


def test_cosine_similarity_tone_with_itself_vs_another_key() -> None:
    metric = ChromaCosineSimilarityMetric(sample_rate=SR, n_chroma=12, radix2_exp=12, argmax=False)
    a4 = tone(midi(69))
    metric.update(a4, a4.clone(), sizes=torch.tensor([a4.shape[-1]]), sample_rates=torch.tensor([SR]))
    assert metric.compute() == pytest.approx(1.0, abs=1e-6)
    metric.reset()
    metric.update(tone(midi(63)), a4)  # E flat against A: a tritone away
    assert metric.compute() < 0.2
    argmax = ChromaCosineSimilarityMetric(sample_rate=SR, n_chroma=12, radix2_exp=12, argmax=True)
    argmax.update(tone(midi(64)), a4)
    assert argmax.compute() == pytest.approx(0.0, abs=1e-3)


def test_resampling_and_valid_lengths() -> None:
    metric = ChromaCosineSimilarityMetric(sample_rate=SR, radix2_exp=12)
    a4_32k = tone(midi(69), sr=32000)
    noisy = a4_32k.clone()
    # noise beyond the valid length (seeded: the STFT frames that straddle the boundary see some of it, so the
    # similarity is just below 1, 0.9990-0.9996 over 200 seeds)
    noisy[..., 32000:] = torch.randn(1, 1, 32000, generator=torch.Generator().manual_seed(0))
    metric.update(noisy, a4_32k, sizes=[32000], sample_rates=32000)
    assert metric.compute() == pytest.approx(1.0, abs=2e-3)
    assert int(metric.reduced_states()["weight"]) == math.ceil(16000 / 1024)
    # the same pair with the whole signal counted as valid: the noise frames now weigh in
    unmasked = ChromaCosineSimilarityMetric(sample_rate=SR, radix2_exp=12)
    unmasked.update(noisy, a4_32k, sizes=[64000], sample_rates=32000)
    assert unmasked.compute() < 0.9
