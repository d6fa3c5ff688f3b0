"""Text consistency with pluggable embedders, and the CLAP adapter's missing-extra error."""
import pytest
import torch

from audiocraft.metrics import CLAPTextConsistencyMetric, TextConsistencyMetric

WORDS = ["low", "high", "noise"]


class ToyJointEmbedder(torch.nn.Module):
    """Audio -> [low-band energy, high-band energy, flatness]; text -> the one-hot of the word it names."""

    sample_rate = 8000
    channels = 1

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.rfft(wav[:, 0]).abs()
        low, high = spec[:, : spec.shape[-1] // 2].pow(2).sum(-1), spec[:, spec.shape[-1] // 2:].pow(2).sum(-1)
        total = low + high
        return torch.stack([low / total, high / total, torch.zeros_like(total)], dim=-1)

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        return torch.stack([torch.nn.functional.one_hot(torch.tensor(WORDS.index(t)), 3).float() for t in texts])


def test_matching_text_scores_higher() -> None:
    t = torch.arange(8000) / 8000
    low = torch.sin(2 * torch.pi * 200 * t)[None, None]
    high = torch.sin(2 * torch.pi * 3500 * t)[None, None]
    audio = torch.cat([low, high])
    good = TextConsistencyMetric(ToyJointEmbedder())
    good.update(audio, ["low", "high"], sample_rates=8000)
    bad = TextConsistencyMetric(ToyJointEmbedder())
    bad.update(audio, ["high", "low"], sample_rates=8000)
    assert good.compute() == pytest.approx(1.0, abs=1e-3)
    assert bad.compute() == pytest.approx(0.0, abs=1e-3)


def test_resampling_and_per_item_lengths() -> None:
    lengths = []
    model = ToyJointEmbedder()

    def audio_embedder(wav: torch.Tensor) -> torch.Tensor:
        lengths.append(wav.shape[-1])
        return model(wav)

    metric = TextConsistencyMetric(audio_embedder, model.embed_text, sample_rate=8000)
    audio = torch.randn(2, 2, 16000)
    metric.update(audio, ["low", "noise"], sizes=[16000, 8000], sample_rates=16000)
    assert lengths == [8000, 4000]
    with pytest.raises(ValueError, match="2 audio items but 1 texts"):
        metric.update(audio, ["low"])


def test_clap_needs_its_extra_or_weights(tmp_path) -> None:
    with pytest.raises((ImportError, FileNotFoundError), match=r"audiocraft-metrics\[clap\]|not found"):
        CLAPTextConsistencyMetric(tmp_path / "music_audioset_epoch_15_esc_90.14.pt", model_arch="HTSAT-base")
