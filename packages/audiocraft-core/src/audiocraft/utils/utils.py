"""Small helpers shared by the training engine.

Config conversion, state copies, model hashing, data loaders with epoch-seeded sampling, rank-dependent RNG and a
pool executor.

Part of audiocraft-core (training layer). Loaders built here are deterministic functions of the seed and of
the epoch set with `set_loader_epoch`, which is what makes resumed runs reproduce uninterrupted ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import typing as tp
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from functools import wraps

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

# Upstream's audiocraft.utils.utils also held helpers of the conditioners and the language model. They are owned
# by the package that uses them (public modules there, as audiocraft-core sits above both) and re-exported here
# so that upstream import paths keep working; tests/utils/test_utils_misc.py checks that they stay importable.
from audiocraft.conditioners.utils import collate, hash_trick, length_to_mask

# One implementation of the config-section conversion for every package (None gives {}); upstream path kept.
from audiocraft.models.builders import dict_from_config
from audiocraft.models.sampling import multinomial, sample_top_k, sample_top_p

__all__ = [
    "DummyPoolExecutor",
    "EpochSampler",
    "collate",
    "config_diff",
    "copy_state",
    "dict_from_config",
    "flatten_dict",
    "get_dataset_from_loader",
    "get_loader",
    "get_pool_executor",
    "hash_trick",
    "is_jsonable",
    "length_to_mask",
    "model_hash",
    "multinomial",
    "sample_top_k",
    "sample_top_p",
    "set_loader_epoch",
    "swap_state",
    "warn_once",
    "with_rank_rng",
]

logger = logging.getLogger(__name__)


def flatten_dict(tree: tp.Any, prefix: str = "") -> dict[str, tp.Any]:
    """Flatten nested dicts to dotted keys (lists are kept as leaves)."""
    out: dict[str, tp.Any] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                out.update(flatten_dict(value, name))
            else:
                out[name] = value
    else:
        out[prefix] = tree
    return out


def config_diff(old: dict, new: dict) -> list[tuple[str, tp.Any, tp.Any]]:
    """Keys whose value differs between two (nested) configs, as ``(key, old, new)`` sorted by key.

    A key missing on one side is reported with the string ``'<absent>'``.
    """
    flat_old, flat_new = flatten_dict(old), flatten_dict(new)
    diffs = []
    for key in sorted(set(flat_old) | set(flat_new)):
        a, b = flat_old.get(key, "<absent>"), flat_new.get(key, "<absent>")
        if a != b:
            diffs.append((key, a, b))
    return diffs


def model_hash(model: torch.nn.Module) -> str:
    """SHA1 of the model parameters (to check that two models hold the same weights)."""
    hasher = hashlib.sha1()
    for p in model.parameters():
        hasher.update(p.detach().cpu().contiguous().numpy().tobytes())
    return hasher.hexdigest()


def copy_state(state: tp.Any, device: torch.device | str = "cpu", dtype: torch.dtype | None = None) -> tp.Any:
    """Deep copy of a state dict: tensors are cloned to ``device`` (floating tensors cast to ``dtype``)."""
    if isinstance(state, torch.Tensor):
        if dtype is None or not state.is_floating_point():
            dtype = state.dtype
        return state.detach().to(device=device, dtype=dtype, copy=True)
    if isinstance(state, dict):
        return {k: copy_state(v, device, dtype) for k, v in state.items()}
    if isinstance(state, list):
        return [copy_state(v, device, dtype) for v in state]
    if isinstance(state, tuple):
        return tuple(copy_state(v, device, dtype) for v in state)
    return state


@contextmanager
def swap_state(model: torch.nn.Module, state: dict, **kwargs: tp.Any) -> tp.Iterator[None]:
    """Temporarily load ``state`` into ``model``."""
    old_state = copy_state(model.state_dict())
    model.load_state_dict(state, **kwargs)
    try:
        yield
    finally:
        model.load_state_dict(old_state)


def with_rank_rng(base_seed: int = 1234) -> tp.Callable:
    """Decorator running a function under an RNG seeded by ``base_seed + rank``, restoring the RNG after."""

    def _decorator(fun: tp.Callable) -> tp.Callable:
        @wraps(fun)
        def _decorated(*args: tp.Any, **kwargs: tp.Any) -> tp.Any:
            import flashy

            state = torch.get_rng_state()
            torch.manual_seed(base_seed + flashy.distrib.rank())
            try:
                return fun(*args, **kwargs)
            finally:
                torch.set_rng_state(state)

        return _decorated

    return _decorator


class EpochSampler(Sampler[int]):
    """Sampler whose order depends only on ``(seed, epoch)``, split across ``world_size`` workers.

    Without shuffling, indices are taken in order. Each worker gets ``rank::world_size``; the last
    incomplete round is dropped so that every worker sees the same number of items. `skip_next` makes the next
    iteration start further in (resuming mid-epoch without loading the skipped items).
    """

    def __init__(self, length: int, shuffle: bool = False, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.length = length
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self._skip = 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds the next order (and cancel a pending `skip_next`).

        Args:
            epoch: the epoch about to be iterated.
        """
        self.epoch = epoch
        self._skip = 0

    def skip_next(self, count: int) -> None:
        """Leave out the first ``count`` indices of this worker's share in the next iteration only."""
        self._skip = count

    def __len__(self) -> int:
        return self.length // self.world_size

    def __iter__(self) -> tp.Iterator[int]:
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.length, generator=gen).tolist()
        else:
            order = list(range(self.length))
        usable = len(self) * self.world_size
        skip, self._skip = self._skip, 0
        return iter(order[self.rank : usable : self.world_size][skip:])


