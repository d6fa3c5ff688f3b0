"""``audiocraft-export`` resolves a signature or a path and writes the inference package."""

from __future__ import annotations

import torch

from audiocraft.export_cli import main
from audiocraft.utils.checkpoint import save_checkpoint


def test_export_by_signature_and_path(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AUDIOCRAFT_DORA_DIR", str(tmp_path / "default_dora"))
    folder = tmp_path / "dora" / "xps" / "1a2b3c4d"
    save_checkpoint({"best_state": {"model": {"w": torch.arange(3.0)}}, "xp.cfg": "solver: musicgen\n"},
                    folder / "checkpoint.th")
    out = tmp_path / "lm.bin"
    assert main(["1a2b3c4d", str(out), "--dora-dir", str(tmp_path / "dora")]) == 0
    pkg = torch.load(out, weights_only=True)
    assert pkg["exported"] is True and torch.equal(pkg["best_state"]["w"], torch.arange(3.0))
    assert main([str(folder / "checkpoint.th"), str(tmp_path / "again.bin")]) == 0
    assert main(["//sig/ffffffff", str(out), "--dora-dir", str(tmp_path / "dora")]) == 2
    assert "no checkpoint found for '//sig/ffffffff'" in capsys.readouterr().err
    save_checkpoint({"best_state": {}, "xp.cfg": "solver: other\n"}, tmp_path / "bad.th")
    assert main([str(tmp_path / "bad.th"), str(out)]) == 1
    assert "no exporter for solver 'other'" in capsys.readouterr().err
