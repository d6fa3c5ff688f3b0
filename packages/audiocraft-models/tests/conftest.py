"""Shared fixtures of the audiocraft-models tests: the upstream golden EnCodec and its inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

FIXTURES = Path(__file__).parent / "fixtures" / "upstream" / "encodec_debug"


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.set_num_threads(2)


class Upstream:
    """Access to the files of tests/fixtures/upstream/encodec_debug."""

    dir = FIXTURES
    checkpoint = FIXTURES / "checkpoint.th"

    def wav(self, name: str) -> torch.Tensor:
        """A fixture wav as [1, 1, T] float32 (int16 / 32768)."""
        data, sr = sf.read(FIXTURES / name, dtype="float32")
        assert sr == 16000
        return torch.from_numpy(data)[None, None]

    def npy(self, name: str) -> np.ndarray:
        return np.load(FIXTURES / name)


@pytest.fixture(scope="session")
def upstream() -> Upstream:
    return Upstream()


@pytest.fixture(scope="session")
def golden_model():
    """The upstream encodec_debug checkpoint, loaded once (tests must not mutate it)."""
    from audiocraft.models import CompressionModel

    return CompressionModel.get_pretrained(str(FIXTURES / "checkpoint.th"), device="cpu")
