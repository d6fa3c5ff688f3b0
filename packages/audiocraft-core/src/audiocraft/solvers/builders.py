"""Builders turning the Hydra config into solvers and training objects.

The solver registry, the audio data loaders, and upstream's names for the optimizer / schedule / EMA builders
(owned by `audiocraft.optim`), the loss and adversary builders (`audiocraft.losses`, `audiocraft.adversarial`) and
the metric builders (`audiocraft.metrics.builders`).

Part of audiocraft-core (training layer). The solver registry is ONE dict literal, `SOLVERS`, mapping the
``solver`` config value to ``'module:Class'`` strings imported on demand: adding a solver is one line here.
Extra entries (tests, plugins) can be given with ``AUDIOCRAFT_EXTRA_SOLVERS='name=module:Class,...'``.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import typing as tp
from enum import Enum

import flashy
import torch
from omegaconf import DictConfig
from torch import nn

# Upstream's names for the config-reading optimizer / schedule / EMA builders, owned by audiocraft.optim.
from ..optim.builders import get_ema, get_lr_scheduler, get_optim_parameter_groups, get_optimizer
from ..utils.utils import dict_from_config, get_loader

if tp.TYPE_CHECKING:
    from ..environment import AudioCraftEnvironment
    from .base import StandardSolver

__all__ = [
    "EXTRA_SOLVERS_ENV",
    "SOLVERS",
    "DatasetType",
    "get_adversarial_losses",
    "get_adversary",
    "get_audio_datasets",
    "get_balancer",
    "get_ema",
    "get_loss",
    "get_lr_scheduler",
    "get_optim_parameter_groups",
    "get_optimizer",
    "get_solver",
    "get_solver_class",
    "get_visqol",
    "solver_registry",
]

logger = logging.getLogger(__name__)

SOLVERS: dict[str, str] = {
    "compression": "audiocraft.solvers.compression:CompressionSolver",
    "musicgen": "audiocraft.solvers.musicgen:MusicGenSolver",
    "audiogen": "audiocraft.solvers.audiogen:AudioGenSolver",
    "lm": "audiocraft.solvers.musicgen:MusicGenSolver",  # upstream backward compatibility
    "sound_lm": "audiocraft.solvers.audiogen:AudioGenSolver",  # upstream backward compatibility
}
"""The solvers by ``solver`` config value: ``module:Class`` paths, imported when picked (see `solver_registry`)."""

EXTRA_SOLVERS_ENV = "AUDIOCRAFT_EXTRA_SOLVERS"
"""Environment variable adding solvers to `SOLVERS`: comma-separated ``name=module:Class`` entries."""


class DatasetType(Enum):
    """Kind of dataset a solver reads: plain audio, music (with `MusicInfo`) or sound (with `SoundInfo`)."""

    AUDIO = "audio"
    MUSIC = "music"
    SOUND = "sound"


_DATASETS: dict[DatasetType, str] = {
    DatasetType.AUDIO: "audiocraft.data.audio_dataset:AudioDataset",
    DatasetType.MUSIC: "audiocraft.data.music_dataset:MusicDataset",
    DatasetType.SOUND: "audiocraft.data.sound_dataset:SoundDataset",
}


def _import(target: str) -> tp.Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def solver_registry(environ: tp.Mapping[str, str] | None = None) -> dict[str, str]:
    """`SOLVERS` plus the entries of ``$AUDIOCRAFT_EXTRA_SOLVERS`` (``name=module:Class`` comma separated)."""
    environ = os.environ if environ is None else environ
    registry = dict(SOLVERS)
    for item in filter(None, (part.strip() for part in environ.get(EXTRA_SOLVERS_ENV, "").split(","))):
        name, sep, target = item.partition("=")
        if not sep or ":" not in target:
            raise ValueError(f"{EXTRA_SOLVERS_ENV} entry {item!r} must look like name=module:Class")
        registry[name.strip()] = target.strip()
    return registry


def get_solver_class(name: str) -> type[StandardSolver]:
    """The solver class registered under ``name``.

    Raises:
        ValueError: for an unknown name, listing the registered ones.
        ImportError: naming the module, when the solver's module is not installed.
    """
    registry = solver_registry()
    if name not in registry:
        raise ValueError(f"unknown solver {name!r} (config key 'solver'); expected one of {sorted(registry)}")
    target = registry[name]
    try:
        return _import(target)
    except ModuleNotFoundError as exc:
        raise ImportError(
            f"solver {name!r} is registered as {target!r} but its module cannot be imported: {exc}"
        ) from exc


def get_solver(cfg: DictConfig, environment: AudioCraftEnvironment | None = None) -> StandardSolver:
    """Instantiate the solver named by ``cfg.solver``."""
    from .base import accepts_environment

    klass = get_solver_class(cfg.solver)
    if environment is not None and accepts_environment(klass):
        return klass(cfg, environment=environment)  # type: ignore[call-arg]
    return klass(cfg)  # type: ignore[call-arg]


# Upstream exposed the loss and adversary builders here; they are owned by audiocraft.losses and
# audiocraft.adversarial, and re-exposed under their upstream names.
def get_loss(loss_name: str, cfg: DictConfig) -> nn.Module:
    """Loss ``loss_name`` built with the config section of the same name (see `audiocraft.losses.builders`)."""
    from ..losses.builders import get_loss as _get_loss

    return _get_loss(loss_name, cfg)


def get_balancer(loss_weights: dict[str, float], cfg: DictConfig) -> tp.Any:
    """Loss balancer from the ``balancer`` section (see `audiocraft.losses.builders`)."""
    from ..losses.builders import get_balancer as _get_balancer

    return _get_balancer(loss_weights, cfg)


def get_adversary(name: str, cfg: DictConfig) -> nn.Module:
    """Discriminator ``name`` (msd, mpd, msstftd), see `audiocraft.adversarial.builders`."""
    from ..adversarial.builders import get_adversary as _get_adversary

    return _get_adversary(name, cfg)


def get_adversarial_losses(cfg: DictConfig) -> nn.ModuleDict:
    """One adversarial loss (discriminator + its optimizer from ``optim``) per ``adversarial.adversaries``."""
    from ..adversarial.builders import get_adversarial_losses as _get_adversarial_losses

    return _get_adversarial_losses(cfg, get_optimizer)


def get_visqol(cfg: DictConfig, resolve_path: tp.Callable[[str], tp.Any] | None = None) -> tp.Any:
    """ViSQOL metric from the ``metrics.visqol`` section (see `audiocraft.metrics.builders.get_visqol`).

    Args:
        cfg: the ``metrics.visqol`` section (``bin``, ``mode``, ``model``, ...).
        resolve_path: maps path-valued keys (``bin``), e.g. an environment's ``resolve_reference_path``.
    """
    from audiocraft.metrics.builders import get_visqol as _get_visqol

    return _get_visqol(cfg, resolve_path)


_SPLITS = ("train", "valid", "evaluate", "generate")
# Keys of the ``dataset`` section read by the builder for the data loader, not passed to the dataset.
_LOADER_KEYS = ("batch_size", "num_workers")
# Keys that ``from_meta`` takes out of its keyword arguments itself (the rest go to ``__init__``).
_FROM_META_KEYS = ("check_paths", "path_mapper")


def _dataset_arguments(klass: type) -> set[str]:
    """Keyword arguments ``klass.from_meta`` accepts.

    Its own, and ``__init__``'s along the base classes that ``**kwargs`` are forwarded to
    (MusicDataset -> AudioDataset).

    Args:
        klass: the dataset class.

    Returns:
        The accepted keyword names.
    """
    names = set(_FROM_META_KEYS)
    for base in klass.__mro__:
        if "__init__" not in vars(base):
            continue
        params = inspect.signature(vars(base)["__init__"]).parameters
        names |= {
            name
            for name, p in params.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name not in ("self", "meta")
        }
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return names
    raise TypeError(f"{klass.__name__}.__init__ forwards **kwargs to no base class declaring its arguments")


def get_audio_datasets(
    cfg: DictConfig, dataset_type: DatasetType = DatasetType.AUDIO, environment: AudioCraftEnvironment | None = None
) -> dict[str, torch.utils.data.DataLoader]:
    """Data loaders of every split named in ``datasource`` (only ``execute_only``'s when set).

    Split settings are ``dataset.<split>`` merged over ``dataset``. Loaders are deterministic: the
    dataset's segments are a function of ``(shuffle_seed, epoch, index)`` and the solver calls
    ``set_epoch`` before each epoch.

    Raises:
        KeyError: when the config has no ``dataset`` section.
        ValueError: for a sample rate or channel count above ``datasource``'s maximum, or for keys of
            ``dataset`` / ``dataset.<split>`` that are neither dataset nor loader arguments (all named).
    """
    if cfg.get("dataset") is None:
        raise KeyError("no 'dataset' section in the config")
    if cfg.sample_rate > cfg.datasource.max_sample_rate:
        raise ValueError(
            f"sample_rate={cfg.sample_rate} exceeds datasource.max_sample_rate={cfg.datasource.max_sample_rate}"
        )
    if cfg.channels > cfg.datasource.max_channels:
        raise ValueError(f"channels={cfg.channels} exceeds datasource.max_channels={cfg.datasource.max_channels}")
    dataset_cfg = dict_from_config(cfg.dataset, "dataset")
    splits_cfg = {split: dict_from_config(dataset_cfg.pop(split, None), f"dataset.{split}") for split in _SPLITS}
    execute_only = cfg.get("execute_only", None)
    klass = _import(_DATASETS[dataset_type])
    accepted = _dataset_arguments(klass)
    for where, section in [("dataset", dataset_cfg)] + [(f"dataset.{k}", v) for k, v in splits_cfg.items()]:
        unknown = sorted(set(section) - accepted - set(_LOADER_KEYS))
        if unknown:
            raise ValueError(
                f"unknown key(s) {unknown} in config section {where!r}: not arguments of "
                f"{klass.__name__} nor of its data loader; valid keys: "
                f"{sorted(accepted | set(_LOADER_KEYS) | set(_SPLITS))}"
            )
    dataloaders: dict[str, torch.utils.data.DataLoader] = {}
    for split, path in cfg.datasource.items():
        if not isinstance(path, str) or split not in splits_cfg:
            continue
        if execute_only is not None and split != execute_only:
            continue
        kwargs = {**dataset_cfg, **splits_cfg[split]}
        kwargs["sample_rate"] = cfg.sample_rate
        kwargs["channels"] = cfg.channels
        if kwargs.get("permutation_on_files") and cfg.optim.updates_per_epoch:
            kwargs["num_samples"] = flashy.distrib.world_size() * cfg.dataset.batch_size * cfg.optim.updates_per_epoch
        batch_size = kwargs.pop("batch_size", None)
        num_workers = kwargs.pop("num_workers", 0)
        shuffle = kwargs.get("shuffle", False)
        if environment is not None:
            kwargs["path_mapper"] = environment.apply_dataset_mappers
        logger.info("Loading audio data split %s: %s", split, path)
        dataset = klass.from_meta(path, **kwargs)
        loader = get_loader(
            dataset,
            kwargs.get("num_samples"),
            batch_size=batch_size,
            num_workers=num_workers,
            seed=cfg.seed,
            shuffle=False,
            collate_fn=dataset.collater if kwargs.get("return_info") else None,
        )
        if shuffle:
            logger.debug("split %s: the dataset draws its own segments (shuffle_seed, epoch, index)", split)
        dataloaders[split] = loader
    return dataloaders
