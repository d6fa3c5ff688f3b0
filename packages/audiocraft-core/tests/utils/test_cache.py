"""CachedBatchWriter / CachedBatchLoader: layout, several workers, epochs, upstream zips, missing and corrupt shards."""

import io
import zipfile
from dataclasses import replace

import pytest
import torch

from audiocraft.data.audio_dataset import AudioMeta
from audiocraft.data.music_dataset import MusicInfo
from audiocraft.utils.cache import CachedBatchLoader, CachedBatchWriter, CacheError

TYPES = [MusicInfo, AudioMeta]


def _batch(epoch: int, rank: int, update: int, size: int = 3) -> tuple[torch.Tensor, list[MusicInfo]]:
    gen = torch.Generator().manual_seed(1000 * epoch + 100 * rank + update)
    codes = torch.randint(0, 2048, (size, 4, 5), generator=gen)
    infos = [
        MusicInfo(
            meta=AudioMeta(f"e{epoch}_r{rank}_u{update}_{i}.wav", 10.0, 32000),
            seek_time=float(i),
            n_frames=100,
            total_frames=100,
            sample_rate=32000,
            channels=1,
            description=f"item {i}",
            moods=["calm"],
            bpm=90.0 + i,
            audio_tokens=codes[i].short(),
        )
        for i in range(size)
    ]
    return codes, infos


def _fill(folder, world: int, epochs: dict[int, int], size: int = 3) -> None:
    """Every rank of ``world`` writes ``epochs[e]`` updates of ``size`` items for each epoch ``e``."""
    for rank in range(world):
        writer = CachedBatchWriter(folder, rank=rank, world_size=world)
        for epoch, updates in epochs.items():
            writer.start_epoch(epoch)
            for update in range(updates):
                writer.save(*_batch(epoch, rank, update, size))


def _same(batch, codes, infos) -> None:
    assert torch.equal(batch[0], codes)
    assert [i.meta.path for i in batch[1]] == [i.meta.path for i in infos]
    assert isinstance(batch[1], tuple)
    for got, want in zip(batch[1], infos):
        assert got.audio_tokens.dtype == torch.int16 and torch.equal(got.audio_tokens, want.audio_tokens)
        assert replace(got, audio_tokens=None) == replace(want, audio_tokens=None)  # every other field


def test_two_workers_write_their_own_shards_and_read_back_their_batches_in_order(tmp_path):
    _fill(tmp_path, world=2, epochs={1: 3, 2: 2})
    assert sorted(p.name for p in (tmp_path / "00001").iterdir()) == [
        f"{u:06d}.{r}-of-2.zip" for u in range(3) for r in range(2)
    ]
    for rank in range(2):
        loader = CachedBatchLoader(tmp_path, batch_size=3, num_workers=2, allowed_types=TYPES, rank=rank, world_size=2)
        assert len(loader) == 3  # before start_epoch: the first cached epoch
        for epoch, updates in ((1, 3), (2, 2)):
            loader.start_epoch(epoch)
            batches = list(loader)
            assert len(loader) == len(batches) == updates
            for update, batch in enumerate(batches):
                _same(batch, *_batch(epoch, rank, update))


def test_one_reader_sees_the_items_of_all_workers_in_rank_order_with_any_smaller_batch(tmp_path):
    _fill(tmp_path, world=2, epochs={1: 2})
    loader = CachedBatchLoader(tmp_path, batch_size=6, allowed_types=TYPES, rank=0, world_size=1)
    loader.start_epoch(1)
    for update, batch in enumerate(loader):
        (c0, i0), (c1, i1) = _batch(1, 0, update), _batch(1, 1, update)
        _same(batch, torch.cat([c0, c1]), i0 + i1)
    # three readers of batch 2 split the same six items of each update
    for rank in range(3):
        reader = CachedBatchLoader(tmp_path, batch_size=2, allowed_types=TYPES, rank=rank, world_size=3)
        reader.start_epoch(1)
        first = next(iter(reader))
        codes = torch.cat([_batch(1, 0, 0)[0], _batch(1, 1, 0)[0]])
        assert torch.equal(first[0], codes[2 * rank : 2 * rank + 2])
    too_big = CachedBatchLoader(tmp_path, batch_size=4, allowed_types=TYPES, rank=0, world_size=2)
    too_big.start_epoch(1)
    with pytest.raises(CacheError, match=r"holds 6 items, but 2 worker\(s\) x batch size 4 = 8"):
        next(iter(too_big))


