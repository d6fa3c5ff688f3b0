"""Dora/Hydra entry point of AudioCraft training (``dora run solver=...``), in the ``audiocraft`` meta-package.

Composes the configs of ``config/`` (shipped next to this module), checks them, seeds and sets up the
process, builds the `AudioCraftEnvironment` once and hands it to the solver picked by ``cfg.solver`` through
`audiocraft.solvers.builders.get_solver`. Dora finds this module with ``DORA_PACKAGE=audiocraft``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import typing as tp
import warnings
from pathlib import Path

import flashy
import hydra
import omegaconf
from dora import XP, git_save, hydra_main
from hydra.core.global_hydra import GlobalHydra

from audiocraft.environment import AudioCraftEnvironment
from audiocraft.utils.cluster import get_slurm_parameters

logger = logging.getLogger(__name__)

_SPLITS = ("train", "valid", "evaluate", "generate")

# Hydra 1.3 warns on every composition that version_base 1.1 is deprecated; upstream configs need 1.1.
warnings.filterwarnings("ignore", message=r"\s*version_base=\"1\.1\" selects Hydra 1\.1 compatibility")


class ConfigError(ValueError):
    """A configuration problem found before any work starts."""


def _is_int(value: tp.Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: tp.Any) -> bool:
    import math

    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


# Values checked before any work (key -> (what is expected, test)); keys absent from a solver's config are skipped.
# A wrong one otherwise fails deep inside torch once the model is built (lr='abc', batch_size=0) or is silently
# taken as something else (updates_per_epoch=0 would run a full pass, as null does).
_VALUE_CHECKS: dict[str, tuple[str, tp.Callable[[tp.Any], bool]]] = {
    "optim.lr": ("a number > 0", lambda v: _is_number(v) and v > 0),
    "optim.epochs": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "optim.updates_per_epoch": ("null or an integer >= 1", lambda v: v is None or (_is_int(v) and v >= 1)),
    "optim.grad_accum_steps": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "optim.max_norm": ("a number >= 0", lambda v: _is_number(v) and v >= 0),
    "dataset.batch_size": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "dataset.train.batch_size": ("null or an integer >= 1", lambda v: v is None or (_is_int(v) and v >= 1)),
    "dataset.valid.batch_size": ("null or an integer >= 1", lambda v: v is None or (_is_int(v) and v >= 1)),
    "dataset.evaluate.batch_size": ("null or an integer >= 1", lambda v: v is None or (_is_int(v) and v >= 1)),
    "dataset.generate.batch_size": ("null or an integer >= 1", lambda v: v is None or (_is_int(v) and v >= 1)),
    "dataset.num_workers": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "dataset.segment_duration": ("null or a number > 0", lambda v: v is None or (_is_number(v) and v > 0)),
    "sample_rate": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "channels": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "seed": ("an integer", _is_int),
    "num_threads": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "checkpoint.save_every": ("null or an integer >= 1", lambda v: v is None or (_is_int(v) and v >= 1)),
    "checkpoint.save_every_updates": ("null or an integer >= 1", lambda v: v is None or (_is_int(v) and v >= 1)),
}


def check_values(cfg: omegaconf.DictConfig) -> None:
    """Check the type and range of the values in ``_VALUE_CHECKS``.

    Mandatory ``???`` values are left to `check_config`.

    Args:
        cfg: the composed training config.

    Raises:
        ConfigError: naming every bad key, its value and what is expected.
    """
    bad = []
    for key, (expected, ok) in _VALUE_CHECKS.items():
        parent, _, leaf = key.rpartition(".")
        node = omegaconf.OmegaConf.select(cfg, parent) if parent else cfg
        if not isinstance(node, omegaconf.DictConfig) or leaf not in node or omegaconf.OmegaConf.is_missing(node, leaf):
            continue
        value = omegaconf.OmegaConf.select(cfg, key)
        if not ok(value):
            bad.append(f"{key}={value!r} (expected {expected})")
    if bad:
        raise ConfigError(
            f"bad config value(s): {'; '.join(bad)} (set them on the command line or in the solver config)"
        )


def check_config(cfg: omegaconf.DictConfig) -> None:
    """Stop, before any work, on a config that cannot train.

    Checks: keys that still hold the mandatory ``???`` value, bad values (`check_values`), loggers
    (`check_loggers`), the solver name (`check_solver`), a training run without training data
    (`check_datasource`).

    Args:
        cfg: the composed training config.

    Raises:
        ConfigError: naming the keys and what to do.
    """
    missing = sorted(omegaconf.OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(
            f"missing mandatory value(s) for config key(s): {', '.join(missing)} "
            "(set them on the command line, e.g. `dora run solver=compression/debug`)"
        )
    check_values(cfg)
    check_loggers(cfg)
    check_solver(cfg)
    check_datasource(cfg)


def check_datasource(cfg: omegaconf.DictConfig) -> None:
    """Stop when a training run has no ``datasource.train`` / ``datasource.valid`` manifest.

    A solver config with a ``dataset`` section reads its splits from ``datasource`` (`get_audio_datasets`); with
    ``dset=audio/default`` (the dataset-agnostic solver configs, e.g. ``compression/encodec_musicgen_32khz``) they
    are null, and the solver would otherwise stop once built, naming neither key nor ``dset=``. ``execute_only``
    runs need only their own split.

    Args:
        cfg: the composed training config.

    Raises:
        ConfigError: naming the unset keys, the ``dset=`` option and the docs page.
    """
    datasource = cfg.get("datasource")
    if cfg.get("dataset") is None or not isinstance(datasource, omegaconf.DictConfig):
        return
    needed = [cfg.execute_only] if cfg.get("execute_only") else ["train", "valid"]
    unset = [f"datasource.{split}" for split in needed if datasource.get(split) is None]
    if unset:
        raise ConfigError(
            f"{' and '.join(unset)} not set: this solver config names no dataset. Pick one with "
            "dset=audio/<name> (a yaml in config/dset/audio/, e.g. dset=audio/example, or your own through "
            "AUDIOCRAFT_EXTRA_CONFIG), or give the manifest folders on the command line: "
            + " ".join(f"{key}=<folder>" for key in unset)
            + " (docs/OWN_DATA.md)"
        )


def check_visqol(cfg: omegaconf.DictConfig) -> None:
    """Stop before training when ``evaluate.metrics.visqol`` is on but the ViSQOL binary cannot be used.

    Otherwise the evaluate stage would find out after training. Run by `get_solver`, once ``//reference`` paths
    are resolved.

    Args:
        cfg: the composed training config.

    Raises:
        ConfigError: naming ``metrics.visqol.bin``, how to install ViSQOL and how to turn the metric off.
    """
    evaluate = cfg.get("evaluate")
    if evaluate is None or not (evaluate.get("metrics") or {}).get("visqol"):
        return
    from audiocraft.metrics.builders import get_visqol

    section = (cfg.get("metrics") or {}).get("visqol")
    try:
        if section is None:
            raise ValueError("the config has no metrics.visqol section")
        get_visqol(section)
    except (ValueError, FileNotFoundError, OSError) as exc:
        raise ConfigError(
            f"evaluate.metrics.visqol=true but ViSQOL cannot run: {exc}. Build Google's ViSQOL "
            "(https://github.com/google/visqol, not bundled) and set metrics.visqol.bin=<its folder or binary>, "
            "or set evaluate.metrics.visqol=false (docs/METRICS.md)"
        ) from None


def check_loggers(cfg: omegaconf.DictConfig) -> None:
    """Stop when ``logging.log_wandb`` is on but wandb is not installed.

    Flashy would otherwise fail later with ``'NoneType' object has no attribute 'config'``.

    Args:
        cfg: the composed training config.

    Raises:
        ConfigError: naming the key and the package to install.
    """
    logging_cfg = cfg.get("logging")
    if logging_cfg is None or not logging_cfg.get("log_wandb"):
        return
    import importlib.util

    if "wandb" not in sys.modules and importlib.util.find_spec("wandb") is None:
        raise ConfigError(
            "logging.log_wandb=true but wandb is not installed: pip install 'audiocraft-core[wandb]' "
            "(and log in with `wandb login`), or set logging.log_wandb=false"
        )


def check_solver(cfg: omegaconf.DictConfig) -> None:
    """Stop when the config's ``solver`` key names no registered solver class.

    Args:
        cfg: the composed training config.

    Raises:
        ConfigError: naming the value and the registered names (`SOLVERS` and ``$AUDIOCRAFT_EXTRA_SOLVERS``).
    """
    from audiocraft.solvers.builders import solver_registry

    registry = solver_registry()
    if cfg.solver not in registry:
        raise ConfigError(f"unknown solver {cfg.solver!r} (config key 'solver'); expected one of {sorted(registry)}")


def resolve_device(cfg: omegaconf.DictConfig) -> None:
    """Replace ``device: auto`` with ``cuda`` when available, else ``cpu``."""
    if cfg.device == "auto":
        import torch

        cfg.device = "cuda" if torch.cuda.is_available() else "cpu"


def resolve_config_dset_paths(cfg: omegaconf.DictConfig) -> None:
    """Make ``datasource`` paths absolute, relative to the folder where dora was launched."""
    for key, value in cfg.datasource.items():
        if isinstance(value, str) and not value.startswith("//"):
            cfg.datasource[key] = str(git_save.to_absolute_path(value))


def resolve_reference_paths(cfg: omegaconf.DictConfig, environment: AudioCraftEnvironment) -> None:
    """Replace every string value starting with ``//reference`` with the team's reference directory."""
    from audiocraft.utils.utils import flatten_dict

    tree = omegaconf.OmegaConf.to_container(cfg, resolve=False)
    for key, value in flatten_dict(tree).items():
        if isinstance(value, str) and value.startswith("//reference"):
            try:
                resolved = environment.resolve_reference_path(value)
            except ValueError as exc:
                raise ConfigError(f"config key {key}: {exc}") from exc
            omegaconf.OmegaConf.update(cfg, key, str(resolved), merge=False)


