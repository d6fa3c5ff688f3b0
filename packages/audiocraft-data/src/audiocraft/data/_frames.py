"""Time -> frame-count arithmetic shared by the audio readers and the datasets (``audiocraft-data``, private).

Upstream AudioCraft truncates everywhere a time in seconds becomes a number of samples: ``int(seek_time * sr)``
for the first frame read, ``int(duration * sr)`` for the number of frames read, for the length ``pad`` pads to
and for a dataset segment's ``total_frames``. These helpers do the same, so that a given ``(seek_time,
duration)`` reads exactly the frames upstream reads (see docs/DATASETS.md, "Frame arithmetic").
"""


def seconds_to_frames(seconds: float, sample_rate: int) -> int:
    """Number of frames in ``seconds`` at ``sample_rate``, truncated as upstream does: ``int(seconds * sr)``."""
    return int(seconds * sample_rate)


def frame_span(seek_time: float, duration: float, sample_rate: int) -> tuple[int, int]:
    """First frame and frame count of a read of ``duration`` s from ``seek_time`` s.

    Args:
        seek_time (float): start in seconds (>= 0).
        duration (float): length in seconds; ``<= 0`` means "to the end of the file".
        sample_rate (int): the file's sample rate.

    Returns:
        tuple[int, int]: ``(int(seek_time * sr), int(duration * sr))``, the count being ``-1`` for "to the end".
    """
    start = seconds_to_frames(seek_time, sample_rate)
    frames = seconds_to_frames(duration, sample_rate) if duration > 0 else -1
    return start, frames
