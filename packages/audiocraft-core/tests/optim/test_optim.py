"""Optimizers, schedules and EMA: values, state dicts and errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from audiocraft.optim import ModuleDictEMA, build_lr_scheduler, build_optimizer
from audiocraft.utils.checkpoint import load_checkpoint, save_checkpoint


def _lrs(name: str, steps: int = 12, total: int = 10, **kwargs) -> list[float]:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_lr_scheduler(opt, name, total, **kwargs)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_schedule_values():
    cos = _lrs("cosine", warmup=2, lr_min_ratio=0.1, cycle_length=1.0)
    assert cos[:3] == [0.0, 0.5, 1.0]
    assert math.isclose(cos[6], 0.1 + 0.45 * (1 + math.cos(math.pi * 4 / 8)))
    assert math.isclose(cos[10], 0.1) and math.isclose(cos[11], 0.1)
    assert _lrs("linear_warmup", warmup=4, warmup_init_lr=0.2)[:6] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1, 1])
    inv = _lrs("inverse_sqrt", warmup=4)
    assert inv[2] == 0.5 and math.isclose(inv[9], 2 / 3)
    poly = _lrs("polynomial_decay", warmup=2, end_lr=0.0, power=1)
    assert poly[2] == 1.0 and math.isclose(poly[6], 0.5) and poly[10] == 0.0
    assert _lrs("step", step_size=3, gamma=0.5)[:7] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    assert _lrs("exponential", lr_decay=0.5)[:3] == [1, 0.5, 0.25]
    assert build_lr_scheduler(torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1), None, 10) is None


def test_unknown_names_list_valid_keys():
    params = [nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match=r"'sgd'.*\['adam', 'adamw', 'dadam'\]"):
        build_optimizer(params, "sgd", lr=1.0)
    with pytest.raises(ValueError, match="'warmup_cosine'.*cosine"):
        build_lr_scheduler(torch.optim.SGD(params, lr=1.0), "warmup_cosine", 10)
    with pytest.raises(ValueError, match="lr_decay"):
        build_lr_scheduler(torch.optim.SGD(params, lr=1.0), "exponential", 10)


@pytest.mark.parametrize("name", ["adam", "adamw", "dadam"])
def test_optimizers_train_and_resume_exactly(tmp_path, name):
    torch.manual_seed(0)
    x, y = torch.randn(32, 4), torch.randn(32, 1)

    def make():
        torch.manual_seed(1)
        model = nn.Linear(4, 1)
        opt = build_optimizer(model, name, lr=1.0 if name == "dadam" else 0.05, betas=[0.9, 0.99])
        sched = build_lr_scheduler(opt, "cosine", 20, warmup=2)
        return model, opt, sched

    def step(model, opt, sched):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
        return loss.item()

    model, opt, sched = make()
    losses = [step(model, opt, sched) for _ in range(10)]
    assert losses[-1] < losses[0]
    model2, opt2, sched2 = make()
    for _ in range(5):
        step(model2, opt2, sched2)
    save_checkpoint(
        {"model": model2.state_dict(), "opt": opt2.state_dict(), "sched": sched2.state_dict()}, tmp_path / "c.th"
    )
    state = load_checkpoint(tmp_path / "c.th")
    model3, opt3, sched3 = make()
    model3.load_state_dict(state["model"])
    opt3.load_state_dict(state["opt"])
    sched3.load_state_dict(state["sched"])
    for _ in range(5):
        step(model3, opt3, sched3)
    assert torch.equal(model3.weight, model.weight)


def test_module_dict_ema():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModuleDictEMA(nn.ModuleDict({"model": model}), decay=0.5, unbias=False)
    with torch.no_grad():
        model[0].weight.fill_(1.0)
    start = ema.state["model"]["0.weight"].clone()
    ema.step()
    assert torch.allclose(ema.state["model"]["0.weight"], 0.5 * start + 0.5)
    assert "1.num_batches_tracked" not in ema.state["model"]  # integer buffers are not averaged
    assert "1.running_mean" in ema.state["model"]
    state = ema.state_dict()
    other = ModuleDictEMA(nn.ModuleDict({"model": nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))}), decay=0.5)
    other.load_state_dict(state)
    assert torch.equal(other.state["model"]["0.weight"], ema.state["model"]["0.weight"])
    unbiased = ModuleDictEMA(nn.ModuleDict({"model": model}), decay=0.9)
    unbiased.step()
    assert torch.equal(unbiased.state["model"]["0.weight"], model[0].weight)  # first unbiased step = current


def test_config_builders_live_in_optim_and_keep_upstream_names():
    from omegaconf import OmegaConf

    from audiocraft import optim
    from audiocraft.solvers import builders

    for name in ("get_optimizer", "get_lr_scheduler", "get_ema", "get_optim_parameter_groups"):
        assert getattr(builders, name) is getattr(optim, name), name
    cfg = OmegaConf.create(
        {
            "optimizer": "adam",
            "lr": 0.5,
            "adam": None,
            "schedule": {"lr_scheduler": "cosine", "cosine": None},
            "ema": None,
        }
    )
    model = nn.Linear(2, 1)
    opt = optim.get_optimizer(model, cfg)  # a null ``adam`` section means the optimizer's defaults
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["betas"] == (0.9, 0.999)
    sched = optim.get_lr_scheduler(opt, cfg.schedule, total_updates=4)
    assert isinstance(sched, optim.CosineLRScheduler) and opt.param_groups[0]["lr"] == 0.5
    assert optim.get_ema(nn.ModuleDict({"m": model}), cfg.ema) is None
    cfg.adam = [0.9, 0.99]
    with pytest.raises(ValueError, match=r"config section 'optim.adam' must be a mapping.*ListConfig"):
        optim.get_optimizer(model, cfg)
