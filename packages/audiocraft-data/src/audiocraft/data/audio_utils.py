"""Waveform utilities of the data layer: channel/rate conversion, normalisation, PCM conversions.

Part of ``audiocraft-data`` (bottom of the package DAG). Resampling goes through julius (sinc
resampling made for this); loudness normalisation measures ITU-R BS.1770 loudness with the torch
implementation in :mod:`audiocraft.data._loudness` (no torchaudio). Every strategy that may push
samples past full scale clips them *and logs it*: nothing here clips silently.
"""

import logging
import math

import julius
import torch

from ._loudness import integrated_loudness

logger = logging.getLogger(__name__)

__all__ = [
    "convert_audio_channels",
    "convert_audio",
    "normalize_loudness",
    "normalize_audio",
    "f32_pcm",
    "i16_pcm",
    "NORMALIZE_STRATEGIES",
]

NORMALIZE_STRATEGIES = ("peak", "clip", "rms", "loudness", "none")
"""The ``strategy`` values `normalize_audio` accepts."""


def convert_audio_channels(wav: torch.Tensor, channels: int = 2) -> torch.Tensor:
    """Convert audio to the given number of channels.

    Mono becomes multi-channel by repetition, multi-channel becomes mono by averaging, and a file with
    more channels than requested keeps its first ``channels`` channels.

    Args:
        wav (torch.Tensor): audio of shape [..., C, T].
        channels (int): number of output channels.

    Returns:
        torch.Tensor: audio of shape [..., channels, T].

    Raises:
        ValueError: when upmixing a non-mono signal (e.g. stereo to 5 channels).
    """
    *shape, src_channels, length = wav.shape
    if src_channels == channels:
        return wav
    if channels == 1:
        return wav.mean(dim=-2, keepdim=True)
    if src_channels == 1:
        return wav.expand(*shape, channels, length)
    if src_channels > channels:
        return wav[..., :channels, :]
    raise ValueError(f"cannot convert {src_channels} channels to {channels}: only mono audio can be upmixed")


def convert_audio(wav: torch.Tensor, from_rate: float, to_rate: float, to_channels: int) -> torch.Tensor:
    """Resample audio (julius sinc resampling) and convert its channel count.

    Args:
        wav (torch.Tensor): audio of shape [..., C, T].
        from_rate (float): sample rate of ``wav``.
        to_rate (float): target sample rate.
        to_channels (int): target number of channels.

    Returns:
        torch.Tensor: audio of shape [..., to_channels, T'] with T' = T * to_rate / from_rate (rounded down).
    """
    downmix = wav.shape[-2] > to_channels
    if downmix:  # fewer channels to resample
        wav = convert_audio_channels(wav, to_channels)
    if from_rate != to_rate:
        wav = julius.resample_frac(wav, int(from_rate), int(to_rate))
    if not downmix:
        wav = convert_audio_channels(wav, to_channels)
    return wav


def normalize_loudness(
    wav: torch.Tensor,
    sample_rate: int,
    loudness_headroom_db: float = 14,
    loudness_compressor: bool = False,
    energy_floor: float = 2e-3,
) -> torch.Tensor:
    """Scale audio to an integrated loudness of ``-loudness_headroom_db`` LUFS.

    Quiet audio (RMS below ``energy_floor``) and audio shorter than one 400 ms block are returned unchanged.

    Args:
        wav (torch.Tensor): audio of shape [C, T].
        sample_rate (int): sample rate of ``wav``.
        loudness_headroom_db (float): target loudness is ``-loudness_headroom_db`` LUFS.
        loudness_compressor (bool): apply ``tanh`` after the gain (soft limiting instead of clipping).
        energy_floor (float): RMS under which the audio is considered silent and left alone.

    Returns:
        torch.Tensor: normalised audio of shape [C, T].
    """
    energy = wav.pow(2).mean().sqrt().item()
    if energy < energy_floor or wav.shape[-1] < int(0.4 * sample_rate):
        return wav
    input_loudness_db = integrated_loudness(wav, sample_rate).item()
    gain = 10.0 ** ((-loudness_headroom_db - input_loudness_db) / 20.0)
    output = gain * wav
    if loudness_compressor:
        output = torch.tanh(output)
    if not output.isfinite().all():
        raise ValueError(f"loudness normalisation produced non-finite audio (input loudness {input_loudness_db} LUFS)")
    return output


CLIP_WARNING_DB = 0.5  # clipping by at least this much (dB over the limit) is a warning, less is an info line


def _clip_wav(
    wav: torch.Tensor, log_clipping: bool = True, stem_name: str | None = None, limit: float = 1.0
) -> torch.Tensor:
    """Clamp ``wav`` to [-limit, limit], logging when any sample had to be clipped.

    A warning from `CLIP_WARNING_DB` over the limit; a smaller overshoot (a reconstruction peaking at 1.002, which
    every generate stage of a codec produces) is an info line: still logged, not a warning on every debug run.
    """
    peak = wav.abs().max().item() if wav.numel() else 0.0
    if peak > limit:
        if log_clipping:
            count = int((wav.abs() > limit).sum())
            over_db = 20 * math.log10(peak / limit)
            logger.log(
                logging.WARNING if over_db >= CLIP_WARNING_DB else logging.INFO,
                "clipping %s: %d samples above %.3f (peak %.3f, %.2f dB over)",
                stem_name or "audio",
                count,
                limit,
                peak,
                over_db,
            )
        wav = wav.clamp(-limit, limit)
    return wav


