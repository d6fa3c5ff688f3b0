"""Shared fixtures for the audiocraft-metrics tests."""

from pathlib import Path

import pytest
import torch

from audiocraft.metrics import VGGish


@pytest.fixture(scope="session")
def vggish_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VGGish state dict with fixed random weights, saved once per session (about 290 MB)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vggish") / "vggish.pth"
    torch.save(VGGish().state_dict(), path)
    return path