def split_batch_size(cfg: omegaconf.DictConfig) -> None:
    """``dataset.batch_size`` (and per-split ones) are global: divide them by the number of workers."""
    world = flashy.distrib.world_size()
    dataset = cfg.get("dataset")
    if dataset is None:
        return
    targets = [("dataset.batch_size", dataset)] + [
        (f"dataset.{split}.batch_size", dataset[split])
        for split in _SPLITS
        if dataset.get(split) is not None and dataset[split].get("batch_size") is not None
    ]
    for key, section in targets:
        if section.batch_size % world != 0:
            raise ConfigError(
                f"{key}={section.batch_size} is the global batch size and must be divisible by "
                f"the number of workers ({world})"
            )
        if world > 1:
            logger.info(
                "%s=%d is global: %d per worker on %d workers",
                key,
                section.batch_size,
                section.batch_size // world,
                world,
            )
        section.batch_size //= world


def get_solver(cfg: omegaconf.DictConfig, environment: AudioCraftEnvironment | None = None) -> tp.Any:
    """Prepare ``cfg`` (device, per-worker batch size, paths) and build its solver."""
    from audiocraft.solvers.builders import get_solver as _get_solver

    environment = environment if environment is not None else get_environment()
    check_loggers(cfg)
    resolve_device(cfg)
    split_batch_size(cfg)
    resolve_config_dset_paths(cfg)
    resolve_reference_paths(cfg, environment)
    if cfg.get("execute_only") in (None, "evaluate"):
        check_visqol(cfg)
    return _get_solver(cfg, environment=environment)


