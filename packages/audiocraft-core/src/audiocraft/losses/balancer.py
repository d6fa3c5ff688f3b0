"""Gradient-norm loss balancer from EnCodec (audiocraft-core, training losses).

Given a model output `y` and losses `l_i(y)`, the balancer takes each partial gradient
`g_i = d l_i / d y`, rescales it so that loss `i` contributes a fraction `w_i / sum(w)` of a
gradient of norm `total_norm`, using an exponential moving average of `||g_i||`, and back-propagates
the sum through the model in one call::

    G = sum_i total_norm * (w_i / sum_j w_j) * g_i / (eps + ema(||g_i||))

With `balance_grads=False` this is the plain weighted sum `sum_i w_i * g_i`. The numerics are
upstream AudioCraft's; the moving average lives in float64 tensors (no host synchronisation per
step) and is part of `state_dict()` so that a resumed run continues with the same averages.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import autograd
from torch import distributed as dist


class Balancer:
    """Loss balancer.

    Example::

        balancer = Balancer({'l1': 0.1, 'msspec': 2.0})
        y = model(x)
        losses = {'l1': l1(y, x), 'msspec': msspec(y, x)}
        effective_loss = balancer.backward(losses, y)  # fills the model's .grad
        optimizer.step()

    Args:
        weights: weight of each loss, keyed like the `losses` given to `backward`.
        balance_grads: rescale each partial gradient by its averaged norm; if False, weights are plain multipliers.
        total_norm: reference norm of the combined gradient when balancing.
        ema_decay: decay of the moving average of the norms (1.0 is a plain running mean).
        per_batch_item: compute the norm per batch item and average them (else over the whole batch).
        epsilon: numerical floor added to the averaged norms.
        monitor: store in `metrics` the fraction of the summed averaged norms each loss represents.
    """

    def __init__(
        self,
        weights: dict[str, float],
        balance_grads: bool = True,
        total_norm: float = 1.0,
        ema_decay: float = 0.999,
        per_batch_item: bool = True,
        epsilon: float = 1e-12,
        monitor: bool = False,
    ):
        self.weights = dict(weights)
        self.balance_grads = balance_grads
        self.total_norm = total_norm or 1.0
        self.ema_decay = ema_decay or 1.0
        self.per_batch_item = per_batch_item
        self.epsilon = epsilon
        self.monitor = monitor
        self._ema_total: dict[str, torch.Tensor] = {}
        self._ema_fix: dict[str, float] = {}
        self._metrics: dict[str, Any] = {}

    @property
    def metrics(self) -> dict[str, Any]:
        """Ratios `ratio_<name>` from the last `backward` when `monitor` is on, else empty."""
        return self._metrics

    def _update_averages(self, norms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for name, norm in norms.items():
            previous = self._ema_total.get(name)
            value = norm.detach().to(torch.float64)
            self._ema_total[name] = value if previous is None else previous.to(value.device) * self.ema_decay + value
            self._ema_fix[name] = self._ema_fix.get(name, 0.0) * self.ema_decay + 1.0
        return {name: self._ema_total[name] / self._ema_fix[name] for name in norms}

    @staticmethod
    def _average_workers(values: dict[str, torch.Tensor], count: int) -> dict[str, torch.Tensor]:
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1 or not values:
            return values
        names = list(values)
        stacked = torch.stack([values[name] for name in names] + [torch.ones_like(values[names[0]])]) * count
        dist.all_reduce(stacked)
        averaged = stacked[:-1] / stacked[-1]
        return {name: averaged[i] for i, name in enumerate(names)}

    def backward(
        self, losses: dict[str, torch.Tensor], input: torch.Tensor, extra_loss: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Back-propagate the balanced combination of `losses` through `input`.

        Args:
            losses: scalar losses, keyed like `weights`, each depending on the model only through `input`.
            input: the model output `[B, ...]` the losses were computed from.
            extra_loss: a scalar loss back-propagated as is (not balanced, e.g. a quantizer penalty), in the same
                backward pass, which saves a second pass through the shared part of the graph.

        Returns:
            The effective loss `sum_i scale_i * l_i` (detached, without `extra_loss`), with the scales applied.

        Raises:
            KeyError: a loss has no weight.
        """
        missing = [name for name in losses if name not in self.weights]
        if missing:
            raise KeyError(f"Balancer got losses {missing} with no weight; weights are for {sorted(self.weights)}")
        if extra_loss is not None and not extra_loss.requires_grad:
            extra_loss = None
        if not self.balance_grads and not self.monitor:
            # Plain weighted sum: one backward pass gives the same gradient as summing partial gradients.
            total = sum((self.weights[name] * loss for name, loss in losses.items()), input.new_zeros(()))
            to_backward = total if extra_loss is None else total + extra_loss
            if to_backward.requires_grad:
                to_backward.backward()
            self._metrics = {}
            return total.detach()

        grads: dict[str, torch.Tensor] = {}
        norms: dict[str, torch.Tensor] = {}
        for name, loss in losses.items():
            (grad,) = autograd.grad(loss, [input], retain_graph=True)
            if self.per_batch_item:
                norms[name] = grad.norm(dim=tuple(range(1, grad.dim())), p=2).mean()
            else:
                norms[name] = grad.norm(p=2)
            grads[name] = grad
        count = len(input) if self.per_batch_item else 1
        avg_norms = self._average_workers(self._update_averages(norms), count)

        self._metrics = {}
        if self.monitor:
            total_avg = sum(avg_norms.values())
            self._metrics = {f"ratio_{name}": norm / total_avg for name, norm in avg_norms.items()}

        total_weights = sum(self.weights[name] for name in avg_norms)
        if total_weights <= 0:
            raise ValueError(f"Balancer: the weights of {sorted(avg_norms)} sum to {total_weights}, must be > 0")
        out_grad = torch.zeros_like(input)
        effective_loss = input.new_zeros(())
        for name, avg_norm in avg_norms.items():
            if self.balance_grads:
                ratio = self.weights[name] / total_weights
                scale: torch.Tensor | float = (ratio * self.total_norm / (self.epsilon + avg_norm)).to(input.dtype)
            else:
                scale = self.weights[name]
            out_grad.add_(grads[name] * scale)
            effective_loss = effective_loss + scale * losses[name].detach()
        if extra_loss is None:
            input.backward(out_grad)
        else:
            torch.autograd.backward([input, extra_loss], [out_grad, torch.ones_like(extra_loss)])
        return effective_loss

    def state_dict(self) -> dict[str, Any]:
        """Moving averages of the gradient norms (tensors and floats only)."""
        return {"ema_total": {k: v.detach().cpu() for k, v in self._ema_total.items()}, "ema_fix": dict(self._ema_fix)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the moving averages saved by `state_dict`."""
        self._ema_total = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in state.get("ema_total", {}).items()}
        self._ema_fix = {k: float(v) for k, v in state.get("ema_fix", {}).items()}
