"""Optimisers, learning-rate schedules and EMA for training (``audiocraft.optim``).

Part of audiocraft-core (training layer): `build_optimizer` (adam, adamw, dadam), `build_lr_scheduler`
(cosine, linear_warmup, inverse_sqrt, polynomial_decay, exponential, step), `ModuleDictEMA`, and the schedule
classes with upstream AudioCraft's names. All are state-dict-able and go in training checkpoints.
"""

from .builders import build_lr_scheduler, build_optimizer, get_optim_parameter_groups
from .dadam import DAdaptAdam
from .ema import ModuleDictEMA
from .schedulers import (
                         CosineLRScheduler,
                         InverseSquareRootLRScheduler,
                         LinearWarmupLRScheduler,
                         PolynomialDecayLRScheduler,
)

__all__ = ["CosineLRScheduler", "DAdaptAdam", "InverseSquareRootLRScheduler", "LinearWarmupLRScheduler",
           "ModuleDictEMA", "PolynomialDecayLRScheduler", "build_lr_scheduler", "build_optimizer",
           "get_optim_parameter_groups"]
