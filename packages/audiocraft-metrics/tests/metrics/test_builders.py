"""Builders from upstream-style `metrics.<name>` sections (plain mappings, as OmegaConf would give)."""

import stat
import sys
from pathlib import Path

import pytest
import torch

from audiocraft.metrics import (
    ChromaCosineSimilarityMetric,
    EmbeddingStats,
    FrechetAudioDistanceMetric,
    ViSQOL,
    builders,
)
from audiocraft.metrics.embeddings import VGGish

UPSTREAM_MUSICGEN = {  # metrics.* of upstream's composed musicgen config, with this project's additions
    "fad": {"use_gt": False, "model": "tf", "tf": {"bin": None, "model_path": "//reference/fad/vggish_model.ckpt"}},
    "kld": {"use_gt": False, "model": "passt", "passt": {"pretrained_length": 20}},
    "text_consistency": {
        "use_gt": False,
        "model": "clap",
        "clap": {
            "model_path": "//reference/clap/music_audioset_epoch_15_esc_90.14.pt",
            "model_arch": "HTSAT-base",
            "enable_fusion": False,
        },
    },
    "chroma_cosine": {
        "use_gt": False,
        "model": "chroma_base",
        "chroma_base": {"sample_rate": 32000, "n_chroma": 12, "radix2_exp": 14, "argmax": True},
    },
}


def test_chroma_from_upstream_section() -> None:
    metric = builders.get_chroma_cosine_similarity(UPSTREAM_MUSICGEN["chroma_cosine"])
    assert isinstance(metric, ChromaCosineSimilarityMetric)
    assert metric.chroma_extractor.nfft == 2**14 and metric.chroma_extractor.argmax


def test_unknown_model_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"metrics.chroma_cosine.model='chroma_x'; expected one of \['chroma_base'\]"):
        builders.get_chroma_cosine_similarity({"model": "chroma_x"})
    with pytest.raises(ValueError, match="clap', 'passt', 'tf', 'vggish'"):
        builders.get_fad({"model": "openl3"})


def test_upstream_tensorflow_fad_points_to_vggish() -> None:
    with pytest.raises(ValueError, match="metrics.fad.model=vggish"):
        builders.get_fad(UPSTREAM_MUSICGEN["fad"])


def test_passt_and_clap_need_local_weights() -> None:
    with pytest.raises(ValueError, match="weights_path"):
        builders.get_kldiv(UPSTREAM_MUSICGEN["kld"])
    with pytest.raises((ImportError, FileNotFoundError), match=r"\[clap\]|not found"):
        builders.get_text_consistency(UPSTREAM_MUSICGEN["text_consistency"], resolve_path=lambda p: "/nonexistent")


def test_fad_vggish_with_resolved_paths_and_reference_stats(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stats = EmbeddingStats(128)
    stats.add(torch.randn(10, 128))
    stats.save(tmp_path / "ref.pt")
    loaded = []

    def fake_from_pretrained(weights, pca=None):  # the real loader is tested in test_embeddings.py
        loaded.append((weights, pca))
        return VGGish.__new__(VGGish)

    monkeypatch.setattr(VGGish, "from_pretrained", staticmethod(fake_from_pretrained))
    section = {
        "model": "vggish",
        "use_gt": False,
        "reference_stats": "//reference/fad/ref.pt",
        "vggish": {"model_path": "//reference/fad/vggish.pth"},
    }
    metric = builders.get_fad(section, resolve_path=lambda p: tmp_path / p.removeprefix("//reference/fad/"))
    assert isinstance(metric, FrechetAudioDistanceMetric)
    assert loaded == [(tmp_path / "vggish.pth", None)]
    assert metric.reference_stats is not None and int(metric.reference_stats.count) == 10
    with pytest.raises(ValueError, match="model_path"):
        builders.get_fad({"model": "vggish", "vggish": {}})


def test_visqol_from_section(tmp_path: Path) -> None:
    exe = tmp_path / "bin" / "visqol"
    exe.parent.mkdir()
    exe.write_text(f"#!{sys.executable}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "tcd.model").write_text("m")
    metric = builders.get_visqol(
        {"mode": "speech", "bin": "//visqol", "model": "tcd.model"}, resolve_path=lambda p: exe
    )
    assert isinstance(metric, ViSQOL) and metric.target_sr == 16000
    with pytest.raises(ValueError, match="metrics.visqol.bin"):
        builders.get_visqol({"mode": "audio", "bin": None, "model": "tcd.model"})
