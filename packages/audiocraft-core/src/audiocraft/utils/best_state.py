"""Keeper of the best state of registered stateful objects (model, ...) across epochs.

Part of audiocraft-core (training layer). The solver registers sources (anything with ``state_dict`` /
``load_state_dict``) and calls `BestStateDictManager.update` when the best metric improves; the copies live
on ``device`` (CPU by default) and go into the checkpoint as plain tensors.
"""

from __future__ import annotations

import typing as tp

import torch

from .utils import copy_state


class BestStateDictManager:
    """Keeps a copy of the best state of each registered source.

    Args:
        device: where copies are kept.
        dtype: optional floating dtype of the copies (e.g. to save memory with autocast).
    """

    def __init__(self, device: torch.device | str = "cpu", dtype: torch.dtype | None = None):
        self.device = device
        self.dtype = dtype
        self.states: dict[str, dict] = {}

    def register(self, name: str, source: tp.Any) -> None:
        """Register ``source`` under ``name``, initialising its best state with its current state."""
        if name in self.states:
            raise ValueError(f"{name} already registered in the best state")
        self.states[name] = copy_state(source.state_dict(), self.device, self.dtype)

    def update(self, name: str, source: tp.Any) -> None:
        """Copy the current state of ``source`` as the best state of ``name``."""
        if name not in self.states:
            raise ValueError(f"{name} is not registered in the best state; registered: {sorted(self.states)}")
        self.states[name] = copy_state(source.state_dict(), self.device, self.dtype)

    def state_dict(self) -> dict[str, dict]:
        """Return the best states by registered name."""
        return self.states

    def load_state_dict(self, state: dict[str, dict]) -> None:
        """Replace the best states with saved ones (copied to this object's device).

        Args:
            state: a dict from `state_dict`.
        """
        # Loaded states keep their stored dtype: a float32 best state read by an autocast solver is not rounded.
        for name, sub_state in state.items():
            self.states[name] = copy_state(sub_state, self.device)
