"""Optimizer, learning-rate schedule and EMA builders, dispatching by name through dict literals.

Part of audiocraft-core (training layer). `build_optimizer` / `build_lr_scheduler` take plain keyword
arguments; `get_optimizer`, `get_lr_scheduler` and `get_ema` read upstream AudioCraft's config sections
(``optim``, ``schedule``, ``optim.ema``). Upstream had the config readers in ``audiocraft.solvers.builders``,
which re-exports them under the same names; they live here so that the solver base class and the adversarial
builders can use them without importing the solver registry (which imports both).
"""

from __future__ import annotations

import typing as tp

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from ..utils.utils import dict_from_config
from .dadam import DAdaptAdam
from .ema import ModuleDictEMA
from .schedulers import (
    CosineLRScheduler,
    InverseSquareRootLRScheduler,
    LinearWarmupLRScheduler,
    PolynomialDecayLRScheduler,
)

_OPTIMIZERS: dict[str, tp.Callable[..., Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "dadam": DAdaptAdam,
}


def get_optim_parameter_groups(model: nn.Module) -> list[dict[str, tp.Any]]:
    """Parameter groups: one per submodule defining ``make_optim_group()``, plus one for the rest."""
    seen: set[nn.Parameter] = set()
    groups = []
    for _, module in model.named_modules():
        if hasattr(module, "make_optim_group"):
            group = module.make_optim_group()
            params = set(group["params"])
            if not params.isdisjoint(seen):
                raise ValueError(f"parameters of {module.__class__.__name__} appear in two optimizer groups")
            seen |= params
            groups.append(group)
    others = [p for p in model.parameters() if p not in seen]
    return [{"params": others}] + groups


def build_optimizer(
    params: nn.Module | tp.Iterable[torch.Tensor] | tp.Iterable[dict], optimizer: str, lr: float, **kwargs: tp.Any
) -> Optimizer:
    """Build an optimizer by name.

    Args:
        params: a module (its ``make_optim_group`` groups are honoured) or parameters / groups.
        optimizer: ``'adam'``, ``'adamw'`` or ``'dadam'``.
        lr: learning rate.
        **kwargs: optimizer keyword arguments (``betas``, ``weight_decay``, ...).

    Raises:
        ValueError: for an unknown optimizer name, listing the valid ones.
    """
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {sorted(_OPTIMIZERS)}")
    parameters = get_optim_parameter_groups(params) if isinstance(params, nn.Module) else params
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    factory: tp.Callable[..., Optimizer] = _OPTIMIZERS[optimizer]
    return factory(parameters, lr=lr, **kwargs)


def _step(
    optimizer: Optimizer, total_updates: int, step_size: int | None = None, gamma: float | None = None
) -> LRScheduler:
    if step_size is None or gamma is None:
        raise ValueError("schedule.step needs step_size and gamma")
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)


def _exponential(optimizer: Optimizer, total_updates: int, lr_decay: float | None = None) -> LRScheduler:
    if lr_decay is None:
        raise ValueError("schedule.exponential needs lr_decay")
    return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=lr_decay)


def _cosine(optimizer: Optimizer, total_updates: int, warmup: int | None = None, **kw: tp.Any) -> LRScheduler:
    return CosineLRScheduler(optimizer, total_steps=total_updates, warmup_steps=warmup, **kw)


def _polynomial(optimizer: Optimizer, total_updates: int, warmup: int | None = None, **kw: tp.Any) -> LRScheduler:
    return PolynomialDecayLRScheduler(optimizer, total_steps=total_updates, warmup_steps=warmup, **kw)


def _inverse_sqrt(optimizer: Optimizer, total_updates: int, warmup: int | None = None, **kw: tp.Any) -> LRScheduler:
    return InverseSquareRootLRScheduler(optimizer, warmup_steps=warmup, **kw)


def _linear_warmup(optimizer: Optimizer, total_updates: int, warmup: int | None = None, **kw: tp.Any) -> LRScheduler:
    return LinearWarmupLRScheduler(optimizer, warmup_steps=warmup, **kw)


_SCHEDULERS: dict[str, tp.Callable[..., LRScheduler]] = {
    "step": _step,
    "exponential": _exponential,
    "cosine": _cosine,
    "polynomial_decay": _polynomial,
    "inverse_sqrt": _inverse_sqrt,
    "linear_warmup": _linear_warmup,
}


def build_lr_scheduler(
    optimizer: Optimizer, lr_scheduler: str | None, total_updates: int, **kwargs: tp.Any
) -> LRScheduler | None:
    """Build a learning rate schedule by name (stepped once per update).

    Args:
        optimizer: the optimizer.
        lr_scheduler: ``'step'``, ``'exponential'``, ``'cosine'``, ``'polynomial_decay'``, ``'inverse_sqrt'``,
            ``'linear_warmup'``, or None for a constant learning rate.
        total_updates: total number of updates of the run.
        **kwargs: the schedule's section of the config (e.g. ``warmup``, ``lr_min_ratio``).

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    if lr_scheduler is None:
        return None
    if lr_scheduler not in _SCHEDULERS:
        raise ValueError(f"unknown lr_scheduler {lr_scheduler!r}; expected one of {sorted(_SCHEDULERS)} or null")
    return _SCHEDULERS[lr_scheduler](optimizer, total_updates, **kwargs)


def get_optimizer(params: nn.Module | tp.Iterable[torch.Tensor], cfg: tp.Any) -> Optimizer:
    """Optimizer from the ``optim`` section (``optimizer``, ``lr`` and the ``adam`` keyword arguments).

    Raises:
        KeyError: when the section has no ``optimizer`` key (e.g. the whole config was passed).
    """
    if "optimizer" not in cfg:
        hint = " (pass cfg.optim, not the whole config)" if "optim" in cfg else ""
        raise KeyError(f"no 'optimizer' key in the optim config{hint}")
    kwargs = dict_from_config(cfg.get("adam"), "optim.adam")
    return build_optimizer(params, cfg.optimizer, lr=cfg.lr, **kwargs)


def get_lr_scheduler(optimizer: Optimizer, cfg: tp.Any, total_updates: int) -> LRScheduler | None:
    """Schedule from the ``schedule`` section: ``lr_scheduler`` names the sub-section holding its arguments.

    Raises:
        KeyError: when the section has no ``lr_scheduler`` key.
    """
    if "lr_scheduler" not in cfg:
        raise KeyError("no 'lr_scheduler' key in the schedule config")
    name = cfg.lr_scheduler
    kwargs = dict_from_config(cfg.get(name), f"schedule.{name}") if name is not None else {}
    return build_lr_scheduler(optimizer, name, total_updates, **kwargs)


def get_ema(module_dict: nn.ModuleDict, cfg: tp.Any) -> ModuleDictEMA | None:
    """EMA from the ``optim.ema`` section (None when ``use`` is false or the section is null).

    Raises:
        ValueError: when ``use`` is true and ``module_dict`` is empty.
    """
    kw = dict_from_config(cfg, "optim.ema")
    if not kw.pop("use", False):
        return None
    if len(module_dict) == 0:
        raise ValueError("optim.ema.use=true but no module was registered with register_ema")
    return ModuleDictEMA(module_dict, decay=kw.pop("decay", 0.999), device=kw.pop("device", None))
