"""Text consistency with pluggable embedders, and CLAP (on transformers) against the original laion-clap.

The parity fixture (tests/fixtures/clap_original, see its README) was made with laion-clap 1.1.7: a tiny random
original CLAP saved in the layout of laion's published checkpoints, and the embeddings laion's `CLAP_Module`
gives for short audio, exactly 10 s of audio and two texts, called as upstream AudioCraft's metric calls it.
"""

import sys
from pathlib import Path

import pytest
import torch

from audiocraft.metrics import ClapArchitecture, ClapModel, CLAPTextConsistencyMetric, TextConsistencyMetric
from audiocraft.metrics._clap import convert_laion_state_dict

FIXTURE = Path(__file__).parent.parent / "fixtures" / "clap_original"
# The sizes make_fixture.py gave laion's HTSAT_Swin_Transformer and RoBERTa (the rest is read from the weights).
TOY = ClapArchitecture(
    hop_size=2400, spec_size=64, embed_dim=8, depths=(2, 2, 2), num_heads=(1, 2, 4), window_size=4, text_heads=2
)

WORDS = ["low", "high", "noise"]


class ToyJointEmbedder(torch.nn.Module):
    """Audio -> [low-band energy, high-band energy, flatness]; text -> the one-hot of the word it names."""

    sample_rate = 8000
    channels = 1

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.rfft(wav[:, 0]).abs()
        low, high = spec[:, : spec.shape[-1] // 2].pow(2).sum(-1), spec[:, spec.shape[-1] // 2 :].pow(2).sum(-1)
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


@pytest.fixture(scope="module")
def original() -> dict:
    return torch.load(FIXTURE / "outputs.pt", weights_only=True)


@pytest.fixture(scope="module")
def toy_clap() -> ClapModel:
    return ClapModel(FIXTURE / "clap_toy.pt", model_arch=TOY, tokenizer_path=FIXTURE / "tokenizer")


def test_laion_checkpoint_gives_laion_embeddings(toy_clap, original) -> None:
    assert toy_clap.embedding_dim == 16
    with torch.no_grad():
        short = toy_clap(original["short_audio"][:, None])  # 1.5 s: repeated, then padded to 10 s
        full = toy_clap(original["full_pattern"].repeat(1, 100)[:, None])  # exactly 10 s
        stereo = toy_clap(original["short_audio"][:, None].repeat(1, 2, 1))  # channels are averaged
        text = toy_clap.embed_text(original["texts"])
    assert (short - original["short_embedding"]).abs().max() < 1e-4
    assert (full - original["full_embedding"]).abs().max() < 1e-4
    assert (stereo - original["short_embedding"]).abs().max() < 1e-4
    assert (text - original["text_embedding"]).abs().max() < 1e-4
    assert not torch.allclose(short[0], short[1], atol=1e-2)  # the fixture tells inputs apart


def test_clap_score_from_the_laion_checkpoint(toy_clap, original) -> None:
    metric = CLAPTextConsistencyMetric(FIXTURE / "clap_toy.pt", model_arch=TOY, tokenizer_path=FIXTURE / "tokenizer")
    metric.update(original["short_audio"][:, None], original["texts"], sample_rates=48000)
    expected = torch.nn.functional.cosine_similarity(original["short_embedding"], original["text_embedding"]).mean()
    assert metric.compute() == pytest.approx(float(expected), abs=1e-4)


def test_longer_audio_is_cropped_to_ten_seconds(toy_clap, original) -> None:
    long = torch.cat([original["full_pattern"].repeat(1, 100), torch.zeros(1, 4800)], dim=-1)[:, None]
    fresh = ClapModel(FIXTURE / "clap_toy.pt", model_arch=TOY, tokenizer_path=FIXTURE / "tokenizer", seed=3)
    start = int(torch.randint(0, 4801, (1,), generator=torch.Generator().manual_seed(3)))
    assert 0 < start < 4800
    with torch.no_grad():
        cropped = fresh(long)  # laion draws a random 10 s window; ours comes from the model's seeded generator
        window = toy_clap(long[..., start : start + 480000])
    assert torch.allclose(cropped, window, atol=1e-6)
    assert not torch.allclose(cropped, original["full_embedding"], atol=1e-3)  # the silence is inside the crop


def test_conversion_names_what_it_does_not_know() -> None:
    state = torch.load(FIXTURE / "clap_toy.pt", weights_only=True)["state_dict"]
    converted, front_end = convert_laion_state_dict(state)
    assert set(front_end) == {"conv_real", "conv_imag", "melW"} and front_end["melW"].shape == (129, 16)
    assert "audio_model.audio_encoder.layers.0.blocks.0.attention.self.query.weight" in converted
    assert not any(k.startswith(("audio_transform", "text_transform")) for k in converted)
    with pytest.raises(ValueError, match=r"unexpected key 'visual.proj'"):
        convert_laion_state_dict({**state, "module.visual.proj": torch.zeros(1)}, "toy.pt")
    with pytest.raises(ValueError, match=r"toy.pt is not a laion-clap HTS-AT checkpoint: missing"):
        convert_laion_state_dict({"module.text_projection.0.weight": torch.zeros(1)}, "toy.pt")


def test_clap_errors_name_the_problem(tmp_path, monkeypatch) -> None:
    with pytest.raises(FileNotFoundError, match="music_audioset_epoch_15_esc_90.14.pt not found|weights not found"):
        CLAPTextConsistencyMetric(tmp_path / "music_audioset_epoch_15_esc_90.14.pt", model_arch="HTSAT-base")
    with pytest.raises(ValueError, match="model_arch='PANN-14'"):
        ClapModel(FIXTURE / "clap_toy.pt", model_arch="PANN-14")
    with pytest.raises(ValueError, match="enable_fusion=True"):
        ClapModel(FIXTURE / "clap_toy.pt", enable_fusion=True)
    with pytest.raises(FileNotFoundError, match="RoBERTa tokenizer not found in"):
        ClapModel(FIXTURE / "clap_toy.pt", model_arch=TOY, tokenizer_path=tmp_path)
    with pytest.raises(ValueError, match="does not fit CLAP"):
        ClapModel(FIXTURE / "clap_toy.pt", model_arch="HTSAT-tiny", tokenizer_path=FIXTURE / "tokenizer")
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"pip install 'audiocraft-metrics\[clap\]'"):
        ClapModel(FIXTURE / "clap_toy.pt", model_arch=TOY)
