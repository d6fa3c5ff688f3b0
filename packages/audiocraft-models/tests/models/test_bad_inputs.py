"""A training checkpoint given to a release loader points to ``audiocraft-export`` (a row of docs/RELIABILITY.md)."""

from __future__ import annotations

import pytest
import torch

from audiocraft.models import CompressionModel, loaders


def test_training_checkpoint_points_to_audiocraft_export(tmp_path, upstream) -> None:
    pkg = torch.load(upstream.checkpoint, weights_only=True)
    training = {
        "best_state": {"model": pkg["best_state"]},
        "xp.cfg": pkg["xp.cfg"],
        "history": [{"train": {}}],
        "model": pkg["best_state"],
        "optimizer": {},
    }
    torch.save(training, tmp_path / "checkpoint.th")
    message = (
        rf"{tmp_path / 'checkpoint.th'} is a training checkpoint, not an exported model: export it first "
        rf"with `audiocraft-export {tmp_path / 'checkpoint.th'} <out.bin>`"
    )
    with pytest.raises(loaders.CheckpointError, match=message):
        CompressionModel.get_pretrained(str(tmp_path / "checkpoint.th"))
    with pytest.raises(loaders.CheckpointError, match="is a training checkpoint"):
        loaders.load_lm_model(tmp_path / "checkpoint.th")
    # the same weights, exported (flat best_state), load
    torch.save({**pkg, "exported": True}, tmp_path / "exported.th")
    assert isinstance(CompressionModel.get_pretrained(str(tmp_path / "exported.th")), CompressionModel)
