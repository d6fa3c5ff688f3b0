"""Tests for audiocraft.data.audio: roundtrips, seeking, padding, bad files, zip members."""

import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch

from audiocraft.data.audio import AudioFileError, audio_info, audio_read, audio_write
from audiocraft.data.zip import PathInZip, ZipArchiveCache


@pytest.mark.parametrize("fmt,tol", [("wav", 1e-4), ("flac", 1e-4), ("ogg", 0.05), ("mp3", 0.05)])
@pytest.mark.parametrize("channels", [1, 2])
def test_roundtrip(tone, tmp_path, fmt, tol, channels):
    sr = 32000
    wav = tone(2.0, sr, channels)
    path = audio_write(tmp_path / "x", wav, sr, format=fmt, normalize=False)
    assert path.suffix == "." + fmt and path.exists()
    info = audio_info(path)
    assert (info.sample_rate, info.channels) == (sr, channels)
    assert info.frames == wav.shape[-1] and info.duration == pytest.approx(2.0)
    out, out_sr = audio_read(path)
    assert out_sr == sr and out.dtype == torch.float32 and out.shape == wav.shape
    assert (out - wav).abs().max() < tol


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
@pytest.mark.parametrize("sr", [16000, 44100])
def test_seek_reads_exact_samples(tone, tmp_path, fmt, sr):
    path = audio_write(tmp_path / "x", tone(3.0, sr, 2, freq=313.0), sr, format=fmt)
    full, _ = audio_read(path)
    for seek in [0.0, 0.01, 0.73, 1.2345, 2.5]:
        seg, seg_sr = audio_read(path, seek_time=seek, duration=0.3)
        start = int(seek * sr)  # upstream truncates
        assert seg_sr == sr and seg.shape == (2, int(0.3 * sr))
        assert torch.equal(seg, full[:, start : start + seg.shape[-1]]), (fmt, seek)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_seek_near_the_end(tone, tmp_path, fmt):
    sr = 44100
    path = audio_write(tmp_path / "x", tone(2.0, sr, 2), sr, format=fmt)
    full, _ = audio_read(path)
    for seek in [1.9, 1.999, 1.99995]:
        seg, _ = audio_read(path, seek_time=seek, duration=0.3)
        start = int(seek * sr)
        assert torch.equal(seg, full[:, start:]), (fmt, seek)


def test_pad_and_end_of_file(tone, tmp_path):
    sr = 16000
    path = audio_write(tmp_path / "x", tone(1.0, sr), sr, format="wav")
    seg, _ = audio_read(path, seek_time=0.8, duration=0.5)
    assert seg.shape == (1, int(0.2 * sr))
    padded, _ = audio_read(path, seek_time=0.8, duration=0.5, pad=True)
    assert padded.shape == (1, int(0.5 * sr))
    assert torch.equal(padded[:, : seg.shape[-1]], seg) and padded[:, seg.shape[-1] :].abs().max() == 0
    past, _ = audio_read(path, seek_time=5.0, duration=0.5)
    assert past.shape == (1, 0)