def test_epochs_are_read_from_their_own_folder(tmp_path):
    _fill(tmp_path, world=1, epochs={1: 2, 2: 2})
    loader = CachedBatchLoader(tmp_path, batch_size=3, allowed_types=TYPES)
    assert loader.epochs() == [1, 2]
    loader.start_epoch(2)
    assert torch.equal(next(iter(loader))[0], _batch(2, 0, 0)[0])
    loader.start_epoch(3)
    with pytest.raises(CacheError, match=r"no epoch 3: .*00003 does not exist \(cached epochs: \[1, 2\]\)"):
        list(loader)
    loader.start_epoch(1)
    loader.min_length = 3
    with pytest.raises(CacheError, match=r"at least 3 updates, but .*00001/000002\.zip does not exist"):
        list(loader)
    with pytest.raises(CacheError, match="no cached epoch in"):
        len(CachedBatchLoader(tmp_path / "empty", batch_size=1))


def test_rewriting_an_epoch_replaces_its_shards(tmp_path):
    _fill(tmp_path, world=1, epochs={1: 4})
    writer = CachedBatchWriter(tmp_path, rank=0, world_size=1)
    writer.start_epoch(1)  # e.g. a run restarted from the epoch's start, with fewer updates per epoch
    writer.save(*_batch(1, 0, 7))
    loader = CachedBatchLoader(tmp_path, batch_size=3, allowed_types=TYPES)
    loader.start_epoch(1)
    batches = list(loader)
    assert len(batches) == 1
    _same(batches[0], *_batch(1, 0, 7))


def test_a_cache_in_upstream_layout_is_read(tmp_path):
    # upstream's writer: <epoch:05d>/<update:06d>.zip, entry "i" = torch.save(tuple of the item's values)
    codes = torch.arange(24).view(4, 2, 3)
    folder = tmp_path / "00001"
    folder.mkdir()
    with zipfile.ZipFile(folder / "000000.zip", "w") as zf:
        for i in range(4):
            with zf.open(str(i), "w") as f:
                torch.save((codes[i].clone(), f"track {i}"), f)
    loader = CachedBatchLoader(tmp_path, batch_size=2, rank=1, world_size=2)
    loader.start_epoch(1)
    (batch,) = list(loader)
    assert torch.equal(batch[0], codes[2:]) and batch[1] == ("track 2", "track 3")


def test_missing_and_corrupt_shards_name_the_file(tmp_path):
    _fill(tmp_path, world=2, epochs={1: 3})
    loader = CachedBatchLoader(tmp_path, batch_size=3, allowed_types=TYPES, rank=0, world_size=2)
    loader.start_epoch(1)
    (tmp_path / "00001" / "000001.1-of-2.zip").unlink()
    with pytest.raises(CacheError, match=r"shard .*00001/000001\.1-of-2\.zip is missing"):
        list(loader)
    (tmp_path / "00001" / "000001.0-of-2.zip").unlink()
    with pytest.raises(CacheError, match=r"shard .*00001/000001\.zip is missing \(later updates exist"):
        len(loader)
    _fill(tmp_path, world=2, epochs={1: 3})
    shard = tmp_path / "00001" / "000002.0-of-2.zip"
    shard.write_bytes(shard.read_bytes()[:100])
    batches = iter(loader)
    next(batches), next(batches)
    with pytest.raises(CacheError, match=r"corrupt batch cache shard .*000002\.0-of-2\.zip"):
        next(batches)
    strict = CachedBatchLoader(tmp_path, batch_size=3, rank=0, world_size=2)  # MusicInfo not allowed
    strict.start_epoch(1)
    with pytest.raises(CacheError, match=r"000000\.0-of-2\.zip \(entry 0\) \(list the classes .*allowed_types\)"):
        next(iter(strict))


def test_an_interrupted_write_leaves_no_shard(tmp_path, monkeypatch):
    writer = CachedBatchWriter(tmp_path, rank=0, world_size=1)
    writer.start_epoch(1)
    calls = []

    def failing_save(obj, f):
        calls.append(obj)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the job is killed while writing the second item
        buffer = io.BytesIO()
        torch.serialization.save(obj, buffer)
        f.write(buffer.getvalue())

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        writer.save(*_batch(1, 0, 0))
    assert list((tmp_path / "00001").iterdir()) == []
    with pytest.raises(ValueError, match="different lengths"):
        writer.save(torch.zeros(2, 1), ["a"])
    with pytest.raises(ValueError, match="rank 2 outside world size 2"):
        CachedBatchWriter(tmp_path, rank=2, world_size=2)
