"""Helpers shared by the repository-level (cross-package) tests."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = [
    "audiocraft-data",
    "audiocraft-conditioners",
    "audiocraft-models",
    "audiocraft-metrics",
    "audiocraft-core",
    "audiocraft",
]


def load_script(name: str):
    """Import one of the repository's scripts/ helpers as a module."""
    path = REPO / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_scripts_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
