"""Bad inputs of the data layer: each gets an error naming the file (and line, key, value) and what to do, or a
skip that is counted and reported with the file; never a silent wrong result. Rows of docs/RELIABILITY.md."""

import gzip
import json
import os
import zipfile

import numpy as np
import pytest
import soundfile
import torch

from audiocraft.data.audio import AudioFileError, audio_info, audio_read, audio_write
from audiocraft.data.audio_dataset import AudioDataset, AudioMeta, ManifestError, load_audio_meta, main, save_audio_meta

SR = 16_000


def _wav(path, seconds=1.0, subtype="PCM_16", seed=0, nan_at=None):
    x = np.random.RandomState(seed).uniform(-0.5, 0.5, (int(seconds * SR), 1)).astype(np.float32)
    if nan_at is not None:
        x[nan_at] = np.nan
    soundfile.write(path, x, SR, subtype=subtype)
    return path


def _truncated_wav(tmp_path):
    """A WAV whose header announces 30 s but whose file holds 4 ms (64 frames)."""
    full = _wav(tmp_path / "full.wav", seconds=30.0)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: 44 + 2 * 64])
    assert soundfile.info(cut).frames == 64  # what libsndfile alone says: a short, valid-looking file
    return cut


def test_truncated_wav_is_an_error_naming_the_file(tmp_path):
    cut = _truncated_wav(tmp_path)
    for call in (audio_info, audio_read):
        with pytest.raises(
            AudioFileError,
            match=r"cut\.wav: truncated: the WAV header announces 30\.000 s .* "
            r"holds only 0\.004 s",
        ):
            call(cut)
    # a complete file, and one in a zip archive, still read
    assert audio_info(tmp_path / "full.wav").duration == 30.0
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as archive:
        archive.write(tmp_path / "full.wav", "full.wav")
        archive.write(cut, "cut.wav")
    assert audio_info(f"{tmp_path / 'a.zip'}:full.wav").frames == 30 * SR
    with pytest.raises(AudioFileError, match="truncated"):
        audio_read(f"{tmp_path / 'a.zip'}:cut.wav")


def test_unknown_size_wav_is_not_truncated(tmp_path):
    """Streaming recorders write a data size of 0xFFFFFFFF: read as the frames present, as before."""
    full = _wav(tmp_path / "full.wav", seconds=0.5)
    data = bytearray(full.read_bytes())
    pos = data.index(b"data")
    data[pos + 4 : pos + 8] = (0xFFFFFFFF).to_bytes(4, "little")
    (tmp_path / "stream.wav").write_bytes(bytes(data))
    wav, _ = audio_read(tmp_path / "stream.wav")
    assert wav.shape[-1] == SR // 2


def test_builder_skips_and_reports_truncated_nan_and_empty_files(tmp_path, capsys):
    root = tmp_path / "audio"
    root.mkdir()
    _wav(root / "good.wav")
    (root / "cut.wav").write_bytes(_truncated_wav(tmp_path).read_bytes())
    _wav(root / "nan.wav", subtype="FLOAT", nan_at=100)
    inf = np.zeros((SR, 1), np.float32)
    inf[5] = np.inf
    soundfile.write(root / "inf.wav", inf, SR, subtype="FLOAT")
    soundfile.write(root / "empty.wav", np.zeros((0, 1), np.float32), SR)
    out = tmp_path / "m" / "data.jsonl"
    assert main([str(root), str(out), "--no-progress", "--workers", "0"]) == 0
    err = capsys.readouterr().err
    assert "4 unreadable file(s) left out" in err and "(4 unreadable file(s) skipped)" in err
    for name, why in [
        ("cut.wav", "truncated"),
        ("nan.wav", "1 NaN or infinite"),
        ("inf.wav", "1 NaN or infinite"),
        ("empty.wav", "no audio"),
    ]:
        assert any(name in line and why in line for line in err.splitlines()), (name, err)
    metas = load_audio_meta(out)
    assert [os.path.basename(m.path) for m in metas] == ["good.wav"]
    # --complete writes a finite amplitude, as valid JSON (no NaN)
    assert main([str(root), str(out), "--no-progress", "--complete"]) == 0
    entry = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in manifest"))
    assert 0.4 < entry["amplitude"] <= 0.5


