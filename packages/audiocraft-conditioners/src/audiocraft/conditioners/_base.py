"""The conditioner interface: tokenize first, then embed (layer: audiocraft-conditioners, private).

A conditioner turns one kind of condition of a batch (a list of texts, a :class:`WavCondition`, ...) into an
embedding ``[B, T, output_dim]`` and a mask ``[B, T]``. It works in two steps, as upstream's: :meth:`tokenize` does
everything that may synchronise host and device (string processing, moving tensors), so that a training loop can
run it before the GPU work starts; :meth:`forward` is pure tensor work on what ``tokenize`` returned.
"""

from __future__ import annotations

import abc
from typing import Any

import torch
from torch import nn

ConditionType = tuple[torch.Tensor, torch.Tensor]
"""An embedded condition: ``(embedding [B, T, D], mask [B, T])``; the mask is 1 on real steps, 0 on padding."""

TextCondition = str | None
"""A text condition: a string, or None when the item has no such attribute."""


class BaseConditioner(nn.Module, abc.ABC):
    """Base class of every conditioner.

    The hidden size ``dim`` of the conditioner may differ from the model's ``output_dim``: a linear
    ``output_proj`` maps one to the other (state-dict key ``output_proj.weight`` / ``output_proj.bias``), which keeps
    look-up tables small and makes all conditions of a model the same width.

    Args:
        dim: Hidden dimension of the conditioner.
        output_dim: Dimension of the embeddings it returns (the model's).
    """

    def __init__(self, dim: int, output_dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.output_dim = output_dim
        self.output_proj = nn.Linear(dim, output_dim)

    @abc.abstractmethod
    def tokenize(self, *args: Any, **kwargs: Any) -> Any:
        """Prepare the raw conditions of a batch (the part that may synchronise host and device).

        Returns:
            Whatever :meth:`forward` takes.
        """

    @abc.abstractmethod
    def forward(self, inputs: Any) -> ConditionType:
        """Embed what :meth:`tokenize` returned.

        Returns:
            The embedding ``[B, T, output_dim]`` and its mask ``[B, T]``.
        """


class TextConditioner(BaseConditioner):
    """Base class of the conditioners of text attributes (``ConditioningAttributes.text``)."""
