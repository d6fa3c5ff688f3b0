"""LSTM over convolutional layout with a skip connection (layer: audiocraft-models, modules).

Used at the bottleneck of the SEANet encoder and decoder. In streaming mode it carries its hidden and cell states
from one chunk to the next, so chunked processing equals one offline call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from .streaming import StreamingModule

__all__ = ["StreamableLSTM"]

# On CPU, oneDNN's LSTM re-packs its weights at every call: fast for long sequences, about 9x slower than the
# native kernel for the few time steps of a streaming chunk. Short CPU inputs use the native kernel.
_SHORT_SEQUENCE = 8


@contextmanager
def _native_cpu_rnn(enabled: bool) -> Iterator[None]:
    getter = getattr(torch._C, "_get_mkldnn_enabled", None)
    setter = getattr(torch._C, "_set_mkldnn_enabled", None)
    if not enabled or getter is None or setter is None:
        yield
        return
    previous = getter()
    setter(False)  # process-wide flag: another thread may briefly use the (correct, slower) native kernels too
    try:
        yield
    finally:
        setter(previous)


class StreamableLSTM(StreamingModule):
    """Multi-layer LSTM taking and returning [B, C, T] tensors (state-dict keys ``lstm.weight_ih_l0``...).

    Args:
        dimension: channels, used as both input and hidden size.
        num_layers: number of stacked LSTM layers.
        skip: add the input to the output.
    """

    def __init__(self, dimension: int, num_layers: int = 2, skip: bool = True) -> None:
        super().__init__()
        self.skip = skip
        self.lstm = nn.LSTM(dimension, dimension, num_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, T] -> [B, C, T]."""
        if x.shape[-1] == 0:  # an empty streaming chunk: nothing to do, state unchanged
            return x
        x = x.permute(2, 0, 1)
        short = x.device.type == "cpu" and x.shape[0] <= _SHORT_SEQUENCE
        with _native_cpu_rnn(short):
            if self._is_streaming and "h" in self._streaming_state:
                # The state is stored batch first, as the streaming API asks.
                hidden = (self._streaming_state["h"].transpose(0, 1).contiguous(),
                          self._streaming_state["c"].transpose(0, 1).contiguous())
                y, (h, c) = self.lstm(x, hidden)
            else:
                y, (h, c) = self.lstm(x)
        if self._is_streaming:
            self._streaming_state["h"] = h.transpose(0, 1)
            self._streaming_state["c"] = c.transpose(0, 1)
        if self.skip:
            y = y + x
        return y.permute(1, 2, 0)
