"""Reconstruction metrics over a split shared by two gloo workers equal the metrics of one process over all of it."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

CONFIG_DIR = Path(__file__).resolve().parents[4] / "config"


def _batches() -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(8000) / 16000
    return [
        0.3 * torch.sin(2 * torch.pi * (110 + 40 * i) * t).view(1, 1, -1).repeat(2, 1, 1)
        + 0.05 * torch.randn(2, 1, 8000, generator=gen) * i
        for i in range(6)
    ]


def _evaluate(cfg_yaml: str, batches: list[torch.Tensor], only_sisnr: bool = False) -> dict:
    from audiocraft.models.builders import get_debug_compression_model
    from audiocraft.solvers.compression_metrics import evaluate_model

    model = get_debug_compression_model(sample_rate=16000)
    return evaluate_model(model, batches, OmegaConf.create(cfg_yaml), "cpu", only_sisnr=only_sisnr)


def _worker(rank: int, init_file: str, out_dir: str, cfg_yaml: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        batches = _batches()
        results = {
            "shared": _evaluate(cfg_yaml, batches[rank::2]),  # each worker its share, as EpochSampler gives
            "all_on_rank0": _evaluate(cfg_yaml, batches if rank == 0 else []),  # a worker with no batch at all
            "sisnr": _evaluate(cfg_yaml, batches[rank::2], only_sisnr=True),
        }
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_workers_score_the_whole_split(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.1"):
            cfg = compose("config", overrides=["solver=compression/debug", "device=cpu"])
    cfg_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    torch.set_num_threads(1)
    single = _evaluate(cfg_yaml, _batches())
    rank0_share = _evaluate(cfg_yaml, _batches()[0::2])
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path), cfg_yaml), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0] == ranks[1]  # every worker gets the same numbers
    assert set(single) == {"sisnr", "mel", "mrstft", "bandwidth", "codebook_usage", "entropy_kbps", "bits_per_second"}
    for name in ("shared", "all_on_rank0"):
        for key, value in single.items():
            assert ranks[0][name][key] == pytest.approx(value, rel=1e-5, abs=1e-6), (name, key)
    assert ranks[0]["sisnr"] == pytest.approx({"sisnr": single["sisnr"]}, rel=1e-5)
    # rank 0's share alone is not the split: its codebook usage (fewer codes seen) and SI-SNR differ
    assert rank0_share["codebook_usage"] < single["codebook_usage"]
    assert rank0_share["sisnr"] != pytest.approx(single["sisnr"], rel=1e-3)
