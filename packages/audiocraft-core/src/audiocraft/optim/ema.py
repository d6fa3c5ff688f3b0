"""Exponential moving average of the float tensors of a `torch.nn.ModuleDict`.

Part of audiocraft-core (training layer). The solver registers modules with ``register_ema``; the averaged
copy is swapped in for the valid stage and becomes the best state. Its state dict holds tensors and a
float, so it goes in ``weights_only`` checkpoints.
"""

from __future__ import annotations

import typing as tp

import torch
from torch import nn


def _non_persistent_buffers(module: nn.Module) -> set[str]:
    names = set()
    for prefix, sub in module.named_modules():
        for name in getattr(sub, "_non_persistent_buffers_set", ()):
            names.add(f"{prefix}.{name}" if prefix else name)
    return names


def _named_tensors(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    skip = _non_persistent_buffers(module)
    buffers = [(name, buf) for name, buf in module.named_buffers() if name not in skip]
    return list(module.named_parameters()) + buffers


class ModuleDictEMA:
    """EMA of every floating parameter and persistent buffer of ``module_dict``.

    Args:
        module_dict: modules to average, by name (the names match the solver's stateful names).
        decay: EMA decay.
        unbias: use the bias-corrected average (weight ``1 / count``) as upstream does.
        device: where the averages live (None: same device as each tensor).
    """

    def __init__(
        self,
        module_dict: nn.ModuleDict,
        decay: float = 0.999,
        unbias: bool = True,
        device: torch.device | str | None = "cpu",
    ):
        self.decay = decay
        self.module_dict = module_dict
        self.unbias = unbias
        self.device = device
        self.count = 0.0
        self.state: dict[str, dict[str, torch.Tensor]] = {}
        self._init()

    def _init(self) -> None:
        for module_name, module in self.module_dict.items():
            self.state[module_name] = {}
            for key, val in _named_tensors(module):
                if val.is_floating_point():
                    device = self.device or val.device
                    self.state[module_name][key] = val.detach().to(device, copy=True)

    @torch.no_grad()
    def step(self) -> None:
        """Update the averages with the current values."""
        if self.unbias:
            self.count = self.count * self.decay + 1
            w = 1 / self.count
        else:
            w = 1 - self.decay
        for module_name, module in self.module_dict.items():
            averages = self.state[module_name]
            for key, val in _named_tensors(module):
                if val.is_floating_point():
                    avg = averages[key]
                    avg.mul_(1 - w).add_(val.detach().to(avg.device), alpha=w)

    def state_dict(self) -> dict[str, tp.Any]:
        """Return the averages and the bias-correction count.

        Returns:
            ``{"state": {module name: {tensor name: average}}, "count": float}``.
        """
        return {"state": self.state, "count": self.count}

    def load_state_dict(self, state: dict[str, tp.Any]) -> None:
        """Copy saved averages into the registered ones, in place.

        Args:
            state: a dict from `state_dict`.

        Raises:
            KeyError: when ``state`` holds a module that is not registered here.
        """
        self.count = float(state["count"])
        for module_name, tensors in state["state"].items():
            if module_name not in self.state:
                raise KeyError(f"EMA state has module {module_name!r} not registered here ({sorted(self.state)})")
            for key, val in tensors.items():
                self.state[module_name][key].copy_(val)
