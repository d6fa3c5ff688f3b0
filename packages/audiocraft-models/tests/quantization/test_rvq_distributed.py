"""Codebooks stay identical across workers under torch.distributed (2 CPU processes, gloo)."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        from audiocraft.quantization import ResidualVectorQuantizer

        torch.manual_seed(100 + rank)  # different data, different k-means samples and dropout draws per worker
        rvq = ResidualVectorQuantizer(
            dimension=4, n_q=3, bins=32, q_dropout=True, kmeans_iters=5, threshold_ema_dead_code=2
        ).train()
        levels = []
        for _ in range(6):
            res = rvq(torch.randn(2, 4, 40) + rank, frame_rate=50)
            levels.append(res.codes.shape[1])
        torch.save({"state": rvq.state_dict(), "levels": levels}, f"{out_dir}/rank{rank}.th")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_codebooks_are_synchronised_across_workers(tmp_path) -> None:
    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.th", weights_only=True)
    b = torch.load(tmp_path / "rank1.th", weights_only=True)
    assert a["levels"] == b["levels"]  # the same quantizer dropout draw on every worker
    assert all(float(a["state"][f"vq.layers.{i}._codebook.inited"]) == 1.0 for i in range(max(a["levels"])))
    for key in a["state"]:
        torch.testing.assert_close(a["state"][key], b["state"][key], atol=1e-6, rtol=0, msg=key)