def get_solver_from_xp(
    xp: XP,
    override_cfg: dict | omegaconf.DictConfig | None = None,
    restore: bool = True,
    load_best: bool = True,
    ignore_state_keys: list[str] | None = None,
    disable_fsdp: bool = True,
) -> tp.Any:
    """Solver of an XP (e.g. in a notebook), restored from its checkpoint.

    Args:
        xp: the Dora XP.
        override_cfg: nested overrides applied without changing the XP signature.
        restore: load the last checkpoint.
        load_best: load the best state into the model.
        ignore_state_keys: state sources not to load (e.g. ``['optimizer']``).
        disable_fsdp: turn FSDP off (then only the best state can be loaded).
    """
    ignore_state_keys = list(ignore_state_keys or [])
    logger.info("Loading solver from XP %s. Overrides used: %s", xp.sig, xp.argv)
    cfg = xp.cfg
    if override_cfg is not None:
        cfg = omegaconf.OmegaConf.merge(cfg, omegaconf.DictConfig(override_cfg))
    if disable_fsdp and cfg.fsdp.use:
        cfg.fsdp.use = False
        assert load_best, "disable_fsdp needs load_best=True"
        ignore_state_keys += ["model", "ema", "best_state"]
    try:
        with xp.enter():
            solver = get_solver(cfg)
            if restore:
                solver.restore(load_best=load_best, ignore_state_keys=ignore_state_keys)
        return solver
    finally:
        GlobalHydra.instance().clear()


