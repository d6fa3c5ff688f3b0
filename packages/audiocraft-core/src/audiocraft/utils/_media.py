"""Media logging for the solvers: audio and its mel-spectrogram image to the local, tensorboard and wandb loggers.

Private module of audiocraft-core (training layer), used by `StandardSolver.log_audio` / `log_image`. flashy's own
media path does not work here: its local logger writes audio with ``torchaudio.save`` (which needs torchcodec) and
images with torchvision, its local and tensorboard loggers take ``(key, prefix)`` in the opposite order from the
one its ``ResultLogger`` passes, and its wandb logger calls ``log_metrics`` with swapped arguments. So the solver
writes media itself, to the same places flashy's loggers would:

- local (``<xp>/outputs``): ``<stage>_<epoch>/<key>.wav`` through `audiocraft.data.audio.audio_write`, and
  ``<key>.png`` beside it (written by `encode_png`, no imaging library needed);
- tensorboard: ``add_audio(<stage>/<key>)`` (mono mix, as flashy does) and ``add_image(<stage>/<key>_mel)``;
- wandb: ``run.log({<stage>/<key>: wandb.Audio, <stage>/<key>_mel: wandb.Image}, step=epoch)``.

Loggers with media logging off (``tensorboard.with_media_logging=false``...) or disabled (package missing) get
nothing; only rank 0 writes.
"""

from __future__ import annotations

import struct
import typing as tp
import zlib
from pathlib import Path

import flashy
import numpy as np
import torch
from flashy.loggers import TensorboardLogger, WandbLogger
from flashy.loggers.localfs import LocalFSLogger

from audiocraft.data.audio import audio_write

# Anchors of a perceptually ordered dark-to-bright colour map (black, purple, red, orange, pale yellow).
_COLORS = torch.tensor(
    [[0, 0, 4], [59, 15, 112], [140, 41, 129], [222, 73, 104], [254, 159, 109], [252, 253, 191]], dtype=torch.float32
)
# Local audio is written as flashy's local logger meant to: 16-bit PCM, clipped at full scale, not normalised.
_LOCAL_AUDIO_DEFAULTS: dict[str, tp.Any] = {"format": "wav", "strategy": "clip", "peak_clip_headroom_db": 0.0}


def mel_spectrogram_image(wav: torch.Tensor, sample_rate: int, n_mels: int = 80, top_db: float = 80.0) -> torch.Tensor:
    """A colour image of the log-mel spectrogram of ``wav`` (channels mixed to mono), low frequencies at the bottom.

    Args:
        wav: audio [C, T] or [T].
        sample_rate: its sample rate; the STFT window is ~64 ms (a power of two), the hop a quarter of it.
        n_mels: number of mel bands (image height).
        top_db: dynamic range shown: the loudest bin is white-yellow, ``top_db`` below it and quieter are black.

    Returns:
        uint8 tensor [3, n_mels, frames] (CHW, as tensorboard's ``add_image`` takes it).
    """
    import torchaudio  # a core dependency; only its pure-torch transforms are used (no torchcodec)

    mono = wav.detach().float().cpu().reshape(-1, wav.shape[-1]).mean(dim=0)
    n_fft = 2 ** max(8, round(np.log2(0.064 * sample_rate)))
    if mono.shape[-1] < n_fft:
        mono = torch.nn.functional.pad(mono, (0, n_fft - mono.shape[-1]))
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate,
        n_fft=n_fft,
        hop_length=n_fft // 4,
        n_mels=n_mels,
        power=2.0,
        norm="slaney",
        mel_scale="slaney",
    )(mono)
    db = 10 * torch.log10(mel.clamp(min=1e-10))
    top = float(db.max())
    floor = max(top - top_db, -100.0)
    level = ((db - floor) / (top - floor)).clamp(0, 1) if top > floor else torch.zeros_like(db)
    return colorize(level.flip(0))


def colorize(level: torch.Tensor) -> torch.Tensor:
    """Map values in [0, 1] of shape [H, W] to a uint8 colour image [3, H, W] (dark = 0, bright = 1)."""
    pos = level.clamp(0, 1) * (len(_COLORS) - 1)
    low = pos.floor().long().clamp(max=len(_COLORS) - 2)
    frac = (pos - low)[..., None]
    rgb = _COLORS[low] * (1 - frac) + _COLORS[low + 1] * frac
    return rgb.round().to(torch.uint8).permute(2, 0, 1).contiguous()


