"""`dora run solver=compression/debug` with media logging on writes the generate stage's audio and spectrograms."""

import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from audiocraft.data.example import generate_example_dataset


@pytest.mark.slow
@pytest.mark.integration
def test_dora_run_with_media_logging_writes_audio_and_spectrograms(tmp_path):
    data = tmp_path / "egs"
    generate_example_dataset(data, num_clips=6, sample_rate=16000, min_duration=2.0, max_duration=3.0)
    overrides = [
        "solver=compression/debug",
        "device=cpu",
        "optim.epochs=1",
        "optim.updates_per_epoch=2",
        "dataset.valid.num_samples=2",
        "dataset.evaluate.num_samples=2",
        "dataset.generate.num_samples=2",
        "dataset.generate.segment_duration=2",
        "logging.log_tensorboard=true",
        "tensorboard.with_media_logging=true",
    ] + [f"datasource.{split}={data / split}" for split in ("train", "valid", "evaluate", "generate")]
    dora_dir = tmp_path / "dora"
    env = {**os.environ, "DORA_PACKAGE": "audiocraft", "AUDIOCRAFT_DORA_DIR": str(dora_dir), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-m", "dora", "run", *overrides],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (folder,) = (dora_dir / "xps").iterdir()
    media = folder / "outputs" / "generate_1"
    names = sorted(str(p.relative_to(media)) for p in media.rglob("*"))
    assert [n for n in names if "." in n] == [
        f"sample_{i}/{kind}.{ext}"
        for i in range(2)
        for kind in ("reconstruction", "reference")
        for ext in ("png", "wav")
    ]
    for i in range(2):
        reference, sr = sf.read(media / f"sample_{i}" / "reference.wav", dtype="float32")
        reconstruction, _ = sf.read(media / f"sample_{i}" / "reconstruction.wav", dtype="float32")
        assert sr == 16000 and reference.shape == reconstruction.shape == (2 * 16000,)
        assert np.abs(reference).max() > 0.01
        assert (media / f"sample_{i}" / "reference.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The tensorboard event file holds the same media when the [tensorboard] extra is installed (flashy turns
    # tensorboard logging into a warning otherwise, and the local copies above are still written).
    if importlib.util.find_spec("tensorboard") is not None:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(str(folder / "tensorboard"), size_guidance={"audio": 0, "images": 0})
        acc.Reload()
        assert sorted(acc.Tags()["audio"]) == [
            f"generate/sample_{i}/{kind}" for i in range(2) for kind in ("reconstruction", "reference")
        ]
        assert sorted(acc.Tags()["images"]) == [
            f"generate/sample_{i}/{kind}_mel" for i in range(2) for kind in ("reconstruction", "reference")
        ]
