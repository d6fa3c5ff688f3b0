"""Tokenizers: upstream's hash buckets, missing texts, and spaCy loaded by name or path without any download."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from audiocraft.conditioners import NoopTokenizer, WhiteSpaceTokenizer


def _bucket(word: str, n_bins: int) -> int:
    return int(hashlib.sha256(word.encode("utf-8")).hexdigest(), 16) % n_bins


def test_noop_tokens_equal_upstream_fixture(fixtures: Path) -> None:
    meta = json.loads((fixtures / "musicgen_tiny" / "meta.json").read_text())
    tokens, mask = NoopTokenizer(128)(meta["descriptions"] + [None])
    assert tokens.dtype == torch.long and tokens.shape == (3, 1)
    assert tokens[:, 0].tolist() == meta["noop_token_ids"] + [0]
    assert mask.tolist() == [[1], [1], [0]]


def test_noop_all_missing_gives_one_masked_step() -> None:
    tokens, mask = NoopTokenizer(16, pad_idx=3)([None, None])
    assert tokens.tolist() == [[3], [3]] and mask.tolist() == [[0], [0]]


@pytest.fixture
def blank_pipeline(tmp_path: Path) -> Path:
    spacy = pytest.importorskip("spacy")
    folder = tmp_path / "blank_en"
    spacy.blank("en").to_disk(folder)
    return folder


def test_whitespace_words_and_tokens(blank_pipeline: Path) -> None:
    tok = WhiteSpaceTokenizer(1000, language=str(blank_pipeline), lemma=False, stopwords=True)
    # "the" and "with" are spaCy stop words; "," and "." are dropped; 70 becomes "seventy".
    assert tok.words("The 70 guitars, with drums.") == ["seventy", "guitars", "drums"]
    tokens, mask = tok(["The 70 guitars, with drums.", None, "piano"])
    expected = [[_bucket(w, 1000) for w in ("seventy", "guitars", "drums")], [0, 0, 0], [_bucket("piano", 1000), 0, 0]]
    assert tokens.tolist() == expected
    assert mask.tolist() == [[1, 1, 1], [0, 0, 0], [1, 0, 0]]
    *_, texts = tok(["The 70 guitars, with drums.", None], return_text=True)  # upstream's signature
    assert texts == ["seventy guitars drums", None]


def test_whitespace_keeps_stop_words_when_asked(blank_pipeline: Path) -> None:
    tok = WhiteSpaceTokenizer(1000, language=str(blank_pipeline), lemma=False, stopwords=False)
    assert tok.words("the drums") == ["the", "drums"]
    assert tok.normalize(["the drums", None]) == ["the drums", None]


def test_whitespace_only_stop_words_is_padding(blank_pipeline: Path) -> None:
    tokens, mask = WhiteSpaceTokenizer(10, language=str(blank_pipeline), lemma=False)(["the", "of"])
    assert tokens.shape == mask.shape == (2, 1) and mask.sum() == 0


def test_missing_pipeline_path_is_named(tmp_path: Path) -> None:
    pytest.importorskip("spacy")
    missing = tmp_path / "nope"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        WhiteSpaceTokenizer(10, language=str(missing))


def test_missing_pipeline_name_is_not_downloaded() -> None:
    pytest.importorskip("spacy")
    with pytest.raises(OSError, match="never downloaded"):
        WhiteSpaceTokenizer(10, language="xx_no_such_pipeline_sm")