def get_solver_from_sig(sig: str, *args: tp.Any, **kwargs: tp.Any) -> tp.Any:
    """Solver of the XP with signature ``sig``; see `get_solver_from_xp`."""
    return get_solver_from_xp(main.get_xp_from_sig(sig), *args, **kwargs)


def get_eval_solver_from_sig(
    sig: str,
    dtype: str | None = None,
    device: str | None = None,
    autocast: bool = True,
    batch_size: int | None = None,
    override_cfg: dict | omegaconf.DictConfig | None = None,
    **kwargs: tp.Any,
) -> tp.Any:
    """Solver of XP ``sig`` ready for evaluation: best state loaded, no EMA / FSDP / optimizer state."""
    ours: dict[str, tp.Any] = {"optim": {"ema": {"use": False}}, "autocast": autocast}
    if dtype is not None:
        ours["dtype"] = dtype
    if device is not None:
        ours["device"] = device
    if batch_size is not None:
        ours["dataset"] = {"batch_size": batch_size}
    merged = omegaconf.OmegaConf.merge(omegaconf.DictConfig(override_cfg or {}), omegaconf.DictConfig(ours))
    solver = get_solver_from_sig(
        sig, override_cfg=merged, load_best=True, disable_fsdp=True, ignore_state_keys=["optimizer", "ema"], **kwargs
    )
    solver.model.eval()
    return solver


def init_seed_and_system(cfg: omegaconf.DictConfig) -> None:
    """Seed python/numpy/torch, set threads and the multiprocessing start method."""
    import random

    import numpy as np
    import torch

    method = cfg.mp_start_method
    if method not in multiprocessing.get_all_start_methods():
        logger.warning("mp_start_method=%s is not available here, using spawn", method)
        method = "spawn"
    try:
        multiprocessing.set_start_method(method)
    except RuntimeError:
        if multiprocessing.get_start_method() != method:
            logger.warning("multiprocessing start method already set to %s", multiprocessing.get_start_method())
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.num_threads)
    os.environ["MKL_NUM_THREADS"] = str(cfg.num_threads)
    os.environ["OMP_NUM_THREADS"] = str(cfg.num_threads)
    # Upstream also set a module-global attention backend here (set_efficient_attention_backend). Here the
    # backend is the config value `efficient_attention_backend`, which the model builders pass to the
    # transformer as an argument: no process-wide state.
    if "SLURM_JOB_ID" in os.environ:
        tmpdir = Path("/scratch/slurm_tmpdir/" + os.environ["SLURM_JOB_ID"])
        if tmpdir.exists():
            logger.info("Changing tmpdir to %s", tmpdir)
            os.environ["TMPDIR"] = str(tmpdir)


@hydra_main(config_path="config", config_name="config", version_base="1.1")
def main(cfg: omegaconf.DictConfig) -> tp.Any:
    """Train (or run one stage of) the solver of ``cfg``; the entry point of ``dora run``.

    The config is checked before any work (`check_config`, and `check_visqol` in `get_solver`); every run ends
    with one log line saying where its results are (`StandardSolver.log_run_summary`).

    Args:
        cfg: the composed config of the XP.

    Returns:
        What the solver's ``run`` returns.
    """
    check_config(cfg)
    resolve_device(cfg)
    init_seed_and_system(cfg)
    log_name = f"{cfg.execute_only}.log.{{rank}}" if cfg.execute_only else "solver.log.{rank}"
    flashy.setup_logging(level=str(cfg.logging.level).upper(), log_name=log_name)  # type: ignore[arg-type]
    import torch

    backend = "nccl" if str(cfg.device).startswith("cuda") and torch.cuda.is_available() else "gloo"
    flashy.distrib.init(backend=backend)
    solver = get_solver(cfg, get_environment())
    if cfg.show:
        solver.show()
        return None
    if cfg.execute_only:
        if not (cfg.execute_inplace or cfg.continue_from is not None):
            raise ConfigError("execute_only needs continue_from=<sig or path> or execute_inplace=true")
        solver.restore(replay_metrics=False)
        solver.run_one_stage(cfg.execute_only)
        _log_run_summary(solver)
        return None
    result = solver.run()
    _log_run_summary(solver)
    return result


