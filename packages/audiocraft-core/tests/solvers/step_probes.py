"""Probes for the train-step tests (test_train_step_*.py): build a solver in a Dora XP from the checkout's configs,
run single steps in a stage, and record what each optimizer saw and did.

Not a test module (no ``test_`` prefix): the train-step tests import it.
"""

from __future__ import annotations

import contextlib
import typing as tp
import warnings
from pathlib import Path

import torch
from dora import XP
from dora.conf import DoraConfig
from hydra import compose, initialize_config_dir
from torch import nn

CONFIG_DIR = Path(__file__).resolve().parents[4] / "config"


def compose_cfg(overrides: list[str]) -> tp.Any:
    """The training config of the checkout's config/ with Hydra ``overrides``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # upstream's configs need Hydra's version_base 1.1 behaviour
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.1"):
            return compose("config", overrides=overrides)


@contextlib.contextmanager
def solver_in_xp(klass: type, overrides: list[str], dora_dir: Path, seed: int = 0) -> tp.Iterator[tp.Any]:
    """Build ``klass(cfg)`` inside a fresh Dora XP (torch seeded first) and keep the XP entered."""
    cfg = compose_cfg(overrides)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    xp = XP(dora=DoraConfig(dir=dora_dir, exclude=[]), cfg=cfg, argv=overrides, delta=[("argv", overrides)])
    xp.folder.mkdir(parents=True, exist_ok=True)
    with xp.enter():
        yield klass(cfg)


@contextlib.contextmanager
def in_stage(solver: tp.Any, stage: str) -> tp.Iterator[None]:
    """Run the block as if inside ``solver.run_stage(stage, ...)`` (``solver.is_training`` is ``stage == 'train'``)."""
    solver._current_stage = stage
    solver.model.train(stage == "train")
    try:
        yield
    finally:
        solver._current_stage = None


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of the parameters of ``module``."""
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def changed(before: dict[str, torch.Tensor], module: nn.Module) -> dict[str, bool]:
    """For each parameter of ``module``: whether it differs from ``before``."""
    return {name: not torch.equal(before[name], p.detach()) for name, p in module.named_parameters()}


class OptimizerProbe:
    """Wrap ``optimizer.step`` to record, at each call, the gradients of the parameters it owns.

    Attributes:
        grads: one ``{param index: grad copy or None}`` per step call, indices in ``owned`` order.
        owned: the parameters of the optimizer's groups, in order.
    """

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self.owned = [p for group in optimizer.param_groups for p in group["params"]]
        self.grads: list[list[torch.Tensor | None]] = []
        step = optimizer.step

        def recording_step(*args: tp.Any, **kwargs: tp.Any) -> tp.Any:
            self.grads.append([None if p.grad is None else p.grad.detach().clone() for p in self.owned])
            return step(*args, **kwargs)

        optimizer.step = recording_step  # type: ignore[method-assign]

    @property
    def calls(self) -> int:
        return len(self.grads)

    def total_norm(self, call: int = -1) -> float:
        """L2 norm of all the gradients seen at step call ``call`` (what clipping bounds)."""
        grads = [g for g in self.grads[call] if g is not None]
        return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])))

    def owns_exactly(self, module: nn.Module) -> bool:
        """Whether the optimizer's parameters are exactly the trainable parameters of ``module``."""
        return {id(p) for p in self.owned} == {id(p) for p in module.parameters() if p.requires_grad}


def grad_by_name(probe: OptimizerProbe, module: nn.Module, call: int = -1) -> dict[str, torch.Tensor | None]:
    """The gradients of ``module``'s parameters seen by ``probe`` at step ``call``, by parameter name."""
    index = {id(p): i for i, p in enumerate(probe.owned)}
    return {name: probe.grads[call][index[id(p)]] for name, p in module.named_parameters() if id(p) in index}
