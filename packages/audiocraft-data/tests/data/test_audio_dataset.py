"""Tests for AudioDataset: deterministic sampling, conversion, padding, retries, zip members, collation."""

import zipfile

import pytest
import torch

from audiocraft.data.audio import audio_write
from audiocraft.data.audio_dataset import AudioDataset, AudioMeta, SegmentInfo, save_audio_meta


@pytest.fixture
def manifest(tmp_path, tone):
    metas = []
    for i in range(6):
        path = audio_write(
            tmp_path / f"f{i}",
            tone(1.0 + 0.5 * i, 16000, 1 + i % 2, freq=100.0 * (i + 1)),
            16000,
            format=["wav", "flac", "mp3"][i % 3],
        )
        metas.append(AudioMeta(str(path), 1.0 + 0.5 * i, 16000))
    save_audio_meta(tmp_path / "data.jsonl", metas)
    return tmp_path


def _infos(ds, n):
    return [(info.meta.path, info.seek_time) for _, info in (ds[i] for i in range(n))]


def test_segments_shape_and_info(manifest):
    ds = AudioDataset.from_meta(
        manifest, segment_duration=0.5, sample_rate=8000, channels=2, num_samples=12, return_info=True
    )
    assert len(ds) == 12
    wav, info = ds[0]
    assert wav.shape == (2, 4000) and wav.dtype == torch.float32
    assert isinstance(info, SegmentInfo) and info.total_frames == 4000 and info.sample_rate == 8000
    assert 0 <= info.seek_time <= info.meta.duration
    batch, infos = ds.collater([ds[i] for i in range(4)])
    assert batch.shape == (4, 2, 4000) and len(infos) == 4


def test_sampling_is_pure_function_of_seed_epoch_index(manifest):
    kwargs = dict(segment_duration=0.4, sample_rate=16000, channels=1, num_samples=10, return_info=True)
    a = AudioDataset.from_meta(manifest, shuffle_seed=3, **kwargs)
    b = AudioDataset.from_meta(manifest, shuffle_seed=3, **kwargs)
    a.set_epoch(2)
    torch.manual_seed(123)
    first = _infos(a, 10)
    b.set_epoch(2)
    torch.manual_seed(456)
    assert _infos(b, 10)[::-1] == first[::-1]  # other global seed, same items
    assert _infos(b, 10) == first
    assert torch.equal(a[7][0], b[7][0])
    b.set_epoch(3)
    assert _infos(b, 10) != first  # the epoch changes the segments
    c = AudioDataset.from_meta(manifest, shuffle_seed=4, **kwargs)
    c.set_epoch(2)
    assert _infos(c, 10) != first  # so does the seed


def test_no_shuffle_ignores_epoch(manifest):
    ds = AudioDataset.from_meta(
        manifest, segment_duration=0.4, shuffle=False, num_samples=8, return_info=True, sample_rate=16000, channels=1
    )
    first = _infos(ds, 8)
    ds.set_epoch(5)
    assert _infos(ds, 8) == first


def test_permutation_on_files_visits_each_file_once_per_pass(manifest):
    ds = AudioDataset.from_meta(
        manifest,
        segment_duration=0.4,
        num_samples=6,
        permutation_on_files=True,
        sample_on_duration=False,
        sample_on_weight=False,
        return_info=True,
        sample_rate=16000,
        channels=1,
    )
    for epoch in range(2):
        ds.set_epoch(epoch)
        assert len({p for p, _ in _infos(ds, 6)}) == 6
    with pytest.raises(ValueError, match="permutation_on_files"):
        AudioDataset.from_meta(manifest, segment_duration=0.4, permutation_on_files=True)


def test_whole_files_and_padding(manifest):
    ds = AudioDataset.from_meta(manifest, sample_rate=16000, channels=1, return_info=True)
    assert len(ds) == 6
    wavs = [ds[i] for i in range(3)]
    batch, infos = ds.collater(wavs)
    assert batch.shape == (3, 1, 16000 * 2)
    assert [i.n_frames for i in infos] == [16000, 24000, 32000] and {i.total_frames for i in infos} == {32000}
    short = AudioDataset.from_meta(
        manifest,
        segment_duration=3.0,
        sample_rate=16000,
        channels=1,
        num_samples=4,
        min_segment_ratio=1.0,
        return_info=True,
    )
    wav, info = short[0]
    assert wav.shape == (1, 48000) and info.n_frames < 48000 and wav[:, info.n_frames :].abs().max() == 0


