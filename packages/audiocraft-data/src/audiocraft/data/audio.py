"""Audio file I/O for the data layer: ``audio_info``, ``audio_read`` (seeking) and ``audio_write``.

Part of ``audiocraft-data`` (bottom of the package DAG). WAV, FLAC, OGG/Vorbis, MP3 and the other
libsndfile formats are read through soundfile, which seeks to the requested frame and decodes only
the requested segment. Other containers (m4a, aac, opus in webm, ...) go through PyAV when it is
installed (``pip install 'audiocraft-data[av]'``), imported lazily. Paths may point inside zip
archives (``archive.zip:inner/path.wav``). Any failure names the file at fault.
"""

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import soundfile
import torch

from ._av import av_info, av_read
from ._frames import frame_span, seconds_to_frames
from .atomic import atomic_write
from .audio_utils import i16_pcm, normalize_audio
from .zip import PathInZip, ZipArchiveCache, is_zip_path, open_file_in_zip

logger = logging.getLogger(__name__)

__all__ = ["AudioFileInfo", "AudioFileError", "audio_info", "audio_read", "audio_write", "SOUNDFILE_EXTS"]

# Extensions read through libsndfile (seekable, no PyAV needed).
SOUNDFILE_EXTS = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".au", ".w64", ".caf", ".rf64"})
"""Extensions read through libsndfile (seekable, no PyAV needed)."""
# libsndfile's MPEG decoder is exact only when seeks and reads are aligned on 1152 samples (an MPEG-1
# layer III frame; MPEG-2/2.5 frames of 576 samples and layer I/II frames divide it).
_MP3_BLOCK = 1152

PathLike = str | os.PathLike[str] | PathInZip


class AudioFileError(RuntimeError):
    """An audio file exists but cannot be decoded (corrupt, truncated, unsupported)."""


@dataclass(frozen=True)
class AudioFileInfo:
    """Properties of an audio file.

    Attributes:
        sample_rate (int): sample rate in Hz.
        duration (float): duration in seconds.
        channels (int): number of channels.
        frames (int): number of samples per channel.
    """

    sample_rate: int
    duration: float
    channels: int
    frames: int = -1


def _suffix(path: PathLike) -> str:
    return os.path.splitext(str(path))[1].lower()  # also right for 'archive.zip:inner/file.wav'


@contextlib.contextmanager
def _opened(path: PathLike, zip_cache: ZipArchiveCache | None) -> Iterator[str | IO[bytes]]:
    """Yield something soundfile/PyAV can open: a path, or a file object for zip members."""
    if is_zip_path(path):
        with open_file_in_zip(str(path), cache=zip_cache) as fileobj:
            yield fileobj
        return
    yield str(path)  # existence is checked only when opening fails (see _fail)


def _use_soundfile(path: PathLike) -> bool:
    if _suffix(path) in SOUNDFILE_EXTS:
        return True
    try:
        import av  # noqa: F401
    except ImportError:
        return True  # try libsndfile anyway; the error will mention the [av] extra
    return False


def _fail(path: PathLike, exc: BaseException, use_sf: bool) -> Exception:
    if not is_zip_path(path) and not os.path.isfile(str(path)):
        return FileNotFoundError(f"audio file not found: {path}")
    hint = ""
    if use_sf and _suffix(path) not in SOUNDFILE_EXTS:
        hint = " (formats other than wav/flac/ogg/mp3 need PyAV: pip install 'audiocraft-data[av]')"
    return AudioFileError(f"cannot read audio file {path}: {exc}{hint}")


# A RIFF/WAVE data chunk whose size is unknown (written by a streaming recorder): not a truncation.
_WAV_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


