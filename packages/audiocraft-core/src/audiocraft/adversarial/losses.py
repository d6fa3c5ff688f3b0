"""Adversarial losses: the discriminator-training wrapper, GAN criteria and feature matching.

Part of audiocraft-core (adversarial training).

`AdversarialLoss` owns a discriminator and its optimizer: `train_adv(fake, real)` makes one
discriminator update, and calling it returns the generator's adversarial and feature-matching
losses. Its `state_dict()` carries the optimizer state under `<prefix>optimizer`, as upstream's,
so a solver registering the wrapper saves and restores both in its checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flashy
import torch
from torch import nn
from torch.nn import functional as F

AdvLossType = nn.Module | Callable[[torch.Tensor], torch.Tensor]
FeatLossType = nn.Module | Callable[[list[torch.Tensor], list[torch.Tensor]], torch.Tensor]


def _check_output(output: Any) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    logits, fmaps = output
    if not (isinstance(logits, list) and all(isinstance(t, torch.Tensor) for t in logits)):
        raise TypeError(f"adversary must return a list of logits tensors, got {type(logits)}")
    if not (isinstance(fmaps, list) and all(isinstance(f, list) for f in fmaps)):
        raise TypeError(f"adversary must return a list of feature-map lists, got {type(fmaps)}")
    return logits, fmaps


class AdversarialLoss(nn.Module):
    """Adversary training wrapper.

    Example::

        adv = AdversarialLoss(disc, torch.optim.Adam(disc.parameters()), hinge_loss, hinge_real_loss,
                              hinge_fake_loss, FeatureMatchingLoss())
        for real in loader:
            fake = generator(real)
            adv.train_adv(fake, real)        # one discriminator step
            adv_loss, feat_loss = adv(fake, real)  # generator losses

    Args:
        adversary: module returning `(list of logits, list of feature-map lists)` for a waveform `[B, C, T]`.
        optimizer: optimizer of the adversary's parameters.
        loss: generator criterion on the logits of fake samples.
        loss_real: discriminator criterion on the logits of real samples.
        loss_fake: discriminator criterion on the logits of fake samples.
        loss_feat: feature-matching loss between fake and real feature maps, or None.
        normalize: divide the losses by the number of sub-discriminators.
    """

    def __init__(
        self,
        adversary: nn.Module,
        optimizer: torch.optim.Optimizer,
        loss: AdvLossType,
        loss_real: AdvLossType,
        loss_fake: AdvLossType,
        loss_feat: FeatLossType | None = None,
        normalize: bool = True,
    ):
        super().__init__()
        self.adversary: nn.Module = adversary
        flashy.distrib.broadcast_model(self.adversary)
        self.optimizer = optimizer
        self.loss = loss
        self.loss_real = loss_real
        self.loss_fake = loss_fake
        self.loss_feat = loss_feat
        self.normalize = normalize

    def _save_to_state_dict(self, destination: dict[str, Any], prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "optimizer"] = self.optimizer.state_dict()

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        key = prefix + "optimizer"
        if key in state_dict:
            self.optimizer.load_state_dict(state_dict.pop(key))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def get_adversary_pred(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        """Run the adversary on `x` `[B, C, T]` and check its output format."""
        return _check_output(self.adversary(x))

    def train_adv(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Make one optimizer step of the adversary on detached `fake` and `real` `[B, C, T]`.

        Fake and real go through the adversary as one batch. Gradients are synchronised across
        workers before the step.

        Returns:
            The discriminator loss (detached scalar).
        """
        logits, _ = self.get_adversary_pred(torch.cat([fake.detach(), real.detach()], dim=0))
        loss = fake.new_zeros(())
        for logit in logits:
            logit_fake, logit_real = logit.chunk(2, dim=0)
            loss = loss + self.loss_fake(logit_fake) + self.loss_real(logit_real)
        if self.normalize:
            loss = loss / len(logits)
        self.optimizer.zero_grad()
        with flashy.distrib.eager_sync_model(self.adversary):
            loss.backward()
        self.optimizer.step()
        return loss.detach()

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Generator losses for `fake` against `real` `[B, C, T]`, the adversary kept frozen.

        Returns:
            `(adv, feat)`: the adversarial loss of the fake logits and the feature-matching loss
            (0 when there is no feature loss).
        """
        adv = fake.new_zeros(())
        feat = fake.new_zeros(())
        with flashy.utils.readonly(self.adversary):
            logits_fake, fmaps_fake = self.get_adversary_pred(fake)
            with torch.no_grad():  # the real branch needs no graph: nothing upstream of it is trained here
                _, fmaps_real = self.get_adversary_pred(real)
            for logit in logits_fake:
                adv = adv + self.loss(logit)
            if self.loss_feat is not None:
                for fmap_fake, fmap_real in zip(fmaps_fake, fmaps_real):
                    feat = feat + self.loss_feat(fmap_fake, fmap_real)
        if self.normalize:
            adv = adv / len(logits_fake)
            feat = feat / len(logits_fake)
        return adv, feat


def mse_real_loss(x: torch.Tensor) -> torch.Tensor:
    """Least-squares discriminator loss on real logits: `mean((x - 1)^2)`."""
    return F.mse_loss(x, torch.ones_like(x))


def mse_fake_loss(x: torch.Tensor) -> torch.Tensor:
    """Least-squares discriminator loss on fake logits: `mean(x^2)`."""
    return F.mse_loss(x, torch.zeros_like(x))


def hinge_real_loss(x: torch.Tensor) -> torch.Tensor:
    """Hinge discriminator loss on real logits: `mean(relu(1 - x))`."""
    return -torch.mean(torch.clamp(x - 1, max=0.0))


def hinge_fake_loss(x: torch.Tensor) -> torch.Tensor:
    """Hinge discriminator loss on fake logits: `mean(relu(1 + x))`."""
    return -torch.mean(torch.clamp(-x - 1, max=0.0))


def mse_loss(x: torch.Tensor) -> torch.Tensor:
    """Least-squares generator loss: `mean((x - 1)^2)`."""
    if x.numel() == 0:
        return x.new_zeros(())
    return F.mse_loss(x, torch.ones_like(x))


def hinge_loss(x: torch.Tensor) -> torch.Tensor:
    """Hinge generator loss: `-mean(x)`."""
    if x.numel() == 0:
        return x.new_zeros(())
    return -x.mean()


def hinge2_loss(x: torch.Tensor) -> torch.Tensor:
    """Clipped hinge generator loss: `mean(relu(1 - x))`."""
    if x.numel() == 0:
        return x.new_zeros(())
    return -torch.mean(torch.clamp(x - 1, max=0.0))


def non_saturating_loss(x: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: `mean(softplus(-x)) = -mean(log sigmoid(x))`."""
    if x.numel() == 0:
        return x.new_zeros(())
    return F.softplus(-x).mean()


