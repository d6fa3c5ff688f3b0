"""Builders turning the Hydra config into solvers and training objects: the solver registry, optimizers,
schedules, EMA, losses, balancer, adversaries, metrics and audio datasets.

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
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from .. import optim
from ..utils.utils import dict_from_config, get_loader

if tp.TYPE_CHECKING:
    from ..environment import AudioCraftEnvironment
    from .base import StandardSolver

logger = logging.getLogger(__name__)

SOLVERS: dict[str, str] = {
    "compression": "audiocraft.solvers.compression:CompressionSolver",
    "musicgen": "audiocraft.solvers.musicgen:MusicGenSolver",
    "audiogen": "audiocraft.solvers.audiogen:AudioGenSolver",
    "lm": "audiocraft.solvers.musicgen:MusicGenSolver",  # upstream backward compatibility
    "sound_lm": "audiocraft.solvers.audiogen:AudioGenSolver",  # upstream backward compatibility
}

EXTRA_SOLVERS_ENV = "AUDIOCRAFT_EXTRA_SOLVERS"


class DatasetType(Enum):
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
        raise ImportError(f"solver {name!r} is registered as {target!r} but its module cannot be imported: "
                          f"{exc}") from exc


def get_solver(cfg: DictConfig, environment: AudioCraftEnvironment | None = None) -> StandardSolver:
    """Instantiate the solver named by ``cfg.solver``."""
    from .base import accepts_environment
    klass = get_solver_class(cfg.solver)
    if environment is not None and accepts_environment(klass):
        return klass(cfg, environment=environment)  # type: ignore[call-arg]
    return klass(cfg)  # type: ignore[call-arg]


def get_optim_parameter_groups(model: nn.Module) -> list[dict]:
    """See `audiocraft.optim.get_optim_parameter_groups`."""
    return optim.get_optim_parameter_groups(model)


def get_optimizer(params: nn.Module | tp.Iterable[torch.Tensor], cfg: DictConfig) -> Optimizer:
    """Optimizer from the ``optim`` section (``optimizer``, ``lr`` and the ``adam`` keyword arguments)."""
    if "optimizer" not in cfg:
        hint = " (pass cfg.optim, not the whole config)" if "optim" in cfg else ""
        raise KeyError(f"no 'optimizer' key in the optim config{hint}")
    kwargs = dict_from_config(cfg.get("adam") or {})
    return optim.build_optimizer(params, cfg.optimizer, lr=cfg.lr, **kwargs)


def get_lr_scheduler(optimizer: Optimizer, cfg: DictConfig, total_updates: int) -> LRScheduler | None:
    """Schedule from the ``schedule`` section: ``lr_scheduler`` names the sub-section holding its arguments."""
    if "lr_scheduler" not in cfg:
        raise KeyError("no 'lr_scheduler' key in the schedule config")
    name = cfg.lr_scheduler
    kwargs = dict_from_config(cfg.get(name) or {}) if name is not None else {}
    return optim.build_lr_scheduler(optimizer, name, total_updates, **kwargs)


def get_ema(module_dict: nn.ModuleDict, cfg: DictConfig) -> optim.ModuleDictEMA | None:
    """EMA from the ``optim.ema`` section (None when ``use`` is false)."""
    kw = dict_from_config(cfg)
    if not kw.pop("use", False):
        return None
    if len(module_dict) == 0:
        raise ValueError("optim.ema.use=true but no module was registered with register_ema")
    return optim.ModuleDictEMA(module_dict, decay=kw.pop("decay", 0.999), device=kw.pop("device", None))


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


def get_visqol(cfg: DictConfig) -> tp.Any:
    """ViSQOL metric from the ``metrics.visqol`` section."""
    from .. import metrics
    return metrics.ViSQOL(**dict_from_config(cfg))


def get_audio_datasets(cfg: DictConfig, dataset_type: DatasetType = DatasetType.AUDIO,
                       environment: AudioCraftEnvironment | None = None) -> dict[str, torch.utils.data.DataLoader]:
    """Data loaders of every split named in ``datasource`` (only ``execute_only``'s when set).

    Split settings are ``dataset.<split>`` merged over ``dataset``. Loaders are deterministic: the
    dataset's segments are a function of ``(shuffle_seed, epoch, index)`` and the solver calls
    ``set_epoch`` before each epoch.
    """
    if cfg.get("dataset") is None:
        raise KeyError("no 'dataset' section in the config")
    if cfg.sample_rate > cfg.datasource.max_sample_rate:
        raise ValueError(f"sample_rate={cfg.sample_rate} exceeds datasource.max_sample_rate="
                         f"{cfg.datasource.max_sample_rate}")
    if cfg.channels > cfg.datasource.max_channels:
        raise ValueError(f"channels={cfg.channels} exceeds datasource.max_channels={cfg.datasource.max_channels}")
    dataset_cfg = dict_from_config(cfg.dataset)
    splits_cfg = {split: dataset_cfg.pop(split, None) or {} for split in ("train", "valid", "evaluate", "generate")}
    execute_only = cfg.get("execute_only", None)
    klass = _import(_DATASETS[dataset_type])
    # from_meta forwards its keyword arguments to __init__: accept what either declares.
    signatures = [inspect.signature(klass.from_meta).parameters, inspect.signature(klass).parameters]
    accepted = {name for params in signatures for name in params}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in signatures[1].values())
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
        if environment is not None and "path_mapper" in accepted:
            kwargs["path_mapper"] = environment.apply_dataset_mappers
        dropped = [] if takes_any else [k for k in kwargs if k not in accepted]
        for key in dropped:
            logger.debug("dataset.%s is not an argument of %s.from_meta, ignored", key, klass.__name__)
            kwargs.pop(key)
        logger.info("Loading audio data split %s: %s", split, path)
        dataset = klass.from_meta(path, **kwargs)
        loader = get_loader(dataset, kwargs.get("num_samples"), batch_size=batch_size, num_workers=num_workers,
                            seed=cfg.seed, shuffle=False,
                            collate_fn=dataset.collater if kwargs.get("return_info") else None)
        if shuffle:
            logger.debug("split %s: the dataset draws its own segments (shuffle_seed, epoch, index)", split)
        dataloaders[split] = loader
    return dataloaders
