"""Tiny regression solver used by the meta-package tests through ``dora run`` (registered with
``AUDIOCRAFT_EXTRA_SOLVERS=tiny=meta_tiny_solver:TinySolver``)."""

from __future__ import annotations

import os
import signal
import typing as tp

import torch
from torch import nn
from torch.utils.data import Dataset

from audiocraft.solvers import builders
from audiocraft.solvers.base import StandardSolver
from audiocraft.utils.utils import get_loader


class Synthetic(Dataset):
    def __init__(self, num_samples: int, seed: int):
        self.num_samples, self.seed, self.epoch = num_samples, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch * 1009 + index)
        x = torch.randn(4, generator=gen)
        return x, x.sum(dim=0, keepdim=True)


class TinySolver(StandardSolver):
    @property
    def best_metric_name(self) -> str:
        return "loss"

    def build_model(self) -> None:
        self.model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.1), nn.Linear(8, 1))
        self.optimizer = builders.get_optimizer(self.model, self.cfg.optim)
        self.register_stateful("model", "optimizer")
        self.register_best_state("model")
        self.register_ema("model")

    def build_dataloaders(self) -> None:
        for seed, split in enumerate(("train", "valid", "evaluate")):
            if self.cfg.execute_only in (None, split):
                dataset = Synthetic(self.cfg.dataset[split].num_samples, seed)
                self.dataloaders[split] = get_loader(
                    dataset, None, self.cfg.dataset.batch_size, 0, self.cfg.seed, shuffle=split == "train"
                )

    def run_step(self, idx: int, batch: tp.Any, metrics: dict) -> dict:
        x, y = batch
        loss = nn.functional.mse_loss(self.model(x), y)
        if self.is_training:
            metrics.update(self.backward_and_update(loss, self.optimizer))
        if self.is_training and os.environ.get("TINY_KILL_AT") == f"{self.epoch}:{idx}":
            os.kill(os.getpid(), signal.SIGKILL)  # the resume tests kill the run here
        metrics["loss"] = loss.item()
        return metrics

    def evaluate(self) -> dict:
        x, y = next(iter(self.dataloaders["evaluate"]))
        return {"mse": nn.functional.mse_loss(self.model(x), y).item()}

    def generate(self) -> None:
        return None
