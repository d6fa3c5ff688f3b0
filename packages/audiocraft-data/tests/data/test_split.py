"""Tests for the folder splitter (python -m audiocraft.data.split)."""

import shutil

import pytest
import torch

from audiocraft.data.audio import audio_write
from audiocraft.data.audio_dataset import AudioDataset, load_audio_meta
from audiocraft.data.split import HELD_OUT, main, split_folder

FRACTIONS = {"valid": 0.1, "evaluate": 0.1, "generate": 0.05}


def _folder(root, n=20):
    torch.manual_seed(0)
    for i in range(n):
        fmt = ("wav", "flac", "mp3")[i % 3]
        sub = root / ("album_a" if i % 2 else "album_b")
        audio_write(sub / f"song_{i:02d}", 0.1 * torch.randn(2, 8000 + 100 * i), 16000, format=fmt, strategy="peak")
    (root / "notes.txt").write_text("not audio")
    return root


def test_split_is_by_file_complete_and_deterministic(tmp_path):
    root = _folder(tmp_path / "music")
    first = split_folder(root, tmp_path / "a", FRACTIONS)
    names = {split: sorted(m.path.rsplit("/", 1)[-1] for m in metas) for split, metas in first.items()}
    assert sorted(sum(names.values(), [])) == sorted(p.name for p in root.rglob("song_*")) and len(names) == 4
    assert [len(names[s]) for s in HELD_OUT] == [2, 2, 1]  # 10 %, 10 %, 5 % of 20 files
    assert {s: len(load_audio_meta(tmp_path / "a" / s / "data.jsonl")) for s in names} == {
        s: len(v) for s, v in names.items()
    }
    # the same folder, moved elsewhere, splits the same way; another seed splits differently
    moved = shutil.copytree(root, tmp_path / "elsewhere" / "music")
    again = split_folder(moved, tmp_path / "b", FRACTIONS)
    assert {s: sorted(m.path.rsplit("/", 1)[-1] for m in v) for s, v in again.items()} == names
    other = split_folder(root, tmp_path / "c", FRACTIONS, seed=1)
    assert {s: sorted(m.path.rsplit("/", 1)[-1] for m in v) for s, v in other.items()} != names
    ds = AudioDataset.from_meta(
        tmp_path / "a" / "train", segment_duration=0.25, sample_rate=16000, channels=1, num_samples=4
    )
    assert ds[0].shape == (1, 4000)


def test_every_held_out_split_gets_a_file_and_bad_inputs_are_named(tmp_path, capsys):
    root = _folder(tmp_path / "few", n=5)
    splits = split_folder(root, tmp_path / "out", {"valid": 0.0, "evaluate": 0.0, "generate": 0.0})
    assert [len(splits[s]) for s in ("train", *HELD_OUT)] == [2, 1, 1, 1]
    with pytest.raises(ValueError, match="3 audio files under .*need at least 4"):
        split_folder(_folder(tmp_path / "three", n=3), tmp_path / "x", FRACTIONS)
    with pytest.raises(ValueError, match=r"--valid must be a fraction in \[0, 1\), got 1.5"):
        split_folder(root, tmp_path / "x", {"valid": 1.5})
    assert main([str(tmp_path / "missing"), str(tmp_path / "x")]) == 1
    assert "not a folder: " in capsys.readouterr().err
    assert main([str(root), str(tmp_path / "cli"), "--valid", "0.2"]) == 0
    assert "train: 2 files" in capsys.readouterr().out
