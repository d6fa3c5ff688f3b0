"""``continue_from`` a checkpoint of another architecture: one message naming the checkpoint and the first keys at
fault instead of torch's line per parameter (a row of docs/RELIABILITY.md)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from tiny_solver import DIM, TinySolver, make_cfg, make_xp, run_training  # noqa: E402

from audiocraft.optim import builders  # noqa: E402
from audiocraft.solvers._state_fit import summarize_load_error  # noqa: E402


class WideTinySolver(TinySolver):
    """The tiny solver with a hidden layer of 32 instead of 16: another architecture."""

    def build_model(self) -> None:
        self.model = nn.Sequential(nn.Linear(DIM, 32), nn.Tanh(), nn.Dropout(0.1), nn.Linear(32, 1))
        self.optimizer = builders.get_optimizer(self.model, self.cfg.optim)
        self.lr_scheduler = builders.get_lr_scheduler(self.optimizer, self.cfg.schedule, self.total_updates)
        self.register_stateful("model", "optimizer", "lr_scheduler")
        self.register_best_state("model")
        self.register_ema("model")


def test_continue_from_another_architecture_names_the_checkpoint(tmp_path):
    source = run_training(tmp_path, make_cfg(**{"optim.epochs": 1}), name="source")
    cfg = make_cfg(**{"optim.epochs": 1, "continue_from": source.xp.sig})
    with make_xp(tmp_path, cfg, name="wide").enter():
        child = WideTinySolver(cfg)
        with pytest.raises(RuntimeError) as info:
            child.restore()
    message = str(info.value)
    assert message.startswith(f"continue_from='{source.xp.sig}' ({source.checkpoint_path()}) does not fit")
    assert f"3 shape mismatch(es) (0.weight: checkpoint (16, {DIM}) vs model (32, {DIM})" in message
    assert "size mismatch" not in message and len(message) < 1000


def test_summary_of_a_hundred_mismatches_stays_short():
    current = nn.ModuleDict({f"l{i}": nn.Linear(8, 8) for i in range(50)})
    other = nn.ModuleDict({f"l{i}": nn.Linear(8, 4) for i in range(50)} | {"extra": nn.Linear(1, 1)})
    with pytest.raises(RuntimeError) as info:
        current.load_state_dict(other.state_dict())
    assert str(info.value).count("size mismatch") == 100
    short = summarize_load_error(info.value, "continue_from='x' (/a/checkpoint.th)")
    assert str(short).startswith(
        "continue_from='x' (/a/checkpoint.th) does not fit this solver's model (another "
        "architecture?): 100 shape mismatch(es) (l0.weight: checkpoint (4, 8) vs model "
        "(8, 8); l0.bias: checkpoint (4) vs model (8); "
    )
    assert "97 more); 2 unexpected key(s) (extra.weight; extra.bias)" in str(short) and len(str(short)) < 600
    assert summarize_load_error(RuntimeError("CUDA out of memory"), "x") is None  # other errors pass through


def test_non_finite_loss_says_whether_a_checkpoint_exists(tmp_path):
    from types import SimpleNamespace

    from audiocraft.solvers.compression import CompressionSolver

    last = tmp_path / "checkpoint.th"
    fake = SimpleNamespace(epoch=3, current_stage="train", checkpoint_path=lambda: last)
    losses = {"l1": torch.tensor(0.5), "msspec": torch.tensor(float("nan"))}
    with pytest.raises(
        FloatingPointError,
        match=r"non-finite loss at epoch 3, train step 7: \{'msspec': nan\}\. "
        r"Stopping; no checkpoint has been written yet\.",
    ):
        CompressionSolver._check_finite(fake, 7, losses)
    last.write_bytes(b"")
    with pytest.raises(FloatingPointError, match=rf"the last checkpoint \({last}\) .* is kept intact"):
        CompressionSolver._check_finite(fake, 7, losses)
    CompressionSolver._check_finite(fake, 7, {"l1": torch.tensor(0.5)})  # finite: no error


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="checks the message without wandb")
def test_log_wandb_without_wandb_names_the_extra_when_the_solver_is_built(tmp_path):
    cfg = make_cfg(**{"logging.log_wandb": True})
    with make_xp(tmp_path, cfg).enter():
        with pytest.raises(
            ImportError,
            match=r"logging\.log_wandb=true but wandb is not installed: pip install "
            r"'audiocraft-core\[wandb\]', or set logging\.log_wandb=false",
        ):
            TinySolver(cfg)
