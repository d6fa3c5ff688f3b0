"""pytest setup shared by every test of the repository (each package's tests and tests/).

Every test starts from the same random state, so a test that draws random inputs without its own generator is
reproducible: a failure shows again on the next run instead of once in twenty (a CI run was lost to such a draw).
Tests that need their own seeds still set them.
"""

from __future__ import annotations

import random

import pytest


@pytest.fixture(autouse=True)
def _seed_random_state() -> None:
    random.seed(0)
    try:
        import numpy as np
    except ImportError:  # a package environment without numpy
        pass
    else:
        np.random.seed(0)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(0)