def test_missing_corrupt_truncated_files_name_the_file(tone, tmp_path):
    missing = tmp_path / "missing.wav"
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        audio_read(missing)
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF" + b"\x00garbage" * 50)
    with pytest.raises(AudioFileError, match="corrupt.wav"):
        audio_read(corrupt)
    with pytest.raises(AudioFileError, match="corrupt.wav"):
        audio_info(corrupt)
    good = audio_write(tmp_path / "trunc", tone(2.0, 16000), 16000, format="flac")
    data = good.read_bytes()
    good.write_bytes(data[: len(data) // 3])
    with pytest.raises(AudioFileError, match="trunc.flac"):
        audio_read(good, seek_time=1.5, duration=0.4)


def test_write_never_clips_silently(tone, tmp_path, caplog):
    sr = 16000
    loud = tone(1.0, sr) * 4  # peak 2.0
    out, _ = audio_read(audio_write(tmp_path / "peak", loud, sr, strategy="peak"))
    assert out.abs().max() == pytest.approx(10 ** (-1 / 20), abs=1e-3)
    with caplog.at_level("WARNING"):
        audio_write(tmp_path / "rms", loud, sr, strategy="rms", rms_headroom_db=0)
    assert "clipping" in caplog.text
    with pytest.raises(ValueError, match="none"):
        audio_write(tmp_path / "none", loud, sr, strategy="none")
    caplog.clear()
    with caplog.at_level("INFO"):  # a 0.02 dB overshoot (a codec's reconstruction) is logged, but not as a warning
        audio_write(
            tmp_path / "slight",
            tone(1.0, sr) / tone(1.0, sr).abs().max() * 1.0023,
            sr,
            strategy="clip",
            peak_clip_headroom_db=0,
        )
    slight = [r for r in caplog.records if "clipping" in r.getMessage()]
    assert [r.levelname for r in slight] == ["INFO"] and "0.02 dB over" in slight[0].getMessage()
    with pytest.raises(ValueError, match="NaN"):
        audio_write(tmp_path / "nan", torch.full((1, 100), float("nan")), sr)
    with pytest.raises(ValueError, match="unknown audio format"):
        audio_write(tmp_path / "x", loud, sr, format="aiff")


def test_write_loudness_strategy(tone, tmp_path):
    from audiocraft.data._loudness import integrated_loudness

    sr = 16000
    path = audio_write(tmp_path / "l", tone(2.0, sr) * 0.1, sr, strategy="loudness", loudness_headroom_db=20)
    out, _ = audio_read(path)
    assert integrated_loudness(out, sr).item() == pytest.approx(-20, abs=0.1)


def test_zip_members(tone, tmp_path):
    sr = 16000
    src = audio_write(tmp_path / "a", tone(1.0, sr, 2), sr, format="flac")
    archive = tmp_path / "pack.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(src, "inner/a.flac")
    member = f"{archive}:inner/a.flac"
    assert audio_info(member).frames == sr
    ref, _ = audio_read(src, 0.25, 0.5)
    cache = ZipArchiveCache(max_size=1)
    for _ in range(2):
        seg, _ = audio_read(PathInZip(member), 0.25, 0.5, zip_cache=cache)
        assert torch.equal(seg, ref)
    with pytest.raises(FileNotFoundError, match="nope.flac"):
        audio_read(f"{archive}:inner/nope.flac")
    with pytest.raises(FileNotFoundError, match="absent.zip"):
        audio_read(f"{tmp_path}/absent.zip:a.wav")


def test_av_fallback_for_m4a(tone, tmp_path):
    av = pytest.importorskip("av")  # optional extra [av]
    sr = 16000
    wav = tone(2.0, sr, 1).numpy().astype(np.float32)
    path = tmp_path / "x.m4a"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=sr)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(wav, format="fltp", layout="mono")
        frame.sample_rate = sr
        for packet in list(stream.encode(frame)) + list(stream.encode(None)):
            container.mux(packet)
    info = audio_info(path)
    assert info.sample_rate == sr and info.duration == pytest.approx(2.0, abs=0.1)
    full, _ = audio_read(path)
    seg, _ = audio_read(path, 1.0, 0.5)
    start = int(1.0 * sr)
    assert seg.shape == (1, sr // 2)
    assert (seg - full[:, start : start + sr // 2]).abs().max() < 1e-2


def test_soundfile_reference_agrees(tone, tmp_path):
    sr = 16000
    wav = tone(1.0, sr, 2)
    path = audio_write(tmp_path / "x", wav, sr, normalize=False)
    ref, _ = sf.read(path, dtype="float32", always_2d=True)
    out, _ = audio_read(path)
    assert np.array_equal(out.numpy(), ref.T)
