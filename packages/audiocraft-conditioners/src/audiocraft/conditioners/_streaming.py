"""The minimal streaming protocol of the conditioners (layer: audiocraft-conditioners, private).

``audiocraft.modules.streaming.StreamingModule`` (audiocraft-models) sits above this package, so the fuser cannot
derive from it. :class:`StreamingStateModule` carries the two attributes that protocol works on, ``_is_streaming``
and ``_streaming_state`` (a ``dict[str, Tensor]``, never in the state dict), and models' ``StreamingModule``
recognises it: ``with lm.streaming():`` switches the fuser inside an LM, clears its state on exit and includes it
in ``get_streaming_state()``. Used alone, the module has its own ``streaming()`` context.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class StreamingStateModule(nn.Module):
    """Base of the conditioning modules that keep a state across streaming steps (the fuser).

    Subclasses read ``self._is_streaming`` and keep what they need in ``self._streaming_state``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._streaming_state: dict[str, torch.Tensor] = {}
        self._is_streaming = False

    @property
    def is_streaming(self) -> bool:
        """Whether the module is inside a streaming context."""
        return self._is_streaming

    def _streaming_modules(self) -> Iterator[StreamingStateModule]:
        return (m for m in self.modules() if isinstance(m, StreamingStateModule))

    @contextmanager
    def streaming(self) -> Iterator[None]:
        """Put this module (and its streaming children) in streaming mode; states are cleared on exit."""
        for module in self._streaming_modules():
            module._is_streaming = True
        try:
            yield
        finally:
            for module in self._streaming_modules():
                module._is_streaming = False
            self.reset_streaming()

    def reset_streaming(self) -> None:
        """Clear the streaming state of this module and of its streaming children."""
        for module in self._streaming_modules():
            module._streaming_state.clear()