def _wav_truncation(src: str | IO[bytes]) -> str | None:
    """Why a RIFF/WAVE file is truncated (its ``data`` chunk announces more bytes than the file holds), else None.

    libsndfile silently shortens such a file to the frames present (so a WAV whose header says 30 s but
    that holds 4 ms reads as a 4 ms file); FLAC and MP3 truncation is detected while decoding instead.
    Only the chunk headers are read.
    """
    if isinstance(src, str):
        with open(src, "rb") as fp:
            return _wav_truncation(fp)
    start = src.tell()
    try:
        size = getattr(src, "_orig_file_size", None)  # zip member: its size without decompressing it all
        if size is None:
            src.seek(0, os.SEEK_END)
            size = src.tell()
        src.seek(0)
        if src.read(12)[8:12] != b"WAVE":
            return None  # RF64 / W64 / not RIFF: sizes are elsewhere, let libsndfile judge
        pos = 12
        fmt = b""
        while pos + 8 <= size:
            header = src.read(8)
            chunk, length = header[:4], int.from_bytes(header[4:8], "little")
            if chunk == b"fmt ":
                fmt = src.read(min(length, 16))
                src.seek(pos + 8 + length)
            elif chunk == b"data":
                available = size - pos - 8
                if length in _WAV_UNKNOWN_SIZES or length <= available:
                    return None
                block = int.from_bytes(fmt[12:14], "little") if len(fmt) >= 14 else 0
                rate = int.from_bytes(fmt[4:8], "little") if len(fmt) >= 8 else 0
                if block and rate:
                    return (
                        f"truncated: the WAV header announces {length // block / rate:.3f} s of audio but the "
                        f"file holds only {available // block / rate:.3f} s"
                    )
                return f"truncated: the WAV header announces {length} bytes of audio but the file holds {available}"
            else:
                src.seek(pos + 8 + length + (length & 1))
            pos = src.tell()
        return None
    finally:
        src.seek(start)


def _check_complete(filepath: PathLike, src: str | IO[bytes]) -> None:
    if _suffix(filepath) == ".wav":
        reason = _wav_truncation(src)
        if reason is not None:
            raise AudioFileError(f"cannot read audio file {filepath}: {reason} (re-copy or re-export the file)")


def audio_info(filepath: PathLike, zip_cache: ZipArchiveCache | None = None) -> AudioFileInfo:
    """Read the sample rate, duration and channel count of an audio file without decoding it.

    Args:
        filepath (str, Path or PathInZip): audio file, possibly ``archive.zip:member``.
        zip_cache (ZipArchiveCache, optional): cache of open archives for zip members.

    Returns:
        AudioFileInfo: the file's properties.

    Raises:
        FileNotFoundError: if the file (or archive, or member) does not exist.
        AudioFileError: if the file cannot be decoded.
    """
    use_sf = _use_soundfile(filepath)
    with _opened(filepath, zip_cache) as src:
        try:
            if use_sf:
                _check_complete(filepath, src)
                with soundfile.SoundFile(src) as sf:
                    return AudioFileInfo(sf.samplerate, sf.frames / sf.samplerate, sf.channels, sf.frames)
            sample_rate, frames, channels, seconds = av_info(src)
            return AudioFileInfo(sample_rate, seconds, channels, frames)
        except (RuntimeError, ValueError, OSError, EOFError) as exc:
            if isinstance(exc, AudioFileError) and str(filepath) in str(exc):
                raise
            error = _fail(filepath, exc, use_sf)
            raise error from (None if isinstance(error, FileNotFoundError) else exc)


def _read_frames(sf: soundfile.SoundFile, count: int) -> np.ndarray:
    """Read ``count`` frames as float32 [T, C] from the current position.

    soundfile's ``SoundFile.read`` re-seeks to the new position after every read; for MP3 that costs as much
    as the decoding (and is inexact off frame boundaries), so libsndfile is called directly when possible.
    """
    out = np.empty((count, sf.channels), dtype=np.float32)
    try:
        from soundfile import _ffi, _snd  # stable private API of soundfile >= 0.10

        read = _snd.sf_readf_float
        handle = sf._file
    except (ImportError, AttributeError):  # pragma: no cover - other soundfile versions
        return sf.read(count, dtype="float32", always_2d=True)
    got = read(handle, _ffi.cast("float*", out.__array_interface__["data"][0]), count)
    return out[:got]


