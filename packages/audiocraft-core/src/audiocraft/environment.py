"""Team and cluster environment, read from a team file ``config/teams/<team>.yaml``.

It says where XPs live (Dora dir) and gives the shared reference folder, the SLURM partitions and the dataset
path mappers.

Part of audiocraft-core (training layer). Build one `AudioCraftEnvironment` per process (``audiocraft.train``
does it) and pass it to whatever needs it; there is no global instance. Upstream grid files and notebooks call
the getters on the class (``AudioCraftEnvironment.get_slurm_partitions(['team', 'global'])``): that works too,
and runs the method on an instance built from the environment variables at the time of the call. Upstream
kept a cached singleton for this (cleared by ``reset()``); here nothing is cached between class-level calls,
so a changed variable is always seen and ``reset()`` has nothing to clear. Variables:

- ``AUDIOCRAFT_TEAM``: team file name (default ``default``).
- ``AUDIOCRAFT_CONFIG``: explicit path of a team file (wins over ``AUDIOCRAFT_TEAM``).
- ``AUDIOCRAFT_CLUSTER``: cluster section to use (default: detected, see `audiocraft.utils.cluster`).
- ``AUDIOCRAFT_DORA_DIR``: Dora directory (wins over the team file).
- ``AUDIOCRAFT_REFERENCE_DIR``: reference directory (wins over the team file).
"""

from __future__ import annotations

import functools
import getpass
import importlib.resources
import inspect
import logging
import os
import re
import tempfile
import types
import typing as tp
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .utils.cluster import guess_cluster

logger = logging.getLogger(__name__)

REFERENCE_PREFIX = "//reference"

# Used when no team file can be found (audiocraft-core installed without the meta-package's config/).
_BUILTIN_TEAM = {
    "default": {"dora_dir": "./outputs", "partitions": {"global": "", "team": ""}, "reference_dir": None},
}


def _user(environ: tp.Mapping[str, str]) -> str:
    try:
        return environ.get("USER") or getpass.getuser()
    except Exception:  # pragma: no cover - no user database
        return "user"


def packaged_team_file(team: str) -> Path | None:
    """Path of ``config/teams/<team>.yaml`` shipped with the ``audiocraft`` meta-package, if installed."""
    try:
        root = importlib.resources.files("audiocraft") / "config" / "teams" / f"{team}.yaml"
    except (ModuleNotFoundError, TypeError):  # pragma: no cover
        return None
    try:
        with importlib.resources.as_file(root) as path:
            return Path(path) if Path(path).is_file() else None
    except (FileNotFoundError, NotADirectoryError):
        return None


_R = tp.TypeVar("_R")


class _EnvironmentMethod(tp.Generic[_R]):
    """A method that can also be called on the class, as upstream's classmethods were.

    On an instance it is an ordinary bound method. On the class (``AudioCraftEnvironment.get_team()``) it builds
    ``cls()`` (from ``os.environ``) when called, and runs on that fresh instance.
    """

    def __init__(self, func: tp.Callable[..., _R]):
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, obj: tp.Any, owner: type | None = None) -> tp.Callable[..., _R]:
        if obj is not None:
            return types.MethodType(self.func, obj)
        assert owner is not None
        func, klass = self.func, owner

        @functools.wraps(func)
        def on_current_environment(*args: tp.Any, **kwargs: tp.Any) -> _R:
            return func(klass(), *args, **kwargs)

        signature = inspect.signature(func)
        on_current_environment.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=list(signature.parameters.values())[1:]
        )
        return on_current_environment


