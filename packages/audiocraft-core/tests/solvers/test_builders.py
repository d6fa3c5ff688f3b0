"""Solver registry, config-driven optimizer / schedule / EMA builders, and audio data loaders."""

from __future__ import annotations

import json

import pytest
import soundfile as sf
import torch
from omegaconf import OmegaConf
from torch import nn

from audiocraft.environment import AudioCraftEnvironment
from audiocraft.solvers import builders
from audiocraft.utils.utils import set_loader_epoch


def test_unknown_solver_lists_registered_names(monkeypatch):
    monkeypatch.delenv(builders.EXTRA_SOLVERS_ENV, raising=False)
    with pytest.raises(
        ValueError,
        match=r"unknown solver 'nope' \(config key 'solver'\); expected one of "
        r"\['audiogen', 'compression', 'lm', 'musicgen', 'sound_lm'\]",
    ):
        builders.get_solver_class("nope")


def test_extra_solvers_from_environment(monkeypatch):
    monkeypatch.setenv(builders.EXTRA_SOLVERS_ENV, "mine=audiocraft.solvers.base:StandardSolver")
    from audiocraft.solvers.base import StandardSolver

    assert builders.get_solver_class("mine") is StandardSolver
    monkeypatch.setenv(builders.EXTRA_SOLVERS_ENV, "broken")
    with pytest.raises(ValueError, match="name=module:Class"):
        builders.solver_registry()
    monkeypatch.setenv(builders.EXTRA_SOLVERS_ENV, "ghost=audiocraft.solvers.ghost:Ghost")
    with pytest.raises(ImportError, match="'ghost'.*audiocraft.solvers.ghost"):
        builders.get_solver_class("ghost")


def test_optimizer_schedule_and_ema_from_config():
    cfg = OmegaConf.create(
        {
            "optim": {
                "lr": 0.1,
                "optimizer": "adamw",
                "adam": {"betas": [0.5, 0.9], "weight_decay": 0.01},
                "ema": {"use": True, "updates": 1, "device": "cpu", "decay": 0.9},
            },
            "schedule": {"lr_scheduler": "linear_warmup", "linear_warmup": {"warmup": 10, "warmup_init_lr": 0.0}},
        }
    )
    model = nn.Linear(2, 2)
    opt = builders.get_optimizer(model, cfg.optim)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[0]["betas"] == (0.5, 0.9)
    sched = builders.get_lr_scheduler(opt, cfg.schedule, total_updates=100)
    assert opt.param_groups[0]["lr"] == 0.0 and sched is not None
    ema = builders.get_ema(nn.ModuleDict({"model": model}), cfg.optim.ema)
    assert ema is not None and ema.decay == 0.9
    cfg.optim.ema.use = False
    assert builders.get_ema(nn.ModuleDict({"model": model}), cfg.optim.ema) is None
    with pytest.raises(KeyError, match="pass cfg.optim"):
        builders.get_optimizer(model, cfg)


def _manifest(root, split: str, n: int, sr: int = 8000) -> None:
    folder = root / split
    folder.mkdir(parents=True)
    lines = []
    for i in range(n):
        wav = torch.sin(torch.arange(sr) * (i + 1) * 0.01).numpy() * 0.5
        sf.write(folder / f"{i}.wav", wav, sr)
        lines.append(
            json.dumps(
                {
                    "path": f"/data/{split}/{i}.wav",
                    "duration": 1.0,
                    "sample_rate": sr,
                    "amplitude": None,
                    "weight": None,
                    "info_path": None,
                }
            )
        )
    (folder / "data.jsonl").write_text("\n".join(lines) + "\n")


def test_audio_datasets_are_deterministic_per_epoch_and_mapped(tmp_path):
    _manifest(tmp_path, "train", 3)
    _manifest(tmp_path, "valid", 2)
    team = tmp_path / "team.yaml"
    team.write_text(f'default:\n  dora_dir: {tmp_path}/dora\n  dataset_mappers:\n    "^/data/": "{tmp_path}/"\n')
    env = AudioCraftEnvironment(environ={"AUDIOCRAFT_CONFIG": str(team)})
    cfg = OmegaConf.create(
        {
            "sample_rate": 8000,
            "channels": 1,
            "seed": 0,
            "execute_only": None,
            "optim": {"updates_per_epoch": 2},
            "datasource": {
                "max_sample_rate": 44100,
                "max_channels": 2,
                "train": str(tmp_path / "train"),
                "valid": str(tmp_path / "valid"),
                "evaluate": None,
                "generate": None,
            },
            "dataset": {
                "batch_size": 2,
                "num_workers": 0,
                "segment_duration": 0.25,
                "num_samples": 4,
                "return_info": False,
                "shuffle": False,
                "sample_on_duration": True,
                "sample_on_weight": True,
                "min_segment_ratio": 0.5,
                "train": {"num_samples": 6, "shuffle": True, "shuffle_seed": 0, "permutation_on_files": False},
                "valid": {"num_samples": 2},
                "evaluate": {},
                "generate": {},
            },
        }
    )
    loaders = builders.get_audio_datasets(cfg, environment=env)
    assert sorted(loaders) == ["train", "valid"]
    train = loaders["train"]

    def epoch(e):
        set_loader_epoch(train, e)
        return torch.cat([batch for batch in train])

    first = epoch(1)
    assert first.shape == (6, 1, 2000)
    assert torch.equal(epoch(1), first) and not torch.equal(epoch(2), first)
    cfg.sample_rate = 96000
    with pytest.raises(ValueError, match="max_sample_rate"):
        builders.get_audio_datasets(cfg, environment=env)