def _sf_read(src: str | IO[bytes], seek_time: float, duration: float, is_mp3: bool) -> tuple[np.ndarray, int]:
    """Read ``duration`` s (all if <= 0) from ``seek_time`` with one open -> ([T, C] float32 array, sample rate)."""
    with soundfile.SoundFile(src) as sf:
        sample_rate, total = sf.samplerate, sf.frames
        start, frames = frame_span(seek_time, duration, sample_rate)
        remaining = max(0, total - start)
        count = remaining if frames < 0 else min(frames, remaining)
        if count == 0:
            return np.zeros((0, sf.channels), dtype=np.float32), sample_rate
        if is_mp3:
            aligned = start - start % _MP3_BLOCK
            skip = start - aligned
            to_read = -(-(skip + count) // _MP3_BLOCK) * _MP3_BLOCK
            if aligned:
                sf.seek(aligned)
            data = _read_frames(sf, to_read)[skip : skip + count]
        else:
            if start:
                sf.seek(start)
            data = _read_frames(sf, count)
        if data.shape[0] < count:
            raise AudioFileError(
                f"truncated: header announces {total} frames but reading {count} frames from "
                f"frame {start} returned only {data.shape[0]}"
            )
        return data, sample_rate


def audio_read(
    filepath: PathLike,
    seek_time: float = 0.0,
    duration: float = -1.0,
    pad: bool = False,
    zip_cache: ZipArchiveCache | None = None,
) -> tuple[torch.Tensor, int]:
    """Read a segment of an audio file, decoding only that segment.

    Args:
        filepath (str, Path or PathInZip): audio file, possibly ``archive.zip:member``.
        seek_time (float): start of the segment in seconds.
        duration (float): length of the segment in seconds; ``-1`` (or any value <= 0) reads to the end.
        pad (bool): zero-pad the end so that the result has exactly ``int(duration * sample_rate)``
            samples when the file ends before the segment does (only with ``duration > 0``).
        zip_cache (ZipArchiveCache, optional): cache of open archives for zip members.

    Returns:
        tuple[torch.Tensor, int]: float32 audio of shape [C, T] in [-1, 1], and its sample rate.

    Raises:
        FileNotFoundError: if the file (or archive, or member) does not exist.
        AudioFileError: if the file is corrupt, truncated or in an unsupported format.
    """
    if seek_time < 0:
        raise ValueError(f"seek_time must be >= 0, got {seek_time} for {filepath}")
    use_sf = _use_soundfile(filepath)
    with _opened(filepath, zip_cache) as src:
        try:
            if use_sf:
                data, sample_rate = _sf_read(src, seek_time, duration, _suffix(filepath) == ".mp3")
                if duration <= 0 or data.shape[0] < frame_span(seek_time, duration, sample_rate)[1]:
                    # whole-file or short read: a truncated WAV would pass for a shorter file (a read that gets
                    # every frame it asked for is right whatever the header says; checking it costs a 2nd open)
                    _check_complete(filepath, src)
                wav = torch.from_numpy(np.ascontiguousarray(data.T))
            else:
                wav, sample_rate = av_read(src, seek_time, duration)
        except (RuntimeError, ValueError, OSError, EOFError) as exc:
            if isinstance(exc, AudioFileError) and str(filepath) in str(exc):
                raise
            error = _fail(filepath, exc, use_sf)
            raise error from (None if isinstance(error, FileNotFoundError) else exc)
    if pad and duration > 0:
        target = seconds_to_frames(duration, sample_rate)
        if wav.shape[-1] < target:
            wav = torch.nn.functional.pad(wav, (0, target - wav.shape[-1]))
    return wav, sample_rate


_WRITE_FORMATS: dict[str, dict[str, Any]] = {
    "wav": {"format": "WAV", "subtype": "PCM_16", "suffix": ".wav"},
    "flac": {"format": "FLAC", "subtype": "PCM_16", "suffix": ".flac"},
    "mp3": {"format": "MP3", "subtype": "MPEG_LAYER_III", "suffix": ".mp3"},
    "ogg": {"format": "OGG", "subtype": "VORBIS", "suffix": ".ogg"},
}


def audio_write(
    stem_name: str | os.PathLike[str],
    wav: torch.Tensor,
    sample_rate: int,
    format: str = "wav",
    mp3_rate: int = 320,
    ogg_rate: int | None = None,
    normalize: bool = True,
    strategy: str = "peak",
    peak_clip_headroom_db: float = 1,
    rms_headroom_db: float = 18,
    loudness_headroom_db: float = 14,
    loudness_compressor: bool = False,
    log_clipping: bool = True,
    make_parent_dir: bool = True,
    add_suffix: bool = True,
) -> Path:
    """Normalise and write audio; the file appears atomically (:func:`audiocraft.data.atomic.atomic_write`).

    Args:
        stem_name (str or Path): output path without extension (unless ``add_suffix`` is False).
        wav (torch.Tensor): float audio of shape [C, T] or [T].
        sample_rate (int): sample rate in Hz.
        format (str): ``wav`` (16-bit PCM), ``flac`` (16-bit), ``mp3`` or ``ogg`` (Vorbis).
        mp3_rate (int): MP3 constant bitrate in kbps (32 to 320).
        ogg_rate (int, optional): approximate Vorbis bitrate in kbps (libsndfile default quality if None).
        normalize (bool): see :func:`audiocraft.data.audio_utils.normalize_audio`.
        strategy (str): ``peak``, ``clip``, ``rms``, ``loudness`` or ``none``.
        peak_clip_headroom_db (float): headroom for ``peak``/``clip``.
        rms_headroom_db (float): headroom for ``rms``.
        loudness_headroom_db (float): target ``-loudness_headroom_db`` LUFS for ``loudness``.
        loudness_compressor (bool): soft-limit with tanh after loudness normalisation.
        log_clipping (bool): log a warning whenever samples are clipped.
        make_parent_dir (bool): create the parent directory if missing.
        add_suffix (bool): append the format's extension to ``stem_name``.

    Returns:
        Path: the path written.

    Raises:
        ValueError: for a non-float or non-finite ``wav``, a bad shape or an unknown format.
    """
    if format not in _WRITE_FORMATS:
        raise ValueError(f"unknown audio format {format!r}; expected one of {sorted(_WRITE_FORMATS)}")
    if not wav.dtype.is_floating_point:
        raise ValueError(f"audio_write({stem_name}): wav must be floating point, got {wav.dtype}")
    if wav.dim() == 1:
        wav = wav[None]
    elif wav.dim() != 2:
        raise ValueError(f"audio_write({stem_name}): wav must be [C, T] or [T], got shape {tuple(wav.shape)}")
    if not wav.isfinite().all():
        raise ValueError(f"audio_write({stem_name}): wav contains NaN or infinite values")
    wav = normalize_audio(
        wav.detach().cpu().float(),
        normalize,
        strategy,
        peak_clip_headroom_db,
        rms_headroom_db,
        loudness_headroom_db,
        loudness_compressor,
        log_clipping=log_clipping,
        sample_rate=sample_rate,
        stem_name=str(stem_name),
    )
    spec = _WRITE_FORMATS[format]
    path = Path(str(stem_name) + spec["suffix"]) if add_suffix else Path(stem_name)
    if not make_parent_dir and not path.parent.is_dir():
        raise RuntimeError(f"could not write {path}: folder {path.parent} does not exist (make_parent_dir=False)")
    kwargs: dict[str, Any] = {}
    if format == "mp3":
        kwargs = {"bitrate_mode": "CONSTANT", "compression_level": min(1.0, max(0.0, (320 - mp3_rate) / (320 - 32)))}
    elif format == "ogg" and ogg_rate is not None:
        kwargs = {"compression_level": min(1.0, max(0.0, 1 - (ogg_rate - 64) / (500 - 64)))}
    if format in ("wav", "flac"):
        data = i16_pcm(wav).t().numpy()
    else:
        data = wav.t().numpy()

    def write(tmp: Path) -> None:
        soundfile.write(tmp, data, sample_rate, subtype=spec["subtype"], format=spec["format"], **kwargs)

    try:
        atomic_write(path, write)
    except Exception as exc:
        what = f"{format}, {sample_rate} Hz, {wav.shape[0]} channels"
        raise RuntimeError(f"could not write {path} ({what}): {exc}") from exc
    return path
