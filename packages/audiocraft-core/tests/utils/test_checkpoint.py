"""Training checkpoint files: atomic writes, weights_only loading with clear errors, resolution, pruning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from audiocraft.environment import AudioCraftEnvironment
from audiocraft.utils import checkpoint


def test_checkpoint_names():
    assert checkpoint.checkpoint_name(rank=0) == "checkpoint.th"
    assert checkpoint.checkpoint_name("12", rank=0) == "checkpoint_12.th"
    assert checkpoint.checkpoint_name(rank=2, use_fsdp=True) == "checkpoint.th.2"
    assert checkpoint.is_sharded_checkpoint(Path("checkpoint.th.2"))
    assert not checkpoint.is_sharded_checkpoint(Path("checkpoint_2.th"))


def test_save_is_atomic_when_serialisation_fails(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.th"
    checkpoint.save_checkpoint({"a": torch.ones(2), "cfg": "x: 1\n"}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600

    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save_checkpoint({"a": torch.zeros(2)}, path)
    monkeypatch.setattr(torch, "save", real_save)
    assert torch.equal(checkpoint.load_checkpoint(path)["a"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.th"]  # no temp file left


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.th"):
        checkpoint.load_checkpoint(tmp_path / "nope.th")
    corrupt = tmp_path / "corrupt.th"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="corrupt.th"):
        checkpoint.load_checkpoint(corrupt)

    pickled = tmp_path / "pickled.th"  # upstream checkpoints pickle OmegaConf objects: refused
    torch.save({"xp.cfg": OmegaConf.create({"a": 1})}, pickled)
    with pytest.raises(RuntimeError, match="(?s)pickled.th.*weights_only=True"):
        checkpoint.load_checkpoint(pickled)


def test_resolve_checkpoint_path(tmp_path):
    xps = tmp_path / "xps"
    (xps / "abcd1234").mkdir(parents=True)
    ckpt = xps / "abcd1234" / "checkpoint.th"
    checkpoint.save_checkpoint({}, ckpt)
    assert checkpoint.resolve_checkpoint_path("//sig/abcd1234", xps_root=xps) == ckpt
    assert checkpoint.resolve_checkpoint_path("abcd1234", xps_root=xps) == ckpt
    assert checkpoint.resolve_checkpoint_path(str(ckpt)) == ckpt
    assert checkpoint.resolve_checkpoint_path(str(ckpt.parent)) == ckpt
    assert checkpoint.resolve_checkpoint_path("//sig/00000000", xps_root=xps) is None
    ref = tmp_path / "reference"
    (ref / "models").mkdir(parents=True)
    checkpoint.save_checkpoint({}, ref / "models" / "checkpoint.th")
    env = AudioCraftEnvironment(environ={"AUDIOCRAFT_REFERENCE_DIR": str(ref)})
    assert checkpoint.resolve_checkpoint_path("//reference/models", environment=env) == ref / "models" / "checkpoint.th"


def test_flush_stale_checkpoints_prunes_oldest(tmp_path):
    for epoch in (1, 2, 3, 10, 11):
        checkpoint.save_checkpoint({"epoch": epoch}, tmp_path / f"checkpoint_{epoch}.th")
    checkpoint.save_checkpoint({}, tmp_path / "checkpoint.th")
    checkpoint.save_checkpoint({}, tmp_path / "checkpoint_best.th")
    removed = checkpoint.flush_stale_checkpoints(tmp_path / "checkpoint.th", keep_last=2)
    assert sorted(p.name for p in removed) == ["checkpoint_1.th", "checkpoint_2.th", "checkpoint_3.th"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint.th",
        "checkpoint_10.th",
        "checkpoint_11.th",
        "checkpoint_best.th",
    ]
    assert checkpoint.flush_stale_checkpoints(tmp_path / "checkpoint.th", keep_last=None) == []
