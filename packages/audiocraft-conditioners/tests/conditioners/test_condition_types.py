"""The condition types are importable from audiocraft.conditioners and are the data layer's own classes."""

from __future__ import annotations

import pytest
import torch

import audiocraft.conditioners as cond
import audiocraft.data.conditions as data_cond


@pytest.mark.parametrize("name", data_cond.__all__)
def test_reexports_are_the_data_layer_classes(name: str) -> None:
    assert getattr(cond, name) is getattr(data_cond, name)


def test_attributes_carry_text_and_wav() -> None:
    wav = torch.zeros(1, 1, 160)
    attrs = cond.ConditioningAttributes(
        text={"description": "calm piano"},
        wav={"self_wav": cond.WavCondition(wav, torch.tensor([160]), sample_rate=[16000], path=[None])},
    )
    assert attrs.text["description"] == "calm piano"
    assert attrs.wav["self_wav"].wav.shape == (1, 1, 160)
    assert "description" in attrs.text_attributes and "self_wav" in attrs.wav_attributes


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchCondition"):
        cond.NoSuchCondition  # noqa: B018


def test_every_public_name_resolves() -> None:
    assert sorted(cond.__all__) == sorted(cond._WHERE)
    for name in cond.__all__:
        assert getattr(cond, name) is not None
