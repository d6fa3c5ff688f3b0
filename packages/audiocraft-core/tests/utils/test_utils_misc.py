"""RNG capture, epoch-seeded loaders, deadlock detection, config diffs, the embedding cache (batches: test_cache.py)."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from audiocraft.utils.cache import EmbeddingCache
from audiocraft.utils.checkpoint import load_checkpoint, save_checkpoint
from audiocraft.utils.deadlock import DeadlockDetect
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


def test_two_workers_split_each_global_batch_and_resume_skips_without_loading():
    from audiocraft.solvers._checkpointing import iterate_from

    class Counting(TensorDataset):
        loaded: list[int] = []

        def __getitem__(self, index):
            self.loaded.append(index)
            return super().__getitem__(index)

    def shard_loader(rank: int, world: int, per_worker: int):
        sampler = EpochSampler(32, shuffle=True, seed=3, rank=rank, world_size=world)
        sampler.set_epoch(2)
        return torch.utils.data.DataLoader(Counting(torch.arange(32)), batch_size=per_worker, sampler=sampler)

    single = [b[0].tolist() for b in shard_loader(0, 1, 8)]
    shards = [[b[0].tolist() for b in shard_loader(rank, 2, 4)] for rank in range(2)]
    for step, batch in enumerate(single):  # global batch 8 = 4 distinct items on each of the 2 workers
        assert not set(shards[0][step]) & set(shards[1][step])
        assert sorted(shards[0][step] + shards[1][step]) == sorted(batch)
    # resuming after 2 batches: the same remaining batches, the skipped items are never loaded
    loader = shard_loader(1, 2, 4)
    Counting.loaded = []
    assert [b[0].tolist() for b in iterate_from(loader, 2)] == shards[1][2:]
    assert sorted(Counting.loaded) == sorted(sum(shards[1][2:], []))
    assert [b[0].tolist() for b in loader] == shards[1]  # the skip applies to one iteration only
    assert [b.tolist() for b in iterate_from([torch.ones(1) * i for i in range(4)], 3)] == [[3.0]]


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
        ("b.c", 2, 3),
        ("d", "<absent>", 4),
    ]
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


def test_dict_from_config_is_one_function_with_one_none_rule():
    from omegaconf import OmegaConf

    from audiocraft.adversarial.builders import get_adversary
    from audiocraft.losses import SISNR
    from audiocraft.losses.builders import get_balancer, get_loss
    from audiocraft.models import builders as model_builders
    from audiocraft.utils import utils

    assert utils.dict_from_config is model_builders.dict_from_config
    cfg = OmegaConf.create({"x": 2, "sec": {"a": "${x}", "b": [1, {"c": 3}]}, "none": None, "seq": [1, 2]})
    plain = utils.dict_from_config(cfg.sec)
    assert plain == {"a": 2, "b": [1, {"c": 3}]} and type(plain["b"][1]) is dict
    assert utils.dict_from_config(None) == {} and utils.dict_from_config(cfg.none) == {}
    with pytest.raises(ValueError, match=r"config section 'seq' must be a mapping.*\[1, 2\]"):
        utils.dict_from_config(cfg.seq, "seq")
    # Every builder treats a null section as "defaults", and a non-mapping section as an error naming it.
    null = OmegaConf.create({"sisnr": None, "mpd": None, "msspec": [1], "balancer": None})
    loss = get_loss("sisnr", null)
    assert isinstance(loss, SISNR) and loss.segment == 20
    assert sum(p.numel() for p in get_adversary("mpd", null).parameters()) > 0
    assert get_balancer({"l1": 1.0}, null.balancer).weights == {"l1": 1.0}
    with pytest.raises(ValueError, match="config section 'msspec' must be a mapping"):
        get_loss("msspec", null)
    with pytest.raises(ValueError, match="the config has no section 'seanet'"):
        model_builders.get_encodec_autoencoder("seanet", OmegaConf.create({"sample_rate": 16000, "channels": 1}))


def test_upstream_utils_paths_re_export_the_owning_packages_helpers():
    from audiocraft import conditioners
    from audiocraft.conditioners import utils as cond_utils
    from audiocraft.models import sampling
    from audiocraft.utils import autocast, cache, utils

    assert cache.EmbeddingCache is conditioners.EmbeddingCache
    assert autocast.TorchAutocast is conditioners.TorchAutocast
    for name in ("collate", "hash_trick", "length_to_mask"):
        assert getattr(utils, name) is getattr(cond_utils, name), name
    for name in ("multinomial", "sample_top_k", "sample_top_p"):
        assert getattr(utils, name) is getattr(sampling, name), name
    # upstream's behaviour through upstream's paths
    assert utils.length_to_mask(torch.tensor([1, 3])).tolist() == [[True, False, False], [True, True, True]]
    padded, lengths = utils.collate([torch.ones(2, 3), torch.ones(2, 1)], dim=1)
    assert padded.shape == (2, 2, 3) and lengths.tolist() == [3, 1] and padded[1, :, 1:].abs().sum() == 0
    assert utils.hash_trick("guitar", 1000) == utils.hash_trick("guitar", 1000) < 1000
    probs = torch.tensor([[0.1, 0.6, 0.3]])
    assert utils.sample_top_k(probs, k=1).tolist() == [[1]]
    assert utils.sample_top_p(probs, p=0.5).tolist() == [[1]]
    with autocast.TorchAutocast(enabled=False):
        assert not torch.is_autocast_enabled()


def test_upstream_solver_helpers(caplog):
    import logging

    from audiocraft.utils.utils import get_dataset_from_loader, is_jsonable, warn_once

    dataset = TensorDataset(torch.arange(6))
    assert get_dataset_from_loader(torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, [0, 1]))) is dataset
    assert get_dataset_from_loader(get_loader(dataset, None, batch_size=2, num_workers=0, seed=0)) is dataset
    assert is_jsonable({"a": [1, "b"]}) and not is_jsonable(torch.zeros(1)) and not is_jsonable({1j: 2})
    log = logging.getLogger("audiocraft.tests.warn_once")
    with caplog.at_level(logging.WARNING, logger=log.name):
        for _ in range(3):
            warn_once(log, "careful")
        warn_once(log, "other")
    assert [r.getMessage() for r in caplog.records if r.name == log.name] == ["careful", "other"]