def encode_png(image: torch.Tensor) -> bytes:
    """PNG bytes (8-bit, no interlacing, filter 0) of a uint8 image [C, H, W] with C = 1 (grey), 3 (RGB), 4 (RGBA).

    Raises:
        ValueError: for another dtype, shape or channel count.
    """
    if image.dtype != torch.uint8 or image.dim() != 3 or image.shape[0] not in (1, 3, 4):
        raise ValueError(
            f"encode_png needs a uint8 [C, H, W] image with C in (1, 3, 4), got {image.dtype} {tuple(image.shape)}"
        )
    channels, height, width = image.shape
    rows = image.permute(1, 2, 0).reshape(height, width * channels).cpu().numpy()
    raw = np.hstack([np.zeros((height, 1), dtype=np.uint8), rows]).tobytes()  # filter byte 0 before each row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    color_type = {1: 0, 3: 2, 4: 6}[channels]
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def _as_uint8_chw(image: torch.Tensor) -> torch.Tensor:
    """A [C, H, W] (or [H, W]) image as uint8: float images are taken in [0, 1]."""
    image = image.detach().cpu()
    if image.dim() == 2:
        image = image[None]
    if image.dtype != torch.uint8:
        image = (image.float().clamp(0, 1) * 255).round().to(torch.uint8)
    return image


def _local_stem(logger: LocalFSLogger, stage: str, key: str, step: int) -> Path:
    """``<save_dir>/<stage>_<step>/<key>``: where flashy's local logger puts a stage's media."""
    return Path(logger.save_dir) / f"{stage}{logger.group_separator}{step}" / key


def log_audio(
    loggers: tp.Mapping[str, tp.Any],
    stage: str,
    key: str,
    audio: torch.Tensor,
    sample_rate: int,
    step: int,
    spectrogram: bool = True,
    **write_kwargs: tp.Any,
) -> None:
    """Log ``audio`` [C, T] (and its mel spectrogram when ``spectrogram``) to every logger that records media.

    Args:
        loggers: flashy experiment loggers by name (the solver's ``result_logger``'s).
        stage: stage name, the first part of the media name.
        key: media name within the stage (may contain ``/``).
        audio: float audio [C, T] or [T].
        sample_rate: its sample rate.
        step: the epoch.
        spectrogram: also log the mel-spectrogram image.
        write_kwargs: `audio_write` arguments for the local copy (default: 16-bit WAV, clipped, not normalised).
    """
    if not flashy.distrib.is_rank_zero():
        return
    audio = audio.detach().float().cpu()
    if audio.dim() == 1:
        audio = audio[None]
    image = mel_spectrogram_image(audio, sample_rate) if spectrogram else None
    for logger in loggers.values():
        if not logger.with_media_logging:
            continue
        if isinstance(logger, LocalFSLogger):
            stem = _local_stem(logger, stage, key, step)
            audio_write(stem, audio, sample_rate, log_clipping=False, **{**_LOCAL_AUDIO_DEFAULTS, **write_kwargs})
            if image is not None:
                Path(f"{stem}.png").write_bytes(encode_png(image))
        elif isinstance(logger, TensorboardLogger):
            if logger.is_disabled():
                continue
            tag = f"{stage}{logger.group_separator}{key}"
            logger.writer.add_audio(tag, audio.mean(dim=0, keepdim=True).clamp(-0.99, 0.99), step, sample_rate)
            if image is not None:
                logger.writer.add_image(f"{tag}_mel", image, step, dataformats="CHW")
        elif isinstance(logger, WandbLogger):
            if logger.is_disabled():
                continue
            import wandb

            tag = f"{stage}{logger.group_separator}{key}"
            media = {tag: wandb.Audio(audio.t().clamp(-0.99, 0.99).numpy(), sample_rate=sample_rate)}
            if image is not None:
                media[f"{tag}_mel"] = wandb.Image(image.permute(1, 2, 0).numpy())
            logger.writer.log(media, step=step)
        else:  # another ExperimentLogger: its own implementation
            logger.log_audio(stage, key, audio, sample_rate, step)


def log_image(loggers: tp.Mapping[str, tp.Any], stage: str, key: str, image: torch.Tensor, step: int) -> None:
    """Log an image [C, H, W] or [H, W] (uint8, or float in [0, 1]) to every logger that records media."""
    if not flashy.distrib.is_rank_zero():
        return
    image = _as_uint8_chw(image)
    for logger in loggers.values():
        if not logger.with_media_logging:
            continue
        if isinstance(logger, LocalFSLogger):
            path = Path(f"{_local_stem(logger, stage, key, step)}.png")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode_png(image))
        elif isinstance(logger, TensorboardLogger):
            if not logger.is_disabled():
                logger.writer.add_image(f"{stage}{logger.group_separator}{key}", image, step, dataformats="CHW")
        elif isinstance(logger, WandbLogger):
            if not logger.is_disabled():
                import wandb

                logger.writer.log(
                    {f"{stage}{logger.group_separator}{key}": wandb.Image(image.permute(1, 2, 0).numpy())}, step=step
                )
        else:
            logger.log_image(stage, key, image, step)
