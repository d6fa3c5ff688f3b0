"""Cluster detection and SLURM defaults.

Part of audiocraft-core (training layer). The cluster name selects a section of the team file (see
`audiocraft.environment`); SLURM defaults (partition, exclude list) are filled from it.
"""

from __future__ import annotations

import os
import platform
import re
import socket
import typing as tp
from enum import Enum

if tp.TYPE_CHECKING:
    from ..environment import AudioCraftEnvironment


class ClusterType(Enum):
    """Cluster families known without a team file; any other name can be used through a team file."""

    DEFAULT = "default"
    DARWIN = "darwin"
    SLURM = "slurm"


def guess_cluster(known: tp.Mapping[str, tp.Any] | None = None, environ: tp.Mapping[str, str] | None = None) -> str:
    """Guess the cluster name.

    Rules, first match wins: a cluster of ``known`` (the team file sections) whose ``hostnames`` regexes
    match this host's fully qualified name; ``SLURM_CLUSTER_NAME`` if it names a known section; ``darwin``
    on macOS; ``slurm`` when running inside a SLURM job (``SLURM_JOB_ID``); ``default`` otherwise.

    Args:
        known: the team file's cluster sections.
        environ: the environment variables to read (``os.environ`` when None), e.g. the ones an
            `AudioCraftEnvironment` was built with.
    """
    known = known or {}
    environ = os.environ if environ is None else environ
    fqdn = socket.getfqdn()
    for name, section in known.items():
        patterns = (section or {}).get("hostnames") or []
        if any(re.search(pattern, fqdn) for pattern in patterns):
            return name
    slurm_name = environ.get("SLURM_CLUSTER_NAME")
    if slurm_name and slurm_name in known:
        return slurm_name
    if platform.system() == "Darwin":
        return ClusterType.DARWIN.value
    if "SLURM_JOB_ID" in environ:
        return ClusterType.SLURM.value
    return ClusterType.DEFAULT.value


def _guess_cluster_type(environ: tp.Mapping[str, str] | None = None) -> ClusterType:
    """Upstream-compatible helper returning a `ClusterType` (no team file: always one of its values)."""
    return ClusterType(guess_cluster(environ=environ))


def get_slurm_parameters(cfg: tp.Any, environment: AudioCraftEnvironment) -> tp.Any:
    """Fill the ``slurm`` config section defaults (partition, exclude) from the environment.

    Args:
        cfg: the ``slurm`` section (DictConfig or dict), modified and returned.
        environment: the resolved environment.
    """
    if cfg.get("partition") is None:
        cfg["partition"] = environment.get_slurm_partitions()
    if not cfg.get("exclude"):
        exclude = environment.get_slurm_exclude()
        if exclude:
            cfg["exclude"] = exclude
    return cfg
