"""T5Conditioner on a tiny T5 saved by the test: embeddings equal transformers', offline loading, finetuning."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip("transformers")

from audiocraft.conditioners import T5Conditioner  # noqa: E402

from .conftest import WORDS, save_tiny_t5  # noqa: E402

TEXTS = ["calm piano melody", None, "happy rock song with zebra drums"]


def test_embeddings_equal_transformers(tiny_t5: Path) -> None:
    cond = T5Conditioner(str(tiny_t5), output_dim=8, finetune=False, device="cpu").eval()
    assert cond.dim == 16
    with torch.no_grad():
        embeds, mask = cond(cond.tokenize(TEXTS))
    tokenizer = transformers.T5Tokenizer.from_pretrained(tiny_t5)
    model = transformers.T5EncoderModel.from_pretrained(tiny_t5).eval()
    inputs = tokenizer(["calm piano melody", "", "happy rock song with zebra drums"], return_tensors="pt", padding=True)
    expected_mask = inputs["attention_mask"].clone()
    expected_mask[1] = 0
    with torch.no_grad():
        hidden = model(input_ids=inputs["input_ids"], attention_mask=expected_mask).last_hidden_state
    expected = cond.output_proj(hidden) * expected_mask.unsqueeze(-1)
    assert mask.tolist() == expected_mask.tolist()
    torch.testing.assert_close(embeds, expected, rtol=0, atol=1e-6)
    assert torch.count_nonzero(embeds[1]) == 0 and embeds[2].abs().sum() > 0


def test_frozen_t5_is_not_in_the_state_dict_finetuned_is(tiny_t5: Path) -> None:
    frozen = T5Conditioner(str(tiny_t5), output_dim=8, finetune=False, device="cpu")
    assert sorted(frozen.state_dict()) == ["output_proj.bias", "output_proj.weight"]
    finetuned = T5Conditioner(str(tiny_t5), output_dim=8, finetune=True, device="cpu")
    keys = set(finetuned.state_dict())
    assert "t5.encoder.block.0.layer.0.SelfAttention.q.weight" in keys and "output_proj.weight" in keys
    embeds, _ = finetuned(finetuned.tokenize(["calm piano"]))
    embeds.sum().backward()
    assert finetuned.t5.shared.weight.grad is not None


def test_word_dropout_only_in_training(tiny_t5: Path) -> None:
    cond = T5Conditioner(str(tiny_t5), output_dim=8, finetune=False, device="cpu", word_dropout=0.5)
    text = " ".join(WORDS)
    full = cond.eval().tokenize([text])["attention_mask"].sum().item()
    random.seed(3)
    kept = [cond.train().tokenize([text])["attention_mask"].sum().item() for _ in range(5)]
    assert all(k < full for k in kept) and len(set(kept)) > 1
    random.seed(3)
    assert [cond.tokenize([text])["attention_mask"].sum().item() for _ in range(5)] == kept


def test_hub_names_come_from_the_local_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    cache = tmp_path / "hub"
    # upstream's dims table has no flan-t5-xl entry (KeyError there); here the size comes from the config
    snapshot = cache / "models--google--flan-t5-xl" / "snapshots" / ("0" * 40)
    save_tiny_t5(snapshot, d_model=24)
    (cache / "models--google--flan-t5-xl" / "refs").mkdir()
    (cache / "models--google--flan-t5-xl" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    cond = T5Conditioner("google/flan-t5-xl", output_dim=8, finetune=False, device="cpu")
    assert cond.dim == 24
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        T5Conditioner("t5-base", output_dim=8, finetune=False, device="cpu")


def test_bad_local_folders_are_named(tmp_path: Path, tiny_t5: Path) -> None:
    missing = tmp_path / "no" / "t5"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        T5Conditioner(str(missing), output_dim=8, finetune=False, device="cpu")
    no_tokenizer = tmp_path / "model_only"
    shutil.copytree(tiny_t5, no_tokenizer)
    (no_tokenizer / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        T5Conditioner(str(no_tokenizer), output_dim=8, finetune=False, device="cpu")


def test_normalize_text_uses_the_whitespace_normalisation(tmp_path: Path, tiny_t5: Path) -> None:
    spacy = pytest.importorskip("spacy")
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("attribute_ruler")
    for word, lemma in [("guitars", "guitar"), ("drums", "drum"), ("calm", "calm")]:
        ruler.add([[{"LOWER": word}]], {"LEMMA": lemma})
    nlp.to_disk(tmp_path / "nlp")
    cond = T5Conditioner(
        str(tiny_t5), output_dim=8, finetune=False, device="cpu", normalize_text=True, language=str(tmp_path / "nlp")
    )
    got = cond.tokenize(["The guitars, and drums.", None])
    want = cond.t5_tokenizer(["guitar drum", ""], return_tensors="pt", padding=True)
    assert got["input_ids"].tolist() == want["input_ids"].tolist()
    assert got["attention_mask"][1].sum() == 0