def non_saturating_real_loss(x: torch.Tensor) -> torch.Tensor:
    """Non-saturating (BCE) discriminator loss on real logits: `mean(softplus(-x))`."""
    return F.softplus(-x).mean()


def non_saturating_fake_loss(x: torch.Tensor) -> torch.Tensor:
    """Non-saturating (BCE) discriminator loss on fake logits: `mean(softplus(x))`."""
    return F.softplus(x).mean()


_CRITERIA: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], ...]] = {
    # name: (generator loss, discriminator loss on fake, discriminator loss on real)
    "mse": (mse_loss, mse_fake_loss, mse_real_loss),
    "hinge": (hinge_loss, hinge_fake_loss, hinge_real_loss),
    "hinge2": (hinge2_loss, hinge_fake_loss, hinge_real_loss),
    "non_saturating": (non_saturating_loss, non_saturating_fake_loss, non_saturating_real_loss),
}
ADVERSARIAL_LOSSES = list(_CRITERIA)
"""Names of the GAN criteria (`get_adv_criterion`, `get_fake_criterion`, `get_real_criterion`)."""


def _criteria(loss_type: str) -> tuple[Callable[[torch.Tensor], torch.Tensor], ...]:
    if loss_type not in _CRITERIA:
        raise ValueError(
            f"unknown adversarial loss {loss_type!r} (adversarial.adv_loss); expected one of {sorted(_CRITERIA)}"
        )
    return _CRITERIA[loss_type]


def get_adv_criterion(loss_type: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Generator criterion for `loss_type` (`mse`, `hinge`, `hinge2`, `non_saturating`)."""
    return _criteria(loss_type)[0]


def get_fake_criterion(loss_type: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Discriminator criterion on fake logits for `loss_type`."""
    return _criteria(loss_type)[1]


def get_real_criterion(loss_type: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Discriminator criterion on real logits for `loss_type`."""
    return _criteria(loss_type)[2]


class FeatureMatchingLoss(nn.Module):
    """Feature-matching loss: distance between the adversary's feature maps of fake and real samples.

    Args:
        loss: distance between two feature maps (default L1).
        normalize: divide by the number of feature maps.
    """

    def __init__(self, loss: nn.Module | None = None, normalize: bool = True):
        super().__init__()
        self.loss = loss if loss is not None else nn.L1Loss()
        self.normalize = normalize

    def forward(self, fmap_fake: list[torch.Tensor], fmap_real: list[torch.Tensor]) -> torch.Tensor:
        """Args: fmap_fake, fmap_real: feature maps of one sub-discriminator, pairwise of equal shapes."""
        if len(fmap_fake) != len(fmap_real) or not fmap_fake:
            raise ValueError(
                f"feature matching needs two equally long, non-empty lists, got {len(fmap_fake)} and {len(fmap_real)}"
            )
        feat_loss = fmap_fake[0].new_zeros(())
        for feat_fake, feat_real in zip(fmap_fake, fmap_real):
            if feat_fake.shape != feat_real.shape:
                raise ValueError(f"feature maps differ in shape: {tuple(feat_fake.shape)} vs {tuple(feat_real.shape)}")
            feat_loss = feat_loss + self.loss(feat_fake, feat_real)
        if self.normalize:
            feat_loss = feat_loss / len(fmap_fake)
        return feat_loss
