"""The one loader of a frozen compression model for training: every source, and the sample rate / channels check."""

from __future__ import annotations

import types
import warnings
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from audiocraft.environment import AudioCraftEnvironment
from audiocraft.models import builders as model_builders
from audiocraft.models.export import export_encodec
from audiocraft.solvers.compression import CompressionSolver
from audiocraft.solvers.compression_loading import load_frozen_compression_model
from audiocraft.utils.checkpoint import save_checkpoint

CONFIG_DIR = Path(__file__).resolve().parents[4] / "config"
SIG = "0123abcd"
pytestmark = pytest.mark.slow  # composes configs and builds models: ~15-40 s for the module on 2 busy cores


def _compose(overrides: list[str]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.1"):
            return compose("config", overrides=["solver=compression/debug", "device=cpu", *overrides])


@pytest.fixture(scope="module")
def xp(tmp_path_factory):
    """A compression training checkpoint of the debug config at 16 kHz (random weights), in an XP folder."""
    root = tmp_path_factory.mktemp("dora")
    cfg = _compose([])
    torch.manual_seed(0)
    model = model_builders.get_compression_model(cfg)
    model.train()
    model(0.1 * torch.randn(2, 1, 1600))  # initialises the codebooks
    best = {k: v.clone() for k, v in model.state_dict().items()}
    state = {
        "xp.cfg": OmegaConf.to_yaml(cfg, resolve=True),
        "model": {k: torch.zeros_like(v) for k, v in best.items()},
        "best_state": {"model": best},
    }
    save_checkpoint(state, root / "xps" / SIG / "checkpoint.th")
    return types.SimpleNamespace(root=root, xps=root / "xps", folder=root / "xps" / SIG, best=best, cfg=cfg)


def _is_the_best_state(model, xp) -> None:
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    for key, value in xp.best.items():
        torch.testing.assert_close(model.state_dict()[key], value, atol=0, rtol=0)


def test_signature_folder_file_and_reference(xp):
    for source in (f"//sig/{SIG}", SIG):
        _is_the_best_state(load_frozen_compression_model(source, xps_root=xp.xps, sample_rate=16000, channels=1), xp)
    _is_the_best_state(load_frozen_compression_model(xp.folder), xp)
    _is_the_best_state(load_frozen_compression_model(xp.folder / "checkpoint.th"), xp)
    env = AudioCraftEnvironment(environ={"AUDIOCRAFT_REFERENCE_DIR": str(xp.root)})
    _is_the_best_state(load_frozen_compression_model(f"//reference/xps/{SIG}", environment=env), xp)
    with pytest.raises(FileNotFoundError, match=r"could not find the compression model '//sig/ffffffff'.*looked up in"):
        load_frozen_compression_model("//sig/ffffffff", xps_root=xp.xps)


def test_pretrained_goes_through_the_inference_lookup(xp, tmp_path, monkeypatch):
    export_encodec(xp.folder / "checkpoint.th", tmp_path / "pretrained" / "my_codec" / "compression_state_dict.bin")
    monkeypatch.setenv("AUDIOCRAFT_PRETRAINED_DIR", str(tmp_path / "pretrained"))
    _is_the_best_state(load_frozen_compression_model("//pretrained/my_codec", sample_rate=16000, channels=1), xp)
    # an exported package given by path loads too (upstream asks for //pretrained/ there)
    _is_the_best_state(load_frozen_compression_model(tmp_path / "pretrained" / "my_codec"), xp)
    # continue_from=//pretrained/NAME: the solver's load_from_pretrained gets NAME and looks it up the same way
    solver = types.SimpleNamespace(cfg=xp.cfg, environment=None)
    state = CompressionSolver.load_from_pretrained(solver, "my_codec")
    assert sorted(state["best_state"]["model"]) == sorted(xp.best)
    assert all(torch.equal(state["best_state"]["model"][k], v) for k, v in xp.best.items())
    wrong_rate = types.SimpleNamespace(cfg=_compose(["sample_rate=24000"]), environment=None)
    with pytest.raises(
        ValueError, match="my_codec: its sample rate is 16000 Hz but the solver config has sample_rate=24000"
    ):
        CompressionSolver.load_from_pretrained(wrong_rate, "my_codec")


def test_sample_rate_and_channels_are_checked_naming_both_values(xp):
    with pytest.raises(
        ValueError,
        match=r"debug_compression_model: its sample rate is 32000 Hz but the solver "
        r"config has sample_rate=16000",
    ):
        load_frozen_compression_model("//pretrained/debug_compression_model", sample_rate=16000)
    with pytest.raises(ValueError, match=r"it has 1 channel\(s\) but the solver config has channels=2"):
        load_frozen_compression_model(xp.folder, sample_rate=16000, channels=2)
    cfg = OmegaConf.create({"sample_rate": 32000, "channels": 1})
    with pytest.raises(ValueError, match="sample rate is 16000 Hz but the solver config has sample_rate=32000"):
        CompressionSolver.wrapped_model_from_checkpoint(cfg, f"//sig/{SIG}", xps_root=xp.xps)
    model = CompressionSolver.wrapped_model_from_checkpoint(
        OmegaConf.create({"sample_rate": 16000, "channels": 1}), f"//sig/{SIG}", xps_root=xp.xps
    )
    _is_the_best_state(model, xp)


def test_training_checkpoint_whose_config_does_not_fit_is_named(xp, tmp_path):
    state = torch.load(xp.folder / "checkpoint.th", weights_only=True)
    cfg = OmegaConf.create(state["xp.cfg"])
    cfg.seanet.lstm = 0
    state["xp.cfg"] = OmegaConf.to_yaml(cfg)
    save_checkpoint(state, tmp_path / "other" / "checkpoint.th")
    with pytest.raises(RuntimeError, match=r"other/checkpoint.th.*unexpected keys \['encoder.model.*lstm"):
        load_frozen_compression_model(tmp_path / "other")
