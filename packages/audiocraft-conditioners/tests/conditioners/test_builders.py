"""Builders from upstream's config sections given as plain dicts: dispatch, checks, the CLAP quantizer factory."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from audiocraft.conditioners import ChromaStemConditioner, LUTConditioner, T5Conditioner
from audiocraft.conditioners.builders import (
    check_conditioners,
    get_condition_fuser,
    get_conditioner_provider,
)

from .conftest import CLAP_SR


def test_musicgen_tiny_sections(fixtures: Path) -> None:
    # the fixture's `conditioners` section (its xp.cfg) and the LM's dim
    conditioners = {
        "description": {
            "model": "lut",
            "t5": {"name": "t5-base", "finetune": False, "word_dropout": 0.3, "normalize_text": False},
            "lut": {"n_bins": 128, "dim": 32, "tokenizer": "noop"},
        }
    }
    provider = get_conditioner_provider(64, conditioners, device="cpu", duration=30.0)
    assert isinstance(provider.conditioners["description"], LUTConditioner)
    package = torch.load(fixtures / "musicgen_tiny" / "state_dict.bin", map_location="cpu", weights_only=True)
    state = {
        k.removeprefix("condition_provider."): v
        for k, v in package["best_state"].items()
        if k.startswith("condition_provider.")
    }
    provider.load_state_dict(state, strict=True)


def test_t5_and_chroma_sections(tiny_t5: Path) -> None:
    conditioners = {
        "args": {"merge_text_conditions_p": 0.25, "drop_desc_p": 0.5},  # dataset keys upstream ignores here
        "self_wav": {
            "model": "chroma_stem",
            "chroma_stem": {
                "sample_rate": 16000,
                "n_chroma": 12,
                "radix2_exp": 10,
                "argmax": True,
                "match_len_on_eval": False,
                "eval_wavs": None,
                "n_eval_wavs": 100,
                "cache_path": None,
                "demucs_model": None,
            },
        },
        "description": {
            "model": "t5",
            "t5": {"name": str(tiny_t5), "finetune": False, "word_dropout": 0.2, "normalize_text": False},
        },
    }
    check_conditioners(conditioners)
    provider = get_conditioner_provider(32, conditioners, device="cpu", duration=2.0)
    chroma = provider.conditioners["self_wav"]
    assert isinstance(chroma, ChromaStemConditioner) and chroma.chroma.argmax and chroma.duration == 2.0
    assert isinstance(provider.conditioners["description"], T5Conditioner)
    assert provider.wav_conditions == ["self_wav"] and provider.text_conditions == ["description"]
    with pytest.raises(ValueError, match="segment duration"):
        get_conditioner_provider(32, conditioners, device="cpu")


def test_errors_name_the_section() -> None:
    with pytest.raises(ValueError, match=r"\['bins'\] in conditioners.genre.lut"):
        check_conditioners({"genre": {"model": "lut", "lut": {"bins": 3, "dim": 4, "tokenizer": "noop"}}})
    with pytest.raises(ValueError, match="unknown conditioner model 'bert'"):
        check_conditioners({"genre": {"model": "bert"}})
    with pytest.raises(ValueError, match="'style'.*audiocraft-models"):
        check_conditioners({"self_wav": {"model": "style", "style": {}}})
    with pytest.raises(ValueError, match="'model' key"):
        check_conditioners({"genre": {"lut": {}}})
    with pytest.raises(ValueError, match=r"\['device'\] in conditioners.args"):
        check_conditioners({"args": {"device": "cpu"}})
    assert len(get_conditioner_provider(8, None).conditioners) == 0  # conditioner: none


def test_fuser_section() -> None:
    fuser = get_condition_fuser(
        {
            "cross_attention_pos_emb": True,
            "cross_attention_pos_emb_scale": 2,
            "sum": [],
            "prepend": ["self_wav"],
            "cross": ["description"],
            "input_interpolate": [],
        }
    )
    assert fuser.cross_attention_pos_emb and fuser.cross_attention_pos_emb_scale == 2
    assert fuser.cond2fuse == {"self_wav": "prepend", "description": "cross"}
    with pytest.raises(ValueError, match="'concat'"):
        get_condition_fuser({"concat": ["x"]})


def test_clap_section_gets_an_injected_quantizer(tiny_clap: Path) -> None:
    calls = []

    def factory(dim: int, n_q: int, bins: int, **kwargs: object) -> nn.Module:
        calls.append((dim, n_q, bins, kwargs))

        class Identity(nn.Module):
            def forward(self, x: torch.Tensor, frame_rate: int) -> SimpleNamespace:
                return SimpleNamespace(x=x)

        return Identity()

    section = {
        "checkpoint": "//reference/clap/tiny",
        "model_arch": "HTSAT-base",
        "enable_fusion": False,
        "sample_rate": CLAP_SR,
        "max_audio_length": 1,
        "audio_stride": 1,
        "dim": 8,
        "attribute": "description",
        "normalize": True,
        "quantize": True,
        "n_q": 12,
        "bins": 1024,
        "kmeans_iters": 50,
        "text_p": 0.0,
        "cache_path": None,
    }
    provider = get_conditioner_provider(
        16,
        {"description": {"model": "clap", "clap": section}},
        device="cpu",
        quantizer_factory=factory,
        resolve_path=lambda p: p.replace("//reference/clap/tiny", str(tiny_clap)),
    )
    assert calls == [(8, 12, 1024, {"kmeans_iters": 50})]
    assert provider.joint_embed_conditions == ["description"]
    with pytest.raises(ValueError, match="quantizer_factory"):
        get_conditioner_provider(
            16, {"description": {"model": "clap", "clap": {**section, "checkpoint": str(tiny_clap)}}}
        )
