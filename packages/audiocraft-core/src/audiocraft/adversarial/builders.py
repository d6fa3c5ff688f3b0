"""Builders turning the `adversarial` config and the discriminator sections into adversarial losses.

The sections are `msstftd`, `msd` and `mpd` (audiocraft-core, adversarial training).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from omegaconf import DictConfig
from torch import nn

from ..optim.builders import get_optimizer
from ..utils.utils import dict_from_config

OptimizerFactory = Callable[[Iterable[nn.Parameter], DictConfig], torch.optim.Optimizer]


def _adversary_classes() -> dict[str, Callable[..., nn.Module]]:
    from .discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator, MultiScaleSTFTDiscriminator

    return {
        "msd": MultiScaleDiscriminator,
        "mpd": MultiPeriodDiscriminator,
        "msstftd": MultiScaleSTFTDiscriminator,
    }


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
    kwargs = dict_from_config(cfg.get(name), name)
    if name == "mpd":
        if "kernel_size" in kwargs:
            kwargs["kernel_sizes"] = [kwargs.pop("kernel_size"), 3]
        if "filter_scales" in kwargs:
            kwargs["filters_scale"] = kwargs.pop("filter_scales")
    try:
        return classes[name](**kwargs)
    except TypeError as exc:
        raise ValueError(f"bad arguments in config section {name!r}: {kwargs}: {exc}") from exc


def get_adversarial_losses(cfg: DictConfig, optimizer_factory: OptimizerFactory | None = None) -> nn.ModuleDict:
    """Build one `AdversarialLoss` per name in `cfg.adversarial.adversaries`.

    Args:
        cfg: the full solver config (`adversarial`, the discriminator sections, `optim`, `device`, `l1`/`l2`).
        optimizer_factory: builds each discriminator's optimizer from `cfg.optim`; defaults to
            `audiocraft.optim.get_optimizer`.

    Returns:
        A ModuleDict mapping adversary name to its `AdversarialLoss`.
    """
    from .losses import AdversarialLoss, FeatureMatchingLoss, get_adv_criterion, get_fake_criterion, get_real_criterion

    adv_cfg = cfg.adversarial
    adversaries = list(adv_cfg.get("adversaries") or [])
    adv_loss_name = adv_cfg.adv_loss
    feat_loss_name = adv_cfg.get("feat_loss")
    normalize = bool(adv_cfg.get("normalize", True))
    feat_loss: FeatureMatchingLoss | None = None
    if feat_loss_name:
        feat_losses = {"l1": nn.L1Loss, "l2": nn.MSELoss}
        if feat_loss_name not in feat_losses:
            raise ValueError(
                f"unknown feature loss {feat_loss_name!r} (adversarial.feat_loss); "
                f"expected one of {sorted(feat_losses)}"
            )
        feat_kwargs = dict_from_config(cfg.get(feat_loss_name), feat_loss_name)
        feat_loss = FeatureMatchingLoss(feat_losses[feat_loss_name](**feat_kwargs), normalize)
    loss = get_adv_criterion(adv_loss_name)
    loss_real = get_real_criterion(adv_loss_name)
    loss_fake = get_fake_criterion(adv_loss_name)
    factory = optimizer_factory or get_optimizer
    device = cfg.get("device", "cpu")
    adv_losses = nn.ModuleDict()
    for name in adversaries:
        adversary = get_adversary(name, cfg).to(device)
        optimizer = factory(adversary.parameters(), cfg.optim)
        adv_losses[name] = AdversarialLoss(
            adversary,
            optimizer,
            loss=loss,
            loss_real=loss_real,
            loss_fake=loss_fake,
            loss_feat=feat_loss,
            normalize=normalize,
        )
    return adv_losses
