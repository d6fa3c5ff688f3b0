"""Package metadata rules: PEP 420 namespace, one owner per subpackage, sibling ranges admit sibling versions."""

from __future__ import annotations

import pytest
import tomllib
from packaging.requirements import Requirement
from repo_helpers import PACKAGES, REPO


def _project(dist: str) -> dict:
    return tomllib.loads((REPO / "packages" / dist / "pyproject.toml").read_text())["project"]


def test_no_distribution_ships_a_namespace_init() -> None:
    inits = list(REPO.glob("packages/*/src/audiocraft/__init__.py"))
    assert not inits, f"PEP 420 namespace broken by {inits}"


def test_subpackages_have_one_owner() -> None:
    owners: dict[str, str] = {}
    for dist in PACKAGES:
        for child in (REPO / "packages" / dist / "src" / "audiocraft").iterdir():
            if child.name == "__pycache__":
                continue
            assert child.name not in owners, f"{child.name} owned by both {owners[child.name]} and {dist}"
            owners[child.name] = dist


@pytest.mark.parametrize("dist", PACKAGES)
def test_sibling_ranges_admit_current_versions(dist: str) -> None:
    versions = {d: _project(d)["version"] for d in PACKAGES}
    project = _project(dist)
    reqs = [Requirement(r) for r in project.get("dependencies", [])]
    for extra in project.get("optional-dependencies", {}).values():
        reqs += [Requirement(r) for r in extra]
    for req in reqs:
        if req.name in versions:
            assert req.specifier.contains(versions[req.name], prereleases=True), (
                f"{dist} requires {req}, which excludes {req.name} {versions[req.name]}"
            )
            assert str(req.specifier), f"{dist}: sibling {req.name} must carry a version range"


@pytest.mark.parametrize("dist", PACKAGES)
def test_each_package_has_readme_tests_and_typed_marker(dist: str) -> None:
    root = REPO / "packages" / dist
    assert (root / "README.md").read_text().strip()
    assert any((root / "tests").rglob("test_*.py")), f"{dist} has no tests"
    for sub in (root / "src" / "audiocraft").iterdir():
        if sub.is_dir() and sub.name not in {"__pycache__", "config"}:
            assert (sub / "py.typed").exists() or sub.name == "grids", f"{sub} lacks py.typed"


def test_inference_packages_do_not_declare_training_stack() -> None:
    for dist in ["audiocraft-data", "audiocraft-conditioners", "audiocraft-models", "audiocraft-metrics"]:
        names = {Requirement(r).name for r in _project(dist).get("dependencies", [])}
        assert not names & {"hydra-core", "dora-search", "flashy"}, f"{dist} declares {names}"


def test_pins_cover_torch() -> None:
    pins = (REPO / "requirements" / "constraints.txt").read_text().splitlines()
    assert "torch==2.14.1" in pins and "torchaudio==2.11.0" in pins
    assert all("==" in p for p in pins if p and not p.startswith("#")), "constraints must be exact pins"
