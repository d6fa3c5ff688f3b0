"""audiocraft-metadata: sidecars written from CSV / JSONL captions, read back by the datasets; --check; errors."""

import csv
import json
import os
import re
import subprocess
import sys

import pytest

from audiocraft.data import metadata
from audiocraft.data.audio import audio_write
from audiocraft.data.audio_dataset import AudioMeta, save_audio_meta
from audiocraft.data.music_dataset import MusicDataset
from audiocraft.data.sound_dataset import SoundDataset


@pytest.fixture
def songs(tmp_path, tone):
    """``root/`` with a/one.wav, b/two.wav and three.wav (1 s, 16 kHz, mono)."""
    root = tmp_path / "root"
    for rel in ("a/one", "b/two", "three"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        audio_write(root / rel, tone(1.0, 16000), 16000)
    return root


def _csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as fp:
        writer = csv.DictWriter(fp, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_csv_captions_become_sidecars_that_music_dataset_reads(songs, tmp_path, capsys):
    table = _csv(
        tmp_path / "captions.csv",
        [
            {
                "path": "a/one.wav",
                "description": "a calm piano piece",
                "bpm": "92",
                "moods": "Calm, dreamy",
                "key": "A minor",
                "genre": "Ambient",
                "keywords": "",
                "title": "One",
                "artist": "Tester",
            },
            {
                "path": str(songs / "b" / "two.wav"),
                "description": "fast drums",
                "bpm": "140.5",
                "moods": "energetic",
                "key": "",
                "genre": "Rock",
                "keywords": "drums, live",
                "title": "",
                "artist": "",
            },
            {
                "path": "missing.wav",
                "description": "nothing",
                "bpm": "",
                "moods": "",
                "key": "",
                "genre": "",
                "keywords": "",
                "title": "",
                "artist": "",
            },
        ],
    )
    assert metadata.main([str(table), "--root", str(songs)]) == 1  # a row without audio, a file without metadata
    err = capsys.readouterr().err
    assert "2 sidecar(s) written" in err
    assert f"{table} line 4: {songs / 'missing.wav'}" in err
    assert "1 audio file(s) without metadata:" in err and str(songs / "three.wav") in err
    one = json.loads((songs / "a" / "one.json").read_text())
    assert one == {
        "title": "One",
        "artist": "Tester",
        "key": "A minor",
        "bpm": 92.0,
        "genre": "Ambient",
        "moods": ["Calm", "dreamy"],
        "keywords": None,
        "description": "a calm piano piece",
        "name": "one",
        "instrument": None,
    }
    assert json.loads((songs / "b" / "two.json").read_text())["keywords"] == ["drums", "live"]
    assert not (songs / "three.json").exists()
    assert sorted(p.name for p in songs.rglob(".*")) == []  # no temporary file left

    manifest = tmp_path / "data.jsonl"
    save_audio_meta(manifest, [AudioMeta(str(songs / rel), 1.0, 16000) for rel in ("a/one.wav", "b/two.wav")])
    ds = MusicDataset.from_meta(
        manifest,
        segment_duration=0.5,
        sample_rate=16000,
        channels=1,
        num_samples=2,
        info_fields_required=True,
        shuffle=False,
    )
    infos = sorted((ds[i][1] for i in range(2)), key=lambda info: info.meta.path)
    assert [i.description for i in infos] == ["a calm piano piece", "fast drums"]
    assert infos[0].bpm == 92.0 and infos[0].moods == ["calm", "dreamy"] and infos[0].key == "a minor"
    assert infos[1].bpm == 140.5 and infos[1].keywords == ["drums", "live"] and infos[1].title is None
    assert metadata.main(["--check", "--manifest", str(manifest)]) == 0


def test_existing_sidecars_are_kept_unless_overwrite(songs, tmp_path):
    table = tmp_path / "captions.jsonl"
    table.write_text(json.dumps({"file": "three.wav", "description": "new", "moods": ["Happy"]}) + "\n")
    (songs / "three.json").write_text('{"description": "hand written"}')
    report = metadata.write_sidecars(table, songs)
    assert report.kept == [songs / "three.json"] and report.written == []
    assert json.loads((songs / "three.json").read_text()) == {"description": "hand written"}
    report = metadata.write_sidecars(table, songs, overwrite=True)
    assert report.written == [songs / "three.json"]
    written = json.loads((songs / "three.json").read_text())
    assert written["description"] == "new" and written["moods"] == ["Happy"] and written["name"] == "three"
    dry = metadata.write_sidecars(table, songs, overwrite=True, dry_run=True)
    assert dry.written == [songs / "three.json"] and dry.without_metadata == [songs / "a/one.wav", songs / "b/two.wav"]


@pytest.mark.parametrize(
    "row, message",
    [
        ({"path": "three.wav", "bpm": "fast"}, r"line 2: field 'bpm': expected a number, got 'fast'"),
        ({"path": "three.wav", "bpm": -3}, r"line 2: field 'bpm': expected a positive number, got -3"),
        ({"path": "three.wav", "bpm": True}, r"line 2: field 'bpm': expected a number, got bool"),
        ({"path": "three.wav", "moods": ["calm", 3]}, r"line 2: field 'moods': expected strings in the list, got 3"),
        (
            {"path": "three.wav", "keywords": {"a": 1}},
            r"line 2: field 'keywords': expected a list of strings or a comma",
        ),
        ({"path": "three.wav", "title": 1999}, r"line 2: field 'title': expected a string, got int 1999"),
        ({"path": "three.wav", "key": "C, G"}, r"line 2: field 'key': one musical key expected, got 'C, G'"),
        ({"path": "three.wav", "mood": "calm"}, r"line 2: field 'mood' is not a music metadata field .*--keep-extra"),
        ({"description": "no file"}, r"line 2: no audio file \(column 'path / audio / file"),
    ],
)
def test_invalid_rows_are_reported_with_file_line_and_field(songs, tmp_path, row, message):
    table = tmp_path / "t.jsonl"
    table.write_text("\n" + json.dumps(row) + "\n")  # line 1 blank: line numbers count every line
    report = metadata.write_sidecars(table, songs)
    assert not report.ok and report.written == [] and len(report.errors) == 1
    assert str(table) in report.errors[0]
    assert re.search(message, report.errors[0]), report.errors[0]
    assert not (songs / "three.json").exists()


def test_table_format_errors(songs, tmp_path):
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"path": "three.wav"}\n[1, 2]\n')
    with pytest.raises(metadata.MetadataError, match=r"t\.jsonl line 2: expected a JSON object, got list"):
        metadata.write_sidecars(bad, songs)
    assert not (songs / "three.json").exists()  # nothing written from a malformed table
    dup = tmp_path / "dup.csv"
    dup.write_text("audio,description\nthree.wav,x\n./three.wav,y\n")
    report = metadata.write_sidecars(dup, songs, dry_run=True)
    assert report.errors == [f"{dup} line 3: {songs / 'three.wav'} already described at line 2"]
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("path,description\nthree.wav,x,extra\n")
    assert metadata.main([str(ragged), "--root", str(songs)]) == 1
    with pytest.raises(metadata.MetadataError, match=r"unknown table format '\.xlsx'"):
        list(metadata.read_table(tmp_path / "t.xlsx"))
    extra = tmp_path / "extra.csv"
    extra.write_text("path,description,source\nthree.wav,x,freesound\n")
    metadata.write_sidecars(extra, songs, keep_extra=True)
    assert json.loads((songs / "three.json").read_text())["source"] == "freesound"


def test_check_validates_the_sidecars_of_a_manifest(songs, tmp_path):
    (songs / "a" / "one.json").write_text(json.dumps({"description": "ok", "bpm": "slow"}))
    (songs / "b" / "two.json").write_text("{not json")
    (songs / "three.json").write_text(json.dumps({"description": "only a description"}))
    manifest = tmp_path / "data.jsonl"
    paths = [songs / rel for rel in ("a/one.wav", "b/two.wav", "three.wav", "gone.wav")]
    save_audio_meta(manifest, [AudioMeta(str(p), 1.0, 16000) for p in paths])
    report = metadata.check_sidecars(manifest)
    assert report.errors[0] == f"metadata file {songs / 'a/one.json'}: field 'bpm': expected a number, got 'slow'"
    assert report.errors[1].startswith(f"metadata file {songs / 'b/two.json'}: invalid JSON")
    assert report.errors[2].startswith(f"metadata file {songs / 'three.json'}: missing field(s) ['artist', 'bpm'")
    assert report.missing_audio == [f"{manifest}: {songs / 'gone.wav'}"]
    assert report.without_metadata == [songs / "gone.wav"]
    relaxed = metadata.check_sidecars(manifest, require_fields=False)
    assert relaxed.checked == [songs / "three.json"]
    sound = metadata.check_sidecars(manifest, kind="sound")
    # a sound sidecar needs only the description; other fields are not SoundDataset's, so not checked
    assert sound.checked == [songs / "a/one.json", songs / "three.json"]
    assert metadata.main(["--check", "--root", str(songs), "--kind", "sound", "--no-require-fields"]) == 1
    with pytest.raises(SystemExit):
        metadata.main(["--check", str(tmp_path / "t.csv")])


def test_sound_sidecars_with_several_descriptions(songs, tmp_path):
    table = tmp_path / "sounds.jsonl"
    table.write_text(
        "".join(
            json.dumps({"path": rel, "description": desc}) + "\n"
            for rel, desc in [
                ("a/one.wav", ["a dog barks", "barking"]),
                ("b/two.wav", "rain on a roof"),
                ("three.wav", "a door"),
            ]
        )
    )
    report = metadata.write_sidecars(table, songs, kind="sound")
    assert report.ok and len(report.written) == 3
    assert json.loads((songs / "a/one.json").read_text()) == {"description": ["a dog barks", "barking"]}
    manifest = tmp_path / "data.jsonl"
    save_audio_meta(manifest, [AudioMeta(str(songs / "b/two.wav"), 1.0, 16000)])
    ds = SoundDataset.from_meta(manifest, segment_duration=0.5, sample_rate=16000, channels=1, num_samples=1)
    assert ds[0][1].description == "rain on a roof"
    assert metadata.check_sidecars(root=songs, kind="sound").ok


def test_an_interrupted_write_leaves_no_sidecar(songs, tmp_path, monkeypatch):
    table = _csv(tmp_path / "c.csv", [{"path": "three.wav", "description": "x"}])

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    assert metadata.main([str(table), "--root", str(songs)]) == 1
    assert sorted(p.name for p in songs.iterdir()) == ["a", "b", "three.wav"]


def test_module_entry_point(songs, tmp_path):
    table = _csv(tmp_path / "c.csv", [{"path": p, "description": "x"} for p in ("a/one.wav", "b/two.wav", "three.wav")])
    run = subprocess.run(
        [sys.executable, "-m", "audiocraft.data.metadata", str(table), "--root", str(songs)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "3 sidecar(s) written" in run.stderr and (songs / "b/two.json").exists()
