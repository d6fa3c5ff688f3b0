"""ViSQOL wrapper, run against a stand-in executable that speaks the official binary's CSV batch protocol."""

import math
import stat
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from audiocraft.metrics import ViSQOL

# The stand-in reads `--batch_input_csv` (header reference,degraded), checks the flags and the WAV format the
# real binary requires, and writes `--results_csv` with the real binary's columns. Its score is a simple SNR
# mapping (1 to 5) so that the test can predict it.
STAND_IN = r"""
import argparse, csv, json, sys, wave
import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--batch_input_csv", required=True)
parser.add_argument("--results_csv", required=True)
parser.add_argument("--similarity_to_quality_model", required=True)
parser.add_argument("--use_speech_mode", action="store_true")
parser.add_argument("--output_debug")
args = parser.parse_args()
expected_rate = 16000 if args.use_speech_mode else 48000
open(args.similarity_to_quality_model).close()

def read(path):
    with wave.open(path) as f:
        if f.getframerate() != expected_rate or f.getsampwidth() != 2:
            sys.exit(f"bad input {path}: {f.getframerate()} Hz, {8 * f.getsampwidth()} bits")
        data = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").astype(np.float64) / 32768
        return data.reshape(-1, f.getnchannels()).mean(1)

rows = []
with open(args.batch_input_csv) as f:
    for row in csv.DictReader(f):
        ref, deg = read(row["reference"]), read(row["degraded"])
        snr = 10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - deg) ** 2), 1e-12))
        rows.append((row["reference"], row["degraded"], 1 + 4 * min(max(snr / 40, 0.0), 1.0)))
with open(args.results_csv, "w") as f:
    f.write("reference,degraded,moslqo\n")
    for ref, deg, score in rows:
        f.write(f"{ref},{deg},{score:.6f}\n")
if args.output_debug:
    with open(args.output_debug, "w") as f:
        json.dump({"pairs": len(rows)}, f)
"""


def make_stand_in(folder: Path, name: str = "visqol", body: str = STAND_IN) -> Path:
    exe = folder / name
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text(f"#!{sys.executable}\n{body}")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


@pytest.fixture
def visqol_build(tmp_path: Path) -> Path:
    """A ViSQOL build folder laid out like the official one: bazel-bin/visqol and model/<svr model>."""
    make_stand_in(tmp_path / "visqol" / "bazel-bin")
    (tmp_path / "visqol" / "model").mkdir()
    (tmp_path / "visqol" / "model" / "libsvm_nu_svr_model.txt").write_text("svr model")
    return tmp_path / "visqol"


def sine(sr: int, seconds: float = 0.5, freq: float = 440.0) -> torch.Tensor:
    t = torch.arange(int(sr * seconds)) / sr
    return (0.5 * torch.sin(2 * math.pi * freq * t))[None, None]


def test_identical_and_degraded_pairs(visqol_build: Path) -> None:
    visqol = ViSQOL(visqol_build, mode="audio")
    ref = sine(24000).repeat(2, 1, 1)
    noise = 0.05 * torch.randn(ref.shape, generator=torch.Generator().manual_seed(0))
    deg = ref.clone()
    deg[1] += noise[1]
    scores = visqol.scores(ref, deg, sr=24000)
    assert scores[0] == pytest.approx(5.0)
    snr = 10 * math.log10(ref[1].pow(2).sum() / noise[1].pow(2).sum())
    assert scores[1] == pytest.approx(1 + 4 * snr / 40, abs=0.05)  # 16-bit quantisation and resampling
    assert visqol(ref, deg, 24000) == pytest.approx(sum(scores) / 2)  # upstream call form: batch mean
    visqol.update(deg[:1], ref[:1], sample_rate=24000)
    visqol.update(deg[1:], ref[1:], sample_rate=24000)
    assert visqol.compute() == pytest.approx(sum(scores) / 2)


def test_speech_mode_executable_path_and_debug(tmp_path: Path) -> None:
    exe = make_stand_in(tmp_path / "bin")
    model = tmp_path / "speech_model.txt"
    model.write_text("model")
    visqol = ViSQOL(exe, mode="speech", model=str(model), debug=True)
    ref = sine(16000)
    scores = visqol.scores(ref, ref.clone(), sr=16000, pad_with_silence=True)
    assert scores == [pytest.approx(5.0)]
    assert visqol.last_debug == {"pairs": 1}


def test_wav_written_as_16bit_pcm_at_mode_rate(tmp_path: Path) -> None:
    from audiocraft.metrics.visqol import write_wav_pcm16

    write_wav_pcm16(tmp_path / "x.wav", torch.tensor([[0.0, 0.5, -2.0]]), 48000)
    with wave.open(str(tmp_path / "x.wav")) as f:
        assert (f.getframerate(), f.getsampwidth(), f.getnchannels()) == (48000, 2, 1)
        data = np.frombuffer(f.readframes(3), dtype="<i2")
    assert data.tolist() == [0, round(0.5 * 32767), round(-0.99 * 32767)]


def test_clear_errors_when_binary_or_model_is_missing(tmp_path: Path, visqol_build: Path) -> None:
    with pytest.raises(ValueError, match="metrics.visqol.bin"):
        ViSQOL(None)
    with pytest.raises(FileNotFoundError, match="not found at"):
        ViSQOL(tmp_path / "nowhere" / "visqol")
    with pytest.raises(FileNotFoundError, match="bazel-bin/visqol"):
        ViSQOL(tmp_path / "visqol" / "model")
    with pytest.raises(FileNotFoundError, match="other_model.txt"):
        ViSQOL(visqol_build, model="other_model.txt")
    with pytest.raises(ValueError, match="mode"):
        ViSQOL(visqol_build, mode="video")


def test_binary_failure_is_reported(tmp_path: Path) -> None:
    exe = make_stand_in(tmp_path / "broken", body="import sys\nsys.stderr.write('model is corrupt')\nsys.exit(3)\n")
    (tmp_path / "broken" / "model").mkdir()
    (tmp_path / "broken" / "model" / "libsvm_nu_svr_model.txt").write_text("x")
    visqol = ViSQOL(exe)
    with pytest.raises(RuntimeError, match="(?s)exit code 3.*model is corrupt"):
        visqol.scores(sine(48000), sine(48000), 48000)
