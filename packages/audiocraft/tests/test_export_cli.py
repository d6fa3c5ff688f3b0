"""``audiocraft-export`` resolves a signature or a path and writes the inference package."""

from __future__ import annotations

import torch

from audiocraft.export_cli import main
from audiocraft.models import builders
from audiocraft.utils.checkpoint import save_checkpoint


def _fake_get_lm_model(cfg):
    """Stand-in for the LM builder: the exporter loads what it wrote back through it."""
    return torch.nn.Linear(3, 1, bias=False)


def test_export_by_signature_and_path(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(builders, "get_lm_model", _fake_get_lm_model, raising=False)
    monkeypatch.setenv("AUDIOCRAFT_DORA_DIR", str(tmp_path / "default_dora"))
    folder = tmp_path / "dora" / "xps" / "1a2b3c4d"
    save_checkpoint(
        {"best_state": {"model": {"weight": torch.arange(3.0).view(1, 3)}}, "xp.cfg": "solver: musicgen\n"},
        folder / "checkpoint.th",
    )
    out = tmp_path / "lm.bin"
    assert main(["1a2b3c4d", str(out), "--dora-dir", str(tmp_path / "dora")]) == 0
    pkg = torch.load(out, weights_only=True)
    assert pkg["exported"] is True and torch.equal(pkg["best_state"]["weight"], torch.arange(3.0).view(1, 3))
    assert main([str(folder / "checkpoint.th"), str(tmp_path / "again.bin")]) == 0
    assert main(["//sig/ffffffff", str(out), "--dora-dir", str(tmp_path / "dora")]) == 2
    assert "no checkpoint found for '//sig/ffffffff'" in capsys.readouterr().err
    save_checkpoint({"best_state": {}, "xp.cfg": "solver: other\n"}, tmp_path / "bad.th")
    assert main([str(tmp_path / "bad.th"), str(out)]) == 1
    assert "no exporter for solver 'other'" in capsys.readouterr().err


def test_export_that_does_not_load_back_fails_and_keeps_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(builders, "get_lm_model", _fake_get_lm_model, raising=False)
    save_checkpoint(
        {"best_state": {"model": {"weight": torch.ones(2, 2)}}, "xp.cfg": "solver: musicgen\n"},
        tmp_path / "checkpoint.th",
    )
    assert main([str(tmp_path / "checkpoint.th"), str(tmp_path / "out" / "lm.bin")]) == 1
    err = capsys.readouterr().err
    assert "checkpoint.th" in err and "weight: checkpoint (2, 2) vs model (1, 3)" in err
    assert list((tmp_path / "out").iterdir()) == []
