"""Learning rate schedules: cosine, linear warmup, inverse square root and polynomial decay, each with a warmup.

They are ``torch.optim.lr_scheduler.LRScheduler`` subclasses, stepped once per update.

Part of audiocraft-core (training layer). Their state dicts hold only numbers and lists (checkpoint safe).
Formulas follow upstream AudioCraft so that configs give the same learning rates.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class _StepLRScheduler(LRScheduler):
    def _lr_at(self, base_lr: float, step: int) -> float:
        raise NotImplementedError

    def get_lr(self) -> list[float]:  # type: ignore[override]
        return [self._lr_at(float(base_lr), self.last_epoch) for base_lr in self.base_lrs]


class CosineLRScheduler(_StepLRScheduler):
    """Linear warmup then cosine decay to ``lr_min_ratio * lr`` at ``total_steps``.

    Args:
        optimizer: the optimizer.
        total_steps: total number of updates.
        warmup_steps: warmup updates (None means 0).
        lr_min_ratio: final learning rate as a fraction of the base one.
        cycle_length: fraction of a half cosine period covered over training.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        total_steps: int,
        warmup_steps: int | None = 0,
        lr_min_ratio: float = 0.0,
        cycle_length: float = 1.0,
    ):
        self.warmup_steps = int(warmup_steps or 0)
        if self.warmup_steps < 0 or self.warmup_steps >= max(total_steps, 1):
            raise ValueError(f"cosine warmup must be in [0, total_steps={total_steps}), got {warmup_steps}")
        self.total_steps = total_steps
        self.lr_min_ratio = lr_min_ratio
        self.cycle_length = cycle_length
        super().__init__(optimizer)

    def _lr_at(self, base_lr: float, step: int) -> float:
        if step < self.warmup_steps:
            return base_lr * step / self.warmup_steps
        if step <= self.total_steps:
            s = (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)
            cosine = 1.0 + math.cos(math.pi * s / self.cycle_length)
            ratio = self.lr_min_ratio + 0.5 * (1 - self.lr_min_ratio) * cosine
            return base_lr * ratio
        return base_lr * self.lr_min_ratio


class _WarmupFromInitLR(_StepLRScheduler):
    """Linear warmup from ``warmup_init_lr`` to the base learning rate over ``warmup_steps``, then `_after_warmup`."""

    def __init__(self, optimizer: Optimizer, warmup_steps: int | None = 0, warmup_init_lr: float | None = 0.0):
        self.warmup_steps = int(warmup_steps or 0)
        self.warmup_init_lr = float(warmup_init_lr or 0.0)
        super().__init__(optimizer)

    def _after_warmup(self, base_lr: float, step: int) -> float:
        raise NotImplementedError

    def _lr_at(self, base_lr: float, step: int) -> float:
        if step < self.warmup_steps:
            return self.warmup_init_lr + step * (base_lr - self.warmup_init_lr) / self.warmup_steps
        return self._after_warmup(base_lr, step)


class LinearWarmupLRScheduler(_WarmupFromInitLR):
    """Linear warmup from ``warmup_init_lr`` to the base learning rate, then constant."""

    def _after_warmup(self, base_lr: float, step: int) -> float:
        return base_lr


class InverseSquareRootLRScheduler(_WarmupFromInitLR):
    """Linear warmup, then decay proportional to ``1 / sqrt(step)``."""

    def _after_warmup(self, base_lr: float, step: int) -> float:
        return base_lr * max(self.warmup_steps, 1) ** 0.5 * max(step, 1) ** -0.5


class PolynomialDecayLRScheduler(_StepLRScheduler):
    """Optional zero-lr steps, linear warmup, then polynomial decay to ``end_lr`` at ``total_steps``."""

    def __init__(
        self,
        optimizer: Optimizer,
        total_steps: int,
        warmup_steps: int | None = 0,
        end_lr: float = 0.0,
        zero_lr_warmup_steps: int = 0,
        power: float = 1.0,
    ):
        self.warmup_steps = int(warmup_steps or 0)
        self.total_steps = total_steps
        self.end_lr = end_lr
        self.zero_lr_warmup_steps = zero_lr_warmup_steps
        self.power = power
        super().__init__(optimizer)

    def _lr_at(self, base_lr: float, step: int) -> float:
        if self.zero_lr_warmup_steps > 0 and step <= self.zero_lr_warmup_steps:
            return 0.0
        if self.warmup_steps > 0 and step <= self.warmup_steps + self.zero_lr_warmup_steps:
            return base_lr * (step - self.zero_lr_warmup_steps) / float(self.warmup_steps)
        if step >= self.total_steps:
            return self.end_lr
        total_warmup = self.warmup_steps + self.zero_lr_warmup_steps
        remaining = 1 - (step - total_warmup) / (self.total_steps - total_warmup)
        return (base_lr - self.end_lr) * remaining**self.power + self.end_lr
