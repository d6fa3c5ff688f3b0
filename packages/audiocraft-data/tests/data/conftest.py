"""Shared fixtures for the audiocraft-data tests: small synthetic audio written to tmp dirs."""

import math

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tone(seconds: float, sample_rate: int, channels: int = 1, freq: float = 440.0) -> torch.Tensor:
    """A [C, T] test signal: distinct sines per channel with a slow envelope, peak 0.5."""
    t = torch.arange(int(seconds * sample_rate)) / sample_rate
    chans = [
        0.5 * torch.sin(2 * math.pi * freq * (c + 1) * t) * (0.6 + 0.4 * torch.sin(2 * math.pi * 0.7 * t))
        for c in range(channels)
    ]
    return torch.stack(chans)


@pytest.fixture
def tone():
    """The ``_tone(seconds, sample_rate, channels=1, freq=440.)`` signal factory."""
    return _tone
