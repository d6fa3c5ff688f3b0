"""Stateful metric base class with exact reduction across torch.distributed workers.

Private module of `audiocraft.metrics` (layer: metrics, above `audiocraft.data` only). Every metric in this
package keeps its running state as *sums and counts* (never running averages), registered with
`Metric.add_state`. `Metric.compute` reads those states after an all-reduce (SUM) over the default process
group when one is initialised, so that a metric computed over data split between workers equals the metric
computed over the whole data on one worker. The local states are never modified by the reduction, so
`compute()` can be called several times, and `reset()` starts a new accumulation.
"""

from typing import Any

import torch
from torch import nn


def is_distributed() -> bool:
    """Whether a default torch.distributed process group with more than one worker is initialised."""
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Returns the sum of `tensor` over all workers (a copy; the input is left untouched).

    Without an initialised process group (or with a single worker) this is a plain copy.
    """
    out = tensor.detach().clone()
    if is_distributed():
        torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.SUM)
    return out


class Metric(nn.Module):
    """Base class for the stateful metrics of `audiocraft.metrics`.

    Subclasses declare their states in `__init__` with `add_state(name, default)`, add to them in `update(...)`
    and turn the reduced states into a score in `compute()`, reading them through `reduced_states()`.
    States are non-persistent buffers: they follow `.to(device)` but are not saved in `state_dict()`.

    Every state is reduced by summation, so only additive quantities (sums, sums of squares, counts) may be
    stored. Every worker must register states of the same shape and dtype, in the same order.
    """

    def __init__(self) -> None:
        super().__init__()
        self._state_defaults: dict[str, torch.Tensor] = {}

    def add_state(self, name: str, default: torch.Tensor) -> None:
        """Registers an additive state `name` starting at `default` (copied)."""
        if name in self._state_defaults:
            raise ValueError(f"state {name!r} is already registered on {type(self).__name__}")
        self._state_defaults[name] = default.detach().clone()
        self.register_buffer(name, default.detach().clone(), persistent=False)

    @property
    def state_names(self) -> list[str]:
        """Names of the registered states, in registration order."""
        return list(self._state_defaults)

    def reset(self) -> None:
        """Sets every state back to its default value."""
        for name, default in self._state_defaults.items():
            current = getattr(self, name)
            setattr(self, name, default.clone().to(current.device))

    def reduced_states(self) -> dict[str, torch.Tensor]:
        """Returns the states summed over all workers (copies; local states are unchanged).

        Under torch.distributed, every worker must call this (through `compute()`) at the same point: it is
        a collective operation.
        """
        names = self.state_names
        if not names:
            return {}
        if not is_distributed():
            return {name: getattr(self, name).detach().clone() for name in names}
        # One all-reduce per dtype: flatten the states of that dtype into one buffer.
        out: dict[str, torch.Tensor] = {}
        by_dtype: dict[torch.dtype, list[str]] = {}
        for name in names:
            by_dtype.setdefault(getattr(self, name).dtype, []).append(name)
        for dtype in sorted(by_dtype, key=str):
            group = by_dtype[dtype]
            flat = torch.cat([getattr(self, name).detach().reshape(-1) for name in group])
            flat = all_reduce_sum(flat)
            offset = 0
            for name in group:
                state = getattr(self, name)
                out[name] = flat[offset : offset + state.numel()].reshape(state.shape).clone()
                offset += state.numel()
        return {name: out[name] for name in names}

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Adds a batch to the running states."""
        raise NotImplementedError(f"{type(self).__name__} must implement update()")

    def compute(self) -> Any:
        """Returns the metric over everything seen since the last `reset()`, on all workers."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute()")

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Calling a metric adds the batch to its states (same as `update`)."""
        return self.update(*args, **kwargs)
