"""Linear layers on weights prepacked for oneDNN, for CPU generation (layer: audiocraft-models, modules; private).

A generation step multiplies a few rows (batch x CFG branches) by every weight matrix of the LM. On CPU, with so
few rows, ``F.linear`` (MKL's sgemm) runs far below the memory bandwidth; oneDNN's inner product on a weight
reordered once into its blocked layout runs 1.5-3x faster on the LM's shapes (measured on 2 and 8 rows, see
docs/BENCHMARKS.md). :func:`pack_weight` makes that copy (an opaque ``torch._mkldnn`` tensor) and
:func:`packed_linear` uses it, falling back to ``F.linear`` whenever the packed kernel does not apply.

The results equal ``F.linear``'s to float32 rounding (another summation order: about 1e-6 relative), not bit for
bit; unlike ``F.linear``'s, each row's result does not depend on the other rows of the batch. Upstream has no
such path (a deliberate difference, see docs/LM.md).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["can_pack", "is_plain_linear", "pack_linear", "pack_weight", "packed_linear", "packed_module"]

# Modules whose forward is exactly F.linear(x, weight, bias). A wrapper (peft's LoRA layers, quantised or custom
# linears) adds its own computation, which a packed copy of its weight would drop: those keep their forward.
_PLAIN_LINEARS = (nn.Linear, nn.modules.linear.NonDynamicallyQuantizableLinear)


def _cpu_autocast() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4 takes no device argument
        return torch.is_autocast_cpu_enabled()


def can_pack(weight: torch.Tensor) -> bool:
    """Whether :func:`pack_weight` applies to ``weight``: float32 on CPU with oneDNN available, no CPU autocast."""
    return (
        weight.device.type == "cpu"
        and weight.dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")
        and not _cpu_autocast()
    )


def pack_weight(weight: torch.Tensor, rows: int) -> torch.Tensor | None:
    """A copy of the ``[out, in]`` weight in oneDNN's layout for inputs of about ``rows`` rows, or None.

    Args:
        weight: weight of a linear layer (a contiguous slice of one works too).
        rows: expected number of input rows (a layout hint; any number of rows is accepted later).

    Returns:
        The packed weight, or None where it does not apply (see :func:`can_pack`) or oneDNN refuses it.
    """
    if not can_pack(weight):
        return None
    try:
        return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), max(1, rows))
    except RuntimeError:  # a build or a shape oneDNN does not support: the caller keeps F.linear
        return None


def is_plain_linear(module: nn.Module) -> bool:
    """Whether ``module``'s forward is exactly ``F.linear(x, weight, bias)`` (so its weight may be packed)."""
    return type(module) in _PLAIN_LINEARS


def pack_linear(module: nn.Module, rows: int) -> torch.Tensor | None:
    """:func:`pack_weight` of a linear module's weight, or None unless the module is a plain ``nn.Linear``.

    Args:
        module: the layer (any module: wrapped or custom linears are not packed, see ``_PLAIN_LINEARS``).
        rows: expected number of input rows.

    Returns:
        The packed weight, or None (the module's own forward then runs).
    """
    if not is_plain_linear(module):
        return None
    assert isinstance(module, nn.Linear)
    return pack_weight(module.weight, rows)


def packed_module(x: torch.Tensor, module: nn.Module, packed: torch.Tensor | None) -> torch.Tensor:
    """``module(x)``, through ``packed`` (from :func:`pack_linear` of that module) when there is one and it applies.

    Args:
        x: input ``[..., in]``.
        module: the linear layer.
        packed: :func:`pack_linear` of ``module``, or None.

    Returns:
        ``[..., out]``.
    """
    if packed is None:
        return module(x)
    assert isinstance(module, nn.Linear)
    return packed_linear(x, module.weight, module.bias, packed)


def packed_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, packed: torch.Tensor | None
) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, through the packed copy of ``weight`` when there is one and it applies.

    Args:
        x: input ``[..., in]``.
        weight: the plain weight ``[out, in]`` (used when the packed one does not apply).
        bias: bias ``[out]`` or None.
        packed: :func:`pack_weight` of ``weight``, or None.

    Returns:
        ``[..., out]``.
    """
    if packed is None or x.dtype != torch.float32 or (torch.is_grad_enabled() and x.requires_grad):
        return F.linear(x, weight, bias)
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
