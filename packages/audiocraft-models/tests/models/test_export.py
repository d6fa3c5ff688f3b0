"""Exporting a training checkpoint to a release package, then loading it with audiocraft-models alone."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from audiocraft.models import CompressionModel, builders
from audiocraft.models.export import export_encodec, export_pretrained_compression_model
from audiocraft.models.loaders import CheckpointError, load_compression_model


@pytest.fixture(scope="module")
def trained(upstream):
    """A model built from the upstream debug config, with codebooks initialised by one training step."""
    pkg = torch.load(upstream.checkpoint, weights_only=True)
    cfg = OmegaConf.create(pkg["xp.cfg"])
    torch.manual_seed(3)
    model = builders.get_compression_model(cfg)
    model.train()
    model(0.1 * torch.randn(2, 1, 3200))
    model.eval()
    return cfg, model


def _training_checkpoint(path, cfg, model, *, cfg_as="yaml", with_best=True) -> None:
    state = {k: v.clone() for k, v in model.state_dict().items()}
    other = {k: torch.zeros_like(v) for k, v in state.items()}  # the "last" weights, not the best ones
    xp_cfg = OmegaConf.to_yaml(cfg) if cfg_as == "yaml" else OmegaConf.to_container(cfg)
    ckpt = {"xp.cfg": xp_cfg, "model": state if not with_best else other, "epoch": 3,
            "optimizer": {"state": {}, "param_groups": [{"lr": 3e-4}]}}
    if with_best:
        ckpt["best_state"] = {"model": state, "ema": {}}
    torch.save(ckpt, path)


def _same_outputs(a: CompressionModel, b: CompressionModel) -> None:
    x = 0.1 * torch.randn(1, 1, 4000, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ca, cb = a.encode(x)[0], b.encode(x)[0]
        assert torch.equal(ca, cb)
        torch.testing.assert_close(a.decode(ca), b.decode(cb), atol=0, rtol=0)


@pytest.mark.parametrize(("cfg_as", "with_best"), [("yaml", True), ("dict", True), ("yaml", False)])
def test_export_then_load(tmp_path, trained, cfg_as: str, with_best: bool) -> None:
    cfg, model = trained
    _training_checkpoint(tmp_path / "checkpoint.th", cfg, model, cfg_as=cfg_as, with_best=with_best)
    out = export_encodec(tmp_path / "checkpoint.th", tmp_path / "release" / "compression_state_dict.bin")
    assert sorted(p.name for p in out.parent.iterdir()) == ["compression_state_dict.bin"]  # no temp file left
    pkg = torch.load(out, weights_only=True)
    assert sorted(pkg) == ["best_state", "exported", "version", "xp.cfg"]
    assert pkg["exported"] is True and isinstance(pkg["xp.cfg"], str)
    assert pkg["version"].startswith("audiocraft-models/")
    assert "${channels}" in pkg["xp.cfg"]  # interpolations kept, as upstream writes them
    _same_outputs(load_compression_model(out.parent), model)


def test_export_to_safetensors(tmp_path, trained) -> None:
    cfg, model = trained
    _training_checkpoint(tmp_path / "checkpoint.th", cfg, model)
    out = export_encodec(tmp_path / "checkpoint.th", tmp_path / "encodec.safetensors")
    _same_outputs(CompressionModel.get_pretrained(out), model)


def test_export_refuses_bad_checkpoints(tmp_path, trained) -> None:
    cfg, model = trained
    torch.save({"model": model.state_dict()}, tmp_path / "nocfg.th")
    with pytest.raises(CheckpointError, match="nocfg.th has no 'xp.cfg'"):
        export_encodec(tmp_path / "nocfg.th", tmp_path / "out.th")
    torch.save({"xp.cfg": OmegaConf.to_yaml(cfg), "epoch": 1}, tmp_path / "nomodel.th")
    with pytest.raises(CheckpointError, match="nomodel.th has neither best_state"):
        export_encodec(tmp_path / "nomodel.th", tmp_path / "out.th")
    bad_cfg = cfg.copy()
    bad_cfg.seanet.lstm = 0
    torch.save({"xp.cfg": OmegaConf.to_yaml(bad_cfg), "model": model.state_dict()}, tmp_path / "mismatch.th")
    with pytest.raises(CheckpointError, match="mismatch.th.*unexpected keys"):
        export_encodec(tmp_path / "mismatch.th", tmp_path / "out.th")
    assert not (tmp_path / "out.th").exists()
    with pytest.raises(CheckpointError, match="missing.th does not exist"):
        export_encodec(tmp_path / "missing.th", tmp_path / "out.th")


def test_export_pretrained_reference(tmp_path) -> None:
    out = export_pretrained_compression_model("debug_compression_model", tmp_path / "ref.th")
    model = load_compression_model(out)
    assert model.frame_rate == 25
