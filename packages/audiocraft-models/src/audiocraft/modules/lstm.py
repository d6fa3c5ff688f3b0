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

__all__ = ["StreamableLSTM", "set_lstm_cpu_threads"]

# On CPU, oneDNN's LSTM re-packs its weights at every call: fast for long sequences, about 9x slower than the
# native kernel for the few time steps of a streaming chunk. Short CPU inputs use the native kernel.
_SHORT_SEQUENCE = 8


# Intra-op threads of the CPU recurrence; None keeps torch's setting (see `set_lstm_cpu_threads`).
_CPU_THREADS: int | None = None


def set_lstm_cpu_threads(threads: int | None) -> int | None:
    """Set how many intra-op threads :class:`StreamableLSTM` uses on CPU (process-wide); return the previous value.

    Each time step of the recurrence is a [B, C] x [C, 4 C] product followed by a barrier between the threads.
    On idle cores more threads win (EnCodec's 2 x 1024 LSTM over 500 frames: 0.41 s on two threads, 1.04 s on one,
    measured on 2 cores), which is why the default keeps torch's setting, as upstream. On a machine whose cores are
    shared with other jobs a step waits for a thread that lost its core (the same LSTM took 2.1-5.9 s on two
    threads at a load average of 8, 0.7-2.3 s on one): there, ``set_lstm_cpu_threads(1)`` pays. The result is
    bitwise the same for any thread count (no reduction is split between threads).

    Args:
        threads: intra-op threads during the recurrence (restored after each call), or None for torch's current
            setting.

    Returns:
        int or None: the setting before the call.
    """
    global _CPU_THREADS
    if threads is not None and threads < 1:
        raise ValueError(f"set_lstm_cpu_threads needs a thread count >= 1 or None, got {threads}")
    previous, _CPU_THREADS = _CPU_THREADS, threads
    return previous


@contextmanager
def _cpu_threads(enabled: bool) -> Iterator[None]:
    """Run the block with ``_CPU_THREADS`` intra-op threads (torch's setting is process-wide, restored after)."""
    wanted = _CPU_THREADS
    threads = torch.get_num_threads()
    if not enabled or wanted is None or wanted == threads:
        yield
        return
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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
        cpu = x.device.type == "cpu"
        with _native_cpu_rnn(cpu and x.shape[0] <= _SHORT_SEQUENCE), _cpu_threads(cpu):
            if self._is_streaming and "h" in self._streaming_state:
                # The state is stored batch first, as the streaming API asks.
                hidden = (
                    self._streaming_state["h"].transpose(0, 1).contiguous(),
                    self._streaming_state["c"].transpose(0, 1).contiguous(),
                )
                y, (h, c) = self.lstm(x, hidden)
            else:
                y, (h, c) = self.lstm(x)
        if self._is_streaming:
            self._streaming_state["h"] = h.transpose(0, 1)
            self._streaming_state["c"] = c.transpose(0, 1)
        if self.skip:
            # The LSTM's backward reads its output: add in place only when no graph is recorded.
            y = y.add_(x) if not (torch.is_grad_enabled() and y.requires_grad) else y + x
        return y.permute(1, 2, 0)
