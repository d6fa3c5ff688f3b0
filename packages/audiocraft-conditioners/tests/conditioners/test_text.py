"""LUTConditioner: upstream's state-dict keys (the musicgen_tiny fixture loads strictly) and its embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from audiocraft.conditioners import ConditioningAttributes, ConditioningProvider, LUTConditioner

PREFIX = "condition_provider."


def _fixture_provider(fixtures: Path) -> tuple[ConditioningProvider, dict[str, torch.Tensor]]:
    package = torch.load(fixtures / "musicgen_tiny" / "state_dict.bin", map_location="cpu", weights_only=True)
    state = {k[len(PREFIX) :]: v for k, v in package["best_state"].items() if k.startswith(PREFIX)}
    # The fixture's config: conditioners.description = lut {n_bins: 128, dim: 32, tokenizer: noop}, LM dim 64.
    provider = ConditioningProvider(
        {"description": LUTConditioner(n_bins=128, dim=32, output_dim=64, tokenizer="noop")}
    )
    provider.load_state_dict(state, strict=True)
    return provider, state


def test_fixture_keys_are_ours(fixtures: Path) -> None:
    provider, state = _fixture_provider(fixtures)
    assert (
        sorted(provider.state_dict())
        == sorted(state)
        == [
            "conditioners.description.embed.weight",
            "conditioners.description.output_proj.bias",
            "conditioners.description.output_proj.weight",
        ]
    )


def test_fixture_embeddings(fixtures: Path) -> None:
    provider, state = _fixture_provider(fixtures)
    meta = json.loads((fixtures / "musicgen_tiny" / "meta.json").read_text())
    attrs = [ConditioningAttributes(text={"description": d}) for d in meta["descriptions"]]
    attrs.append(ConditioningAttributes(text={"description": None}))
    with torch.no_grad():
        embeds, mask = provider(provider.tokenize(attrs))["description"]
    assert embeds.shape == (3, 1, 64) and mask.tolist() == [[1], [1], [0]]
    table = state["conditioners.description.embed.weight"]
    weight = state["conditioners.description.output_proj.weight"]
    bias = state["conditioners.description.output_proj.bias"]
    for row, token in enumerate(meta["noop_token_ids"]):
        torch.testing.assert_close(embeds[row, 0], table[token] @ weight.T + bias, rtol=0, atol=1e-6)
    assert torch.count_nonzero(embeds[2]) == 0  # a missing description is a zero, masked step


def test_unknown_tokenizer() -> None:
    with pytest.raises(ValueError, match="'bpe'.*noop"):
        LUTConditioner(8, 4, 4, tokenizer="bpe")


def test_whitespace_lut_on_a_local_pipeline(tmp_path: Path) -> None:
    spacy = pytest.importorskip("spacy")
    spacy.blank("en").to_disk(tmp_path / "nlp")
    lut = LUTConditioner(50, 4, 6, tokenizer="whitespace", language=str(tmp_path / "nlp"))
    embeds, mask = lut(lut.tokenize(["warm analog synth pads", "drums"]))
    assert embeds.shape == (2, 4, 6) and mask.tolist() == [[1, 1, 1, 1], [1, 0, 0, 0]]
    assert torch.count_nonzero(embeds[1, 1:]) == 0
