"""PyAV fallback decoder for formats libsndfile cannot read (m4a, aac, opus, ...).

Private helper of :mod:`audiocraft.data.audio`, in ``audiocraft-data``. PyAV is an optional extra
(``pip install 'audiocraft-data[av]'``) and is imported only when one of these functions runs.
Seeking jumps to the packet before the requested time and then drops the decoded samples that
precede it, so only the requested segment (plus at most one packet) is decoded.
"""

from typing import IO, Any

import numpy as np
import torch

from ._frames import frame_span, seconds_to_frames

_SCALE = {"s16": 2.0**15, "s32": 2.0**31, "u8": 128.0}


def _import_av() -> Any:
    try:
        import av
    except ImportError as exc:
        raise ImportError("reading this format needs PyAV: pip install 'audiocraft-data[av]'") from exc
    return av


def _frame_to_array(frame: Any, channels: int) -> np.ndarray:
    """Decoded PyAV frame -> float32 array [C, T]."""
    arr = frame.to_ndarray()
    name = frame.format.name.rstrip("p")
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    if name == "u8":
        arr = (arr.astype(np.float32) - 128.0) / 128.0
    elif name in _SCALE:
        arr = arr.astype(np.float32) / _SCALE[name]
    return arr.astype(np.float32, copy=False)


def av_info(src: str | IO[bytes]) -> tuple[int, int, int, float]:
    """Return (sample_rate, frames, channels, duration in seconds) of the first audio stream.

    The duration is the stream's (as upstream's ``_av_info`` reports it), the frame count its truncation
    ``int(duration * sample_rate)``.
    """
    av = _import_av()
    with av.open(src) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        sample_rate = stream.codec_context.sample_rate
        channels = stream.codec_context.channels
        if stream.duration is not None:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            seconds = container.duration / 1_000_000
        else:  # no duration in the headers: decode to count
            frames = sum(frame.samples for frame in container.decode(stream))
            return sample_rate, frames, channels, frames / sample_rate
        return sample_rate, seconds_to_frames(seconds, sample_rate), channels, seconds


def av_read(src: str | IO[bytes], seek_time: float = 0.0, duration: float = -1.0) -> tuple[torch.Tensor, int]:
    """Decode ``duration`` seconds from ``seek_time`` -> (float32 [C, T], sample_rate)."""
    av = _import_av()
    with av.open(src) as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        sample_rate = stream.codec_context.sample_rate
        channels = stream.codec_context.channels
        start, wanted = frame_span(seek_time, duration, sample_rate)
        if start > 0:
            container.seek(
                int(max(0.0, seek_time - 0.1) / stream.time_base), stream=stream, any_frame=False, backward=True
            )
        chunks: list[np.ndarray] = []
        collected = 0
        position = None
        for frame in container.decode(stream):
            if frame.pts is not None:
                position = int(sample_rate * frame.pts * frame.time_base)  # exact (Fraction), truncated
            elif position is None:
                position = 0
            arr = _frame_to_array(frame, channels)
            frame_start, position = position, position + arr.shape[1]
            if frame_start + arr.shape[1] <= start:
                continue
            if frame_start < start:
                arr = arr[:, start - frame_start :]
            chunks.append(arr)
            collected += arr.shape[1]
            if 0 <= wanted <= collected:
                break
    if not chunks:
        return torch.zeros(channels, 0), sample_rate
    wav = np.concatenate(chunks, axis=1)
    if wanted >= 0:
        wav = wav[:, :wanted]
    return torch.from_numpy(np.ascontiguousarray(wav)), sample_rate
