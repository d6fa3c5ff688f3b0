"""AdversarialLoss: criteria values, a discriminator step on a toy problem, generator losses and state."""

import io

import pytest
import torch
from omegaconf import OmegaConf

from audiocraft.adversarial import (
    AdversarialLoss,
    FeatureMatchingLoss,
    MultiScaleSTFTDiscriminator,
    get_adv_criterion,
    get_adversarial_losses,
    get_adversary,
    get_fake_criterion,
    get_real_criterion,
)


def test_criteria_known_values():
    x = torch.tensor([-2.0, 0.0, 0.5, 3.0])
    assert get_adv_criterion("hinge")(x).item() == pytest.approx(-1.5 / 4)
    assert get_real_criterion("hinge")(x).item() == pytest.approx((3 + 1 + 0.5 + 0) / 4)
    assert get_fake_criterion("hinge")(x).item() == pytest.approx((0 + 1 + 1.5 + 4) / 4)
    assert get_adv_criterion("mse")(x).item() == pytest.approx((9 + 1 + 0.25 + 4) / 4)
    assert get_fake_criterion("mse")(x).item() == pytest.approx((4 + 0 + 0.25 + 9) / 4)
    assert get_adv_criterion("hinge2")(x).item() == pytest.approx((3 + 1 + 0.5) / 4)
    sp = torch.nn.functional.softplus
    assert get_adv_criterion("non_saturating")(x).item() == pytest.approx(sp(-x).mean().item())
    assert get_fake_criterion("non_saturating")(x).item() == pytest.approx(sp(x).mean().item())
    with pytest.raises(ValueError, match="expected one of"):
        get_adv_criterion("wgan")


def test_feature_matching():
    fake = [torch.ones(2, 3), torch.zeros(4)]
    real = [torch.zeros(2, 3), torch.full((4,), 2.0)]
    assert FeatureMatchingLoss()(fake, real).item() == pytest.approx((1 + 2) / 2)
    assert FeatureMatchingLoss(torch.nn.MSELoss(), normalize=False)(fake, real).item() == pytest.approx(1 + 4)


def _small_adv(loss_type="hinge"):
    torch.manual_seed(0)
    disc = MultiScaleSTFTDiscriminator(filters=4, n_ffts=[128, 64], hop_lengths=[32, 16], win_lengths=[128, 64])
    opt = torch.optim.Adam(disc.parameters(), lr=1e-3, betas=(0.5, 0.9))
    return AdversarialLoss(
        disc,
        opt,
        get_adv_criterion(loss_type),
        get_real_criterion(loss_type),
        get_fake_criterion(loss_type),
        FeatureMatchingLoss(),
    )


@pytest.mark.parametrize("loss_type", ["hinge", "mse"])
def test_discriminator_steps_reduce_its_loss(loss_type):
    adv = _small_adv(loss_type)
    gen = torch.Generator().manual_seed(1)
    t = torch.arange(1024) / 16000
    real = torch.sin(2 * torch.pi * 440 * t).view(1, 1, -1).repeat(4, 1, 1)
    fake = 0.3 * torch.randn(4, 1, 1024, generator=gen)
    losses = [adv.train_adv(fake, real).item() for _ in range(30)]
    assert losses[-1] < 0.75 * losses[0]
    # The trained adversary now tells them apart: the generator's adversarial loss is high for noise.
    adv_noise, feat_noise = adv(fake, real)
    adv_real, feat_real = adv(real.clone(), real)
    assert adv_noise.item() > adv_real.item()
    assert feat_real.item() == pytest.approx(0.0, abs=1e-6) and feat_noise.item() > 0


def test_generator_losses_leave_the_adversary_untouched_and_reach_the_fake():
    adv = _small_adv()
    fake = torch.randn(2, 1, 1024, requires_grad=True)
    real = torch.randn(2, 1, 1024)
    a, f = adv(fake, real)
    (a + f).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in adv.adversary.parameters())
    assert all(p.requires_grad for p in adv.adversary.parameters())


def test_state_dict_round_trip_includes_optimizer():
    adv = _small_adv()
    real = torch.randn(2, 1, 1024)
    for _ in range(2):
        adv.train_adv(torch.randn(2, 1, 1024), real)
    state = adv.state_dict()
    assert "optimizer" in state and state["optimizer"]["state"]
    assert any(k.startswith("adversary.discriminators.0.convs.1.conv.weight_") for k in state)
    buffer = io.BytesIO()
    torch.save(state, buffer)  # as in a checkpoint; also checks it loads with weights_only
    buffer.seek(0)
    other = _small_adv()
    other.load_state_dict(torch.load(buffer, weights_only=True))
    fake = torch.randn(2, 1, 1024)
    torch.testing.assert_close(adv.train_adv(fake, real), other.train_adv(fake, real))
    for p, q in zip(adv.adversary.parameters(), other.adversary.parameters()):
        torch.testing.assert_close(p, q)


def test_builders_from_upstream_config_sections():
    cfg = OmegaConf.create(
        {
            "device": "cpu",
            "optim": {"lr": 3e-4},
            "adversarial": {"every": 1, "adversaries": ["msstftd", "mpd"], "adv_loss": "hinge", "feat_loss": "l1"},
            "l1": {},
            "msstftd": {
                "in_channels": 1,
                "out_channels": 1,
                "filters": 4,
                "norm": "weight_norm",
                "n_ffts": [128],
                "hop_lengths": [32],
                "win_lengths": [128],
                "activation": "LeakyReLU",
                "activation_params": {"negative_slope": 0.3},
            },
            "mpd": {
                "in_channels": 1,
                "out_channels": 1,
                "periods": [2],
                "n_layers": 2,
                "kernel_size": 5,
                "stride": 3,
                "filters": 2,
                "filter_scales": 4,
                "max_filters": 16,
                "activation": "LeakyReLU",
                "activation_params": {"negative_slope": 0.3},
                "norm": "weight_norm",
            },
        }
    )
    losses = get_adversarial_losses(cfg, lambda params, optim: torch.optim.Adam(params, lr=optim.lr))
    assert list(losses) == ["msstftd", "mpd"]
    assert losses["mpd"].adversary.discriminators[0].convs[0].conv.kernel_size == (5, 1)
    assert isinstance(losses["msstftd"].loss_feat, FeatureMatchingLoss)
    with pytest.raises(ValueError, match="unknown adversary 'nope'"):
        get_adversary("nope", cfg)
