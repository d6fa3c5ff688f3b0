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
    ckpt = {
        "xp.cfg": xp_cfg,
        "model": state if not with_best else other,
        "epoch": 3,
        "optimizer": {"state": {}, "param_groups": [{"lr": 3e-4}]},
    }
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


# ---- the generic export: language models, dispatch on the solver, the re-load check -------------------------------


def _fake_get_lm_model(cfg):
    """Stand-in for ``builders.get_lm_model`` (the LM half): a linear layer shaped by ``transformer_lm.dim``."""
    torch.manual_seed(1)
    layer = torch.nn.Linear(cfg.transformer_lm.dim, cfg.transformer_lm.dim)
    return layer.half() if cfg.get("fake_half") else layer


def _lm_checkpoint(path, *, fsdp: bool, extra_cfg: str = "") -> dict:
    torch.manual_seed(2)
    best = {"weight": torch.randn(4, 4), "bias": torch.randn(4)}
    last = {k: torch.zeros_like(v) for k, v in best.items()}
    ckpt = {
        "xp.cfg": f"solver: musicgen\nsample_rate: 32000\ntransformer_lm:\n  dim: 4\n{extra_cfg}",
        "model": last,
        "best_state": {"model": last if fsdp else best},
        "fsdp_best_state": {},
    }
    if fsdp:
        ckpt["fsdp_best_state"] = {"model": best}
    torch.save(ckpt, path)
    return best


@pytest.mark.parametrize("fsdp", [False, True])
def test_export_lm_takes_the_best_state_and_loads_it_back(tmp_path, monkeypatch, fsdp: bool) -> None:
    from audiocraft.models import loaders
    from audiocraft.models.export import export_checkpoint, export_lm

    monkeypatch.setattr(builders, "get_lm_model", _fake_get_lm_model, raising=False)
    best = _lm_checkpoint(tmp_path / "checkpoint.th", fsdp=fsdp)
    for export, name in ((export_lm, "lm.bin"), (export_checkpoint, "state_dict.bin")):
        out = export(tmp_path / "checkpoint.th", tmp_path / name)
        pkg = torch.load(out, weights_only=True)
        assert sorted(pkg["best_state"]) == ["bias", "weight"] and torch.equal(
            pkg["best_state"]["weight"], best["weight"]
        )
    model = loaders.load_lm_model(tmp_path)  # the folder's state_dict.bin, upstream's LM file name
    assert torch.equal(model.weight, best["weight"]) and not model.training
    assert model.cfg.dtype == "float32" and model.cfg.transformer_lm.dim == 4  # upstream's loader keeps the config


def test_export_checks_the_written_weights(tmp_path, monkeypatch) -> None:
    """A package whose model does not give back the exported weights (here: a float16 model) is not kept."""
    from audiocraft.models.export import export_lm

    monkeypatch.setattr(builders, "get_lm_model", _fake_get_lm_model, raising=False)
    _lm_checkpoint(tmp_path / "checkpoint.th", fsdp=False, extra_cfg="fake_half: true\n")
    (tmp_path / "lm.bin").write_bytes(b"previous export")
    with pytest.raises(
        CheckpointError,
        match=r"checkpoint.th: the written package does not give back the "
        r"exported weights for \['bias', 'weight'\]",
    ):
        export_lm(tmp_path / "checkpoint.th", tmp_path / "lm.bin")
    assert (tmp_path / "lm.bin").read_bytes() == b"previous export"  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.th", "lm.bin"]


def test_export_checkpoint_dispatches_on_the_solver(tmp_path, trained) -> None:
    from audiocraft.models.export import export_checkpoint, export_model

    cfg, model = trained
    _training_checkpoint(tmp_path / "checkpoint.th", cfg, model)
    _same_outputs(load_compression_model(export_checkpoint(tmp_path / "checkpoint.th", tmp_path / "a.bin")), model)
    torch.save({"xp.cfg": "solver: mystery\n", "best_state": {}}, tmp_path / "bad.th")
    with pytest.raises(
        ValueError,
        match=r"no exporter for solver 'mystery' of .*bad.th; expected one of "
        r"\['audiogen', 'compression'",
    ):
        export_checkpoint(tmp_path / "bad.th", tmp_path / "x.bin")
    with pytest.raises(ValueError, match="unknown model kind 'vocoder'"):
        export_model(tmp_path / "checkpoint.th", tmp_path / "x.bin", "vocoder")
    with pytest.raises(CheckpointError, match="bad.th has neither best_state"):
        export_model(tmp_path / "bad.th", tmp_path / "x.bin", "lm")


# ---- the one atomic writer ------------------------------------------------------------------------------------------


def test_atomic_write_is_the_data_layers() -> None:
    # umask, check hook, fsync and clean-up are tested with the writer, in audiocraft-data (tests/data/test_atomic.py)
    from audiocraft.data import atomic
    from audiocraft.models.export import atomic_torch_save, atomic_write

    assert atomic_write is atomic.atomic_write and atomic_torch_save is atomic.atomic_torch_save


def test_export_lm_of_the_upstream_tiny_musicgen(tmp_path, upstream) -> None:
    """A language-model training checkpoint holding upstream's musicgen_tiny weights exports and loads back."""
    from audiocraft.models import loaders
    from audiocraft.models.export import export_checkpoint

    folder = upstream.dir.parent / "musicgen_tiny"
    pkg = torch.load(folder / "state_dict.bin", weights_only=True)
    torch.save(
        {"xp.cfg": pkg["xp.cfg"], "best_state": {"model": pkg["best_state"]}, "fsdp_best_state": {}},
        tmp_path / "checkpoint.th",
    )
    out = export_checkpoint(tmp_path / "checkpoint.th", tmp_path / "release" / "state_dict.bin")
    assert torch.load(out, weights_only=True)["version"].startswith("audiocraft-models/")
    model = loaders.load_lm_model(out.parent)
    reference = loaders.load_lm_model(folder)
    assert type(model).__name__ == "LMModel" and not model.training
    assert model.state_dict().keys() == reference.state_dict().keys()
    assert all(torch.equal(v, reference.state_dict()[k]) for k, v in model.state_dict().items())
