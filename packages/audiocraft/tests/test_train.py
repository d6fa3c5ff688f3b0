"""``audiocraft.train`` through the real ``dora`` command: config errors, run / info / clear / -f, show,
execute_only, resume after editing a default yaml, and ``dora run -d`` with two CPU workers (gloo)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

PLUGIN = Path(__file__).parent / "plugin"
DORA = [sys.executable, "-m", "dora"]


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    conf = tmp_path / "conf"
    shutil.copytree(PLUGIN / "conf", conf)
    return {
        **os.environ,
        "DORA_PACKAGE": "audiocraft",
        "AUDIOCRAFT_DORA_DIR": str(tmp_path / "dora"),
        "AUDIOCRAFT_EXTRA_CONFIG": str(conf),
        "AUDIOCRAFT_EXTRA_SOLVERS": "tiny=meta_tiny_solver:TinySolver",
        "PYTHONPATH": os.pathsep.join([str(PLUGIN), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "USER": os.environ.get("USER", "tester"),
    }


def dora(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        DORA + list(args),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(env["AUDIOCRAFT_DORA_DIR"]).parent,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"dora {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return proc


def xp_folders(env: dict[str, str]) -> list[Path]:
    root = Path(env["AUDIOCRAFT_DORA_DIR"]) / "xps"
    return sorted(root.iterdir()) if root.exists() else []


def test_config_errors_stop_before_any_work_naming_the_key(env, monkeypatch):
    for key in ("DORA_PACKAGE", "AUDIOCRAFT_DORA_DIR", "AUDIOCRAFT_EXTRA_CONFIG"):
        monkeypatch.setenv(key, env[key])
    from audiocraft import train  # composition errors surface when Dora builds the XP

    with pytest.raises(train.ConfigError, match=r"missing mandatory value for config key\(s\) dataset.batch_size"):
        train.main.get_xp([])
    with pytest.raises(train.ConfigError, match="Could not override 'optim.learning_rate'"):
        train.main.get_xp(["solver=tiny", "optim.learning_rate=3"])
    with pytest.raises(train.ConfigError, match=r"unknown solver 'nope' .*available: .*compression/debug.*tiny"):
        train.main.get_xp(["solver=nope"])
    # a failed composition leaves no state behind: signatures computed afterwards are the usual ones
    assert [k for k, _ in train.main.get_xp(["solver=tiny", "label=x"]).delta] == ["solver", "label"]
    unknown_solver = dora(env, "run", "solver=tiny_unregistered", check=False)
    assert unknown_solver.returncode != 0
    assert "unknown solver 'no_such_solver'" in unknown_solver.stderr and "'compression'" in unknown_solver.stderr
    assert not any(list(f.glob("checkpoint*")) for f in xp_folders(env))


@pytest.mark.integration
def test_run_info_resume_clear_and_rerun_by_sig(env):
    dora(env, "run", "solver=tiny")
    (folder,) = xp_folders(env)
    sig = folder.name
    history = json.loads((folder / "history.json").read_text())
    assert len(history) == 2 and set(history[1]) == {"train", "valid", "evaluate", "generate"}
    assert (folder / "solver.log.0").exists()
    state = torch.load(folder / "checkpoint.th", weights_only=True)
    assert "solver: tiny" in state["xp.cfg"] and state["xp.sig"] == sig
    info = dora(env, "info", "-f", sig)
    assert sig in info.stdout + info.stderr
    # same command again: nothing left to train, weights unchanged
    again = dora(env, "run", "-f", sig)
    assert "Replaying past metrics" in again.stderr
    assert torch.equal(
        torch.load(folder / "checkpoint.th", weights_only=True)["model"]["0.weight"], state["model"]["0.weight"]
    )
    # a default yaml is edited: the resumed XP lists the keys that changed
    conf = Path(env["AUDIOCRAFT_EXTRA_CONFIG"]) / "solver" / "tiny.yaml"
    conf.write_text(conf.read_text().replace("epochs: 2", "epochs: 3").replace("lr: 0.05", "lr: 0.01"))
    resumed = dora(env, "run", "solver=tiny")
    assert xp_folders(env) == [folder]  # same signature: defaults are not part of it
    assert "optim.lr: 0.05 -> 0.01" in resumed.stderr and "optim.epochs: 2 -> 3" in resumed.stderr
    assert len(json.loads((folder / "history.json").read_text())) == 3
    # --clear starts the XP from scratch
    (folder / "marker").write_text("x")
    dora(env, "run", "--clear", "solver=tiny")
    assert not (folder / "marker").exists()
    assert len(json.loads((folder / "history.json").read_text())) == 3


@pytest.mark.integration
def test_show_and_execute_only(env, monkeypatch):
    shown = dora(env, "run", "solver=tiny", "show=true")
    assert "Parameters: 49" in shown.stderr
    assert not any(list(f.glob("checkpoint*")) for f in xp_folders(env))
    dora(env, "run", "solver=tiny", "optim.epochs=1", "label=trained")
    trained = [f for f in xp_folders(env) if (f / "checkpoint.th").exists()]
    (trained,) = trained
    only = dora(env, "run", "solver=tiny", "execute_only=evaluate", f"continue_from={trained.name}", "label=eval")
    assert "Evaluate Summary" in only.stderr and "Train Summary" not in only.stderr
    needs_source = dora(env, "run", "solver=tiny", "execute_only=evaluate", "label=lonely", check=False)
    assert needs_source.returncode != 0 and "continue_from" in needs_source.stderr
    # in a notebook: the solver of an XP, by signature, with its best state
    for key in ("DORA_PACKAGE", "AUDIOCRAFT_DORA_DIR", "AUDIOCRAFT_EXTRA_CONFIG", "AUDIOCRAFT_EXTRA_SOLVERS"):
        monkeypatch.setenv(key, env[key])
    monkeypatch.syspath_prepend(str(PLUGIN))
    from audiocraft import train

    monkeypatch.setattr(train.main.dora, "dir", Path(env["AUDIOCRAFT_DORA_DIR"]))
    solver = train.get_eval_solver_from_sig(trained.name)
    best = torch.load(trained / "checkpoint.th", weights_only=True)["best_state"]["model"]
    assert torch.equal(solver.model.state_dict()["0.weight"], best["0.weight"]) and not solver.model.training


@pytest.mark.integration
@pytest.mark.slow
def test_dora_run_distributed_two_cpu_workers(env):
    proc = dora(env, "run", "-d", "--ddp_workers", "2", "solver=tiny")
    (folder,) = xp_folders(env)
    assert (folder / "solver.log.0").exists() and (folder / "solver.log.1").exists()
    assert re.search(r"Batch size: 4 per worker x 2 worker\(s\) = 8 per update", proc.stderr)
    assert "Distributed init: 0/2" in proc.stderr
    history = json.loads((folder / "history.json").read_text())
    assert len(history) == 2 and history[1]["train"]["loss"] > 0


@pytest.mark.integration
@pytest.mark.slow
def test_dora_run_killed_mid_epoch_resumes_exactly(env, tmp_path):
    dora(env, "run", "solver=tiny", "optim.epochs=3")
    (folder,) = xp_folders(env)
    reference = torch.load(folder / "checkpoint.th", weights_only=True)
    killed = dict(env, TINY_KILL_AT="2:1")
    proc = dora(killed, "run", "--clear", "solver=tiny", "optim.epochs=3", check=False)
    assert proc.returncode != 0
    assert len(torch.load(folder / "checkpoint.th", weights_only=True)["history"]) == 1
    dora(env, "run", "solver=tiny", "optim.epochs=3")
    resumed = torch.load(folder / "checkpoint.th", weights_only=True)
    for key, value in reference["model"].items():
        assert torch.equal(resumed["model"][key], value), key
    strip = [{s: {k: v for k, v in m.items() if k != "duration"} for s, m in e.items()} for e in reference["history"]]
    assert strip == [
        {s: {k: v for k, v in m.items() if k != "duration"} for s, m in e.items()} for e in resumed["history"]
    ]