def test_unknown_dataset_keys_are_named(tmp_path):
    _manifest(tmp_path, "train", 2)
    base = {
        "sample_rate": 8000,
        "channels": 1,
        "seed": 0,
        "optim": {"updates_per_epoch": 1},
        "datasource": {"max_sample_rate": 8000, "max_channels": 1, "train": str(tmp_path / "train")},
        "dataset": {
            "batch_size": 1,
            "num_workers": 0,
            "segment_duration": 0.5,
            "num_samples": 2,
            "check_paths": False,
            "train": {"shuffle": True},
        },
    }
    cfg = OmegaConf.create(base)
    team = tmp_path / "team.yaml"
    team.write_text(f'default:\n  dataset_mappers:\n    "^/data/": "{tmp_path}/"\n')
    env = AudioCraftEnvironment(environ={"AUDIOCRAFT_CONFIG": str(team), "AUDIOCRAFT_DORA_DIR": str(tmp_path)})
    (loader,) = builders.get_audio_datasets(cfg, environment=env).values()  # from_meta's check_paths is accepted
    assert next(iter(loader)).shape == (1, 1, 4000)
    typo = OmegaConf.merge(cfg, {"dataset": {"segment_duraton": 1.0, "train": {"shufle": True, "shuffle_seed": 3}}})
    with pytest.raises(
        ValueError,
        match=r"unknown key\(s\) \['segment_duraton'\] in config section 'dataset': "
        r"not arguments of AudioDataset.*valid keys: \[.*'segment_duration'",
    ):
        builders.get_audio_datasets(typo)
    split_typo = OmegaConf.merge(cfg, {"dataset": {"train": {"shufle": True}}})
    with pytest.raises(ValueError, match=r"\['shufle'\] in config section 'dataset.train'"):
        builders.get_audio_datasets(split_typo)
    # MusicDataset forwards **kwargs to AudioDataset: the keys of both are known, others are named.
    music = OmegaConf.merge(cfg, {"dataset": {"merge_text_p": 0.5, "colour": "red"}})
    with pytest.raises(ValueError, match=r"\['colour'\] in config section 'dataset': not arguments of MusicDataset"):
        builders.get_audio_datasets(music, builders.DatasetType.MUSIC)


def test_visqol_is_built_by_the_metrics_builder_with_resolved_paths(tmp_path):
    install = tmp_path / "ref" / "visqol"
    (install / "bazel-bin").mkdir(parents=True)
    (install / "bazel-bin" / "visqol").write_text("")
    (install / "model").mkdir()
    (install / "model" / "libsvm_nu_svr_model.txt").write_text("")
    env = AudioCraftEnvironment(
        environ={"AUDIOCRAFT_REFERENCE_DIR": str(tmp_path / "ref"), "AUDIOCRAFT_DORA_DIR": str(tmp_path)}
    )
    cfg = OmegaConf.create({"bin": "//reference/visqol", "mode": "speech", "model": "libsvm_nu_svr_model.txt"})
    visqol = builders.get_visqol(cfg, env.resolve_reference_path)
    assert visqol.visqol_bin == install / "bazel-bin" / "visqol" and visqol.target_sr == 16000
    assert visqol.visqol_model == install / "model" / "libsvm_nu_svr_model.txt"
    with pytest.raises(FileNotFoundError, match="metrics.visqol.bin"):
        builders.get_visqol(cfg)  # //reference/... is not a path until resolved


def test_star_import_of_solvers_gives_every_listed_name():
    import subprocess
    import sys

    code = (
        "from audiocraft.solvers import *\n"
        "import audiocraft.solvers as s\n"
        "assert sorted(s.__all__) == sorted(s._WHERE), (s.__all__, s._WHERE)\n"
        "assert all(n in globals() for n in s.__all__)\n"
        "print(' '.join(sorted(s.__all__)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {"CompressionSolver", "StandardSolver", "get_solver"} <= set(proc.stdout.split())
    from audiocraft import solvers

    with pytest.raises(AttributeError, match="no attribute 'NoSuchSolver'"):
        solvers.NoSuchSolver  # noqa: B018
