"""LM builders: pattern dispatch (music_lm read), fuser, get_lm_model from the lm configs, debug LM."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from audiocraft.models import builders
from audiocraft.models.lm import LMModel
from audiocraft.modules import codebooks_patterns as cp

CONFIG = Path(__file__).resolve().parents[4] / "config" / "model" / "lm"
# The sections a solver config adds around model/lm (upstream's solver/musicgen/default.yaml and conditioner/).
SOLVER_SECTIONS = {
    "device": "cpu",
    "dtype": "float32",
    "efficient_attention_backend": "torch",
    "dataset": {"segment_duration": 1.0},
    "classifier_free_guidance": {"training_dropout": 0.1, "inference_coef": 3.0},
    "attribute_dropout": {},
    "fuser": {
        "cross_attention_pos_emb": False,
        "cross_attention_pos_emb_scale": 1,
        "sum": [],
        "prepend": [],
        "cross": ["description"],
        "input_interpolate": [],
    },
    "conditioners": {"description": {"model": "lut", "lut": {"n_bins": 16, "dim": 8, "tokenizer": "noop"}}},
}


def _load(path: Path) -> dict:
    cfg = OmegaConf.to_container(OmegaConf.load(path))
    cfg.pop("defaults", None)
    return cfg


def _lm_config(name: str, scale: str = "xsmall", **overrides):
    """model/lm/<name>.yaml composed as Hydra's defaults lists do: lm/default, its model_scale, then <name>."""
    chain = [_load(CONFIG / "default.yaml"), _load(CONFIG / "model_scale" / f"{scale}.yaml")]
    if name != "default":
        chain.append(_load(CONFIG / f"{name}.yaml"))
    return OmegaConf.merge(*chain, SOLVER_SECTIONS, overrides)


@pytest.mark.parametrize(
    ("modeling", "klass"),
    [
        ("parallel", cp.ParallelPatternProvider),
        ("delay", cp.DelayedPatternProvider),
        ("unroll", cp.UnrolledPatternProvider),
        ("coarse_first", cp.CoarseFirstPattern),
        ("musiclm", cp.MusicLMPattern),
    ],
)
def test_every_pattern_of_musicgen_lm_builds_from_its_section(modeling: str, klass: type) -> None:
    section = OmegaConf.load(CONFIG / "musicgen_lm.yaml").codebooks_pattern
    section.modeling = modeling
    provider = builders.get_codebooks_pattern_provider(4, section)
    assert type(provider) is klass and provider.n_q == 4


def test_music_lm_group_by_is_read() -> None:
    """Upstream looks for a `musiclm` section and so ignores `music_lm.group_by`; here it is applied."""
    section = {"modeling": "musiclm", "music_lm": {"group_by": 4}}
    pattern = builders.get_codebooks_pattern_provider(4, section).get_pattern(2)
    assert [c.q for steps in pattern.layout[1:5] for c in steps] == [0, 1, 2, 3]  # 4 codebooks of timestep 0 first
    assert builders.get_codebooks_pattern_provider(4, {"modeling": "musiclm"}).group_by == 2


def test_delay_section_is_applied() -> None:
    provider = builders.get_codebooks_pattern_provider(
        3, {"modeling": "delay", "delay": {"delays": [0, 2, 2], "flatten_first": 1}}
    )
    assert provider.delays == [0, 2, 2] and provider.flatten_first == 1


def test_bad_pattern_config_is_named() -> None:
    with pytest.raises(ValueError, match="unknown codebooks_pattern.modeling 'zigzag'.*'delay'"):
        builders.get_codebooks_pattern_provider(4, {"modeling": "zigzag"})
    with pytest.raises(ValueError, match="delayz"):
        builders.get_codebooks_pattern_provider(4, {"modeling": "delay", "delay": {"delayz": [0, 1, 2, 3]}})


def test_condition_fuser_from_config() -> None:
    fuser = builders.get_condition_fuser(
        {"fuser": {"cross": ["description"], "prepend": ["self_wav"], "cross_attention_pos_emb": True}}
    )
    assert fuser.fuse2cond == {"sum": [], "cross": ["description"], "prepend": ["self_wav"], "input_interpolate": []}
    assert fuser.cross_attention_pos_emb is True


