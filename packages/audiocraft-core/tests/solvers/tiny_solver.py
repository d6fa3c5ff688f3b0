"""A tiny solver for the engine tests: a small MLP fitting a noisy linear target on synthetic data.

Not a test module (no ``test_`` prefix): tests import it, and ``python tiny_solver.py DORA_DIR OVERRIDES_JSON``
runs a training in a subprocess (for the SIGKILL / resume tests). Its run_step draws from the python, numpy
and torch generators (noise, dropout) so that resuming must restore all three to reproduce a run.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import typing as tp
from pathlib import Path

import flashy
import numpy as np
import torch
from dora import XP
from dora.conf import DoraConfig
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import Dataset

from audiocraft.models.export import atomic_torch_save
from audiocraft.solvers import builders
from audiocraft.solvers.base import StandardSolver
from audiocraft.utils.utils import get_loader

DIM = 6

BASE_CFG: dict[str, tp.Any] = {
    "solver": "tiny",
    "device": "cpu",
    "dtype": "float32",
    "autocast": False,
    "autocast_dtype": "bfloat16",
    "seed": 42,
    "show": False,
    "continue_from": None,
    "execute_only": None,
    "execute_inplace": False,
    "benchmark_no_load": False,
    "num_threads": 1,
    "label": None,
    "logging": {"level": "INFO", "log_updates": 5, "log_tensorboard": False, "log_wandb": False},
    "tensorboard": {"with_media_logging": False, "name": None, "sub_dir": None},
    "wandb": {"with_media_logging": False, "project": None, "name": None, "group": None},
    "fsdp": {
        "use": False,
        "param_dtype": "float16",
        "reduce_dtype": "float32",
        "buffer_dtype": "float32",
        "sharding_strategy": "shard_grad_op",
        "per_block": True,
    },
    "profiler": {"enabled": False},
    "deadlock": {"use": False, "timeout": 600},
    "dataset": {
        "batch_size": 8,
        "num_workers": 0,
        "train": {"num_samples": 64},
        "valid": {"num_samples": 32},
        "evaluate": {"num_samples": 32},
    },
    "checkpoint": {
        "save_last": True,
        "save_every": None,
        "keep_last": None,
        "keep_every_states": None,
        "save_every_updates": None,
    },
    "generate": {"every": None},
    "evaluate": {"every": None},
    "optim": {
        "epochs": 4,
        "updates_per_epoch": 6,
        "lr": 0.05,
        "optimizer": "adam",
        "grad_accum_steps": 1,
        "max_norm": 1.0,
        "adam": {"betas": [0.9, 0.999], "weight_decay": 0.0},
        "ema": {"use": True, "updates": 1, "device": "cpu", "decay": 0.9},
    },
    "schedule": {"lr_scheduler": "cosine", "cosine": {"warmup": 2, "lr_min_ratio": 0.1, "cycle_length": 1.0}},
}


def make_cfg(**overrides: tp.Any) -> DictConfig:
    """The tiny config with dotted-key overrides (``make_cfg(**{'optim.epochs': 2})``)."""
    cfg = OmegaConf.create(BASE_CFG)
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


class TinyDataset(Dataset):
    """Item ``i`` of epoch ``e`` is a pure function of ``(seed, e, i)`` (as audiocraft datasets are)."""

    def __init__(self, num_samples: int, seed: int):
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = 0
        self.weight = torch.linspace(-1, 1, DIM)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 10_007 + index)
        x = torch.randn(DIM, generator=gen)
        y = (x * self.weight).sum(dim=0, keepdim=True) + 0.05 * torch.randn(1, generator=gen)
        return x, y


class TinySolver(StandardSolver):
    """MLP regression solver exercising every stage of the engine."""

    @property
    def best_metric_name(self) -> str | None:
        return "loss"

    def build_model(self) -> None:
        self.model = nn.Sequential(nn.Linear(DIM, 16), nn.Tanh(), nn.Dropout(0.1), nn.Linear(16, 1))
        self.optimizer = builders.get_optimizer(self.model, self.cfg.optim)
        self.lr_scheduler = builders.get_lr_scheduler(self.optimizer, self.cfg.schedule, self.total_updates)
        self.register_stateful("model", "optimizer", "lr_scheduler")
        self.register_best_state("model")
        self.register_ema("model")

    def build_dataloaders(self) -> None:
        ds = self.cfg.dataset
        for split, shuffle in (("train", True), ("valid", False), ("evaluate", False)):
            if self.cfg.execute_only is not None and split != self.cfg.execute_only:
                continue
            dataset = TinyDataset(ds[split].num_samples, seed={"train": 0, "valid": 1, "evaluate": 2}[split])
            self.dataloaders[split] = get_loader(
                dataset, None, batch_size=ds.batch_size, num_workers=ds.num_workers, seed=self.cfg.seed, shuffle=shuffle
            )

    def run_step(self, idx: int, batch: tp.Any, metrics: dict) -> dict:
        x, y = batch
        if self.is_training:  # augmentations drawing from every generator
            x = x * random.uniform(0.9, 1.1) + torch.from_numpy(np.random.normal(0, 0.01, x.shape)).float()
        with self.autocast:
            pred = self.model(x)
        loss = nn.functional.mse_loss(pred.float(), y)
        if self.is_training:
            metrics.update(self.backward_and_update(loss, self.optimizer, lr_scheduler=self.lr_scheduler))
            metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        kill_at = os.environ.get("TINY_KILL_AT")  # "epoch:step": SIGKILL ourselves there
        if kill_at and self.is_training and f"{self.epoch}:{idx}" == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        metrics["loss"] = loss.item()
        return metrics

    def evaluate(self) -> dict:
        self.model.eval()
        total, count = 0.0, 0
        for x, y in self.dataloaders["evaluate"]:
            total += nn.functional.mse_loss(self.model(x), y, reduction="sum").item()
            count += len(x)
        return {"mse": total / count}

    def run(self) -> None:
        """Train, then export the best model weights to ``<xp>/exported/tiny.bin`` (as the task solvers do)."""
        super().run()
        if self.epoch > self.cfg.optim.epochs and flashy.distrib.is_rank_zero():
            atomic_torch_save(
                {"best_state": self.best_state.state_dict()["model"]}, self.folder / "exported" / "tiny.bin"
            )

    def generate(self) -> dict:
        out = self.folder / "generated" / f"epoch_{self.epoch}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = torch.ones(1, DIM)
        out.write_text(json.dumps({"pred": self.model(probe).item(), "noise": torch.rand(1).item()}))
        return {"written": 1}


def make_xp(dora_dir: Path | str, cfg: DictConfig, name: str = "tiny") -> XP:
    """A Dora XP for ``cfg`` under ``dora_dir`` (signature from ``name``)."""
    dora = DoraConfig(dir=Path(dora_dir), exclude=[])
    return XP(dora=dora, cfg=cfg, argv=[], delta=[("name", name)])


def run_training(dora_dir: Path | str, cfg: DictConfig, name: str = "tiny") -> TinySolver:
    """Seed like audiocraft.train does, then build and run the solver inside its XP."""
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(1)
    xp = make_xp(dora_dir, cfg, name)
    xp.folder.mkdir(parents=True, exist_ok=True)
    with xp.enter():
        solver = TinySolver(cfg)
        solver.run()
    return solver


if __name__ == "__main__":
    import logging

    sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when run through runpy from another folder
    import tiny_solver  # this file as a module, so that tests can patch `tiny_solver:TinySolver.<method>`

    logging.basicConfig(level=logging.INFO)
    tiny_solver.run_training(
        sys.argv[1], make_cfg(**json.loads(sys.argv[2])), name=sys.argv[3] if len(sys.argv) > 3 else "tiny"
    )
