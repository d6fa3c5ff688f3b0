"""Builders turning the `adversarial` config and the discriminator sections (`msstftd`, `msd`, `mpd`)
into adversarial losses (audiocraft-core, adversarial training).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

OptimizerFactory = Callable[[Iterable[nn.Parameter], DictConfig], torch.optim.Optimizer]


def _adversary_classes() -> dict[str, Callable[..., nn.Module]]:
    from .discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator, MultiScaleSTFTDiscriminator
    return {
        'msd': MultiScaleDiscriminator,
        'mpd': MultiPeriodDiscriminator,
        'msstftd': MultiScaleSTFTDiscriminator,
    }


def _section(cfg: DictConfig, name: str) -> dict[str, Any]:
    section = cfg.get(name)
    container = OmegaConf.to_container(section, resolve=True) if section is not None else {}
    if not isinstance(container, dict):
        raise ValueError(f"config section {name!r} must be a mapping, got {container!r}")
    return {str(k): v for k, v in container.items()}


def get_adversary(name: str, cfg: DictConfig) -> nn.Module:
    """Build discriminator `name` (`msstftd`, `msd` or `mpd`) from the config section of the same name.

    The `mpd` section uses upstream's config keys `kernel_size` and `filter_scales`, which are
    mapped to `PeriodDiscriminator`'s `kernel_sizes=[kernel_size, 3]` and `filters_scale`.

    Raises:
        ValueError: unknown name, or a bad key in its section.
    """
    classes = _adversary_classes()
    if name not in classes:
        raise ValueError(f"unknown adversary {name!r} (adversarial.adversaries); expected one of {sorted(classes)}")
    kwargs = _section(cfg, name)
    if name == 'mpd':
        if 'kernel_size' in kwargs:
            kwargs['kernel_sizes'] = [kwargs.pop('kernel_size'), 3]
        if 'filter_scales' in kwargs:
            kwargs['filters_scale'] = kwargs.pop('filter_scales')
    try:
        return classes[name](**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad arguments in config section {name!r}: {kwargs}: {exc}") from exc


def _solver_optimizer(params: Iterable[nn.Parameter], optim_cfg: DictConfig) -> torch.optim.Optimizer:
    from audiocraft.solvers.builders import get_optimizer
    return get_optimizer(params, optim_cfg)


def get_adversarial_losses(cfg: DictConfig, optimizer_factory: OptimizerFactory | None = None) -> nn.ModuleDict:
    """Build one `AdversarialLoss` per name in `cfg.adversarial.adversaries`.

    Args:
        cfg: the full solver config (`adversarial`, the discriminator sections, `optim`, `device`, `l1`/`l2`).
        optimizer_factory: builds each discriminator's optimizer from `cfg.optim`; defaults to
            `audiocraft.solvers.builders.get_optimizer`.

    Returns:
        A ModuleDict mapping adversary name to its `AdversarialLoss`.
    """
    from .losses import AdversarialLoss, FeatureMatchingLoss, get_adv_criterion, get_fake_criterion, get_real_criterion
    adv_cfg = cfg.adversarial
    adversaries = list(adv_cfg.get('adversaries') or [])
    adv_loss_name = adv_cfg.adv_loss
    feat_loss_name = adv_cfg.get('feat_loss')
    normalize = bool(adv_cfg.get('normalize', True))
    feat_loss: FeatureMatchingLoss | None = None
    if feat_loss_name:
        feat_losses = {'l1': nn.L1Loss, 'l2': nn.MSELoss}
        if feat_loss_name not in feat_losses:
            raise ValueError(f"unknown feature loss {feat_loss_name!r} (adversarial.feat_loss); "
                             f"expected one of {sorted(feat_losses)}")
        feat_loss = FeatureMatchingLoss(feat_losses[feat_loss_name](**_section(cfg, feat_loss_name)), normalize)
    loss = get_adv_criterion(adv_loss_name)
    loss_real = get_real_criterion(adv_loss_name)
    loss_fake = get_fake_criterion(adv_loss_name)
    factory = optimizer_factory or _solver_optimizer
    device = cfg.get('device', 'cpu')
    adv_losses = nn.ModuleDict()
    for name in adversaries:
        adversary = get_adversary(name, cfg).to(device)
        optimizer = factory(adversary.parameters(), cfg.optim)
        adv_losses[name] = AdversarialLoss(adversary, optimizer, loss=loss, loss_real=loss_real, loss_fake=loss_fake,
                                           loss_feat=feat_loss, normalize=normalize)
    return adv_losses
