"""Gated linear unit activations of the transformer feed-forward block (layer: audiocraft-models, modules).

A GLU splits its input in two halves ``a, b`` along ``dim`` and returns ``a * f(b)``: its output is half the size of
its input. :class:`~audiocraft.modules.transformer.StreamingTransformerLayer` sizes its second linear accordingly
(``dim_feedforward // 2`` inputs); upstream keeps ``dim_feedforward`` there and crashes.
"""

from __future__ import annotations

import typing as tp

import torch
from torch import nn

__all__ = ["CustomGLU", "SwiGLU", "GeGLU", "ReGLU", "get_activation_fn"]


class CustomGLU(nn.Module):
    """Gated linear unit ``a * activation(b)`` where ``a, b`` are the two halves of the input along ``dim``.

    Args:
        activation (nn.Module): the gate activation ``f``.
        dim (int): the dimension split in two (its size must be even).
    """

    def __init__(self, activation: nn.Module, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[..., 2 N, ...] -> [..., N, ...]."""
        if x.shape[self.dim] % 2:
            raise ValueError(f"{type(self).__name__} needs an even size along dim {self.dim}, got {tuple(x.shape)}")
        a, b = x.chunk(2, dim=self.dim)
        return a * self.activation(b)


class SwiGLU(CustomGLU):
    """GLU with a SiLU gate: ``a * silu(b)``.

    Args:
        dim (int): the dimension split in two.
    """

    def __init__(self, dim: int = -1) -> None:
        super().__init__(nn.SiLU(), dim)


class GeGLU(CustomGLU):
    """GLU with a GELU gate: ``a * gelu(b)``.

    Args:
        dim (int): the dimension split in two.
    """

    def __init__(self, dim: int = -1) -> None:
        super().__init__(nn.GELU(), dim)


class ReGLU(CustomGLU):
    """GLU with a ReLU gate: ``a * relu(b)``.

    Args:
        dim (int): the dimension split in two.
    """

    def __init__(self, dim: int = -1) -> None:
        super().__init__(nn.ReLU(), dim)


_GLUS: dict[str, tp.Callable[[], CustomGLU]] = {"reglu": ReGLU, "geglu": GeGLU, "swiglu": SwiGLU}

Activation = str | tp.Callable[[torch.Tensor], torch.Tensor]


def get_activation_fn(activation: Activation) -> Activation:
    """Map ``'reglu'``, ``'geglu'`` and ``'swiglu'`` to a new GLU module; return anything else unchanged.

    Other strings (``'relu'``, ``'gelu'``) are resolved by the transformer layer, as in upstream.

    Args:
        activation (str or callable): the activation name or function.

    Returns:
        str or callable: a GLU module, or ``activation`` itself.
    """
    if isinstance(activation, str) and activation in _GLUS:
        return _GLUS[activation]()
    return activation
