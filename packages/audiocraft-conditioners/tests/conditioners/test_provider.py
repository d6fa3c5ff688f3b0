"""ConditioningProvider: collation by attribute kind, the shape / length checks, joint embeddings with a quantizer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from audiocraft.conditioners import (
    ConditioningAttributes,
    ConditioningProvider,
    JointEmbedCondition,
    JointEmbeddingConditioner,
    LUTConditioner,
    WavCondition,
    WaveformConditioner,
)


class MeanFrames(WaveformConditioner):
    """Toy waveform conditioner: the mean of each block of 10 samples."""

    def __init__(self, output_dim: int) -> None:
        super().__init__(dim=1, output_dim=output_dim, device="cpu")

    def _get_wav_embedding(self, x: WavCondition) -> torch.Tensor:
        frames = x.wav.shape[-1] // 10
        return x.wav[:, 0, : frames * 10].reshape(x.wav.shape[0], frames, 10).mean(-1, keepdim=True)

    def _downsampling_factor(self) -> float:
        return 10


class Sign(nn.Module):
    """Toy quantizer with upstream's call convention: ``q(x [B, D, 1], frame_rate) -> result with .x``."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.0))

    def forward(self, x: torch.Tensor, frame_rate: int) -> SimpleNamespace:
        return SimpleNamespace(x=torch.sign(x) * self.scale)


class FirstSamples(JointEmbeddingConditioner):
    """Toy joint conditioner: the first ``dim`` samples of the audio, or of a text's code points."""

    def _get_embed(self, x: JointEmbedCondition) -> tuple[torch.Tensor, torch.Tensor]:
        empty = torch.tensor([i for i, t in enumerate(x.text) if not t], dtype=torch.long)
        return x.wav[:, 0, None, : self.dim] - 0.5, empty


def _wav(length: int, channels: int = 1, value: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.full((1, channels, length), value), torch.tensor([length])


def test_collates_each_kind_and_embeds() -> None:
    provider = ConditioningProvider(
        {
            "description": LUTConditioner(32, 4, 8, tokenizer="noop"),
            "self_wav": MeanFrames(8),
            "clap": FirstSamples(dim=3, output_dim=8, device="cpu", attribute="clap", quantizer=Sign()),
        }
    )
    assert (provider.text_conditions, provider.wav_conditions, provider.joint_embed_conditions) == (
        ["description"],
        ["self_wav"],
        ["clap"],
    )
    items = []
    for i, length in enumerate([40, 25]):
        wav, n = _wav(length, channels=2, value=float(i + 1))
        items.append(
            ConditioningAttributes(
                text={"description": f"song {i}", "mood": "ignored"},
                wav={"self_wav": WavCondition(wav, n, [16000], [f"/{i}.wav"], [0.5])},
                joint_embed={"clap": JointEmbedCondition(wav[:, :1], ["" if i else "text"], n, [16000], [None], [0.0])},
            )
        )
    tokenized = provider.tokenize(items)
    wav = tokenized["self_wav"]
    assert wav.wav.shape == (2, 1, 40) and wav.length.tolist() == [40, 25] and wav.path == ["/0.wav", "/1.wav"]
    assert torch.count_nonzero(wav.wav[1, 0, 25:]) == 0
    out = provider(tokenized)
    assert out["description"][0].shape == (2, 1, 8)
    embeds, mask = out["self_wav"]
    assert embeds.shape == (2, 4, 8) and mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    clap, clap_mask = out["clap"]
    assert clap.shape == (2, 1, 8) and clap_mask.tolist() == [[1.0], [0.0]]
    proj = provider.conditioners["clap"].output_proj
    torch.testing.assert_close(clap[0, 0], proj(torch.full((3,), 2.0)))  # sign(1 - 0.5) * scale
    assert "conditioners.clap.quantizer.scale" in provider.state_dict()


def test_missing_and_bad_conditions_are_named() -> None:
    provider = ConditioningProvider({"genre": LUTConditioner(8, 2, 2, tokenizer="noop"), "self_wav": MeanFrames(2)})
    wav, n = _wav(20)
    good = WavCondition(wav, n, [16000], [None], [None])
    with pytest.raises(KeyError, match="item 1 has no text attribute 'genre'"):
        provider.tokenize(
            [
                ConditioningAttributes(text={"genre": "a"}, wav={"self_wav": good}),
                ConditioningAttributes(text={}, wav={"self_wav": good}),
            ]
        )
    with pytest.raises(ValueError, match=r"length 30 exceeds the audio's 20"):
        provider.tokenize(
            [
                ConditioningAttributes(
                    text={"genre": "a"}, wav={"self_wav": WavCondition(wav, torch.tensor([30]), [16000])}
                )
            ]
        )
    with pytest.raises(ValueError, match=r"shape \[1, C, T\]"):
        provider.tokenize(
            [ConditioningAttributes(text={"genre": "a"}, wav={"self_wav": WavCondition(wav[0], n, [16000])})]
        )
    with pytest.raises(TypeError, match="item 0 is a dict"):
        provider.tokenize([{"text": {}}])  # type: ignore[list-item]


def test_quantize_needs_an_injected_quantizer() -> None:
    with pytest.raises(ValueError, match="ResidualVectorQuantizer"):
        FirstSamples(dim=3, output_dim=4, device="cpu", attribute="clap", quantize=True)
    plain = FirstSamples(dim=3, output_dim=4, device="cpu", attribute="clap", quantize=False)
    assert plain.quantizer is None
