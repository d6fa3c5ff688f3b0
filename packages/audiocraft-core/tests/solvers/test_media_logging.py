"""StandardSolver media logging: audio (through audio_write) and its mel-spectrogram PNG, to the local and
tensorboard loggers in real runs, and to wandb (checked with a stand-in run object, wandb is not installed here)."""

from __future__ import annotations

import io
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from flashy.loggers import WandbLogger

sys.path.insert(0, str(Path(__file__).parent))
from tiny_solver import TinySolver, make_cfg, make_xp, run_training  # noqa: E402

from audiocraft.utils._media import mel_spectrogram_image  # noqa: E402

SR = 16000
MEDIA_ON = {"logging.log_tensorboard": True, "tensorboard.with_media_logging": True}


def _tone(freq: float = 440.0) -> torch.Tensor:
    t = torch.arange(SR // 2) / SR
    return 0.4 * torch.stack([torch.sin(2 * torch.pi * freq * t), torch.sin(2 * torch.pi * 2 * freq * t)])


class MediaSolver(TinySolver):
    """The tiny solver whose generate stage logs a stereo tone and an image."""

    def generate(self) -> dict:
        if self.media_logging_enabled:
            self.log_audio(str(self.current_stage), "sample_0/tone", _tone(), SR)
            self.log_image(str(self.current_stage), "ramp", torch.linspace(0, 1, 12).view(1, 3, 4))
        return {"written": 1}


def _tensorboard_media(folder: Path) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder / "tensorboard"), size_guidance={"audio": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    return {"audio": {t: acc.Audio(t) for t in tags["audio"]}, "images": {t: acc.Images(t) for t in tags["images"]}}


def test_generate_writes_audio_and_spectrogram_with_media_logging_on(tmp_path):
    pytest.importorskip("tensorboard", reason="the [tensorboard] extra of audiocraft-core")
    cfg = make_cfg(**{"optim.epochs": 2, "generate.every": 1, **MEDIA_ON})
    xp = make_xp(tmp_path, cfg)
    xp.folder.mkdir(parents=True, exist_ok=True)
    with xp.enter(), warnings.catch_warnings():
        warnings.filterwarnings("error", message="tensorboard package was not found")
        solver = MediaSolver(cfg)
        solver.run()
    outputs = Path(solver.folder) / "outputs"
    for epoch in (1, 2):
        wav_path = outputs / f"generate_{epoch}" / "sample_0" / "tone.wav"
        data, sr = sf.read(wav_path, dtype="float32", always_2d=True)
        assert sr == SR and data.shape == (SR // 2, 2)
        np.testing.assert_allclose(data.T, _tone().numpy(), atol=1 / 2**15)  # 16-bit PCM, not normalised
        from PIL import Image

        png = Image.open(outputs / f"generate_{epoch}" / "sample_0" / "tone.png")
        assert np.array_equal(np.array(png), mel_spectrogram_image(_tone(), SR).permute(1, 2, 0).numpy())
        ramp = np.array(Image.open(outputs / f"generate_{epoch}" / "ramp.png"))
        assert ramp.shape == (3, 4) and ramp[0, 0] == 0 and ramp[-1, -1] == 255
    media = _tensorboard_media(Path(solver.folder))
    assert sorted(media["audio"]) == ["generate/sample_0/tone"]
    assert [e.step for e in media["audio"]["generate/sample_0/tone"]] == [1, 2]
    clip = media["audio"]["generate/sample_0/tone"][0]
    assert clip.sample_rate == SR and clip.length_frames == SR // 2
    mono, _ = sf.read(io.BytesIO(clip.encoded_audio_string), dtype="float32")
    np.testing.assert_allclose(mono, _tone().mean(0).numpy(), atol=2 / 2**15)
    assert sorted(media["images"]) == ["generate/ramp", "generate/sample_0/tone_mel"]
    image = media["images"]["generate/sample_0/tone_mel"][-1]
    assert (image.height, image.width) == tuple(mel_spectrogram_image(_tone(), SR).shape[1:])


def test_no_media_without_media_logging(tmp_path):
    solver = run_training(tmp_path, make_cfg(**{"optim.epochs": 1, "logging.log_tensorboard": True}))
    assert not solver.media_logging_enabled
    assert not list((Path(solver.folder) / "outputs").rglob("*.wav"))


class _Recorded:
    """Stand-in for wandb.Audio / wandb.Image: keeps its arguments."""

    def __init__(self, data, **kwargs):
        self.data, self.kwargs = data, kwargs


class _Run:
    """Stand-in for a wandb run: records `log` calls."""

    def __init__(self):
        self.calls: list[tuple[dict, int]] = []

    def log(self, data: dict, step: int) -> None:
        self.calls.append((data, step))


def _wandb_logger(run: _Run, with_media_logging: bool) -> WandbLogger:
    logger = WandbLogger.__new__(WandbLogger)  # no wandb.init: the run is our stand-in
    logger._wandb_run, logger._with_media_logging, logger._name, logger._save_dir = run, with_media_logging, "w", "."
    return logger


def test_wandb_only_run_gets_audio_and_spectrogram(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", types.SimpleNamespace(Audio=_Recorded, Image=_Recorded))
    cfg = make_cfg(**{"optim.epochs": 1, "logging.log_wandb": False, "wandb.with_media_logging": True})
    run, muted = _Run(), _Run()
    with make_xp(tmp_path, cfg).enter():
        solver = MediaSolver(cfg)
        assert not solver.media_logging_enabled  # wandb logging is off in this config
        solver.cfg.logging.log_wandb = True
        assert solver.media_logging_enabled  # a wandb-only run logs media
        solver.result_logger._experiment_loggers = {
            "wandb": _wandb_logger(run, True),
            "muted": _wandb_logger(muted, False),
        }
        solver.log_audio("generate", "sample_3/reconstruction", _tone(), SR)
        solver.log_image("generate", "map", torch.full((3, 2, 5), 7, dtype=torch.uint8))
    assert muted.calls == []
    (audio_call, image_call) = run.calls
    data, step = audio_call
    assert step == solver.epoch == 1
    assert sorted(data) == ["generate/sample_3/reconstruction", "generate/sample_3/reconstruction_mel"]
    audio = data["generate/sample_3/reconstruction"]
    assert audio.kwargs == {"sample_rate": SR}
    np.testing.assert_allclose(audio.data, _tone().t().numpy())  # [T, C], as wandb.Audio takes it
    mel = data["generate/sample_3/reconstruction_mel"].data
    assert np.array_equal(mel, mel_spectrogram_image(_tone(), SR).permute(1, 2, 0).numpy())  # HWC
    assert list(image_call[0]) == ["generate/map"] and image_call[0]["generate/map"].data.shape == (2, 5, 3)
