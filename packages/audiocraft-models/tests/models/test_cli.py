"""The command lines: audiocraft-generate (files, JSON record, same seed same audio, prompt file) and
audiocraft-codec (encode/decode round trip, chunked streaming equal to one pass, codes file read without pickle)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import import_module, metadata
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiocraft.data.audio_utils import convert_audio
from audiocraft.models import CompressionModel
from audiocraft.models.cli import codec, generate

ENCODEC_DEBUG = Path(__file__).parent.parent / "fixtures" / "upstream" / "encodec_debug" / "checkpoint.th"


def test_console_scripts_point_at_the_entry_functions() -> None:
    scripts = {
        ep.name: ep.value
        for ep in metadata.distribution("audiocraft-models").entry_points
        if ep.group == "console_scripts"
    }
    assert set(scripts) == {"audiocraft-generate", "audiocraft-codec"}
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(import_module(module), function))


def test_generate_writes_files_and_parameters(tmp_path: Path, capsys) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# a comment\n\nlo-fi beat\n")
    out = tmp_path / "out"
    args = [
        "--model",
        "debug",
        "Calm piano!",
        "epic drums",
        "--prompts-file",
        str(prompts),
        "--duration",
        "0.3",
        "--seed",
        "7",
        "--batch-size",
        "2",
        "-o",
        str(out),
        "--strategy",
        "peak",
    ]
    assert generate.main(args) == 0
    record = json.loads((out / "generation.json").read_text())
    assert [f["file"] for f in record["files"]] == ["000_calm_piano.wav", "001_epic_drums.wav", "002_lo_fi_beat.wav"]
    assert [f["seed"] for f in record["files"]] == [7, 7, 8] and record["batch_size"] == 2
    assert record["generation_params"]["duration"] == 0.3 and record["kind"] == "musicgen"
    assert "batch 2/2" in capsys.readouterr().err  # the progress bar
    audio, rate = sf.read(out / "000_calm_piano.wav")
    assert rate == 32000 and audio.shape == (7 * 1280,)  # int(0.3 * 25) frames
    first = (out / "002_lo_fi_beat.wav").read_bytes()
    again = tmp_path / "again"
    assert generate.main([*args[:-4], "-o", str(again), "--strategy", "peak", "--no-progress"]) == 0
    assert (again / "002_lo_fi_beat.wav").read_bytes() == first


def test_generate_needs_descriptions(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        generate.main(["--model", "debug", "-o", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        generate.main(["--model", "debug", "--prompts-file", str(tmp_path / "missing.txt")])


@pytest.mark.slow
def test_generate_module_runs_as_a_program(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "audiocraft.models.cli.generate",
            "--model",
            "debug",
            "--kind",
            "audiogen",
            "dog barking",
            "-d",
            "0.2",
            "--seed",
            "0",
            "-o",
            str(tmp_path),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().endswith("000_dog_barking.wav")
    assert sf.info(str(tmp_path / "000_dog_barking.wav")).samplerate == 16000


def _write_input(path: Path, seconds: float, rate: int = 44100) -> None:
    t = np.arange(int(seconds * rate)) / rate
    left, right = 0.3 * np.sin(2 * np.pi * 220 * t), 0.2 * np.sin(2 * np.pi * 330 * t + 1)
    sf.write(path, np.stack([left, right], axis=1).astype(np.float32), rate, subtype="FLOAT")


def test_codec_round_trip_streams_causal_models(tmp_path: Path) -> None:
    source = tmp_path / "in.wav"
    _write_input(source, 2.3)
    codes_file = tmp_path / "in.codes.npz"
    assert (
        codec.main(["encode", str(source), str(codes_file), "--model", str(ENCODEC_DEBUG), "--chunk-seconds", "0.5"])
        == 0
    )
    content = codec.read_codes(codes_file)
    model = CompressionModel.get_pretrained(str(ENCODEC_DEBUG))
    data, rate = sf.read(source, dtype="float32")
    wav = convert_audio(torch.from_numpy(data.T.copy())[None], rate, 16000, 1)
    with torch.no_grad():
        one_pass, _ = model.encode(wav)
    assert content["codes"].dtype == np.uint16 and int(content["chunk_frames"]) == 0  # streamed
    assert np.array_equal(content["codes"].astype(np.int64), one_pass[0].numpy())  # chunks = one pass, exactly
    assert int(content["num_samples"]) == wav.shape[-1] and int(content["sample_rate"]) == 16000
    decoded_file = tmp_path / "out.wav"
    assert codec.main(["decode", str(codes_file), str(decoded_file)]) == 0  # model read from the codes file
    decoded, decoded_rate = sf.read(decoded_file, dtype="float32")
    with torch.no_grad():
        expected = model.decode(one_pass)[0, 0, : wav.shape[-1]].clamp(-1, 1).numpy()
    assert decoded_rate == 16000 and decoded.shape == (wav.shape[-1],)
    np.testing.assert_allclose(decoded, expected, atol=1e-4, rtol=0)


def test_codec_chunks_non_causal_models(tmp_path: Path) -> None:
    source = tmp_path / "in.flac"
    sf.write(source, (0.2 * np.sin(np.arange(40000) / 9.0)).astype(np.float32), 32000)
    codes_file = tmp_path / "codes.npz"
    codec.encode_file(source, codes_file, "debug_compression_model", chunk_seconds=0.4)
    content = codec.read_codes(codes_file)
    assert int(content["chunk_frames"]) == 10 and content["codes"].shape == (4, 32)  # 4 chunks of 10 frames + 2
    out = codec.decode_file(codes_file, tmp_path / "out.flac")
    assert sf.info(str(out)).frames == 40000


def test_codes_file_is_checked(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, codes=np.zeros((4, 3), dtype=np.int32))
    with pytest.raises(ValueError, match="missing"):
        codec.read_codes(bad)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, codes=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a codes file"):
        codec.read_codes(pickled)
