"""An upstream-style grid file, calling `AudioCraftEnvironment` at class level, runs through the real ``dora grid``.

Dora imports grids from ``audiocraft.grids`` (``main.package + '.grids'``) and requires the grid file to sit in that
package's folder. The test therefore builds a copy of the installed ``audiocraft.grids`` in a temporary folder, adds
``tests/upstream_grid/environment_calls.py`` to it as ``compression/environment_calls.py`` (so that its upstream
relative imports ``from ._explorers`` and ``from ...environment`` resolve as in upstream's tree), and puts that
folder first on ``PYTHONPATH``: ``audiocraft`` is a namespace package, so the copy of ``audiocraft.grids`` is the
one found while every other ``audiocraft.*`` subpackage comes from the installed distributions. Nothing in the
source tree or in Dora is patched.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

GRID = Path(__file__).parent / "upstream_grid" / "environment_calls.py"

TEAM = """
default:
  dora_dir: {root}/unused
  partitions: {{global: debug, team: debug}}
lab:
  dora_dir: {root}/team_dora
  partitions: {{global: learn, team: labteam}}
  reference_dir: {root}/ref
  dataset_mappers:
    "^/datasets01/": "/mnt/data/"
"""


def test_upstream_grid_with_class_level_environment_calls(tmp_path):
    spec = importlib.util.find_spec("audiocraft.grids")
    assert spec is not None and spec.origin is not None
    installed = Path(spec.origin).parent
    assert not (installed / "compression" / "environment_calls.py").exists()
    copy = tmp_path / "site" / "audiocraft" / "grids"
    shutil.copytree(installed, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(GRID, copy / "compression" / "environment_calls.py")
    team = tmp_path / "team.yaml"
    team.write_text(TEAM.format(root=tmp_path))
    (tmp_path / "ref").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "AUDIOCRAFT_"))}
    env.update(
        {
            "DORA_PACKAGE": "audiocraft",
            "AUDIOCRAFT_CONFIG": str(team),
            "AUDIOCRAFT_CLUSTER": "lab",
            "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]),
            "PYTHONWARNINGS": "ignore",
        }
    )
    proc = subprocess.run(
        [sys.executable, "-m", "dora", "grid", "compression.environment_calls", "--dry_run", "--init"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith("UPSTREAM-ENV ")]
    assert ast.literal_eval(line.removeprefix("UPSTREAM-ENV ")) == {
        "team": "default",
        "cluster": "lab",
        "partitions": "labteam,learn",
        "dora_dir": str(tmp_path / "team_dora"),
        "reference_dir": str(tmp_path / "ref"),
        "reference": str(tmp_path / "ref" / "models" / "x.th"),
        "mapped": "/mnt/data/music/a.wav",
    }
    # the XPs were created in the team's Dora directory (AUDIOCRAFT_DORA_DIR is not set): the grid's two XPs
    assert len(list((tmp_path / "team_dora" / "xps").iterdir())) == 2
    assert "rvq.n_q=2" in proc.stdout
