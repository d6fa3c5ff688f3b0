"""CompressionSolver end to end inside a Dora XP (no `dora` CLI, no meta-package needed): the shipped
solver=compression/debug config composed from the checkout's config/ with a short budget, on a small
synthetic example dataset; checks every stage, the checkpoint, the samples, the export and that training helps.
"""

import json
import random
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from dora import XP
from dora.conf import DoraConfig
from hydra import compose, initialize_config_dir

from audiocraft.data.example import generate_example_dataset
from audiocraft.solvers.compression import CompressionSolver

CONFIG_DIR = Path(__file__).resolve().parents[4] / "config"


def _compose(overrides: list[str]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # upstream's configs need Hydra's version_base 1.1 behaviour
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.1"):
            return compose("config", overrides=overrides)


@pytest.fixture(scope="module")
def example_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("example")
    generate_example_dataset(root, num_clips=8, sample_rate=16000, min_duration=2.0, max_duration=3.0)
    return root


def _overrides(data: Path, extra: list[str] = ()) -> list[str]:
    return (
        [
            "solver=compression/debug",
            "device=cpu",
            "optim.epochs=2",
            "optim.updates_per_epoch=8",
            "dataset.valid.num_samples=8",
            "dataset.evaluate.num_samples=8",
            "dataset.generate.num_samples=1",
            "dataset.generate.segment_duration=2",
            "generate.audio.format=wav",
        ]
        + [f"datasource.{split}={data / split}" for split in ("train", "valid", "evaluate", "generate")]
        + list(extra)
    )


def _run(dora_dir: Path, overrides: list[str]) -> CompressionSolver:
    cfg = _compose(overrides)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(1)
    xp = XP(dora=DoraConfig(dir=dora_dir, exclude=[]), cfg=cfg, argv=overrides, delta=[("argv", overrides)])
    xp.folder.mkdir(parents=True, exist_ok=True)
    with xp.enter():
        solver = CompressionSolver(cfg)
        solver.run()
    return solver


@pytest.mark.slow
def test_debug_training_end_to_end(tmp_path, example_data):
    solver = _run(tmp_path / "dora", _overrides(example_data))
    folder = Path(solver.folder)
    history = json.loads((folder / "history.json").read_text())
    assert len(history) == 2
    assert set(history[-1]) == {"train", "valid", "evaluate", "generate"}
    assert {"l1", "bandwidth", "g_loss", "mel", "msspec", "sisnr"} <= set(history[0]["train"])
    evaluate = history[-1]["evaluate"]
    assert {"sisnr", "mel", "mrstft", "bandwidth", "codebook_usage", "entropy_kbps"} <= set(evaluate)
    assert 0 < evaluate["codebook_usage"] <= 1 and evaluate["entropy_kbps"] > 0

    state = torch.load(folder / "checkpoint.th", map_location="cpu", weights_only=True)
    assert {"model", "optimizer", "best_state", "ema", "adv_losses", "balancer", "xp.cfg", "history"} <= set(state)
    assert isinstance(state["xp.cfg"], str)

    samples = folder / "samples"
    assert len(list((samples / "2").glob("*.wav"))) == 1 and len(list((samples / "reference").glob("*.wav"))) == 1

    exported = folder / "exported" / "compression_state_dict.bin"
    summary = json.loads((folder / "exported" / "export_metrics.json").read_text())
    assert summary["sisnr_db_exported"] > summary["sisnr_db_untrained"] + 3  # 16 updates already help
    assert summary["sisnr_db_exported"] == pytest.approx(-evaluate["sisnr"], abs=1e-3)  # same model, same data

    from audiocraft.models import CompressionModel

    model = CompressionModel.get_pretrained(str(exported), device="cpu")
    assert model.sample_rate == 16000 and model.channels == 1
    x = torch.sin(torch.arange(16000) / 16000 * 2 * torch.pi * 330).view(1, 1, -1) * 0.3
    with torch.no_grad():
        codes, scale = model.encode(x)
        y = model.decode(codes, scale)
    assert codes.shape[:2] == (1, model.num_codebooks) and torch.isfinite(y).all()
    # The exported weights are the best state of the training checkpoint.
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state["best_state"]["model"][key])
    # LM solvers load the compression model from the XP by signature, or from the export.
    by_sig = CompressionSolver.model_from_checkpoint(f"//sig/{folder.name}", xps_root=folder.parent)
    from_export = CompressionSolver.model_from_checkpoint(f"//pretrained/{exported}")
    for key, value in state["best_state"]["model"].items():
        torch.testing.assert_close(by_sig.state_dict()[key], value)
        torch.testing.assert_close(from_export.state_dict()[key], value)


def test_non_finite_loss_stops_with_step_and_name(tmp_path):
    fake = types.SimpleNamespace(epoch=3, current_stage="train", checkpoint_path=lambda: tmp_path / "checkpoint.th")
    CompressionSolver._check_finite(fake, 5, {"l1": torch.tensor(0.5), "msspec": torch.tensor(1.0)})
    bad = {"l1": torch.tensor(0.5), "msspec": torch.tensor(float("nan"))}
    with pytest.raises(FloatingPointError, match=r"epoch 3, train step 5: \{'msspec': nan\}.*no checkpoint has been"):
        CompressionSolver._check_finite(fake, 5, bad)  # nothing written yet: the message must not claim one is kept
    (tmp_path / "checkpoint.th").write_bytes(b"")
    with pytest.raises(FloatingPointError, match=r"train step 5: \{'msspec': nan\}.*checkpoint\.th\) was written"):
        CompressionSolver._check_finite(fake, 5, bad)


def test_model_sample_rate_must_match_the_data(tmp_path, example_data):
    """Upstream trains silently wrong with ``encodec.sample_rate=24000`` on 16 kHz data; here it stops, naming both."""
    overrides = _overrides(example_data, ["encodec.sample_rate=24000"])
    cfg = _compose(overrides)
    xp = XP(dora=DoraConfig(dir=tmp_path, exclude=[]), cfg=cfg, argv=overrides, delta=[("argv", overrides)])
    xp.folder.mkdir(parents=True, exist_ok=True)
    with (
        xp.enter(),
        pytest.raises(
            ValueError,
            match=r"compression model built from compression_model=encodec: "
            r"its sample rate is 24000 Hz but the solver config has "
            r"sample_rate=16000",
        ),
    ):
        CompressionSolver(cfg)
