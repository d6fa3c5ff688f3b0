"""Tests for manifests: AudioMeta, load/save (plain and gzipped), bad lines, the builder CLI."""

import gzip
import json
import subprocess
import sys

import pytest

from audiocraft.data.audio import audio_write
from audiocraft.data.audio_dataset import (
    AudioMeta,
    ManifestError,
    load_audio_meta,
    main,
    save_audio_meta,
    scan_audio_files,
)
from audiocraft.data.zip import PathInZip


@pytest.fixture
def folder(tmp_path, tone):
    for i, fmt in enumerate(["wav", "flac", "mp3", "ogg"]):
        audio_write(tmp_path / "audio" / f"sub{i % 2}" / f"clip{i}", tone(0.5 + i * 0.25, 16000), 16000, format=fmt)
    (tmp_path / "audio" / "broken.wav").write_bytes(b"not audio at all")
    (tmp_path / "audio" / "notes.txt").write_text("ignored")
    return tmp_path


@pytest.mark.parametrize("name", ["data.jsonl", "data.jsonl.gz"])
def test_roundtrip(tmp_path, folder, name):
    metas, failures = scan_audio_files(folder / "audio", minimal=False)
    assert [m.path.rsplit("/", 1)[-1] for m in metas] == ["clip0.wav", "clip2.mp3", "clip1.flac", "clip3.ogg"]
    assert [f[0].rsplit("/", 1)[-1] for f in failures] == ["broken.wav"]
    assert all(m.amplitude and 0.8 < m.amplitude <= 1.0 for m in metas)
    metas[0].weight = 2.0
    metas[1].info_path = PathInZip("/x/info.zip:a.json")
    out = tmp_path / name
    save_audio_meta(out, metas)
    if name.endswith(".gz"):
        with gzip.open(out, "rt") as fp:
            assert json.loads(fp.readline())["weight"] == 2.0
    assert load_audio_meta(out) == metas


def test_relative_paths_resolve_against_manifest(tmp_path, folder):
    manifest = folder / "audio" / "data.jsonl"
    manifest.write_text(json.dumps({"path": "sub0/clip0.wav", "duration": 0.5, "sample_rate": 16000}) + "\n")
    (meta,) = load_audio_meta(manifest)
    assert meta.path == str(folder / "audio" / "sub0" / "clip0.wav")


@pytest.mark.parametrize(
    "line,message",
    [
        ("{not json", "line 2: invalid JSON"),
        ("[1, 2]", "line 2: expected a JSON object"),
        ('{"duration": 1.0, "sample_rate": 16000}', "line 2: missing key 'path'"),
        ('{"path": "X", "duration": "long", "sample_rate": 16000}', "line 2: key 'duration' has wrong type"),
        ('{"path": "X", "duration": 1.0, "sample_rate": 16000.5}', "line 2: key 'sample_rate' has wrong type"),
        ('{"path": "X", "duration": 1.0, "sample_rate": 16000, "weight": "heavy"}', "line 2: key 'weight'"),
        ('{"path": "/does/not/exist.wav", "duration": 1.0, "sample_rate": 16000}', "line 2: key 'path': file does not"),
    ],
)
def test_bad_lines_name_manifest_line_and_key(tmp_path, folder, line, message):
    good = folder / "audio" / "sub0" / "clip0.wav"
    manifest = tmp_path / "bad.jsonl"
    manifest.write_text(
        json.dumps({"path": str(good), "duration": 0.5, "sample_rate": 16000})
        + "\n"
        + line.replace('"X"', json.dumps(str(good)))
        + "\n"
    )
    with pytest.raises(ManifestError) as err:
        load_audio_meta(manifest)
    assert str(manifest) in str(err.value) and message in str(err.value)


def test_missing_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.jsonl"):
        load_audio_meta(tmp_path / "nothing.jsonl")


def test_path_mapper(tmp_path, folder):
    manifest = tmp_path / "m.jsonl"
    save_audio_meta(manifest, [AudioMeta("/cluster/a/sub0/clip0.wav", 0.5, 16000)])
    (meta,) = load_audio_meta(manifest, path_mapper=lambda p: p.replace("/cluster/a", str(folder / "audio")))
    assert meta.path == str(folder / "audio" / "sub0" / "clip0.wav")


def test_builder_cli(tmp_path, folder, capsys):
    out = tmp_path / "m" / "data.jsonl.gz"
    assert main([str(folder / "audio"), str(out), "--resolve", "--complete", "--workers", "2", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "wrote 4 entries" in err and "broken.wav" in err
    metas = load_audio_meta(out)
    assert len(metas) == 4 and all(m.amplitude is not None for m in metas)


def test_builder_cli_help():
    proc = subprocess.run(
        [sys.executable, "-m", "audiocraft.data.audio_dataset", "--help"], capture_output=True, text=True, check=True
    )
    assert "--resolve" in proc.stdout and "--complete" in proc.stdout and "--workers" in proc.stdout
