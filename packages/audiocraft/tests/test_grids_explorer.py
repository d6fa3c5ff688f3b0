"""BaseExplorer: the table of latest per-stage metrics that ``dora grid`` prints."""

from __future__ import annotations

import os
import time
from types import SimpleNamespace

import treetable as tt

from audiocraft.grids._base_explorers import BaseExplorer


class _Explorer(BaseExplorer):
    def get_grid_metrics(self):
        return [
            tt.group("train", [tt.leaf("epoch"), tt.leaf("loss", ".3f"), tt.leaf("ping")], align=">"),
            tt.group("valid", [tt.leaf("loss", ".3f")], align=">"),
            tt.group("evaluate", [tt.leaf("sisnr", ".2f")], align=">"),
        ]


def test_latest_metric_of_each_stage_and_table(tmp_path):
    log = tmp_path / "solver.log.0"
    log.write_text("x")
    old = time.time() - 180
    os.utime(log, (old, old))
    history = [
        {"train": {"loss": 2.0, "duration": 60.0}, "valid": {"loss": 1.5}, "evaluate": {"sisnr": -3.0}},
        {"train": {"loss": 1.0, "duration": 120.0}, "valid": {"loss": 0.9}},
    ]
    explorer = _Explorer(lambda launcher: None)
    parts = explorer.process_sheep(SimpleNamespace(log=log), history)
    assert parts["train"]["epoch"] == 2 and parts["train"]["loss"] == 1.0 and parts["train"]["duration"] == 2.0
    assert parts["valid"]["loss"] == 0.9 and parts["evaluate"]["sisnr"] == -3.0  # evaluate: latest run
    assert parts["train"]["ping"].endswith("m") and float(parts["train"]["ping"][:-1]) >= 3.0
    row = {"Meta": {"index": 0, "name": "xp", "state": "DONE", "sig": "abcd1234", "sid": ""}, **parts}
    spec = tt.table(shorten=True, groups=[tt.group("Meta", explorer.get_grid_meta())] + explorer.get_grid_metrics())
    table = tt.treetable([row], spec, colors=explorer.get_colors())  # as `dora grid` renders it
    assert "abcd1234" in table and "0.900" in table and "-3.00" in table
    assert explorer.process_sheep(SimpleNamespace(log=tmp_path / "none"), [])["train"] == {"epoch": 0}
