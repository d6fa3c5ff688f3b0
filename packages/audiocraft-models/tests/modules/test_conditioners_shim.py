"""Upstream's import path for the condition types still works and gives the data layer's classes."""
from __future__ import annotations

import torch

import audiocraft.conditioners as conditioners
import audiocraft.data.conditions as conditions
import audiocraft.modules.conditioners as shim


def test_shim_exports_the_same_classes() -> None:
    for name in shim.__all__:
        assert getattr(shim, name) is getattr(conditions, name) is getattr(conditioners, name)


def test_upstream_style_usage() -> None:
    attrs = shim.ConditioningAttributes(text={"description": "an upbeat electronic track"})
    attrs.wav["self_wav"] = shim.WavCondition(torch.zeros(1, 1, 10), torch.tensor([10]), [16000], [None])
    assert list(attrs.attributes["text"]) == ["description"]
    assert "self_wav" in attrs.wav_attributes
