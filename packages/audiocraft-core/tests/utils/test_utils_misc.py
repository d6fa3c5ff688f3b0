"""RNG capture, epoch-seeded loaders, deadlock detection, config diffs, caches and export helpers."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from audiocraft.utils.cache import CachedBatchLoader, CachedBatchWriter, EmbeddingCache
from audiocraft.utils.checkpoint import load_checkpoint, save_checkpoint
from audiocraft.utils.deadlock import DeadlockDetect
from audiocraft.utils.export import export_checkpoint, export_lm
from audiocraft.utils.rng import get_rng_state, set_rng_state
from audiocraft.utils.utils import EpochSampler, config_diff, copy_state, get_loader


def test_rng_state_roundtrip_through_weights_only_checkpoint(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.normal()  # leaves a cached gaussian in numpy's state
    save_checkpoint({"rng": get_rng_state()}, tmp_path / "rng.th")
    expected = (random.random(), np.random.normal(size=3).tolist(), torch.rand(3).tolist())
    random.seed(99)
    np.random.seed(99)
    torch.manual_seed(99)
    set_rng_state(load_checkpoint(tmp_path / "rng.th")["rng"])
    assert (random.random(), np.random.normal(size=3).tolist(), torch.rand(3).tolist()) == expected


def test_epoch_sampler_is_a_function_of_seed_and_epoch():
    s = EpochSampler(10, shuffle=True, seed=5)
    s.set_epoch(1)
    first = list(s)
    s.set_epoch(2)
    assert list(s) != first
    s.set_epoch(1)
    assert list(s) == first and sorted(first) == list(range(10))
    shards = [EpochSampler(10, shuffle=True, seed=5, rank=r, world_size=3) for r in range(3)]
    for shard in shards:
        shard.set_epoch(1)
    parts = [list(shard) for shard in shards]
    assert all(len(p) == 3 for p in parts) and len(set(sum(parts, []))) == 9
    loader = get_loader(TensorDataset(torch.arange(10)), None, batch_size=4, num_workers=0, seed=0)
    assert [b[0].tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_deadlock_detect_fires_after_timeout():
    fired = []
    with DeadlockDetect(use=True, timeout=0.2, on_timeout=lambda: fired.append(True)) as detect:
        detect.update("step")
        time.sleep(0.6)
    assert fired == [True]
    fired.clear()
    with DeadlockDetect(use=True, timeout=0.5, on_timeout=lambda: fired.append(True)) as detect:
        for _ in range(3):
            detect.update("step")
            time.sleep(0.05)
    assert fired == []


def test_config_diff_and_copy_state():
    assert config_diff({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3}, "d": 4}) == [
        ("b.c", 2, 3), ("d", "<absent>", 4)]
    state = {"w": torch.ones(2), "n": torch.tensor(3)}
    copied = copy_state(state, dtype=torch.float16)
    state["w"].add_(1)
    assert copied["w"].dtype == torch.float16 and copied["w"].tolist() == [1, 1]
    assert copied["n"].dtype == torch.int64


def test_embedding_cache_computes_once(tmp_path):
    calls = []

    def compute(path, x, idx):
        calls.append(str(path))
        return torch.full((4,), float(len(str(path))))

    cache = EmbeddingCache(tmp_path / "cache", "cpu", compute, extract_embed_fn=lambda e, x, i: e[:2])
    first = cache.get_embed_from_cache(["a.wav", "bb.wav"], None)
    assert first.tolist() == [[5.0, 5.0], [6.0, 6.0]]
    fresh = EmbeddingCache(tmp_path / "cache", "cpu", compute)
    assert fresh.get_embed_from_cache(["bb.wav"], None).tolist() == [[6.0] * 4]
    assert calls == ["a.wav", "bb.wav"]


def test_cached_batches_roundtrip(tmp_path):
    writer = CachedBatchWriter(tmp_path)
    writer.start_epoch(0)
    codes = torch.arange(24).view(6, 2, 2)
    writer.save(codes[:4], ["a", "b", "c", "d"])
    writer.save(codes[4:], ["e", "f"])
    loader = CachedBatchLoader(tmp_path, batch_size=3)
    loader.start_epoch(5)  # one cached epoch: reused
    batches = list(loader)
    assert len(loader) == 2 and len(batches) == 2
    assert torch.equal(torch.cat([b[0] for b in batches]), codes)
    assert batches[1][1] == ["d", "e", "f"]


def test_export_lm_and_dispatch(tmp_path):
    ckpt = tmp_path / "checkpoint.th"
    save_checkpoint({"best_state": {"model": {"w": torch.ones(2)}}, "fsdp_best_state": {},
                     "xp.cfg": "solver: musicgen\nsample_rate: 32000\n"}, ckpt)
    out = export_checkpoint(ckpt, tmp_path / "lm.bin")
    pkg = torch.load(out, weights_only=True)
    assert pkg["exported"] is True and torch.equal(pkg["best_state"]["w"], torch.ones(2))
    assert "musicgen" in pkg["xp.cfg"] and isinstance(pkg["version"], str)
    save_checkpoint({"best_state": {}, "xp.cfg": "solver: mystery\n"}, tmp_path / "bad.th")
    with pytest.raises(ValueError, match="mystery.*compression"):
        export_checkpoint(tmp_path / "bad.th", tmp_path / "x.bin")
    with pytest.raises(ValueError, match="bad.th"):
        export_lm(tmp_path / "bad.th", tmp_path / "x.bin")
