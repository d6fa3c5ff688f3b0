"""Wheels and sdists of the six distributions: contents, and installs into fresh virtual environments.

The installs are real `pip install <wheel>` runs (not editable) into new venvs that see only the shared torch
install, which is what a user of `pip install audiocraft-models` gets.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tarfile
import zipfile

import pytest
from repo_helpers import PACKAGES, REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("dist")
    for dist in PACKAGES:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "build",
                "--no-isolation",
                "--sdist",
                "--wheel",
                "-o",
                str(out),
                str(REPO / "packages" / dist),
            ],
            check=True,
            capture_output=True,
        )
    return out


def _wheel(dist_dir: pathlib.Path, dist: str) -> pathlib.Path:
    (wheel,) = dist_dir.glob(f"{dist.replace('-', '_')}-*.whl")
    return wheel


def _files(wheel: pathlib.Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return {n for n in zf.namelist() if ".dist-info/" not in n}


def test_every_distribution_builds_a_wheel_and_an_sdist(dist_dir: pathlib.Path) -> None:
    for dist in PACKAGES:
        _wheel(dist_dir, dist)
        assert list(dist_dir.glob(f"{dist.replace('-', '_')}-*.tar.gz")), f"no sdist for {dist}"


def test_wheels_are_disjoint_namespace_portions(dist_dir: pathlib.Path) -> None:
    seen: dict[str, str] = {}
    for dist in PACKAGES:
        for name in _files(_wheel(dist_dir, dist)):
            if name.endswith(".pth"):
                continue
            assert name != "audiocraft/__init__.py", f"{dist} ships the namespace __init__"
            assert name not in seen, f"{name} in both {seen[name]} and {dist}"
            seen[name] = dist


def _metadata_fields(text: str, field: str) -> list[str]:
    """The values of a core-metadata header field (``License-Expression``, ...), from METADATA or PKG-INFO."""
    headers = text.split("\n\n", 1)[0]
    return [line.split(":", 1)[1].strip() for line in headers.splitlines() if line.startswith(f"{field}:")]


def test_every_wheel_and_sdist_carries_the_same_license(dist_dir: pathlib.Path) -> None:
    root_license = (REPO / "LICENSE").read_text()
    assert root_license.startswith("MIT License"), "the root LICENSE is not the MIT text"
    declared: dict[str, tuple[list[str], list[str]]] = {}
    for dist in PACKAGES:
        stem = dist.replace("-", "_")
        assert (REPO / "packages" / dist / "LICENSE").read_text() == root_license, f"{dist}/LICENSE differs"
        with zipfile.ZipFile(_wheel(dist_dir, dist)) as zf:
            names = zf.namelist()
            (info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
            assert f"{info}/licenses/LICENSE" in names, f"{dist} wheel has no {info}/licenses/LICENSE"
            assert zf.read(f"{info}/licenses/LICENSE").decode() == root_license
            metadata = zf.read(f"{info}/METADATA").decode()
        fields = (_metadata_fields(metadata, "License-Expression"), _metadata_fields(metadata, "License-File"))
        declared[f"{dist} wheel"] = fields
        (sdist,) = dist_dir.glob(f"{stem}-*.tar.gz")
        with tarfile.open(sdist) as tf:
            top = tf.getnames()[0].split("/")[0]
            members = set(tf.getnames())
            for name in ("LICENSE", "CHANGELOG.md"):
                assert f"{top}/{name}" in members, f"{sdist.name} has no {name}"
            license_file = tf.extractfile(f"{top}/LICENSE")
            assert license_file is not None and license_file.read().decode() == root_license
            pkg_info = tf.extractfile(f"{top}/PKG-INFO")
            assert pkg_info is not None
            pkg_info_text = pkg_info.read().decode()
        declared[f"{dist} sdist"] = (
            _metadata_fields(pkg_info_text, "License-Expression"),
            _metadata_fields(pkg_info_text, "License-File"),
        )
    assert set(map(repr, declared.values())) == {repr((["MIT"], ["LICENSE"]))}, declared


def test_meta_wheel_carries_config_and_grids(dist_dir: pathlib.Path) -> None:
    files = _files(_wheel(dist_dir, "audiocraft"))
    assert "audiocraft/config/config.yaml" in files
    assert "audiocraft/grids/__init__.py" in files
    assert any(n.startswith("audiocraft/config/solver/") for n in files)


def _venv(tmp: pathlib.Path) -> pathlib.Path:
    """A fresh venv that sees the shared torch install (as the hatch environments do)."""
    subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True)
    python = tmp / "bin" / "python"
    torch_dir = REPO / ".venvs" / "torch"
    if (torch_dir / "torch").is_dir():
        subprocess.run([str(python), str(REPO / "scripts" / "link_torch.py"), str(torch_dir)], check=True)
    return python


def _pip_install(python: pathlib.Path, *wheels: pathlib.Path) -> None:
    env = dict(os.environ)
    env.setdefault("PIP_CONSTRAINT", str(REPO / "requirements" / "constraints.txt"))
    env.pop("PYTHONPATH", None)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *map(str, wheels)], check=True, env=env)


def _installed(python: pathlib.Path) -> set[str]:
    out = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"], check=True, capture_output=True, text=True
    ).stdout
    return {line.split("==")[0].lower() for line in out.splitlines() if "==" in line}


def test_models_wheel_installs_alone_without_training_stack(dist_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    python = _venv(tmp_path / "venv")
    _pip_install(
        python, *(_wheel(dist_dir, d) for d in ["audiocraft-data", "audiocraft-conditioners", "audiocraft-models"])
    )
    installed = _installed(python)
    assert {"audiocraft-models", "audiocraft-data", "audiocraft-conditioners"} <= installed
    assert not installed & {"hydra-core", "dora-search", "flashy", "audiocraft-core"}, installed
    code = (
        "import sys, audiocraft.models as m; m.EncodecModel; "
        "assert not [k for k in sys.modules if k.split('.')[0] in ('hydra', 'dora', 'flashy')]; "
        "print(m.__file__)"
    )
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path).stdout
    assert "site-packages" in out, "imported the source tree instead of the installed wheel"


def test_meta_wheel_resolves_config_and_grids(dist_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    python = _venv(tmp_path / "venv")
    _pip_install(python, *(_wheel(dist_dir, d) for d in PACKAGES))
    code = (
        "import importlib.resources as r, audiocraft.grids, audiocraft.train as t; "
        "cfg = r.files('audiocraft') / 'config' / 'config.yaml'; assert cfg.is_file(), cfg; "
        "assert 'site-packages' in audiocraft.grids.__file__; print(t.main.full_config_path)"
    )
    out = subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path).stdout
    assert "site-packages/audiocraft/config" in out
    # `dora grid` outside the repository, found through DORA_PACKAGE set by the wheel's .pth file.
    env = {k: v for k, v in os.environ.items() if k not in {"DORA_PACKAGE", "PYTHONPATH"}}
    env["AUDIOCRAFT_DORA_DIR"] = str(tmp_path / "xps")
    env.setdefault("USER", "ci")
    proc = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "dora"), "grid", "compression.debug", "--dry_run", "--init"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
