"""Condition dropout: nullified conditions, upstream's batch-level draws, joint embeddings, resumable generator."""

from __future__ import annotations

import pytest
import torch

from audiocraft.conditioners import (
    AttributeDropout,
    ClassifierFreeGuidanceDropout,
    ConditioningAttributes,
    JointEmbedCondition,
    WavCondition,
    dropout_condition,
    nullify_condition,
    nullify_joint_embed,
    nullify_wav,
)


def _item(i: int) -> ConditioningAttributes:
    wav = torch.full((1, 1, 100 + i), 0.5)
    return ConditioningAttributes(
        text={"description": f"song {i}", "genre": "rock"},
        wav={"self_wav": WavCondition(wav, torch.tensor([100 + i]), [16000], [f"/a/{i}.wav"], [1.5])},
        joint_embed={
            "clap": JointEmbedCondition(wav, [f"text {i}"], torch.tensor([100 + i]), [16000], [f"/a/{i}.wav"], [1.5])
        },
    )


def _is_null(item: ConditioningAttributes) -> bool:
    wav, clap = item.wav["self_wav"], item.joint_embed["clap"]
    return (
        all(v is None for v in item.text.values())
        and wav.wav.shape == (1, 1, 1)
        and int(wav.length[0]) == 0
        and wav.path == [None]
        and clap.text == [None]
        and clap.wav.shape == (1, 1, 1)
        and int(clap.length[0]) == 0
        and clap.path == [None]
    )


def test_nullify_condition_shapes() -> None:
    cond, mask = nullify_condition((torch.randn(3, 7, 5), torch.ones(3, 7)), dim=1)
    assert cond.shape == (3, 1, 5) and torch.count_nonzero(cond) == 0 and mask.tolist() == [[0]] * 3
    with pytest.raises(ValueError, match="batch"):
        nullify_condition((torch.randn(3, 7, 5), torch.ones(3, 7)), dim=0)


def test_nullify_wav_and_joint_embed() -> None:
    item = _item(0)
    wav = nullify_wav(item.wav["self_wav"])
    assert wav.wav.shape == (1, 1, 1) and wav.length.tolist() == [0] and wav.sample_rate == [16000]
    assert wav.path == [None] and wav.seek_time == [None]
    clap = nullify_joint_embed(item.joint_embed["clap"])
    assert clap.text == [None] and clap.length.tolist() == [0] and clap.path == [None]


def test_dropout_condition_errors_name_the_attribute() -> None:
    with pytest.raises(ValueError, match="'symbolic'"):
        dropout_condition(_item(0), "symbolic", "chords")
    with pytest.raises(ValueError, match="'mood'.*description"):
        dropout_condition(_item(0), "text", "mood")


def test_cfg_dropout_draws_as_upstream_and_nullifies_joint_embeds() -> None:
    drop = ClassifierFreeGuidanceDropout(p=0.5, seed=1234)
    reference = torch.Generator().manual_seed(1234)  # upstream: one torch.rand(1, generator) per batch
    batch = [_item(0), _item(1)]
    for _ in range(12):
        expected_drop = torch.rand(1, generator=reference).item() < 0.5
        out = drop(batch)
        assert all(_is_null(x) for x in out) is expected_drop
        if not expected_drop:
            assert out is batch
    assert batch[0].text["description"] == "song 0"  # inputs are never modified


def test_cfg_dropout_is_off_in_eval() -> None:
    drop = ClassifierFreeGuidanceDropout(p=1.0).eval()
    batch = [_item(0)]
    assert drop(batch) is batch


def test_attribute_dropout_per_attribute() -> None:
    drop = AttributeDropout({"text": {"genre": 1.0, "description": 0.0}, "wav": {"self_wav": 1.0}})
    out = drop([_item(0), _item(1)])
    assert [x.text for x in out] == [{"description": "song 0", "genre": None}, {"description": "song 1", "genre": None}]
    assert all(x.wav["self_wav"].wav.shape[-1] == 1 for x in out)
    assert drop.eval()([_item(0)])[0].text["genre"] == "rock"
    assert AttributeDropout({"text": {"genre": 1.0}}, active_on_eval=True).eval()([_item(0)])[0].text["genre"] is None
    with pytest.raises(ValueError, match="'style'"):
        AttributeDropout({"style": {"x": 0.1}})
    # upstream's chroma2music config puts options under `args`
    chroma2music = AttributeDropout({"args": {"active_on_eval": True}, "text": {}, "wav": {"self_wav": 1.0}}).eval()
    assert chroma2music.p == {"text": {}, "wav": {"self_wav": 1.0}}
    assert chroma2music([_item(0)])[0].wav["self_wav"].wav.shape[-1] == 1
    with pytest.raises(ValueError, match="'seed'"):
        AttributeDropout({"args": {"seed": 3}})


def test_generator_state_resumes_the_same_draws() -> None:
    straight = ClassifierFreeGuidanceDropout(p=0.5, seed=7)
    decisions = [_is_null(straight([_item(0)])[0]) for _ in range(20)]
    first = ClassifierFreeGuidanceDropout(p=0.5, seed=7)
    head = [_is_null(first([_item(0)])[0]) for _ in range(8)]
    state = first.get_rng_state()
    resumed = ClassifierFreeGuidanceDropout(p=0.5, seed=999)  # a fresh process, restored from the checkpoint
    resumed.set_rng_state(state)
    tail = [_is_null(resumed([_item(0)])[0]) for _ in range(12)]
    assert head + tail == decisions
    assert any(decisions) and not all(decisions)