def test_builder_writes_absolute_or_manifest_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "audio" / "sub").mkdir(parents=True)
    _wav(tmp_path / "audio" / "sub" / "a.wav")
    assert main(["audio", "out/abs.jsonl", "--no-progress"]) == 0  # ROOT relative to the cwd
    assert main(["audio", "out/rel.jsonl", "--no-progress", "--relative"]) == 0
    abs_path = json.loads((tmp_path / "out" / "abs.jsonl").read_text())["path"]
    rel_path = json.loads((tmp_path / "out" / "rel.jsonl").read_text())["path"]
    assert abs_path == str((tmp_path / "audio" / "sub" / "a.wav").resolve())
    assert rel_path == os.path.join("..", "audio", "sub", "a.wav")
    monkeypatch.chdir(tmp_path / "audio")  # used from elsewhere, both still load
    for name in ("abs", "rel"):
        (meta,) = load_audio_meta(tmp_path / "out" / f"{name}.jsonl")
        assert meta.path == abs_path


def test_builder_fails_when_nothing_is_readable(tmp_path, capsys):
    root = tmp_path / "audio"
    root.mkdir()
    (root / "junk.wav").write_bytes(b"not audio at all")
    out = tmp_path / "data.jsonl"
    assert main([str(root), str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "junk.wav" in err and f"no readable audio file under {root}" in err and "not written" in err
    assert not out.exists()
    (root / "junk.wav").unlink()
    assert main([str(root), str(out), "--no-progress"]) == 1
    assert not out.exists()


def _line(path, **kw):
    return json.dumps({"path": str(path), "duration": 1.0, "sample_rate": SR, **kw}) + "\n"


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("cut.jsonl.gz", "gzip-cut", r"cut\.jsonl\.gz, line 1: corrupt or truncated gzip data \(EOFError"),
        ("bad.jsonl.gz", "gzip-garbled", r"bad\.jsonl\.gz, line 1: corrupt or truncated gzip data"),
        ("plain.jsonl.gz", "plain", r"plain\.jsonl\.gz: not a gzip file although its name ends in \.gz .*rename"),
        ("zipped.jsonl", "gzip", r"zipped\.jsonl: gzip-compressed although its name does not end in \.gz"),
        ("latin.jsonl", "latin1", r"latin\.jsonl, line 2: not UTF-8 text .*iconv"),
        ("d0.jsonl", {"duration": 0.0}, r"d0\.jsonl, line 1: key 'duration' must be > 0, got 0\.0"),
        ("dnan.jsonl", {"duration": "NaN"}, r"dnan\.jsonl, line 1: invalid JSON \(NaN is not valid JSON"),
        ("dinf.jsonl", {"duration": "Infinity"}, r"dinf\.jsonl, line 1: invalid JSON \(Infinity is not valid JSON"),
        ("dbig.jsonl", {"duration": "1e999"}, r"dbig\.jsonl, line 1: key 'duration' must be finite, got inf"),
        ("ampnan.jsonl", {"amplitude": "NaN"}, r"ampnan\.jsonl, line 1: invalid JSON \(NaN"),
        ("wneg.jsonl", {"weight": -1.0}, r"wneg\.jsonl, line 1: key 'weight' must be >= 0, got -1\.0"),
        ("wninf.jsonl", {"weight": "-Infinity"}, r"wninf\.jsonl, line 1: invalid JSON \(-Infinity"),
    ],
)
def test_bad_manifests_name_file_line_and_key(tmp_path, name, content, message):
    audio = _wav(tmp_path / "a.wav")
    lines = _line(audio) * 200
    if content == "gzip-cut":
        data = gzip.compress(lines.encode())[:40]
    elif content == "gzip-garbled":
        raw = bytearray(gzip.compress(lines.encode()))
        raw[20:30] = b"\xff" * 10
        data = bytes(raw)
    elif content == "plain":
        data = lines.encode()
    elif content == "gzip":
        data = gzip.compress(lines.encode())
    elif content == "latin1":
        data = (_line(audio) + _line(audio)[:-3] + '", "title": "café"}\n').encode("latin-1")
    else:
        entry = _line(audio, **content)
        for key, value in content.items():  # raw JSON tokens (NaN, Infinity, 1e999), unquoted
            entry = entry.replace(f'"{key}": "{value}"', f'"{key}": {value}')
        data = entry.encode()
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ManifestError, match=message):
        load_audio_meta(tmp_path / name)


