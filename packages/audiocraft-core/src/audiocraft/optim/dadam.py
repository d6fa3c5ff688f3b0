"""D-Adaptation Adam: Adam whose step size ``d`` is estimated online (Defazio & Mishchenko, 2023).

Part of audiocraft-core (training layer). Selected with ``optim.optimizer=dadam``; use ``lr=1`` and let ``d``
adapt. Same hyper-parameters and update rule as upstream AudioCraft's ``DAdaptAdam``.
"""

from __future__ import annotations

import logging
import typing as tp

import torch

logger = logging.getLogger(__name__)


def _to_real(x: torch.Tensor) -> torch.Tensor:
    return x.real if torch.is_complex(x) else x


class DAdaptAdam(torch.optim.Optimizer):
    """Adam with D-Adaptation of the learning rate.

    Args:
        params: parameters or parameter groups.
        lr: learning rate multiplier (1.0 recommended).
        betas: Adam betas.
        eps: denominator epsilon.
        weight_decay: weight decay.
        log_every: log ``d`` every this many steps (0: never).
        decouple: AdamW-style decoupled weight decay.
        d0: initial estimate of ``d``.
        growth_rate: cap of the multiplicative growth of ``d`` per step.
    """

    def __init__(
        self,
        params: tp.Any,
        lr: float = 1.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        log_every: int = 0,
        decouple: bool = True,
        d0: float = 1e-6,
        growth_rate: float = float("inf"),
    ):
        if not 0.0 < d0:
            raise ValueError(f"invalid d0 {d0}")
        if not 0.0 < lr:
            raise ValueError(f"invalid learning rate {lr}")
        if not 0.0 < eps:
            raise ValueError(f"invalid epsilon {eps}")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            d=d0,
            k=0,
            gsq_weighted=0.0,
            log_every=log_every,
            decouple=decouple,
            growth_rate=growth_rate,
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: tp.Callable | None = None) -> tp.Any:  # type: ignore[override]
        """Perform one optimization step with the D-Adaptation estimate of the learning rate scale ``d``.

        Args:
            closure: optional callable that re-evaluates the model and returns the loss.

        Returns:
            The loss returned by ``closure``, or None without a closure.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        first = self.param_groups[0]
        lr = max(group["lr"] for group in self.param_groups)
        d = first["d"]
        dlr = d * lr
        beta1, beta2 = first["betas"]
        g_sq = torch.zeros(())
        sksq_weighted = torch.zeros(())
        sk_l1 = torch.zeros(())
        for group in self.param_groups:
            if group["lr"] not in (lr, 0.0):
                raise RuntimeError("DAdaptAdam requires every parameter group to have the same lr (or 0)")
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"] != 0 and not group["decouple"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if "step" not in state:
                    state["step"] = 0
                    state["s"] = torch.zeros_like(p)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(_to_real(p))
                if group["lr"] > 0:
                    grad_grad = _to_real(grad * grad.conj())
                    state["exp_avg"].mul_(beta1).add_(grad, alpha=dlr * (1 - beta1))
                    state["exp_avg_sq"].mul_(beta2).add_(grad_grad, alpha=1 - beta2)
                    denom = state["exp_avg_sq"].sqrt().add_(group["eps"])
                    g_sq += (grad_grad / denom).sum().cpu()
                    s = state["s"]
                    s.mul_(beta2).add_(grad, alpha=dlr * (1 - beta2))
                    sksq_weighted += (_to_real(s * s.conj()) / denom).sum().cpu()
                    sk_l1 += s.abs().sum().cpu()
        gsq_weighted = beta2 * first["gsq_weighted"] + g_sq.item() * (dlr**2) * (1 - beta2)
        sk_l1_value = sk_l1.item()
        if sk_l1_value == 0:
            return loss
        if lr > 0.0:
            d_hat = (sksq_weighted.item() / (1 - beta2) - gsq_weighted) / sk_l1_value
            d = max(d, min(d_hat, d * first["growth_rate"]))
        if first["log_every"] > 0 and first["k"] % first["log_every"] == 0:
            logger.info("DAdaptAdam: d=%.3e lr=%.3e", d, lr)
        for group in self.param_groups:
            group["gsq_weighted"] = gsq_weighted
            group["d"] = d
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                state["step"] += 1
                denom = state["exp_avg_sq"].sqrt().add_(group["eps"]).to(p.dtype)
                if group["weight_decay"] != 0 and group["decouple"] and group["lr"] > 0:
                    p.add_(p, alpha=-group["weight_decay"] * dlr)
                p.addcdiv_(state["exp_avg"], denom, value=-1)
            group["k"] = group["k"] + 1
        return loss
