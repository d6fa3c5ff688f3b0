"""A missing example-dataset manifest says how to generate it, and the command it gives works."""

import shlex

import pytest

from audiocraft.data import example
from audiocraft.data._manifest import load_audio_meta
from audiocraft.data.audio_dataset import AudioDataset


def test_missing_example_manifest_names_the_generator_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # what `dora run solver=compression/debug` hits on a fresh checkout (the path made absolute by train.py)
    with pytest.raises(FileNotFoundError) as info:
        AudioDataset.from_meta(tmp_path / "egs" / "example" / "train", segment_duration=0.5)
    message = str(info.value)
    assert f"manifest not found: {tmp_path}/egs/example/train" in message
    assert "./dev.sh main" in message
    command = message.split("`")[1]
    assert command == f"python -m audiocraft.data.example {tmp_path}/egs/example"
    with pytest.raises(FileNotFoundError, match=r"`python -m audiocraft.data.example egs/example`"):
        load_audio_meta("egs/example/valid/data.jsonl")  # relative, as written in config/dset/audio/example.yaml
    # Running the command (with small options) makes the manifest that was missing.
    argv = shlex.split(command)[3:] + [
        "--num-clips",
        "4",
        "--sample-rate",
        "8000",
        "--min-duration",
        "0.5",
        "--max-duration",
        "0.6",
    ]
    assert example.main(argv) == 0
    assert len(AudioDataset.from_meta(tmp_path / "egs" / "example" / "train", segment_duration=0.5)) > 0


def test_other_missing_manifests_get_no_example_hint(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_audio_meta(tmp_path / "egs" / "mine" / "data.jsonl")
    assert str(info.value) == f"manifest not found: {tmp_path}/egs/mine/data.jsonl"
