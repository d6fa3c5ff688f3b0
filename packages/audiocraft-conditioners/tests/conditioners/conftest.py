"""Shared helpers of the conditioners tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def fixtures() -> Path:
    """Folder of the copied upstream fixtures (see tests/fixtures/README.md)."""
    return FIXTURES


WORDS = "calm piano melody happy rock song with electric guitars slow ambient pad drums".split()
CLAP_SR = 8000


def save_tiny_t5(folder: Path, d_model: int = 16) -> Path:
    """A randomly initialised 2-layer T5 encoder and a word-level tokenizer, saved as transformers does."""
    transformers = pytest.importorskip("transformers")
    vocab = (
        [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
        + [("\u2581" + w, -1.0) for w in WORDS]
        + [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    )
    transformers.T5Tokenizer(vocab=vocab, extra_ids=0).save_pretrained(folder)
    config = transformers.T5Config(vocab_size=len(vocab), d_model=d_model, d_kv=4, d_ff=32, num_layers=2, num_heads=2)
    torch.manual_seed(0)
    transformers.T5EncoderModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a tiny T5 (see :func:`save_tiny_t5`)."""
    return save_tiny_t5(tmp_path_factory.mktemp("t5") / "tiny")


@pytest.fixture(scope="session")
def tiny_clap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a tiny random transformers ClapModel (projection 8) and its processor (8 kHz, 1 s windows)."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("clap") / "tiny"
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "\u0120"]
    pieces += list("abcdefghijklmnopqrstuvwxyz") + ["\u0120" + c for c in "abcdefghijklmnopqrstuvwxyz"]
    tokenizer = transformers.RobertaTokenizer(vocab={p: i for i, p in enumerate(pieces)}, merges=[])
    text = transformers.ClapTextConfig(
        vocab_size=len(pieces),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=90,
        projection_dim=8,
    )
    audio = transformers.ClapAudioConfig(
        window_size=4,
        spec_size=64,
        num_mel_bins=16,
        patch_size=4,
        patch_stride=(4, 4),
        depths=[1, 1],
        num_attention_heads=[1, 2],
        patch_embeds_hidden_size=8,
        hidden_size=16,
        projection_dim=8,
        num_hidden_layers=2,
    )
    torch.manual_seed(0)
    model = transformers.ClapModel(
        transformers.ClapConfig(text_config=text.to_dict(), audio_config=audio.to_dict(), projection_dim=8)
    )
    extractor = transformers.ClapFeatureExtractor(
        feature_size=16,
        sampling_rate=CLAP_SR,
        hop_length=80,
        max_length_s=1,
        fft_window_size=256,
        frequency_min=50,
        frequency_max=4000,
        truncation="rand_trunc",
        padding="repeatpad",
    )
    transformers.ClapProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    model.save_pretrained(folder)
    return folder
