"""Upstream's ``audiocraft.utils.export`` path re-exports the one release export of audiocraft-models."""

from __future__ import annotations

import pytest
import torch

from audiocraft.models import builders
from audiocraft.utils import checkpoint, export
from audiocraft.utils.checkpoint import save_checkpoint


def _fake_get_lm_model(cfg):
    """Stand-in for the LM builder, shaped by the config."""
    return torch.nn.Linear(cfg.transformer_lm.dim, 1)


def test_upstream_paths_are_the_models_functions():
    from audiocraft.models import export as models_export

    for name in export.__all__:
        assert getattr(export, name) is getattr(models_export, name)
    assert checkpoint.atomic_torch_save is models_export.atomic_torch_save  # one atomic writer


def test_export_lm_and_dispatch(tmp_path, monkeypatch):
    monkeypatch.setattr(builders, "get_lm_model", _fake_get_lm_model, raising=False)
    ckpt = tmp_path / "checkpoint.th"
    weights = {"weight": torch.ones(1, 2), "bias": torch.zeros(1)}
    save_checkpoint(
        {
            "best_state": {"model": weights},
            "fsdp_best_state": {},
            "xp.cfg": "solver: musicgen\nsample_rate: 32000\ntransformer_lm:\n  dim: 2\n",
        },
        ckpt,
    )
    out = export.export_checkpoint(ckpt, tmp_path / "lm.bin")
    pkg = torch.load(out, weights_only=True)
    assert pkg["exported"] is True and torch.equal(pkg["best_state"]["weight"], torch.ones(1, 2))
    assert "musicgen" in pkg["xp.cfg"] and isinstance(pkg["version"], str)
    save_checkpoint({"best_state": {}, "xp.cfg": "solver: mystery\n"}, tmp_path / "bad.th")
    with pytest.raises(ValueError, match="mystery.*compression"):
        export.export_checkpoint(tmp_path / "bad.th", tmp_path / "x.bin")
    # Was a ValueError when core had its own export_lm; now the CheckpointError of every export.
    with pytest.raises(RuntimeError, match="bad.th"):
        export.export_lm(tmp_path / "bad.th", tmp_path / "x.bin")
