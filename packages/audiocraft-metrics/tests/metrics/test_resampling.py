"""Metrics resample as the data layer and upstream's metrics do (julius, through audiocraft-data's convert_audio);
ViSQOL alone keeps upstream's torchaudio resampler."""

import importlib

import pytest
import torch
import torchaudio

from audiocraft.data.audio_utils import convert_audio
from audiocraft.metrics import ChromaCosineSimilarityMetric, FrechetAudioDistanceMetric, KLDivergenceMetric
from audiocraft.metrics._audio import resample_torchaudio


def _noise(batch: int = 2, channels: int = 2, seconds: float = 0.5, sr: int = 44100) -> torch.Tensor:
    return torch.rand(batch, channels, int(seconds * sr), generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_julius_and_torchaudio_differ_on_noise() -> None:
    """The two resamplers really differ (the issue measured up to 0.47 at 44.1 -> 32 kHz), so the tests below
    can tell which one a metric used."""
    x = _noise()
    julius_out = convert_audio(x, 44100, 32000, 2)
    torchaudio_out = torchaudio.functional.resample(x, 44100, 32000)
    assert julius_out.shape == torchaudio_out.shape
    assert (julius_out - torchaudio_out).abs().max() > 0.05


@pytest.mark.parametrize(
    "module", ["_audio", "chroma_cosinesim", "clap_consistency", "fad", "fad_stats", "kld", "pesq"]
)
def test_every_resampling_metric_uses_the_data_layers_convert_audio(module: str) -> None:
    mod = importlib.import_module(f"audiocraft.metrics.{module}")
    assert mod.convert_audio is convert_audio


class Recorder(torch.nn.Module):
    """Stand-in model: records its inputs; returns a [N, 3] output from simple statistics of each item."""

    sample_rate = 32000
    channels = 1

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        self.seen.append(wav.clone())
        flat = wav.reshape(wav.shape[0], -1)
        return torch.stack([flat.mean(-1), flat.std(-1), flat.abs().max(-1).values], dim=-1)


def test_kld_classifier_sees_convert_audio_output() -> None:
    preds, targets = _noise(), _noise() * 0.5
    model = Recorder()
    metric = KLDivergenceMetric(model)
    metric.update(preds, targets, sample_rates=44100)
    expected = [convert_audio(x[None], 44100, 32000, 1) for x in torch.cat([preds, targets])]  # [1, 1, T]
    assert len(model.seen) == len(expected)
    for seen, want in zip(model.seen, expected):
        torch.testing.assert_close(seen, want, rtol=0, atol=0)


def test_fad_embedding_model_sees_convert_audio_output() -> None:
    preds = _noise()
    model = Recorder()
    FrechetAudioDistanceMetric(model, embedding_dim=3).embed(preds, 44100)
    torch.testing.assert_close(model.seen[0], convert_audio(preds, 44100, 32000, 1), rtol=0, atol=0)


def test_chroma_metric_equals_its_score_on_convert_audio_input() -> None:
    preds, targets = _noise(seconds=1.0), _noise(seconds=1.0).flip(-1)
    native = ChromaCosineSimilarityMetric(sample_rate=32000)
    native.update(preds, targets, sample_rates=44100)
    preconverted = ChromaCosineSimilarityMetric(sample_rate=32000)
    preconverted.update(
        convert_audio(preds, 44100, 32000, 1),
        convert_audio(targets, 44100, 32000, 1),
        sizes=[int(1.0 * 32000)] * 2,
        sample_rates=32000,
    )
    assert float(native.compute()) == pytest.approx(float(preconverted.compute()), abs=1e-6)


def test_visqol_resampler_is_upstreams_torchaudio_resample() -> None:
    x = _noise(batch=1)[0]
    torch.testing.assert_close(
        resample_torchaudio(x, 44100, 48000), torchaudio.transforms.Resample(44100, 48000)(x), rtol=0, atol=0
    )
    assert resample_torchaudio(x, 48000, 48000) is x