def test_duration_filters(manifest):
    ds = AudioDataset.from_meta(manifest, segment_duration=0.5, min_audio_duration=1.4, max_audio_duration=3.0)
    assert sorted(m.duration for m in ds.meta) == [1.5, 2.0, 2.5, 3.0]
    with pytest.raises(ValueError, match="filtered out"):
        AudioDataset.from_meta(manifest, segment_duration=0.5, min_audio_duration=10)


def test_retry_bad_files_and_count_failures(manifest, caplog):
    bad = manifest / "bad.wav"
    bad.write_bytes(b"RIFF" + b"\x00" * 100)
    metas = [AudioMeta(str(bad), 50.0, 16000), AudioMeta(str(manifest / "f0.wav"), 1.0, 16000)]
    ds = AudioDataset(
        metas,
        segment_duration=0.5,
        num_samples=20,
        sample_rate=16000,
        channels=1,
        return_info=True,
        sample_on_duration=False,
    )
    with caplog.at_level("WARNING"):
        for i in range(20):
            assert ds[i][1].meta.path.endswith("f0.wav")
    assert ds.read_failures[str(bad)] == ds.num_read_failures > 1
    assert len([r for r in caplog.records if "bad.wav" in r.getMessage()]) == 1  # logged once
    only_bad = AudioDataset(metas[:1], segment_duration=0.5, max_read_retry=3)
    with pytest.raises(RuntimeError, match="3 reads failed.*bad.wav"):
        only_bad[0]
    assert only_bad.num_read_failures == 3


def test_truncated_file_is_retried(manifest):
    path = manifest / "f5.mp3"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 4])
    metas = [AudioMeta(str(path), 3.5, 16000)]
    ds = AudioDataset(metas, segment_duration=1.0, num_samples=4, max_read_retry=2, min_segment_ratio=1.0)
    with pytest.raises(RuntimeError, match="f5.mp3"):
        for i in range(4):
            ds[i]


def test_zip_members_in_manifest(tmp_path, manifest):
    archive = tmp_path / "pack.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(manifest / "f1.flac", "clips/f1.flac")
    save_audio_meta(tmp_path / "z" / "data.jsonl", [AudioMeta(f"{archive}:clips/f1.flac", 1.5, 16000)])
    ds = AudioDataset.from_meta(
        tmp_path / "z",
        segment_duration=0.5,
        num_samples=3,
        sample_rate=16000,
        channels=2,
        shuffle=False,
        return_info=True,
    )
    ref = AudioDataset(
        [AudioMeta(str(manifest / "f1.flac"), 1.5, 16000)],
        segment_duration=0.5,
        num_samples=3,
        sample_rate=16000,
        channels=2,
        shuffle=False,
        return_info=True,
    )
    for i in range(3):
        assert torch.equal(ds[i][0], ref[i][0])


def test_from_meta_errors(tmp_path):
    with pytest.raises(ValueError, match="data.jsonl"):
        AudioDataset.from_meta(tmp_path)


def test_dataloader_workers_are_deterministic(manifest):
    ds = AudioDataset.from_meta(manifest, segment_duration=0.25, num_samples=8, sample_rate=8000, channels=1)
    ds.set_epoch(1)
    ref = ds.collater([ds[i] for i in range(8)])
    loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2, collate_fn=ds.collater)
    (batch,) = list(loader)
    assert torch.equal(batch, ref)


def test_upstream_entry_points(manifest):
    ds = AudioDataset.from_path(
        manifest, segment_duration=0.5, num_samples=3, sample_rate=16000, channels=1, return_info=True, shuffle_seed=1
    )
    assert len(ds.meta) == 6
    ds.start_epoch(4)
    assert ds.current_epoch == 4
    other = AudioDataset.from_meta(
        manifest,
        segment_duration=0.5,
        num_samples=3,
        sample_rate=16000,
        channels=1,
        return_info=True,
        shuffle_seed=1,
        check_paths=False,
    )
    other.set_epoch(4)
    assert [(i.meta.path, i.seek_time) for _, i in (other[k] for k in range(3))] == [
        (i.meta.path, i.seek_time) for _, i in (ds[k] for k in range(3))
    ]


def test_load_wav_false_gives_silence_of_the_right_shape(manifest):
    ds = AudioDataset.from_meta(
        manifest, segment_duration=0.5, num_samples=2, sample_rate=8000, channels=2, load_wav=False, return_info=True
    )
    wav, info = ds[0]
    assert wav.shape == (2, 4000) and wav.abs().max() == 0 and info.n_frames == 4000
