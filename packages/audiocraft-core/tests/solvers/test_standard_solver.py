"""StandardSolver contract, exercised through the tiny solver (tiny_solver.py) at the API level."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from tiny_solver import TinySolver, make_cfg, make_xp, run_training  # noqa: E402

from audiocraft.utils.checkpoint import load_checkpoint  # noqa: E402


def _metrics(history: list[dict]) -> list[dict]:
    return [{stage: {k: v for k, v in m.items() if k != "duration"} for stage, m in epoch.items()} for epoch in history]


def test_run_all_stages_checkpoint_and_history(tmp_path):
    cfg = make_cfg(**{"optim.epochs": 3, "evaluate.every": 2, "generate.every": 2})
    solver = run_training(tmp_path, cfg)
    history = solver.history
    assert len(history) == 3
    # evaluate / generate on every 2nd epoch and on the last one
    assert [sorted(h) for h in history] == [
        ["train", "valid"],
        ["evaluate", "generate", "train", "valid"],
        ["evaluate", "generate", "train", "valid"],
    ]
    assert history[-1]["train"]["loss"] < history[0]["train"]["loss"]
    state = load_checkpoint(solver.checkpoint_path())  # weights_only=True
    assert isinstance(state["xp.cfg"], str) and "solver: tiny" in state["xp.cfg"]
    assert set(state) >= {"model", "optimizer", "lr_scheduler", "ema", "best_state", "rng_state", "history"}
    assert json.loads((solver.folder / "history.json").read_text())[-1]["valid"]["loss"] == history[-1]["valid"]["loss"]
    assert (solver.folder / "generated" / "epoch_2.json").exists()
    assert (solver.folder / "generated" / "epoch_3.json").exists()
    # the schedule stepped once per update: 3 epochs x 6 updates
    assert state["lr_scheduler"]["last_epoch"] == 18


def test_best_state_follows_valid_loss_and_ema(tmp_path):
    solver = run_training(tmp_path, make_cfg(**{"optim.epochs": 3}))
    losses = [h["valid"]["loss"] for h in solver.history]
    best_epoch = losses.index(min(losses))
    state = load_checkpoint(solver.checkpoint_path())
    ema_weights = state["ema"]["state"]["model"]
    assert state["ema"]["count"] > 0
    if best_epoch == len(losses) - 1:  # the best state is the EMA state of the valid stage
        for key, value in state["best_state"]["model"].items():
            assert torch.equal(value, ema_weights[key])
    # the live model differs from its EMA
    assert not torch.equal(state["model"]["0.weight"], ema_weights["0.weight"])


def test_restart_after_completion_does_nothing(tmp_path):
    cfg = make_cfg(**{"optim.epochs": 2})
    first = run_training(tmp_path, cfg)
    mtime = first.checkpoint_path().stat().st_mtime_ns
    second = run_training(tmp_path, cfg)
    assert second.checkpoint_path().stat().st_mtime_ns == mtime
    assert _metrics(second.history) == _metrics(first.history)


def test_save_every_keep_last_prunes_and_keep_every_states(tmp_path):
    cfg = make_cfg(
        **{
            "optim.epochs": 5,
            "optim.updates_per_epoch": 2,
            "checkpoint.save_every": 1,
            "checkpoint.keep_last": 2,
            "checkpoint.keep_every_states": ["model"],
        }
    )
    solver = run_training(tmp_path, cfg)
    names = sorted(p.name for p in solver.folder.glob("checkpoint*.th"))
    assert names == ["checkpoint.th", "checkpoint_4.th", "checkpoint_5.th"]
    epoch_state = load_checkpoint(solver.folder / "checkpoint_5.th")
    assert "model" in epoch_state and "optimizer" not in epoch_state
    assert not list(solver.folder.glob("*.tmp"))


def test_continue_from_signature_loads_best_state(tmp_path):
    source = run_training(tmp_path, make_cfg(**{"optim.epochs": 2}), name="source")
    best = load_checkpoint(source.checkpoint_path())["best_state"]["model"]
    for ref in (source.xp.sig, f"//sig/{source.xp.sig}", str(source.checkpoint_path())):
        cfg = make_cfg(**{"optim.epochs": 1, "continue_from": ref})
        xp = make_xp(tmp_path, cfg, name=f"child-{ref[-4:]}")
        with xp.enter():
            child = TinySolver(cfg)
            child.restore()
            for key, value in best.items():
                assert torch.equal(child.model.state_dict()[key], value)
            assert child.epoch == 1  # history is not inherited


def test_continue_from_unknown_names_it(tmp_path):
    cfg = make_cfg(**{"continue_from": "deadbeef"})
    with make_xp(tmp_path, cfg).enter():
        solver = TinySolver(cfg)
        with pytest.raises(RuntimeError, match="deadbeef"):
            solver.restore()


def test_execute_only_evaluate(tmp_path):
    trained = run_training(tmp_path, make_cfg(**{"optim.epochs": 1}), name="trained")
    cfg = make_cfg(**{"execute_only": "evaluate", "continue_from": trained.xp.sig})
    with make_xp(tmp_path, cfg, name="eval").enter():
        solver = TinySolver(cfg)
        assert sorted(solver.dataloaders) == ["evaluate"]
        solver.restore()
        solver.run_one_stage("evaluate")
        assert list(solver.history[-1]) == ["evaluate"]
        assert solver.history[-1]["evaluate"]["mse"] > 0
        with pytest.raises(ValueError, match="train"):
            solver.run_one_stage("train")


def test_show_logs_parameter_counts(tmp_path, caplog):
    cfg = make_cfg()
    with make_xp(tmp_path, cfg).enter(), caplog.at_level(logging.INFO):
        TinySolver(cfg).show()
    assert "Parameters: 129" in caplog.text


def test_benchmark_no_load_reuses_first_batch(tmp_path):
    cfg = make_cfg(**{"optim.epochs": 1, "benchmark_no_load": True})
    solver = run_training(tmp_path, cfg)
    assert solver.history[0]["train"]["loss"] > 0


def test_gradient_accumulation_counts_updates(tmp_path):
    cfg = make_cfg(**{"optim.epochs": 1, "optim.grad_accum_steps": 2, "dataset.train.num_samples": 128})
    solver = run_training(tmp_path, cfg)
    state = load_checkpoint(solver.checkpoint_path())
    assert state["lr_scheduler"]["last_epoch"] == 6  # 6 updates from 12 micro-batches
    assert state["optimizer"]["state"][0]["step"].item() == 6


def test_resume_logs_changed_config_keys(tmp_path, caplog):
    run_training(tmp_path, make_cfg(**{"optim.epochs": 1}))
    with caplog.at_level(logging.WARNING):
        solver = run_training(tmp_path, make_cfg(**{"optim.epochs": 2, "optim.lr": 0.01}))
    assert "optim.lr: 0.05 -> 0.01" in caplog.text
    assert "optim.epochs: 1 -> 2" in caplog.text
    assert {key for key, _, _ in solver.config_changes} == {"optim.lr", "optim.epochs"}


def test_missing_train_split_is_an_error(tmp_path):
    class NoValid(TinySolver):
        def build_dataloaders(self):
            super().build_dataloaders()
            del self.dataloaders["valid"]

    cfg = make_cfg()
    with make_xp(tmp_path, cfg).enter(), pytest.raises(ValueError, match="'valid'"):
        NoValid(cfg)


def test_tensorboard_profiler_and_autocast_flags(tmp_path):
    cfg = make_cfg(
        **{
            "optim.epochs": 1,
            "logging.log_tensorboard": True,
            "profiler.enabled": True,
            "autocast": True,
            "autocast_dtype": "bfloat16",
        }
    )
    solver = run_training(tmp_path, cfg)
    assert list(solver.folder.rglob("events.out.tfevents*")), "tensorboard events expected"
    assert list((solver.folder / "profiler_trace").glob("*.json")), "profiler trace expected"
    assert solver.history[0]["train"]["loss"] > 0
    # autocast keeps a bfloat16 best state
    state = load_checkpoint(solver.checkpoint_path())
    assert state["best_state"]["model"]["0.weight"].dtype == torch.bfloat16


def test_fsdp_needs_cuda(tmp_path):
    from audiocraft.optim import fsdp

    with pytest.raises(ValueError, match="fsdp.use=true needs CUDA"):
        fsdp.wrap_with_fsdp(True, "cpu", torch.nn.Linear(2, 2))
    assert isinstance(fsdp.wrap_with_fsdp(False, "cpu", torch.nn.Linear(2, 2)), torch.nn.Linear)


def test_execute_inplace_runs_in_the_xp_without_recording(tmp_path):
    cfg = make_cfg(**{"optim.epochs": 1})
    trained = run_training(tmp_path, cfg)
    before = trained.checkpoint_path().read_bytes()
    inplace = make_cfg(**{"optim.epochs": 1, "execute_only": "valid", "execute_inplace": True})
    with make_xp(tmp_path, inplace).enter():  # same signature: the trained XP itself
        solver = TinySolver(inplace)
        solver.restore()
        solver.run_one_stage("valid")
        assert len(solver.history) == 1  # the valid metrics were not committed
    assert trained.checkpoint_path().read_bytes() == before
    assert len(json.loads((trained.folder / "history.json").read_text())) == 1


def test_device_auto_is_stored_as_the_device_used_and_not_reported_as_a_change(tmp_path, caplog):
    cfg = make_cfg(**{"optim.epochs": 1})
    cfg.device = "auto"  # the solver receives the resolved device; the XP config keeps 'auto'
    solver_cfg = make_cfg(**{"optim.epochs": 1})
    xp = make_xp(tmp_path, cfg)
    xp.folder.mkdir(parents=True)
    with xp.enter():
        TinySolver(solver_cfg).run()
    assert "device: cpu" in load_checkpoint(xp.folder / "checkpoint.th")["xp.cfg"]
    with xp.enter(), caplog.at_level(logging.WARNING):
        TinySolver(solver_cfg).run()
    assert "config differs" not in caplog.text


def test_fresh_xp_logs_no_restore_and_signature_free_overrides_are_not_a_config_change(tmp_path, caplog):
    cfg = make_cfg(**{"optim.epochs": 1, "dora.exclude": ["logging.*", "num_threads"]})
    xp = make_xp(tmp_path, cfg)
    xp.folder.mkdir(parents=True)
    with xp.enter(), caplog.at_level(logging.INFO):
        TinySolver(cfg).run()
    assert "Restor" not in caplog.text  # nothing to restore in a fresh XP
    caplog.clear()
    again = make_cfg(
        **{
            "optim.epochs": 1,
            "dora.exclude": ["logging.*", "num_threads"],
            "logging.log_updates": 3,
            "num_threads": 2,
            "optim.lr": 0.5,
        }
    )
    with make_xp(tmp_path, again).enter(), caplog.at_level(logging.INFO):  # the same folder, another config
        TinySolver(again).run()
    assert "Restored weights and history." in caplog.text
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    changed = [w for w in warnings if "config differs" in w]
    assert len(changed) == 1 and "optim.lr" in changed[0] and "logging" not in changed[0], warnings
    assert "Set for this run (keys outside the XP signature): " in caplog.text and "num_threads=2" in caplog.text