def normalize_audio(
    wav: torch.Tensor,
    normalize: bool = True,
    strategy: str = "peak",
    peak_clip_headroom_db: float = 1,
    rms_headroom_db: float = 18,
    loudness_headroom_db: float = 14,
    loudness_compressor: bool = False,
    log_clipping: bool = True,
    sample_rate: int | None = None,
    stem_name: str | None = None,
) -> torch.Tensor:
    """Normalise audio with one of the strategies upstream AudioCraft offers.

    Strategies:
        - ``peak``: scale so that the peak is at ``-peak_clip_headroom_db`` dBFS (only scaled down if
          ``normalize`` is False and the audio would clip).
        - ``clip``: clamp to ``-peak_clip_headroom_db`` dBFS (logged when it changes samples).
        - ``rms``: scale the mono mix RMS to ``-rms_headroom_db`` dBFS, then clip to [-1, 1] (logged).
        - ``loudness``: scale to ``-loudness_headroom_db`` LUFS (BS.1770), then clip to [-1, 1] (logged).
        - ``none`` (or ``''``): leave the audio as is; it must already be within [-1, 1].

    Args:
        wav (torch.Tensor): audio of shape [C, T].
        normalize (bool): for ``peak`` and ``rms``, whether to scale up as well as down.
        strategy (str): one of ``NORMALIZE_STRATEGIES``.
        peak_clip_headroom_db (float): headroom for ``peak`` and ``clip``.
        rms_headroom_db (float): headroom for ``rms``.
        loudness_headroom_db (float): target is ``-loudness_headroom_db`` LUFS for ``loudness``.
        loudness_compressor (bool): soft-limit with tanh after loudness normalisation.
        log_clipping (bool): log a warning whenever samples are clipped.
        sample_rate (int, optional): required by ``loudness``.
        stem_name (str, optional): name used in clipping warnings.

    Returns:
        torch.Tensor: normalised audio of shape [C, T].

    Raises:
        ValueError: for an unknown strategy, a missing sample rate, or out-of-range audio with ``none``.
    """
    scale_peak = 10 ** (-peak_clip_headroom_db / 20)
    scale_rms = 10 ** (-rms_headroom_db / 20)
    if strategy == "peak":
        peak = wav.abs().max()
        if peak > 0:
            rescaling = scale_peak / peak
            if normalize or rescaling < 1:
                wav = wav * rescaling
    elif strategy == "clip":
        wav = _clip_wav(wav, log_clipping, stem_name, limit=scale_peak)
    elif strategy == "rms":
        rms = wav.mean(dim=0).pow(2).mean().sqrt()
        if rms > 0:
            rescaling = scale_rms / rms
            if normalize or rescaling < 1:
                wav = wav * rescaling
        wav = _clip_wav(wav, log_clipping, stem_name)
    elif strategy == "loudness":
        if sample_rate is None:
            raise ValueError("loudness normalisation needs the sample_rate")
        wav = normalize_loudness(wav, sample_rate, loudness_headroom_db, loudness_compressor)
        wav = _clip_wav(wav, log_clipping, stem_name)
    elif strategy in ("none", ""):
        top = wav.abs().max().item() if wav.numel() else 0.0
        if top > 1:
            raise ValueError(
                f"{stem_name or 'audio'} has peak {top:.3f} > 1 and strategy 'none' would clip it; "
                "use strategy 'peak', 'clip', 'rms' or 'loudness'"
            )
    else:
        raise ValueError(f"unknown normalisation strategy {strategy!r}; expected one of {list(NORMALIZE_STRATEGIES)}")
    return wav


def f32_pcm(wav: torch.Tensor) -> torch.Tensor:
    """Convert integer PCM (int16 or int32) to float32 in [-1, 1]; float input is returned as is.

    Args:
        wav (torch.Tensor): audio of any shape.

    Returns:
        torch.Tensor: float audio of the same shape.
    """
    if wav.dtype.is_floating_point:
        return wav
    if wav.dtype == torch.int16:
        return wav.float() / 2**15
    if wav.dtype == torch.int32:
        return wav.float() / 2**31
    raise ValueError(f"f32_pcm: unsupported dtype {wav.dtype}")


def i16_pcm(wav: torch.Tensor) -> torch.Tensor:
    """Convert float audio in [-1, 1] to int16 PCM; int16 input is returned as is.

    A float value of exactly 1.0 maps to 32767 (the scale drops to 2**15 - 1 rather than overflow).

    Args:
        wav (torch.Tensor): audio of any shape.

    Returns:
        torch.Tensor: int16 audio of the same shape.

    Raises:
        ValueError: if float audio exceeds [-1, 1] (it would clip) or the dtype is not supported.
    """
    if wav.dtype.is_floating_point:
        peak = wav.abs().max().item() if wav.numel() else 0.0
        if peak > 1:
            raise ValueError(f"i16_pcm: audio peaks at {peak:.4f} > 1 and would clip; normalise it first")
        candidate = (wav * 2**15).round()
        if candidate.numel() and candidate.max() >= 2**15:
            candidate = (wav * (2**15 - 1)).round()
        return candidate.short()
    if wav.dtype == torch.int16:
        return wav
    raise ValueError(f"i16_pcm: unsupported dtype {wav.dtype}")
