"""Optimisers, learning-rate schedules and EMA for training (``audiocraft.optim``).

Part of audiocraft-core (training layer): `build_optimizer` (adam, adamw, dadam), `build_lr_scheduler`
(cosine, linear_warmup, inverse_sqrt, polynomial_decay, exponential, step), `ModuleDictEMA`, the schedule
classes with upstream AudioCraft's names, and the config-reading builders `get_optimizer`, `get_lr_scheduler`
and `get_ema` (re-exported by `audiocraft.solvers.builders` under upstream's path). All are state-dict-able and
go in training checkpoints.
"""

from .builders import (
    build_lr_scheduler,
    build_optimizer,
    get_ema,
    get_lr_scheduler,
    get_optim_parameter_groups,
    get_optimizer,
)
from .dadam import DAdaptAdam
from .ema import ModuleDictEMA
from .schedulers import (
    CosineLRScheduler,
    InverseSquareRootLRScheduler,
    LinearWarmupLRScheduler,
    PolynomialDecayLRScheduler,
)

__all__ = [
    "CosineLRScheduler",
    "DAdaptAdam",
    "InverseSquareRootLRScheduler",
    "LinearWarmupLRScheduler",
    "ModuleDictEMA",
    "PolynomialDecayLRScheduler",
    "build_lr_scheduler",
    "build_optimizer",
    "get_ema",
    "get_lr_scheduler",
    "get_optim_parameter_groups",
    "get_optimizer",
]
