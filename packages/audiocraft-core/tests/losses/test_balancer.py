"""Balancer: gradient proportions, upstream numerics (EMA, per-batch-item norms) and state."""

import flashy
import pytest
import torch
from torch import autograd

from audiocraft.losses import Balancer, get_balancer


def _reference_upstream(weights, steps, balance_grads, total_norm, ema_decay, per_batch_item, eps=1e-12):
    """Upstream's balancer equations, written out with flashy's averager (float64 python EMA)."""
    averager = flashy.averager(ema_decay)
    out = []
    for y, losses in steps:
        grads, norms = {}, {}
        for name, loss in losses.items():
            (grad,) = autograd.grad(loss, [y], retain_graph=True)
            norms[name] = grad.norm(dim=tuple(range(1, grad.dim()))).mean() if per_batch_item else grad.norm()
            grads[name] = grad
        avg = averager(norms)
        total_w = sum(weights[k] for k in avg)
        g = torch.zeros_like(y)
        for name, a in avg.items():
            scale = weights[name] / total_w * total_norm / (eps + a) if balance_grads else weights[name]
            g += grads[name] * scale
        out.append(g)
    return out


def _make_steps(seed, n=3):
    gen = torch.Generator().manual_seed(seed)
    steps = []
    for _ in range(n):
        y = torch.randn(4, 1, 50, generator=gen, requires_grad=True)
        target = torch.randn(4, 1, 50, generator=gen)
        steps.append(
            (
                y,
                {
                    "l1": torch.nn.functional.l1_loss(y, target),
                    "l2": 100 * torch.nn.functional.mse_loss(y, target),
                    "cube": (y**3).mean(),
                },
            )
        )
    return steps


@pytest.mark.parametrize("per_batch_item", [True, False])
@pytest.mark.parametrize("balance_grads", [True, False])
def test_matches_upstream_numerics(per_batch_item, balance_grads):
    weights = {"l1": 1.0, "l2": 3.0, "cube": 0.5}
    expected = _reference_upstream(weights, _make_steps(0), balance_grads, 2.0, 0.9, per_batch_item)
    balancer = Balancer(
        weights, balance_grads=balance_grads, total_norm=2.0, ema_decay=0.9, per_batch_item=per_batch_item
    )
    for (y, losses), exp in zip(_make_steps(0), expected):
        balancer.backward(losses, y)
        torch.testing.assert_close(y.grad, exp, rtol=1e-5, atol=1e-7)


def test_gradient_fractions_follow_weights():
    # One step, ema of one value = the norm itself: each loss contributes total_norm * w_i / sum(w) in norm.
    y = torch.randn(2, 1, 30, requires_grad=True)
    w = {"a": 2.0, "b": 1.0}
    balancer = Balancer(w, balance_grads=True, total_norm=1.5, ema_decay=0.999, per_batch_item=False, monitor=True)
    loss_a = 1000 * (y**2).sum()
    loss_b = 1e-3 * y.sum()
    (ga,) = autograd.grad(loss_a, [y], retain_graph=True)
    (gb,) = autograd.grad(loss_b, [y], retain_graph=True)
    effective = balancer.backward({"a": loss_a, "b": loss_b}, y)
    expected = 1.5 * (2 / 3) * ga / ga.norm() + 1.5 * (1 / 3) * gb / gb.norm()
    torch.testing.assert_close(y.grad, expected)
    sa, sb = 1.5 * (2 / 3) / ga.norm(), 1.5 * (1 / 3) / gb.norm()
    assert effective.item() == pytest.approx((sa * loss_a + sb * loss_b).item(), rel=1e-5)
    ratios = balancer.metrics
    assert ratios["ratio_a"].item() + ratios["ratio_b"].item() == pytest.approx(1.0)


def test_plain_weighted_sum_flows_to_parameters():
    lin = torch.nn.Linear(3, 3)
    x = torch.randn(5, 3)
    y = lin(x)
    balancer = Balancer({"a": 2.0, "b": 0.5}, balance_grads=False)
    loss = balancer.backward({"a": y.pow(2).mean(), "b": y.mean()}, y)
    ref = torch.nn.Linear(3, 3)
    ref.load_state_dict(lin.state_dict())
    y2 = ref(x)
    (2.0 * y2.pow(2).mean() + 0.5 * y2.mean()).backward()
    torch.testing.assert_close(lin.weight.grad, ref.weight.grad)
    assert loss.item() == pytest.approx((2.0 * y2.pow(2).mean() + 0.5 * y2.mean()).item())


def test_state_dict_round_trip_continues_the_averages():
    weights = {"l1": 1.0, "l2": 3.0, "cube": 0.5}
    first = Balancer(weights, ema_decay=0.5)
    steps = _make_steps(3, n=4)
    for y, losses in steps[:2]:
        first.backward(losses, y)
    second = Balancer(weights, ema_decay=0.5)
    second.load_state_dict(first.state_dict())
    for y, losses in steps[2:]:
        first.backward(losses, y)
    for (y, losses), (y_ref, _) in zip(_make_steps(3, n=4)[2:], steps[2:]):
        second.backward(losses, y)
        torch.testing.assert_close(y.grad, y_ref.grad)


def test_unknown_loss_and_builder_errors():
    from omegaconf import OmegaConf

    balancer = get_balancer(
        {"a": 1.0},
        OmegaConf.create({"balance_grads": True, "ema_decay": 0.999, "per_batch_item": True, "total_norm": 1.0}),
    )
    y = torch.randn(2, 3, requires_grad=True)
    with pytest.raises(KeyError, match="no weight"):
        balancer.backward({"b": y.sum()}, y)
    with pytest.raises(ValueError, match="balancer"):
        get_balancer({"a": 1.0}, OmegaConf.create({"bogus": 1}))


@pytest.mark.parametrize("balance_grads", [True, False])
def test_extra_loss_in_the_same_pass_equals_a_separate_backward(balance_grads):
    torch.manual_seed(0)
    x = torch.randn(4, 3)
    encoder, decoder = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    clone_enc, clone_dec = torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)
    clone_enc.load_state_dict(encoder.state_dict())
    clone_dec.load_state_dict(decoder.state_dict())
    weights = {"a": 1.0, "b": 2.0}

    def losses_of(enc, dec):
        z = enc(x)
        y = dec(z)
        return y, {"a": y.pow(2).mean(), "b": (y - 1).abs().mean()}, z.pow(2).mean()  # last: a "penalty" on z

    y, losses, penalty = losses_of(encoder, decoder)
    penalty.backward(retain_graph=True)  # upstream's order: penalty first, then the balancer
    Balancer(weights, balance_grads=balance_grads, per_batch_item=False).backward(losses, y)
    y2, losses2, penalty2 = losses_of(clone_enc, clone_dec)
    Balancer(weights, balance_grads=balance_grads, per_batch_item=False).backward(losses2, y2, extra_loss=penalty2)
    for p, q in zip(
        list(encoder.parameters()) + list(decoder.parameters()),
        list(clone_enc.parameters()) + list(clone_dec.parameters()),
    ):
        torch.testing.assert_close(p.grad, q.grad)
