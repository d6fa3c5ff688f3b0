"""Weight normalisation with upstream's checkpoint layout (layer: audiocraft-models, modules).

Upstream AudioCraft used ``torch.nn.utils.weight_norm``, which stores a weight-normed ``weight`` as two
parameters ``weight_g`` (magnitude, ``[out, 1, ...]``) and ``weight_v`` (direction). That function is deprecated in
torch in favour of parametrizations, which store them as ``parametrizations.weight.original0`` / ``original1``.
This module re-implements the hook-based layout, so state-dict keys stay those of upstream's published checkpoints,
and accepts all three layouts when loading (``weight_g``/``weight_v``, parametrizations, or a plain folded
``weight``). :func:`remove_weight_norm` folds the two parameters back into one ``weight`` for fast inference.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import torch
from torch import nn

M = TypeVar("M", bound=nn.Module)

__all__ = ["weight_norm", "remove_weight_norm", "has_weight_norm", "effective_weight"]

_PARAM_G = "parametrizations.weight.original0"
_PARAM_V = "parametrizations.weight.original1"


def _norm_except_dim(v: torch.Tensor, dim: int) -> torch.Tensor:
    """L2 norm of ``v`` over every dimension but ``dim``, shaped to broadcast against ``v``."""
    return torch.norm_except_dim(v, 2, dim)


class _WeightNorm:
    """Forward pre-hook computing ``weight = weight_v * weight_g / ||weight_v||`` before each call."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._cache: tuple[tuple[int, ...], torch.Tensor] | None = None

    def compute(self, module: nn.Module) -> torch.Tensor:
        return torch._weight_norm(_param(module, "weight_v"), _param(module, "weight_g"), self.dim)

    def _cached(self, module: nn.Module) -> torch.Tensor:
        """Without autograd (inference), reuse the weight until ``weight_g``/``weight_v`` change.

        In-place updates (optimizer steps, ``load_state_dict``) bump a tensor's ``_version``, and a new tensor has
        a new ``data_ptr``, so the key below changes whenever the weight would.
        """
        g, v = _param(module, "weight_g"), _param(module, "weight_v")
        key = (g.data_ptr(), g._version, v.data_ptr(), v._version, int(torch.is_inference_mode_enabled()))
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self.compute(module))
        return self._cache[1]

    def weight(self, module: nn.Module) -> torch.Tensor:
        return self.compute(module) if torch.is_grad_enabled() else self._cached(module)

    def __call__(self, module: nn.Module, inputs: Any) -> None:
        # A plain attribute (not a parameter) that only lives during the forward call; see `_drop_weight`.
        object.__setattr__(module, "weight", self.weight(module))


def _param(module: nn.Module, name: str) -> torch.Tensor:
    return cast(torch.Tensor, module._parameters[name])


def _hook(module: nn.Module) -> _WeightNorm:
    return cast(_WeightNorm, module.__dict__["_ac_weight_norm"])


def _drop_weight(module: nn.Module, inputs: Any, output: Any) -> None:
    # Keeping the computed (non-leaf) tensor around would break `copy.deepcopy(module)` and hold the graph.
    module.__dict__.pop("weight", None)


def _load_pre_hook(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Accept the parametrization layout and the folded layout when loading a weight-normed module."""
    hook = _hook(module)
    g_key, v_key = prefix + "weight_g", prefix + "weight_v"
    if g_key in state_dict or v_key in state_dict:
        return
    if prefix + _PARAM_G in state_dict and prefix + _PARAM_V in state_dict:
        state_dict[g_key] = state_dict.pop(prefix + _PARAM_G)
        state_dict[v_key] = state_dict.pop(prefix + _PARAM_V)
    elif prefix + "weight" in state_dict:
        weight = state_dict.pop(prefix + "weight")
        state_dict[v_key] = weight
        state_dict[g_key] = _norm_except_dim(weight, hook.dim)


def weight_norm(module: M, dim: int = 0) -> M:
    """Reparametrise ``module.weight`` as ``weight_g`` and ``weight_v`` (upstream's layout), in place.

    Args:
        module: a module with a ``weight`` parameter (convolution, linear...).
        dim: the dimension kept by the norm (0 = output channels for Conv, input channels for ConvTranspose,
            as ``torch.nn.utils.weight_norm`` does).

    Returns:
        The same module.
    """
    if has_weight_norm(module):
        raise ValueError(f"weight norm is already applied to {module}")
    weight = _param(module, "weight")
    del module._parameters["weight"]
    module.register_parameter("weight_g", nn.Parameter(_norm_except_dim(weight, dim).detach()))
    module.register_parameter("weight_v", nn.Parameter(weight.detach()))
    hook = _WeightNorm(dim)
    module.__dict__["_ac_weight_norm"] = hook
    handles = [
        module.register_forward_pre_hook(hook),
        module.register_forward_hook(_drop_weight),
        module.register_load_state_dict_pre_hook(_load_pre_hook),
    ]
    module.__dict__["_ac_weight_norm_handles"] = handles
    return module


def has_weight_norm(module: nn.Module) -> bool:
    """Whether :func:`weight_norm` was applied to ``module``."""
    return "_ac_weight_norm" in module.__dict__


def remove_weight_norm(module: nn.Module) -> nn.Module:
    """Fold ``weight_g``/``weight_v`` back into a single ``weight`` parameter, in place.

    The module then computes exactly the same function with one tensor fewer per call, but its state-dict keys
    become ``weight`` (which :func:`weight_norm`-ed modules also accept when loading).
    """
    if not has_weight_norm(module):
        raise ValueError(f"weight norm is not applied to {module}")
    with torch.no_grad():
        weight = _hook(module).compute(module).detach().clone()
    for handle in module.__dict__.pop("_ac_weight_norm_handles"):
        handle.remove()
    del module._parameters["weight_g"], module._parameters["weight_v"]
    del module.__dict__["_ac_weight_norm"]
    module.__dict__.pop("weight", None)
    module.register_parameter("weight", nn.Parameter(weight))
    return module


def effective_weight(module: nn.Module) -> torch.Tensor | None:
    """The weight ``module``'s forward would use: weight-normed, or a plain ``weight`` parameter.

    Returns None for other reparametrisations (e.g. spectral norm), whose forward must be called instead.
    """
    if has_weight_norm(module):
        return _hook(module).weight(module)
    if module._forward_pre_hooks or "weight" not in module._parameters:
        return None
    return _param(module, "weight")
