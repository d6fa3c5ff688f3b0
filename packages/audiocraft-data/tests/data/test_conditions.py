"""Tests for audiocraft.data.conditions."""

import dataclasses

import pytest
import torch

from audiocraft.data.audio_dataset import AudioMeta, SegmentInfo
from audiocraft.data.conditions import (
    ConditioningAttributes,
    JointEmbedCondition,
    SegmentWithAttributes,
    SymbolicCondition,
    WavCondition,
)


def test_conditioning_attributes_roundtrip():
    wav = WavCondition(torch.zeros(1, 1, 10), torch.tensor([10]), [16000], ["a.wav"], [0.0])
    joint = JointEmbedCondition(torch.zeros(1, 1, 10), ["hi"], torch.tensor([10]), [16000])
    sym = SymbolicCondition(frame_chords=torch.zeros(1, 4))
    attrs = ConditioningAttributes(
        text={"description": "calm", "genre": None},
        wav={"self_wav": wav},
        joint_embed={"clap": joint},
        symbolic={"chords": sym},
    )
    assert set(attrs.attributes["text"]) == {"description", "genre"}
    assert list(attrs.attributes["wav"]) == ["self_wav"]
    assert attrs["text"]["description"] == "calm"
    flat = attrs.to_flat_dict()
    assert set(flat) == {"text.description", "text.genre", "wav.self_wav", "joint_embed.clap", "symbolic.chords"}
    back = ConditioningAttributes.from_flat_dict(flat)
    assert back.text == attrs.text and back.wav["self_wav"] is wav and back.symbolic["chords"] is sym
    assert joint.path == [] and wav.path == ["a.wav"]
    with pytest.raises(ValueError, match="bad flat condition key"):
        ConditioningAttributes.from_flat_dict({"nope.x": 1})


def test_segment_with_attributes_is_an_abstract_segment_info():
    args = (AudioMeta("a.wav", 1.0, 16000), 0.0, 10, 10, 16000, 1)
    with pytest.raises(TypeError, match="to_condition_attributes"):
        SegmentWithAttributes(*args)

    @dataclasses.dataclass
    class Described(SegmentWithAttributes):
        description: str = "drums"

        def to_condition_attributes(self) -> ConditioningAttributes:
            return ConditioningAttributes(text={"description": self.description})

    seg = Described(*args)
    assert isinstance(seg, SegmentInfo)
    assert seg.to_condition_attributes().text == {"description": "drums"}
