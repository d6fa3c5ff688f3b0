"""Builders turning the `losses`/`balancer` config sections into loss modules (audiocraft-core, training losses).

Dispatch goes through one dict literal keyed by upstream's loss names; each loss reads its
keyword arguments from the config section of the same name (`cfg.mel`, `cfg.msspec`, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig
from torch import nn

from ..utils.utils import dict_from_config


def _loss_classes() -> dict[str, Callable[..., nn.Module]]:
    from . import sisnr, specloss, stftloss

    return {
        "l1": nn.L1Loss,
        "l2": nn.MSELoss,
        "mel": specloss.MelSpectrogramL1Loss,
        "mrstft": stftloss.MRSTFTLoss,
        "msspec": specloss.MultiScaleMelSpectrogramLoss,
        "sisnr": sisnr.SISNR,
    }


LOSS_NAMES = ("l1", "l2", "mel", "mrstft", "msspec", "sisnr")


def get_loss(loss_name: str, cfg: DictConfig) -> nn.Module:
    """Build loss `loss_name` with the keyword arguments in `cfg.<loss_name>`.

    Args:
        loss_name: one of `l1`, `l2`, `mel`, `mrstft`, `msspec`, `sisnr`.
        cfg: the full solver config.

    Raises:
        ValueError: unknown loss name, or a bad key in its section.
    """
    classes = _loss_classes()
    if loss_name not in classes:
        raise ValueError(
            f"unknown loss {loss_name!r} (config key losses.{loss_name}); expected one of {sorted(classes)}"
        )
    kwargs = dict_from_config(cfg.get(loss_name), loss_name)
    try:
        return classes[loss_name](**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad arguments in config section {loss_name!r}: {kwargs}: {exc}") from exc


def get_balancer(loss_weights: dict[str, float], cfg: DictConfig) -> Any:
    """Build the `Balancer` for `loss_weights` from the `balancer` config section.

    Args:
        loss_weights: weight of each balanced loss.
        cfg: the `balancer` section (`balance_grads`, `total_norm`, `ema_decay`, `per_batch_item`, ...).
    """
    from .balancer import Balancer

    container = dict_from_config(cfg, "balancer")
    try:
        return Balancer(loss_weights, **container)
    except TypeError as exc:
        raise ValueError(f"bad arguments in config section 'balancer': {container}: {exc}") from exc