def get_loader(
    dataset: Dataset,
    num_samples: int | None,
    batch_size: int,
    num_workers: int,
    seed: int,
    shuffle: bool = False,
    collate_fn: tp.Callable | None = None,
    **kwargs: tp.Any,
) -> DataLoader:
    """Build a deterministic, distributed-aware DataLoader.

    Args:
        dataset: map-style dataset (if it has ``set_epoch``, it is called by `set_loader_epoch`).
        num_samples: kept for upstream compatibility; the dataset owns its length.
        batch_size: per-worker batch size.
        num_workers: data loading processes.
        seed: base seed of the sampling order.
        shuffle: shuffle the index order, seeded by ``(seed, epoch)``.
        collate_fn: optional collate function.
        **kwargs: further `torch.utils.data.DataLoader` arguments (e.g. ``pin_memory``).

    Returns:
        The DataLoader; its sampler is an `EpochSampler`.
    """
    import flashy

    sampler = EpochSampler(
        len(dataset),  # type: ignore[arg-type]
        shuffle=shuffle,
        seed=seed,
        rank=flashy.distrib.rank(),
        world_size=flashy.distrib.world_size(),
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        drop_last=False,
        **kwargs,
    )


def get_dataset_from_loader(loader: DataLoader) -> Dataset:
    """The dataset behind ``loader`` (unwrapping a ``torch.utils.data.Subset``), as upstream's helper."""
    dataset = loader.dataset
    return dataset.dataset if isinstance(dataset, torch.utils.data.Subset) else dataset


def is_jsonable(value: tp.Any) -> bool:
    """Whether ``value`` can be written with ``json.dumps`` (e.g. a sample's metadata field)."""
    try:
        json.dumps(value)
    except (TypeError, OverflowError, ValueError):
        return False
    return True


def warn_once(log: logging.Logger, message: str) -> None:
    """Log ``message`` as a warning on ``log`` the first time it is given for that logger only.

    Upstream keeps the seen messages in a process-wide ``lru_cache``; here they are kept on the logger object
    (loggers are process-wide already), so no module-level state is added.
    """
    seen: set[str] = log.__dict__.setdefault("_audiocraft_warned_once", set())
    if message not in seen:
        seen.add(message)
        log.warning(message)


def set_loader_epoch(loader: tp.Any, epoch: int) -> None:
    """Make the next iteration of ``loader`` a pure function of ``epoch`` (sampler and dataset)."""
    sampler = getattr(loader, "sampler", None)
    if sampler is not None and hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    dataset = getattr(loader, "dataset", None)
    while dataset is not None:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
            break
        dataset = getattr(dataset, "dataset", None)  # torch Subset and similar wrappers


class DummyPoolExecutor:
    """Runs submitted calls inline; the interface of `concurrent.futures.Executor` that solvers use."""

    def __init__(self, workers: int = 0, mp_context: tp.Any = None):
        pass

    def submit(self, func: tp.Callable, *args: tp.Any, **kwargs: tp.Any) -> Future:
        """Call ``func(*args, **kwargs)`` now.

        Args:
            func: the callable.
            *args: its positional arguments.
            **kwargs: its keyword arguments.

        Returns:
            A completed future holding the result, or the exception raised.
        """
        future: Future = Future()
        try:
            future.set_result(func(*args, **kwargs))
        except Exception as exc:  # pragma: no cover - propagated through the future
            future.set_exception(exc)
        return future

    def __enter__(self) -> DummyPoolExecutor:
        return self

    def __exit__(self, *exc: tp.Any) -> None:
        return None


def get_pool_executor(num_workers: int, mp_context: tp.Any = None) -> tp.Any:
    """A process pool when ``num_workers > 1``, else an inline executor."""
    return ProcessPoolExecutor(num_workers, mp_context) if num_workers > 1 else DummyPoolExecutor(num_workers)