class AudioCraftEnvironment:
    """Environment of a team on a cluster.

    Every public getter works on an instance (injected, e.g. built from a dict in tests) and on the class, where
    it reads the current environment variables (upstream's classmethod calls).

    Args:
        team: team name; defaults to ``$AUDIOCRAFT_TEAM`` or ``default``.
        cluster: cluster name; defaults to ``$AUDIOCRAFT_CLUSTER`` or the detected cluster.
        config_path: team file; defaults to ``$AUDIOCRAFT_CONFIG`` or the packaged ``teams/<team>.yaml``.
        environ: the environment variables to read (``os.environ`` by default; tests pass a dict).

    Raises:
        FileNotFoundError: if an explicit team file does not exist.
        ValueError: if an explicit cluster is not a section of the team file.
    """

    DEFAULT_TEAM = "default"

    def __init__(
        self,
        team: str | None = None,
        cluster: str | None = None,
        config_path: str | Path | None = None,
        environ: tp.Mapping[str, str] | None = None,
    ):
        self._environ = os.environ if environ is None else environ
        self.team: str = team or self._environ.get("AUDIOCRAFT_TEAM") or self.DEFAULT_TEAM
        config_path = config_path or self._environ.get("AUDIOCRAFT_CONFIG")
        if config_path is not None:
            path = Path(config_path)
            if not path.is_file():
                raise FileNotFoundError(f"team config {path} (AUDIOCRAFT_CONFIG) does not exist")
            self.config_path: Path | None = path
        else:
            self.config_path = packaged_team_file(self.team)
            if self.config_path is None and self.team != self.DEFAULT_TEAM:
                raise FileNotFoundError(
                    f"no team file config/teams/{self.team}.yaml (AUDIOCRAFT_TEAM={self.team!r}); "
                    "set AUDIOCRAFT_CONFIG to a team file path"
                )
        if self.config_path is not None:
            loaded = OmegaConf.load(self.config_path)
            if not isinstance(loaded, DictConfig):
                raise ValueError(f"team file {self.config_path} must map cluster names to sections")
            self.config: DictConfig = loaded
        else:
            self.config = OmegaConf.create(_BUILTIN_TEAM)
        known = OmegaConf.to_container(self.config, resolve=False)
        assert isinstance(known, dict)
        explicit = cluster or self._environ.get("AUDIOCRAFT_CLUSTER")
        if explicit is not None:
            if explicit not in self.config:
                raise ValueError(
                    f"cluster {explicit!r} is not defined in team file {self._where}; "
                    f"defined clusters: {sorted(self.config.keys())}"  # type: ignore[type-var]
                )
            self.cluster: str = explicit
        else:
            detected = guess_cluster({str(k): v for k, v in known.items()}, self._environ)
            if detected not in self.config:
                logger.info("Detected cluster %r has no section in %s, using 'default'", detected, self._where)
                detected = "default"
                if detected not in self.config:
                    raise ValueError(
                        f"team file {self._where} has no 'default' cluster section and the "
                        "cluster could not be detected; set AUDIOCRAFT_CLUSTER"
                    )
            self.cluster = detected
        logger.debug("AudioCraft environment: team=%s cluster=%s config=%s", self.team, self.cluster, self._where)
        self._dataset_mappers: list[tuple[re.Pattern, str]] = []
        for pattern, repl in (self._cluster_config().get("dataset_mappers") or {}).items():
            self._dataset_mappers.append((re.compile(pattern), repl))
        self._dora_dir: Path | None = None

    @property
    def _where(self) -> str:
        return str(self.config_path) if self.config_path else "<built-in default team>"

    def _cluster_config(self) -> DictConfig:
        section = self.config[self.cluster]
        return section if section is not None else OmegaConf.create({})

    def _get(self, key: str) -> tp.Any:
        section = self._cluster_config()
        if key not in section:
            return None
        raw = section._get_node(key)._value()  # type: ignore[union-attr]
        if isinstance(raw, str) and "${oc.env:USER}" in raw:
            # USER may be unset (containers): substitute it ourselves rather than failing to resolve.
            raw = raw.replace("${oc.env:USER}", _user(self._environ))
            return OmegaConf.create({"v": raw}).v
        return section[key]

    @_EnvironmentMethod
    def instance(self) -> AudioCraftEnvironment:
        """This environment; on the class, a new one built from the current environment variables."""
        return self

    @_EnvironmentMethod
    def reset(self) -> None:
        """Forget the cached Dora directory, so that the next `get_dora_dir` looks again.

        Upstream's class-level ``reset()`` dropped its singleton; class-level calls here cache nothing, so on
        the class this does nothing and the next call already reads the environment variables afresh.
        """
        self._dora_dir = None

    @_EnvironmentMethod
    def get_team(self) -> str:
        """The team name (``$AUDIOCRAFT_TEAM`` or ``default`` unless given)."""
        return self.team

    @_EnvironmentMethod
    def get_cluster(self) -> str:
        """The cluster name (``$AUDIOCRAFT_CLUSTER`` or the detected one unless given)."""
        return self.cluster

    @_EnvironmentMethod
    def get_dora_dir(self) -> Path:
        """Dora directory: ``$AUDIOCRAFT_DORA_DIR``, else the team file's ``dora_dir`` for this cluster.

        Relative paths are made absolute against the current directory. When the directory cannot be
        created or written, falls back to a temporary folder and says so (once) in the log.
        """
        if self._dora_dir is not None:
            return self._dora_dir
        value = self._environ.get("AUDIOCRAFT_DORA_DIR") or self._get("dora_dir")
        candidate = Path(value).expanduser().absolute() if value else None
        if candidate is None or not self._writable(candidate):
            fallback = Path(tempfile.gettempdir()) / f"audiocraft_{_user(self._environ)}" / "outputs"
            logger.warning(
                "Dora directory %s is not usable (team=%s, cluster=%s); falling back to temporary "
                "folder %s. Set AUDIOCRAFT_DORA_DIR to choose a lasting place.",
                candidate,
                self.team,
                self.cluster,
                fallback,
            )
            candidate = fallback
        self._dora_dir = candidate
        return candidate

    @staticmethod
    def _writable(path: Path) -> bool:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return os.access(path, os.W_OK)

    @_EnvironmentMethod
    def get_reference_dir(self) -> Path | None:
        """Reference directory shared by the team: ``$AUDIOCRAFT_REFERENCE_DIR`` or the team file's value."""
        value = self._environ.get("AUDIOCRAFT_REFERENCE_DIR") or self._get("reference_dir")
        return Path(value).expanduser() if value else None

    @_EnvironmentMethod
    def get_slurm_exclude(self) -> str | None:
        """Comma separated nodes to exclude on this cluster, if any."""
        return self._get("slurm_exclude")

    @_EnvironmentMethod
    def get_slurm_partitions(self, partition_types: list[str] | None = None) -> str:
        """Partitions for this team and cluster as a comma separated string.

        Args:
            partition_types: among ``'global'`` and ``'team'``; defaults to ``['global']``.
        """
        partition_types = partition_types or ["global"]
        partitions = self._cluster_config().get("partitions") or {}
        out = []
        for kind in partition_types:
            if kind not in ("global", "team"):
                raise ValueError(f"unknown partition type {kind!r}; expected one of ['global', 'team']")
            value = partitions.get(kind)
            if value:
                out.append(str(value))
        return ",".join(out)

    @_EnvironmentMethod
    def resolve_reference_path(self, path: str | Path) -> Path:
        """Replace a leading ``//reference`` with the reference directory.

        Raises:
            ValueError: if the path uses ``//reference`` and no existing reference directory is configured.
        """
        text = str(path)
        if not text.startswith(REFERENCE_PREFIX):
            return Path(text)
        reference_dir = self.get_reference_dir()
        if reference_dir is None or not reference_dir.is_dir():
            raise ValueError(
                f"{text!r} uses //reference but the reference directory {reference_dir} does not "
                f"exist (team={self.team}, cluster={self.cluster}; set AUDIOCRAFT_REFERENCE_DIR)"
            )
        return Path(str(reference_dir) + text[len(REFERENCE_PREFIX) :])

    @_EnvironmentMethod
    def apply_dataset_mappers(self, path: str) -> str:
        """Rewrite a dataset path with this cluster's ``dataset_mappers`` regex rules (in order)."""
        for pattern, repl in self._dataset_mappers:
            path = pattern.sub(repl, path)
        return path
