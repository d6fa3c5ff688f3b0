"""Capture and restore of every random number generator that training uses (python, numpy, torch, CUDA).

Part of audiocraft-core (training layer). States are converted to tensors, ints and tuples so that they
can be stored in a ``weights_only`` checkpoint; restoring them is what lets a resumed run continue with
exactly the random draws of an uninterrupted one.
"""

from __future__ import annotations

import random
import typing as tp

import numpy as np
import torch


def get_rng_state() -> dict[str, tp.Any]:
    """Return the states of the python, numpy, torch (and CUDA, when available) generators."""
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    state: dict[str, tp.Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, tp.Any]) -> None:
    """Restore generator states saved by `get_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["kind"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RNGState:
    """Stateful wrapper so that the solver can register the global RNGs like any other source."""

    def state_dict(self) -> dict[str, tp.Any]:
        """Capture the Python, NumPy, torch (and CUDA) global RNG states (see `get_rng_state`)."""
        return get_rng_state()

    def load_state_dict(self, state: dict[str, tp.Any]) -> None:
        """Restore the global RNG states; an empty ``state`` (no saved RNG) leaves them as they are.

        Args:
            state: a dict from `state_dict`.
        """
        if state:
            set_rng_state(state)
