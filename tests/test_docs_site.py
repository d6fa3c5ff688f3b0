"""The documentation site (mkdocs.yml): the strict build of the whole tree, and what makes it fail.

CI runs these as repository tests in ``.venv``, which has the docs tools (``requirements/docs.txt``, included by
``requirements/dev.txt``): a missing mkdocs is a failure here, not a skip. ``./dev.sh docs`` runs the same build.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from repo_helpers import REPO

# The banner mkdocs-material prints about its successor is noise in a test log.
ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
# One public name per package portion, with the page that must render it: proof that griffe merged the six
# src folders into the one namespace package and that each page renders members, not only a module docstring.
EXPECTED_IDS = {
    "data": ["audiocraft.data.audio.audio_read", "audiocraft.data.audio_dataset.AudioDataset"],
    "conditioners": ["audiocraft.conditioners.T5Conditioner", "audiocraft.conditioners.ConditioningProvider"],
    "models": ["audiocraft.models.musicgen.MusicGen", "audiocraft.models.encodec.EncodecModel"],
    "modules": ["audiocraft.modules.transformer.StreamingTransformer", "audiocraft.modules.seanet.SEANetEncoder"],
    "quantization": ["audiocraft.quantization.vq.ResidualVectorQuantizer"],
    "metrics": ["audiocraft.metrics.Metric", "audiocraft.metrics.fad.FrechetAudioDistanceMetric"],
    "solvers": ["audiocraft.solvers.base.StandardSolver", "audiocraft.solvers.compression.CompressionSolver"],
    "optim": ["audiocraft.optim.ema.ModuleDictEMA"],
    "losses": ["audiocraft.losses.balancer.Balancer"],
    "adversarial": ["audiocraft.adversarial.losses.AdversarialLoss"],
    "utils": ["audiocraft.environment.AudioCraftEnvironment", "audiocraft.utils.checkpoint"],
    "audiocraft": ["audiocraft.train.main", "audiocraft.export_cli.main"],
}


def _require_mkdocs() -> None:
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings_handlers") is None:
        pytest.fail(
            "mkdocs/mkdocstrings are not installed in this environment: run ./dev.sh setup "
            "(requirements/docs.txt is part of requirements/dev.txt)"
        )


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=config.parent,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _directives() -> set[str]:
    """The identifiers of every ``::: identifier`` directive of the API pages."""
    found = set()
    for page in (REPO / "docs" / "api").glob("*.md"):
        found |= set(re.findall(r"^::: ([\w.]+)\s*$", page.read_text(), flags=re.M))
    return found


def _public_modules() -> dict[str, Path]:
    """Every module of packages/*/src whose dotted path has no private part (the Dora grids are configs)."""
    modules = {}
    for src in REPO.glob("packages/*/src"):
        for path in (src / "audiocraft").rglob("*.py"):
            parts = list(path.relative_to(src).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if any(part.startswith("_") for part in parts) or parts[1:2] == ["grids"] and len(parts) > 2:
                continue
            modules[".".join(parts)] = path
    modules.pop("audiocraft", None)
    return modules


def test_every_public_module_has_an_api_entry():
    missing = sorted(set(_public_modules()) - _directives())
    assert not missing, f"public modules without a '::: module' entry in docs/api/*.md: {missing}"


def _site_options() -> dict:
    """The mkdocstrings python handler options of mkdocs.yml (read as YAML without its ``!!python`` tags)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)
    config = yaml.load((REPO / "mkdocs.yml").read_text(), Loader=Loader)
    plugin = next(p["mkdocstrings"] for p in config["plugins"] if isinstance(p, dict) and "mkdocstrings" in p)
    return plugin["handlers"]["python"]["options"]


@pytest.mark.parametrize(
    ("docstring_args", "expected"),
    [
        ("b (int): not a parameter of f.", "Parameter 'b' does not appear in the function signature"),
        ("a (int): the input.", None),
    ],
)
def test_strict_build_fails_on_a_docstring_naming_a_missing_parameter(tmp_path, docstring_args, expected):
    """The repository's handler options on a one-function package: griffe's warning fails the strict build."""
    _require_mkdocs()
    import yaml

    pkg = tmp_path / "src" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        textwrap.dedent(f'''\
            """A package."""


            def f(a: int) -> int:
                """Return ``a``.

                Args:
                    {docstring_args}
                """
                return a
            ''')
    )
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# API\n\n::: pkg\n")
    handler = {"paths": ["src"], "options": _site_options()}
    config = {"site_name": "t", "plugins": [{"mkdocstrings": {"handlers": {"python": handler}}}]}
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    result = _build(tmp_path / "mkdocs.yml", tmp_path / "site")
    if expected is None:
        assert result.returncode == 0, result.stderr
        assert 'id="pkg.f"' in (tmp_path / "site" / "index.html").read_text()
    else:
        assert result.returncode != 0
        assert expected in result.stderr


@pytest.mark.slow
def test_site_builds_strict(tmp_path):
    """``mkdocs build --strict`` of the repository (every guide, every API page), as ``./dev.sh docs`` runs it."""
    _require_mkdocs()
    site = tmp_path / "site"
    result = _build(REPO / "mkdocs.yml", site)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    for page, ids in EXPECTED_IDS.items():
        html = (site / "api" / page / "index.html").read_text()
        for ident in ids:
            assert f'id="{ident}"' in html, f"{ident} is not rendered on docs/api/{page}.md"
        assert ":class:<code>" not in html, "scripts/mkdocs_hooks.py did not drop the Sphinx role names"
    for guide in ("DEVELOPMENT", "MUSICGEN", "TRAINING"):
        assert (site / guide / "index.html").is_file()
    # Undocumented names are not rendered (show_if_no_docstring: false), so a name exported without a docstring
    # is missing from the site: ruff's D rules catch functions and classes, this catches constants and aliases too.
    rendered = set()
    for html in (site / "api").glob("*/index.html"):
        rendered |= {ident.rsplit(".", 1)[-1] for ident in re.findall(r'id="(audiocraft\.[\w.]+)"', html.read_text())}
    unrendered = {}
    for module, path in _public_modules().items():
        missing = sorted(set(_exported_names(path)) - rendered)
        if missing:
            unrendered[module] = missing
    assert not unrendered, f"names in __all__ that the site does not render (no docstring?): {unrendered}"


def _exported_names(path: Path) -> list[str]:
    """The literal ``__all__`` of a module (empty when it has none or builds it at run time)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            try:
                return list(ast.literal_eval(node.value))
            except ValueError:
                return []
    return []
