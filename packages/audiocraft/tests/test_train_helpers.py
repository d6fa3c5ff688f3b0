"""Config preparation in audiocraft.train: per-worker batch size, //reference values, dataset paths, device."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from audiocraft.environment import AudioCraftEnvironment


@pytest.fixture
def train(monkeypatch, tmp_path):
    monkeypatch.setenv("DORA_PACKAGE", "audiocraft")
    monkeypatch.setenv("AUDIOCRAFT_DORA_DIR", str(tmp_path / "dora"))
    from audiocraft import train as module

    return module


def test_split_batch_size(train, monkeypatch):
    cfg = OmegaConf.create({"dataset": {"batch_size": 8, "train": {}, "evaluate": {"batch_size": 4}}})
    monkeypatch.setattr(train.flashy.distrib, "world_size", lambda: 2)
    train.split_batch_size(cfg)
    assert cfg.dataset.batch_size == 4 and cfg.dataset.evaluate.batch_size == 2
    bad = OmegaConf.create({"dataset": {"batch_size": 3}})
    with pytest.raises(train.ConfigError, match="dataset.batch_size=3 is the global batch size"):
        train.split_batch_size(bad)


def test_reference_and_dataset_paths(train, tmp_path, monkeypatch):
    (tmp_path / "ref" / "manifests").mkdir(parents=True)
    env = AudioCraftEnvironment(
        environ={"AUDIOCRAFT_REFERENCE_DIR": str(tmp_path / "ref"), "AUDIOCRAFT_DORA_DIR": str(tmp_path / "dora")}
    )
    cfg = OmegaConf.create(
        {
            "datasource": {"train": "//reference/manifests", "valid": "egs/example/valid", "max_channels": 2},
            "continue_from": "//reference/manifests",
            "device": "auto",
        }
    )
    train.resolve_reference_paths(cfg, env)
    monkeypatch.chdir(tmp_path)
    train.resolve_config_dset_paths(cfg)
    train.resolve_device(cfg)
    assert cfg.datasource.train == str(tmp_path / "ref" / "manifests") == cfg.continue_from
    assert cfg.datasource.valid == str(tmp_path / "egs" / "example" / "valid")
    assert cfg.device in ("cpu", "cuda")
    missing = OmegaConf.create({"datasource": {"train": "//reference/x"}})
    with pytest.raises(train.ConfigError, match="config key datasource.train"):
        train.resolve_reference_paths(missing, AudioCraftEnvironment(environ={"AUDIOCRAFT_CLUSTER": "default"}))


def test_packaged_team_files_are_found_and_valid():
    from audiocraft.environment import packaged_team_file

    for team in ("default", "labs"):
        path = packaged_team_file(team)
        assert path is not None and path.name == f"{team}.yaml"
        env = AudioCraftEnvironment(team=team, cluster="default", environ={"USER": "alice"})
        assert env.get_slurm_partitions() == "debug"
    labs = AudioCraftEnvironment(team="labs", cluster="fair", environ={"USER": "alice"})
    assert labs.get_slurm_partitions(["global", "team"]) == "learnlab,learnlab"
    assert labs.apply_dataset_mappers("/datasets01/datasets01/x.wav") == "/datasets01/x.wav"
    with pytest.raises(FileNotFoundError, match="config/teams/nope.yaml"):
        AudioCraftEnvironment(team="nope", environ={})


def test_process_setup_seeds_and_sets_no_global_attention_backend(tmp_path):
    """``efficient_attention_backend`` is a config value the model builders pass to the transformer; the process
    set-up no longer imports the transformer module to set a module-global backend (upstream did)."""
    import os
    import subprocess
    import sys

    code = """
import random, sys
import torch
from omegaconf import OmegaConf
from audiocraft import train
cfg = OmegaConf.create({"mp_start_method": "spawn", "seed": 3, "num_threads": 1,
                        "efficient_attention_backend": "xformers"})
train.init_seed_and_system(cfg)
first = (random.random(), torch.rand(1).item())
random.seed(3); torch.manual_seed(3)
assert first == (random.random(), torch.rand(1).item())
assert torch.get_num_threads() == 1
print(sorted(m for m in sys.modules if m.startswith("audiocraft.modules")))
"""
    env = {**os.environ, "DORA_PACKAGE": "audiocraft", "AUDIOCRAFT_DORA_DIR": str(tmp_path / "dora")}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "audiocraft.modules.transformer" not in proc.stdout