@pytest.mark.parametrize("name", ["default", "musicgen_lm", "audiogen_lm"])
def test_lm_configs_bind_to_get_lm_model(name: str) -> None:
    cfg = _lm_config(name)
    lm = builders.get_lm_model(cfg)
    assert isinstance(lm, LMModel)
    tl = cfg.transformer_lm
    assert (lm.n_q, lm.card, lm.dim) == (tl.n_q, tl.card, 64)
    assert len(lm.transformer.layers) == 2 and lm.two_step_cfg is False and lm.cfg_coef == 3.0
    assert all(layer.cross_attention is not None for layer in lm.transformer.layers)  # forced by fuser.cross
    assert (lm.out_norm is not None) == bool(tl.norm_first)
    expected = {"default": cp.ParallelPatternProvider}.get(name, cp.DelayedPatternProvider)
    assert type(lm.pattern_provider) is expected
    assert lm.linears[0].bias is None if not tl.bias_proj else lm.linears[0].bias is not None


def test_model_scales_set_the_transformer_size() -> None:
    sizes = {}
    for scale in ("xsmall", "base", "small", "medium", "large"):
        tl = _lm_config("musicgen_lm", scale=scale).transformer_lm
        sizes[scale] = (tl.dim, tl.num_heads, tl.num_layers)
    assert sizes == {
        "xsmall": (64, 2, 2),
        "base": (512, 8, 8),
        "small": (1024, 16, 24),
        "medium": (1536, 24, 48),
        "large": (2048, 32, 48),
    }


def test_attention_backend_is_passed_explicitly() -> None:
    from audiocraft.modules import transformer

    lm = builders.get_lm_model(_lm_config("musicgen_lm", efficient_attention_backend="xformers"))
    assert {layer.self_attn.attention_backend for layer in lm.transformer.layers} == {"xformers"}
    assert transformer.get_efficient_attention_backend() == "torch"  # the process default is untouched


def test_unknown_transformer_lm_key_is_named() -> None:
    with pytest.raises(ValueError, match="num_layerz"):
        builders.get_lm_model(_lm_config("default", transformer_lm={"num_layerz": 3}))


def test_q_modeling_fallback_and_missing_pattern() -> None:
    cfg = _lm_config("default", codebooks_pattern={"modeling": None}, transformer_lm={"q_modeling": "delay"})
    assert builders.get_lm_model(cfg).pattern_provider.delays == list(range(8))
    with pytest.raises(ValueError, match="codebooks_pattern.modeling"):
        builders.get_lm_model(_lm_config("default", codebooks_pattern={"modeling": None}))


def test_weight_init_follows_the_config() -> None:
    """musicgen_lm: gaussian, depthwise 'current' (std / sqrt(2 * (layer + 1))), zero bias."""
    cfg = _lm_config("musicgen_lm", transformer_lm={"bias_ff": True, "num_layers": 4, "dim": 256, "num_heads": 4})
    torch.manual_seed(0)
    lm = builders.get_lm_model(cfg)
    stds = [layer.linear1.weight.std().item() * (256**0.5) for layer in lm.transformer.layers]
    for depth, std in enumerate(stds, start=1):
        # truncated at 3 std, the std of a truncated normal is 0.9866 of the nominal one
        assert abs(std - 0.9866 / (2 * depth) ** 0.5) < 0.01, (depth, std)
    assert all(bool((layer.linear1.bias == 0).all()) for layer in lm.transformer.layers)
    assert abs(lm.emb[0].weight.std().item() * 256**0.5 - 0.9866) < 0.02


def test_debug_lm_needs_no_download_and_is_seeded() -> None:
    a, b = builders.get_debug_lm_model(), builders.get_debug_lm_model()
    assert not a.training and a.n_q == 4 and a.card == 400
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    from audiocraft.data.conditions import ConditioningAttributes

    codes = a.generate(None, [ConditioningAttributes(text={"description": "a b"})], max_gen_len=5, use_sampling=False)
    assert codes.shape == (1, 4, 5)


def test_conditioner_provider_from_config_sections() -> None:
    cfg = OmegaConf.create(SOLVER_SECTIONS)
    provider = builders.get_conditioner_provider(48, cfg)
    lut = provider.conditioners["description"]
    assert lut.embed.weight.shape == (16, 8) and lut.output_proj.out_features == 48
    bad = OmegaConf.merge(cfg, {"conditioners": {"description": {"model": "lut", "lut": {"n_binz": 3}}}})
    with pytest.raises(ValueError, match="n_binz"):
        builders.get_conditioner_provider(48, bad)
    unknown = OmegaConf.merge(cfg, {"conditioners": {"description": {"model": "bert"}}})
    with pytest.raises(ValueError, match="unknown conditioner model 'bert'"):
        builders.get_conditioner_provider(48, unknown)


def test_unknown_fuser_key_is_named() -> None:
    with pytest.raises(ValueError, match="crosss"):
        builders.get_condition_fuser({"fuser": {"crosss": ["description"]}})
