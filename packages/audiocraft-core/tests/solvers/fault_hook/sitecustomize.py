"""Fault injection for the fault tests: put this folder on PYTHONPATH and set ``AUDIOCRAFT_TEST_FAULT``.

``AUDIOCRAFT_TEST_FAULT="<module>:<attribute path>@<n>[:<when>][#<rank>]"`` wraps that function (patched when its
module is imported, or at once if it already is) so that its n-th call in this process, on worker ``rank`` (the
``RANK`` environment variable, default 0), triggers the fault:

- ``when=before`` (default): SIGKILL this process as the call starts; ``after``: SIGKILL once it returned;
- ``when=enospc``: raise ``OSError(ENOSPC)`` instead of calling it (a full disk).

Examples: ``audiocraft.solvers.base:StandardSolver.backward_and_update@7`` (inside the 7th update, before its
backward), ``torch:save@3:after`` (the 3rd ``torch.save`` wrote its temporary file, which is not moved in place
yet). Test-only; never installed.
"""

from __future__ import annotations

import errno
import importlib.abc
import importlib.machinery
import os
import signal
import sys


def _parse(spec: str) -> tuple[str, str, int, str, str]:
    rank = "0"
    if "#" in spec:
        spec, rank = spec.rsplit("#", 1)
    target, _, rest = spec.partition("@")
    count, _, when = rest.partition(":")
    module, _, attribute = target.partition(":")
    return module, attribute, int(count), when or "before", rank


def _wrap(function, count: int, when: str):
    calls = [0]

    def wrapper(*args, **kwargs):
        calls[0] += 1
        if calls[0] != count:
            return function(*args, **kwargs)
        if when == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = function(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return result

    return wrapper


def _patch(module, attribute: str, count: int, when: str) -> None:
    *path, leaf = attribute.split(".")
    owner = module
    for part in path:
        owner = getattr(owner, part)
    setattr(owner, leaf, _wrap(getattr(owner, leaf), count, when))


class _PatchOnImport(importlib.abc.MetaPathFinder):
    def __init__(self, module: str, attribute: str, count: int, when: str):
        self.args = (module, attribute, count, when)

    def find_spec(self, name, path=None, target=None):
        if name != self.args[0]:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch(module, *self.args[1:])

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def _install() -> None:
    spec = os.environ.get("AUDIOCRAFT_TEST_FAULT")
    if not spec:
        return
    module, attribute, count, when, rank = _parse(spec)
    if os.environ.get("RANK", "0") != rank:
        return
    if module in sys.modules:
        _patch(sys.modules[module], attribute, count, when)
    else:
        sys.meta_path.insert(0, _PatchOnImport(module, attribute, count, when))


_install()
