"""The dependency direction of DESIGN.md, checked by importing every module of every distribution.

Each package's own hatch environment (holding only that package and its declared dependencies) runs the same check
through scripts/check_layers.py; here we run it in the full development environment, where an upward import would
*succeed* and so must be caught by looking at sys.modules, and we show that the check does fail on one.
"""

from __future__ import annotations

import pathlib
import sys
import textwrap

import pytest
from repo_helpers import PACKAGES, load_script

layers = load_script("check_layers")


@pytest.mark.parametrize("dist", PACKAGES)
def test_distribution_respects_layers(dist: str) -> None:
    errors, modules = layers.check_distribution(dist)
    assert not errors, f"{dist} breaks the import layers:\n" + "\n".join(errors)
    assert modules, f"{dist}: no module imported"


def test_forbidden_sets_follow_design() -> None:
    assert "audiocraft.solvers" in layers.forbidden_prefixes("audiocraft-models")
    assert "hydra" in layers.forbidden_prefixes("audiocraft-models")
    assert "audiocraft.models" in layers.forbidden_prefixes("audiocraft-metrics")
    assert "audiocraft.conditioners" in layers.forbidden_prefixes("audiocraft-data")
    assert "hydra" not in layers.forbidden_prefixes("audiocraft-core")
    assert not layers.forbidden_prefixes("audiocraft")


def _write_portion(root: pathlib.Path, body: str) -> None:
    pkg = root / "lowlayer_probe"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "fine.py").write_text("import json\n")
    (pkg / "bad.py").write_text(textwrap.dedent(body))


@pytest.mark.parametrize(
    "body",
    [
        "import audiocraft.solvers\n",  # upward import at module top
        "def f():\n    pass\nimport hydra\n",  # a training-stack module
        "from audiocraft.metrics import SISNR  # noqa\n",  # sideways (metrics is not below data)
    ],
)
def test_check_fails_on_upward_import(tmp_path: pathlib.Path, body: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_portion(tmp_path, body)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    forbidden = layers.forbidden_prefixes("audiocraft-data") + ["audiocraft.metrics"]
    errors, modules = layers.check(["lowlayer_probe"], forbidden, sys.executable)
    assert "lowlayer_probe.fine" in modules
    assert errors, "an upward import went unnoticed"


def test_check_reports_modules_that_fail_to_import(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_portion(tmp_path, "import a_module_nobody_declared\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    errors, _ = layers.check(["lowlayer_probe"], [], sys.executable)
    assert any("lowlayer_probe.bad: import failed" in e for e in errors)
