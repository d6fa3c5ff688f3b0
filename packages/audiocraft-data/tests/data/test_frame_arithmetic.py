"""Seconds -> frames as upstream AudioCraft computes them (truncation), on odd sample rates and random seeks.

Upstream reads ``int(duration * sr)`` frames from frame ``int(seek_time * sr)``, pads to ``int(duration * sr)``
and gives dataset segments ``total_frames = int(segment_duration * sample_rate)``. Each read here is compared with
those formulas and with soundfile reading the same frames of the same file.
"""

import random

import numpy as np
import pytest
import soundfile as sf
import torch

from audiocraft.data.audio import audio_info, audio_read
from audiocraft.data.audio_dataset import AudioDataset, AudioMeta

ODD_RATES = [22050, 44100, 11025, 7999]


def _noise_file(tmp_path, sr: int, fmt: str, seconds: float = 2.0, channels: int = 2):
    rng = np.random.default_rng(sr)
    data = (rng.uniform(-0.5, 0.5, (int(seconds * sr), channels)) * 2**15).astype(np.int16)
    path = tmp_path / f"noise_{sr}.{fmt}"
    sf.write(path, data, sr, subtype="PCM_16")
    return path


def _draws(sr: int, n: int = 40) -> list[tuple[float, float]]:
    rng = random.Random(sr)
    return [(rng.uniform(0, 1.9), rng.uniform(0.01, 0.5)) for _ in range(n)]


def _sf_frames(path, start: int, count: int) -> np.ndarray:
    ref, _ = sf.read(path, start=start, frames=count, dtype="float32", always_2d=True)
    return ref.T


@pytest.mark.parametrize("fmt", ["wav", "flac"])
@pytest.mark.parametrize("sr", ODD_RATES)
def test_audio_read_truncates_seek_and_duration_like_upstream(tmp_path, sr, fmt):
    path = _noise_file(tmp_path, sr, fmt)
    total = audio_info(path).frames
    differs_from_rounding = 0
    for seek, duration in _draws(sr):
        start, count = int(seek * sr), int(duration * sr)  # upstream's audio_read / _av_read
        differs_from_rounding += (start, count) != (round(seek * sr), round(duration * sr))
        seg, seg_sr = audio_read(path, seek_time=seek, duration=duration)
        assert seg_sr == sr and seg.shape == (2, min(count, total - start)), (seek, duration)
        assert np.array_equal(seg.numpy(), _sf_frames(path, start, count)), (seek, duration)
        padded, _ = audio_read(path, seek_time=seek, duration=duration, pad=True)
        assert padded.shape[-1] == count and torch.equal(padded[:, : seg.shape[-1]], seg)
    # the draws do exercise the difference between truncating and rounding
    assert differs_from_rounding >= 10


@pytest.mark.parametrize("sr", ODD_RATES)
def test_pad_past_the_end_truncates(tmp_path, sr):
    path = _noise_file(tmp_path, sr, "wav")
    duration = 0.6543
    seg, _ = audio_read(path, seek_time=1.8, duration=duration, pad=True)
    assert seg.shape[-1] == int(duration * sr)
    tail = seg.shape[-1] - seg[:, seg.abs().sum(0) > 0].shape[-1]
    assert tail == int(duration * sr) - (int(2.0 * sr) - int(1.8 * sr))


@pytest.mark.parametrize("sr", [22050, 7999])
def test_av_reader_truncates_like_upstream(tmp_path, sr):
    pytest.importorskip("av")  # optional extra [av]
    from audiocraft.data._av import av_info, av_read

    path = _noise_file(tmp_path, sr, "wav")
    rate, frames, channels, seconds = av_info(str(path))
    assert (rate, channels) == (sr, 2) and seconds == pytest.approx(2.0) and frames == int(seconds * sr)
    for seek, duration in _draws(sr, 12):
        start, count = int(seek * sr), int(duration * sr)
        seg, _ = av_read(str(path), seek, duration)
        assert np.array_equal(seg.numpy(), _sf_frames(path, start, count)), (seek, duration)


@pytest.mark.parametrize("sr", ODD_RATES)
def test_dataset_segments_use_upstream_frame_counts(tmp_path, sr):
    path = _noise_file(tmp_path, sr, "flac", seconds=1.5)
    segment = 0.3337
    ds = AudioDataset(
        [AudioMeta(str(path), 1.5, sr)],
        segment_duration=segment,
        num_samples=16,
        sample_rate=sr,
        channels=2,
        return_info=True,
        min_segment_ratio=0.0,
    )
    target = int(segment * sr)  # upstream: target_frames = int(segment_duration * sample_rate)
    for index in range(len(ds)):
        wav, info = ds[index]
        assert wav.shape == (2, target) and info.total_frames == target
        start = int(info.seek_time * sr)
        ref = _sf_frames(path, start, target)
        assert info.n_frames == ref.shape[-1]
        assert np.array_equal(wav[:, : info.n_frames].numpy(), ref), index
        assert not wav[:, info.n_frames :].any()