def _log_run_summary(solver: tp.Any) -> None:
    # solvers that do not derive from StandardSolver (plugins keeping upstream's base) have no summary
    if hasattr(solver, "log_run_summary"):
        solver.log_run_summary()


_ENVIRONMENT: list[AudioCraftEnvironment] = []


def get_environment() -> AudioCraftEnvironment:
    """The environment of this process (built once, from the AUDIOCRAFT_* variables)."""
    if not _ENVIRONMENT:
        _ENVIRONMENT.append(AudioCraftEnvironment())
    return _ENVIRONMENT[0]


def _friendly_config_errors(get_xp: tp.Callable) -> tp.Callable:
    """Wrap Dora's config composition so that config errors end with one line naming the key."""

    def _get_xp(argv: tp.Sequence[str]) -> XP:
        try:
            return get_xp(argv)
        except Exception:
            _reset_dora_compare_path()
            raise

    def _checked_get_xp(argv: tp.Sequence[str]) -> XP:
        try:
            xp = _get_xp(argv)
            check_values(xp.cfg)  # before Dora makes the XP folder
            return xp
        except omegaconf.errors.MissingMandatoryValue as exc:
            keys = [getattr(exc, "full_key", None) or str(exc)]
            try:
                keys = sorted(omegaconf.OmegaConf.missing_keys(main._get_config(list(argv))))
            except Exception:  # pragma: no cover - keep the first key
                pass
            raise ConfigError(
                f"missing mandatory value for config key(s) {', '.join(keys)} (still '???' in "
                "the composed config; set it on the command line or pick a solver, e.g. "
                "solver=compression/debug)"
            ) from None
        except hydra.errors.ConfigCompositionException as exc:
            unknown = _unknown_option_message(str(exc))
            if unknown:
                raise ConfigError(unknown) from None
            cause = f" ({exc.__cause__})" if exc.__cause__ else ""
            raise ConfigError(f"{exc}{cause}".replace("\n", " ")) from None

    return _checked_get_xp


def config_options(group: str) -> list[str]:
    """Every config name of ``group`` (e.g. ``solver`` -> ``compression/debug``, ...).

    Read from the shipped configs and from ``$AUDIOCRAFT_EXTRA_CONFIG``. Hydra's own message lists only the group's
    top level (``default``).

    Args:
        group: the config group (``solver``, ``dset``, ...).

    Returns:
        The sorted config names.
    """
    roots = [Path(__file__).parent / "config"]
    extra = os.environ.get("AUDIOCRAFT_EXTRA_CONFIG")
    if extra:
        roots.append(Path(extra.removeprefix("file://")))
    names: set[str] = set()
    for root in roots:
        folder = root / group
        if folder.is_dir():
            names.update(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.yaml"))
    return sorted(names)


def _unknown_option_message(error: str) -> str | None:
    """Our message for Hydra's "Could not find 'group/name'", listing the real options, or None."""
    import re

    found = re.search(r"Could not find '([\w.-]+)/([^']+)'", error)
    if found is None:
        return None
    group, name = found.groups()
    options = config_options(group)
    if not options:
        return None
    example = next((o for o in options if "debug" in o), options[0])
    return (
        f"unknown {group} {name!r} (config group '{group}'); available: {', '.join(options)} (e.g. {group}={example})"
    )


def _reset_dora_compare_path() -> None:
    """Empty the recursion path dora.hydra._compare_config keeps in a mutable default argument.

    An exception raised while comparing (e.g. a '???' value) leaves stale entries there, and every later signature
    computed in this process would get wrong keys.
    """
    import dora.hydra

    defaults = getattr(getattr(dora.hydra, "_compare_config", None), "__defaults__", None) or ()
    for value in defaults:
        if isinstance(value, list):
            value.clear()


main.get_xp = _friendly_config_errors(main.get_xp)  # type: ignore[method-assign]
main.dora.dir = get_environment().get_dora_dir()
main._base_cfg.slurm = get_slurm_parameters(main._base_cfg.slurm, get_environment())

if main.dora.shared is not None and not os.access(main.dora.shared, os.R_OK):
    print("No read permission on dora.shared folder, ignoring it.", file=sys.stderr)
    main.dora.shared = None

if __name__ == "__main__":
    main()
