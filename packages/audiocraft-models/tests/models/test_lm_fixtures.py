"""Upstream golden MusicGen LMs (tests/fixtures/upstream/musicgen_{tiny,rope}): strict loading, logits within
atol 1e-4 with the same NaN mask, and exactly upstream's greedy tokens through LMModel.generate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from audiocraft.data.conditions import ConditioningAttributes
from audiocraft.models import loaders
from audiocraft.models.lm import LMModel

FIXTURES = Path(__file__).parent.parent / "fixtures" / "upstream"
NAMES = ["musicgen_tiny", "musicgen_rope"]


def _meta(name: str) -> dict:
    return json.loads((FIXTURES / name / "meta.json").read_text())


def _descriptions(name: str) -> list[str]:
    meta = _meta(name)
    if "descriptions" in meta:
        return meta["descriptions"]
    raise AssertionError(f"{name}/meta.json has no descriptions")


def _conditions(name: str) -> list[ConditioningAttributes]:
    return [ConditioningAttributes(text={"description": d}) for d in _descriptions(name)]


@pytest.fixture(scope="module", params=NAMES)
def fixture_lm(request) -> tuple[str, LMModel]:
    return request.param, loaders.load_lm_model(FIXTURES / request.param)


def test_loads_strictly_in_eval_float32(fixture_lm) -> None:
    name, lm = fixture_lm
    pkg = torch.load(FIXTURES / name / "state_dict.bin", weights_only=True)
    assert isinstance(lm, LMModel) and not lm.training
    state = lm.state_dict()
    assert sorted(state) == sorted(pkg["best_state"])
    for key, value in pkg["best_state"].items():
        assert torch.equal(state[key], value), key
    assert lm.cfg.dtype == "float32" and all(p.dtype == torch.float32 for p in lm.parameters())
    assert lm.n_q == 4 and lm.card == 1024 and lm.special_token_id == 1024
    assert all(emb.weight.shape == (1025, 64) for emb in lm.emb)
    if name == "musicgen_tiny":
        assert sum(p.numel() for p in lm.parameters()) == 662_720 and len(state) == 37


def test_compute_predictions_matches_upstream(fixture_lm) -> None:
    name, lm = fixture_lm
    codes = torch.from_numpy(np.load(FIXTURES / name / "codes_in.npy"))
    expected = np.load(FIXTURES / name / "logits.npy")
    expected_mask = np.load(FIXTURES / name / "logits_mask.npy")
    with torch.no_grad():
        out = lm.compute_predictions(codes, _conditions(name))
    assert out.logits.shape == expected.shape and out.mask.shape == expected_mask.shape
    assert np.array_equal(out.mask.numpy(), expected_mask)
    assert np.array_equal(np.isnan(out.logits.numpy()), ~expected_mask[..., None].repeat(1024, -1))
    np.testing.assert_allclose(out.logits.numpy(), expected, atol=1e-4, rtol=0, equal_nan=True)


def test_greedy_generation_gives_upstream_tokens(fixture_lm) -> None:
    name, lm = fixture_lm
    params = _meta(name)["generate"]["params"]
    frame_rate = 50  # the fixtures' compression model (meta.json: compression_model.frame_rate)
    max_gen_len = int(params["duration"] * frame_rate)
    assert max_gen_len == 25
    tokens = lm.generate(
        None,
        _conditions(name),
        max_gen_len=max_gen_len,
        use_sampling=params["use_sampling"],
        temp=params["temperature"],
        top_k=params["top_k"],
        top_p=params["top_p"],
        cfg_coef=params["cfg_coef"],
        two_step_cfg=params["two_step_cfg"],
        check=True,
    )
    expected = np.load(FIXTURES / name / "greedy.npy")
    assert tokens.dtype == torch.int64
    assert np.array_equal(tokens.numpy(), expected)


def test_two_step_cfg_uses_the_cfg_coef_argument() -> None:
    """Upstream 1.3 ignores generate(cfg_coef=...) with two_step_cfg (it uses the model's default): not here."""
    lm = loaders.load_lm_model(FIXTURES / "musicgen_rope")
    conditions = _conditions("musicgen_rope")
    kwargs = dict(max_gen_len=8, use_sampling=False, two_step_cfg=True)
    assert lm.cfg_coef == 3.0
    guided = {coef: lm.generate(None, conditions, cfg_coef=coef, **kwargs) for coef in (0.0, 8.0)}
    one_step = {
        coef: lm.generate(None, conditions, cfg_coef=coef, **{**kwargs, "two_step_cfg": False}) for coef in guided
    }
    for coef in guided:
        assert torch.equal(guided[coef], one_step[coef]), coef  # LUT conditions: both modes agree
    assert not torch.equal(guided[0.0], guided[8.0])
    # cfg_coef 0 is the unconditional model: the same tokens as generating without conditions
    uncond = lm.generate(None, [ConditioningAttributes(text={"description": None})] * 2, cfg_coef=0.0, **kwargs)
    assert torch.equal(guided[0.0], uncond)


def _same_weights(a: LMModel, b: LMModel) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_load_lm_model_sources(tmp_path, monkeypatch) -> None:
    """File, MusicGen folder, //pretrained/NAME and a hub repo (HF_HUB_OFFLINE honoured) give the same LM."""
    import shutil
    import sys
    import types

    folder = FIXTURES / "musicgen_tiny"
    reference = loaders.load_lm_model(folder / "state_dict.bin")
    assert _same_weights(reference, loaders.load_lm_model(str(folder)))
    shutil.copytree(folder, tmp_path / "pretrained" / "tiny")
    assert _same_weights(reference, loaders.load_lm_model("//pretrained/tiny", pretrained_dir=tmp_path / "pretrained"))
    calls: list[dict] = []

    def hf_hub_download(repo_id: str, filename: str, cache_dir=None, local_files_only=False, library_name=None):
        calls.append(dict(repo_id=repo_id, filename=filename, local_files_only=local_files_only))
        return str(folder / filename)

    monkeypatch.setitem(sys.modules, "huggingface_hub", types.SimpleNamespace(hf_hub_download=hf_hub_download))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert _same_weights(reference, loaders.load_lm_model("someone/musicgen-tiny"))
    assert calls == [dict(repo_id="someone/musicgen-tiny", filename="state_dict.bin", local_files_only=True)]


def test_legacy_config_keys_are_migrated(tmp_path) -> None:
    """Keys upstream's load_lm_model deletes are deleted here too (through migrate_cfg), and the LM loads."""
    from omegaconf import OmegaConf

    pkg = torch.load(FIXTURES / "musicgen_tiny" / "state_dict.bin", weights_only=True)
    cfg = OmegaConf.create(pkg["xp.cfg"])
    cfg.conditioners.args = {"merge_text_conditions_p": 0.25, "drop_desc_p": 0.5}
    cfg.dtype = "float16"
    pkg["xp.cfg"] = OmegaConf.to_yaml(cfg)
    torch.save(pkg, tmp_path / "state_dict.bin")
    lm = loaders.load_lm_model(tmp_path)
    assert "merge_text_conditions_p" not in lm.cfg.conditioners.args and "drop_desc_p" not in lm.cfg.conditioners.args
    assert lm.cfg.dtype == "float32" and lm.emb[0].weight.dtype == torch.float32  # forced on CPU, as upstream


def test_export_lm_of_a_training_checkpoint_round_trips(tmp_path) -> None:
    """A MusicGen training checkpoint (upstream's layout: xp.cfg + best_state.model) exports with export_lm and
    loads back with load_lm_model to the same weights and the same predictions."""
    from omegaconf import OmegaConf

    from audiocraft.models.export import export_lm

    pkg = torch.load(FIXTURES / "musicgen_tiny" / "state_dict.bin", weights_only=True)
    cfg = OmegaConf.create(pkg["xp.cfg"])
    trained = {k: v + 0.01 * torch.randn_like(v) for k, v in pkg["best_state"].items()}  # "after training"
    torch.save(
        {
            "xp.cfg": OmegaConf.to_yaml(cfg),
            "model": pkg["best_state"],
            "best_state": {"model": trained},
            "fsdp_best_state": {},
        },
        tmp_path / "checkpoint.th",
    )
    out = export_lm(tmp_path / "checkpoint.th", tmp_path / "export" / "state_dict.bin")
    lm = loaders.load_lm_model(out)
    assert all(torch.equal(lm.state_dict()[k], v) for k, v in trained.items())
    codes = torch.from_numpy(np.load(FIXTURES / "musicgen_tiny" / "codes_in.npy"))
    reference = loaders.load_lm_model(FIXTURES / "musicgen_tiny")
    reference.load_state_dict(trained)
    with torch.no_grad():
        a = lm.compute_predictions(codes, _conditions("musicgen_tiny")).logits
        b = reference.compute_predictions(codes, _conditions("musicgen_tiny")).logits
    assert torch.equal(a.nan_to_num(), b.nan_to_num())