def test_weights_all_zero_or_bad_name_the_fix(tmp_path):
    audio = str(_wav(tmp_path / "a.wav"))
    zero = [AudioMeta(audio, 1.0, SR, weight=0.0), AudioMeta(audio, 1.0, SR, weight=0.0)]
    with pytest.raises(ValueError, match=r"every one of the 2 files has sampling weight 0 .*a\.wav.*weight > 0"):
        AudioDataset(zero, segment_duration=0.5, sample_rate=SR, channels=1)
    AudioDataset(
        zero, segment_duration=0.5, sample_rate=SR, channels=1, sample_on_weight=False, sample_on_duration=False
    )[0]  # weights unused: fine
    one = [AudioMeta(audio, 1.0, SR, weight=0.0), AudioMeta(audio, 1.0, SR, weight=2.0)]
    AudioDataset(one, segment_duration=0.5, sample_rate=SR, channels=1)[0]  # a weight-0 file is never drawn: fine
    for bad in (AudioMeta(audio, 1.0, SR, weight=-1.0), AudioMeta(audio, float("nan"), SR)):
        with pytest.raises(ValueError, match=r"of .*a\.wav must be a finite number"):
            AudioDataset([bad], segment_duration=0.5, sample_rate=SR, channels=1)


def test_dataset_skips_nan_files_counted_and_named(tmp_path, caplog):
    good = str(_wav(tmp_path / "good.wav"))
    nan = str(_wav(tmp_path / "nan.wav", subtype="FLOAT", nan_at=slice(0, SR)))  # NaN everywhere
    ds = AudioDataset(
        [AudioMeta(good, 1.0, SR), AudioMeta(nan, 1.0, SR)],
        segment_duration=0.5,
        sample_rate=SR,
        channels=1,
        num_samples=8,
    )
    with caplog.at_level("WARNING"):
        items = [ds[i] for i in range(len(ds))]
    assert all(bool(item.isfinite().all()) for item in items)
    assert ds.read_failures[nan] > 0 and set(ds.read_failures) == {nan}
    assert "nan.wav holds" in caplog.text and "NaN or infinite" in caplog.text
    only_nan = AudioDataset(
        [AudioMeta(nan, 1.0, SR)], segment_duration=0.5, sample_rate=SR, channels=1, max_read_retry=2
    )
    with pytest.raises(RuntimeError, match=r"2 reads failed, last file .*nan\.wav") as info:
        only_nan[0]
    assert "NaN or infinite" in str(info.value.__cause__)
    whole = AudioDataset([AudioMeta(nan, 1.0, SR)], segment_duration=None, sample_rate=SR, channels=1)
    with pytest.raises(ValueError, match=r"nan\.wav holds 16000 NaN or infinite sample\(s\)"):
        whole[0]


def test_save_refuses_non_finite_values(tmp_path):
    out = tmp_path / "m.jsonl"
    with pytest.raises(ManifestError, match=r"a\.wav holds a NaN or infinite value"):
        save_audio_meta(out, [AudioMeta("a.wav", 1.0, SR, amplitude=float("nan"))])
    assert not out.exists() and not list(tmp_path.iterdir())  # nothing half-written left behind


def test_audio_write_refuses_non_finite(tmp_path):
    with pytest.raises(ValueError, match="NaN or infinite"):
        audio_write(tmp_path / "x", torch.tensor([[0.0, float("inf")]]), SR)


def test_file_shorter_than_its_manifest_entry_is_skipped_counted_and_named(tmp_path, caplog):
    good = str(_wav(tmp_path / "good.wav"))
    short = str(_wav(tmp_path / "short.wav", seconds=0.1))  # replaced after the manifest said 1 s
    ds = AudioDataset(
        [AudioMeta(good, 1.0, SR), AudioMeta(short, 1.0, SR)],
        segment_duration=0.5,
        sample_rate=SR,
        channels=1,
        num_samples=16,
    )
    with caplog.at_level("WARNING"):
        items = [ds[i] for i in range(len(ds))]
    assert all(item.shape == (1, SR // 2) for item in items)
    assert set(ds.read_failures) == {short} and ds.num_read_failures == ds.read_failures[short] > 0
    assert "short.wav is shorter than its manifest entry says (1.000 s)" in caplog.text
