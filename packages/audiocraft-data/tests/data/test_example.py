"""Tests for the example dataset generator (audiocraft.data.example)."""

import hashlib
import json
import shutil

import pytest
import torch

from audiocraft.data.audio import audio_info
from audiocraft.data.audio_dataset import AudioDataset, load_audio_meta
from audiocraft.data.example import SPLITS, generate_example_dataset, main

FIELDS = {"title", "artist", "key", "bpm", "genre", "moods", "keywords", "description", "instrument"}


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _small(out, seed=0):
    return generate_example_dataset(out, seed=seed, num_clips=6, min_duration=1.0, max_duration=2.0)


def test_deterministic_for_a_seed(tmp_path):
    _small(tmp_path / "a")
    _small(tmp_path / "b")
    _small(tmp_path / "c", seed=1)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_manifests_sidecars_and_dataset(tmp_path):
    result = _small(tmp_path / "egs")
    assert [len(result[s]) for s in SPLITS] == [3, 1, 1, 1]
    for split in SPLITS:
        metas = load_audio_meta(tmp_path / "egs" / split / "data.jsonl")
        assert [m.path for m in metas] == [m.path for m in result[split]]
        for m in metas:
            info = audio_info(m.path)
            assert info.sample_rate == 32000 and info.channels == 1 and info.duration == pytest.approx(m.duration)
            side = json.loads(open(m.path.replace(".wav", ".json")).read())
            assert FIELDS <= set(side)
            assert f"{side['bpm']} bpm" in side["description"] and side["key"] in side["description"]
            assert side["genre"] in side["description"]
            assert isinstance(side["moods"], list) and isinstance(side["keywords"], list)
    ds = AudioDataset.from_meta(
        tmp_path / "egs" / "train", segment_duration=0.5, sample_rate=16000, channels=1, num_samples=4
    )
    batch = ds.collater([ds[i] for i in range(4)])
    assert batch.shape == (4, 1, 8000) and batch.abs().max() > 0.05


def test_folder_is_movable(tmp_path):
    _small(tmp_path / "egs")
    shutil.move(tmp_path / "egs", tmp_path / "moved")
    metas = load_audio_meta(tmp_path / "moved" / "valid" / "data.jsonl")
    assert metas[0].path.startswith(str(tmp_path / "moved"))


def test_audio_is_music_like(tmp_path):
    result = _small(tmp_path / "egs")
    from audiocraft.data.audio import audio_read

    wav, sr = audio_read(result["train"][0].path)
    assert 0.8 < wav.abs().max() < 1.0
    spectrum = torch.fft.rfft(wav[0]).abs().pow(2)
    low = spectrum[: int(len(spectrum) * 2000 / (sr / 2))].sum()
    assert low > spectrum.sum() * 0.5  # energy mostly below 2 kHz, not noise


def test_cli(tmp_path, capsys):
    assert (
        main([str(tmp_path / "egs"), "--seed", "3", "--num-clips", "4", "--min-duration", "1", "--max-duration", "1.5"])
        == 0
    )
    assert "wrote 4 clips" in capsys.readouterr().err
    assert all((tmp_path / "egs" / s / "data.jsonl").exists() for s in SPLITS)
    with pytest.raises(SystemExit):
        main([str(tmp_path / "x"), "--num-clips", "2"])
    assert "num_clips" in capsys.readouterr().err


def test_regenerating_into_the_same_folder_leaves_no_stale_clips(tmp_path):
    generate_example_dataset(tmp_path, num_clips=8, min_duration=1.0, max_duration=1.5)
    (tmp_path / "train" / "notes.txt").write_text("mine")  # a user's own file stays
    _small(tmp_path)  # 6 clips: fewer per split
    for split in SPLITS:
        listed = {m.path for m in load_audio_meta(tmp_path / split / "data.jsonl")}
        on_disk = {p.name for p in (tmp_path / split).glob("*.wav")}
        assert on_disk == {p.rsplit("/", 1)[-1] for p in listed}, split
        assert {p.stem for p in (tmp_path / split).glob("*.json")} == {n[:-4] for n in on_disk}
    assert (tmp_path / "train" / "notes.txt").read_text() == "mine"
    _small(tmp_path / "fresh")
    assert _digest(tmp_path / "valid") == _digest(tmp_path / "fresh" / "valid")
