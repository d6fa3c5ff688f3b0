"""No distribution imports another distribution's private modules (``audiocraft.<sub>._name``).

A helper that another package needs has a public home in the package that owns it (e.g. ``audiocraft.models.sampling``,
``audiocraft.conditioners.utils``, ``audiocraft.solvers.lora``); private modules may change without notice. Checked on
the source and the tests of every package, and on the repository tests, by reading their imports (``import`` and
``from ... import``, at any depth).
"""

from __future__ import annotations

import ast
import pathlib

import pytest
from repo_helpers import PACKAGES, REPO


def _owners() -> dict[str, str]:
    """``audiocraft.<sub>`` -> the distribution that ships it."""
    owners = {}
    for dist in PACKAGES:
        for sub in (REPO / "packages" / dist / "src" / "audiocraft").iterdir():
            if sub.is_dir() and not sub.name.startswith((".", "_")):
                owners[sub.name] = dist
    return owners


def private_imports(source: str, own: str, owners: dict[str, str]) -> list[str]:
    """The private modules of distributions other than ``own`` that ``source`` imports."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        hits = {
            ".".join(parts[:3])
            for parts in (name.split(".") for name in names)
            if len(parts) > 2
            and parts[0] == "audiocraft"
            and owners.get(parts[1], own) != own
            and parts[2].startswith("_")
            and not parts[2].startswith("__")
        }
        found += [f"line {node.lineno}: {hit}" for hit in sorted(hits)]
    return found


def test_the_check_sees_a_private_import() -> None:
    owners = {"models": "audiocraft-models", "utils": "audiocraft-core"}
    bad = "import torch\ndef f():\n    from audiocraft.models._sampling import multinomial\n"
    assert private_imports(bad, "audiocraft-core", owners) == ["line 3: audiocraft.models._sampling"]
    assert private_imports("from audiocraft.models import _sampling\n", "audiocraft-core", owners) == [
        "line 1: audiocraft.models._sampling"
    ]
    assert private_imports(bad, "audiocraft-models", owners) == []  # a package's own private module
    assert private_imports("from audiocraft.models.sampling import multinomial\n", "audiocraft-core", owners) == []


@pytest.mark.parametrize("dist", PACKAGES)
def test_no_private_import_of_another_distribution(dist: str) -> None:
    owners = _owners()
    root = REPO / "packages" / dist
    errors = []
    for path in sorted([*(root / "src").rglob("*.py"), *(root / "tests").rglob("*.py")]):
        if path.is_symlink() or any(p.is_symlink() for p in path.parents if root in p.parents):
            continue  # config/ and grids/ are links into the repository top (checked as the meta-package's)
        for hit in private_imports(path.read_text(encoding="utf-8"), dist, owners):
            errors.append(f"{pathlib.Path(path).relative_to(REPO)} {hit}")
    assert not errors, "private modules of another distribution imported:\n" + "\n".join(errors)


def test_repository_tests_import_no_private_module() -> None:
    # tests/ belongs to no distribution: every package is "another" one there.
    owners = _owners()
    errors = [
        f"{path.relative_to(REPO)} {hit}"
        for path in sorted((REPO / "tests").glob("*.py"))
        for hit in private_imports(path.read_text(encoding="utf-8"), "", owners)
    ]
    assert not errors, "private modules imported by the repository tests:\n" + "\n".join(errors)
