"""Upstream's import path `audiocraft.modules.conditioners` gives every public name of audiocraft.conditioners."""

from __future__ import annotations

import torch

import audiocraft.conditioners as conditioners
import audiocraft.data.conditions as conditions
import audiocraft.modules.conditioners as shim


def test_shim_exports_every_public_name() -> None:
    assert sorted(shim.__all__) == sorted(conditioners.__all__)
    for name in shim.__all__:
        assert getattr(shim, name) is getattr(conditioners, name)
    for name in conditions.__all__:
        assert getattr(shim, name) is getattr(conditions, name)


def test_upstream_style_usage() -> None:
    attrs = shim.ConditioningAttributes(text={"description": "an upbeat electronic track"})
    attrs.wav["self_wav"] = shim.WavCondition(torch.zeros(1, 1, 10), torch.tensor([10]), [16000], [None])
    assert list(attrs.attributes["text"]) == ["description"]
    assert "self_wav" in attrs.wav_attributes
    dropped = shim.ClassifierFreeGuidanceDropout(p=1.0)([attrs])[0]
    assert dropped.text["description"] is None and dropped.wav["self_wav"].wav.shape == (1, 1, 1)


def test_upstream_chroma_path() -> None:
    from audiocraft.modules.chroma import ChromaExtractor

    assert ChromaExtractor is conditioners.ChromaExtractor
