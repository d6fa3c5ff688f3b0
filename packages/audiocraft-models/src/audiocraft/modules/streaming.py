"""Streaming API shared by the streamable modules (layer: audiocraft-models, modules).

A :class:`StreamingModule` can be fed its input in successive chunks: inside ``with module.streaming():`` each
streaming module keeps what it needs from previous chunks in a ``dict[str, Tensor]`` (its streaming state), and the
concatenated outputs equal what one offline call on the whole input would give (for causal modules). Entering the
context reaches every streaming child; leaving it clears all states. ``flush()`` emits what a module still holds at
the end of the stream (e.g. the last, partially filled convolution window).

Modules of audiocraft-conditioners (the ``ConditionFuser``) cannot derive from :class:`StreamingModule`, which sits
above them: they derive from ``audiocraft.conditioners.StreamingStateModule``, which carries the same two attributes
(``_is_streaming``, ``_streaming_state``), and the context, reset and state methods here reach them too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from audiocraft.conditioners import StreamingStateModule

State = dict[str, torch.Tensor]
"""The streaming state of a module: buffer name to tensor."""

__all__ = ["State", "StreamingModule", "StreamingSequential"]


class StreamingModule(nn.Module):
    """Base class for modules that can process their input chunk by chunk.

    The state of a module is a ``dict[str, Tensor]`` (keys without dots; the first dimension of each tensor is the
    batch). A subclass reads ``self._is_streaming`` and keeps what it needs in ``self._streaming_state``. The
    state is never part of ``state_dict()``, so streaming does not change checkpoint keys.
    """

    def __init__(self) -> None:
        super().__init__()
        self._streaming_state: State = {}
        self._is_streaming = False

    @property
    def is_streaming(self) -> bool:
        """Whether the module is inside a ``streaming()`` context."""
        return self._is_streaming

    def _apply_named_streaming(self, fn: Callable[[str, StreamingModule], None]) -> None:
        for name, module in self.named_modules():
            # The conditioners' streaming modules (the fuser) share the protocol without deriving from this class.
            if isinstance(module, (StreamingModule, StreamingStateModule)):
                fn(name, module)  # type: ignore[arg-type]

    def _set_streaming(self, streaming: bool) -> None:
        def _set(name: str, module: StreamingModule) -> None:
            module._is_streaming = streaming

        self._apply_named_streaming(_set)

    @contextmanager
    def streaming(self) -> Iterator[None]:
        """Context manager putting this module and all its streaming children in streaming mode.

        The streaming state of every module is cleared on exit.
        """
        self._set_streaming(True)
        try:
            yield
        finally:
            self._set_streaming(False)
            self.reset_streaming()

    def reset_streaming(self) -> None:
        """Clear the streaming state of this module and of all its streaming children."""

        def _reset(name: str, module: StreamingModule) -> None:
            module._streaming_state.clear()

        self._apply_named_streaming(_reset)

    def get_streaming_state(self) -> State:
        """Return the streaming state of this module and its children, keyed by ``<module path>.<key>``."""
        state: State = {}

        def _add(name: str, module: StreamingModule) -> None:
            prefix = f"{name}." if name else ""
            for key, value in module._streaming_state.items():
                state[prefix + key] = value

        self._apply_named_streaming(_add)
        return state

    def set_streaming_state(self, state: State) -> None:
        """Restore a state returned by :meth:`get_streaming_state`.

        Raises:
            KeyError: if some keys of ``state`` belong to no streaming module.
        """
        remaining = dict(state)

        def _set(name: str, module: StreamingModule) -> None:
            prefix = f"{name}." if name else ""
            module._streaming_state.clear()
            for key in list(remaining):
                if key.startswith(prefix) and "." not in key[len(prefix) :]:
                    module._streaming_state[key[len(prefix) :]] = remaining.pop(key)

        self._apply_named_streaming(_set)
        if remaining:
            raise KeyError(f"streaming state keys match no streaming module: {sorted(remaining)}")

    def flush(self, x: torch.Tensor | None = None) -> torch.Tensor | None:
        """Process the optional last chunk ``x`` then emit whatever the module still holds.

        The default implementation holds nothing: it just runs the module on ``x``.

        Args:
            x: a last chunk coming from a previous module's flush, or None.

        Returns:
            The remaining output, or None when there is none.
        """
        if x is None:
            return None
        return self(x)


class StreamingSequential(StreamingModule, nn.Sequential):
    """``nn.Sequential`` whose :meth:`flush` runs through its children in order (state-dict keys are unchanged)."""

    def __init__(self, *modules: nn.Module) -> None:
        nn.Sequential.__init__(self, *modules)
        self._streaming_state = {}
        self._is_streaming = False

    def flush(self, x: torch.Tensor | None = None) -> torch.Tensor | None:
        """Flush every child in turn, feeding each the previous child's flushed output."""
        for module in self:
            if isinstance(module, StreamingModule):
                x = module.flush(x)
            elif x is not None:
                x = module(x)
        return x
