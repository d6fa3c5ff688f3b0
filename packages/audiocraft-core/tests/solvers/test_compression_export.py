"""End-of-training export with two gloo workers: rank 0 writes, both compare on their share; a failure stops both."""

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
    return [0.1 * torch.randn(2, 1, 4000, generator=gen) for _ in range(4)]


def _worker(rank: int, init_file: str, root: str, cfg_yaml: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        from audiocraft.solvers.compression_export import export_and_compare

        cfg = OmegaConf.create(cfg_yaml)
        results = {}
        for name in ("good", "corrupt"):
            try:
                results[name] = export_and_compare(
                    Path(root, name, "checkpoint.th"),
                    Path(root, name, "exported", "compression_state_dict.bin"),
                    cfg,
                    _batches()[rank::2],
                    "cpu",
                )
            except Exception as exc:
                results[name] = f"{type(exc).__name__}: {exc}"
        Path(root, f"rank{rank}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_workers_export_once_and_compare_the_whole_split(tmp_path):
    from audiocraft.models import CompressionModel
    from audiocraft.models import builders as model_builders
    from audiocraft.solvers.compression_metrics import evaluate_model
    from audiocraft.utils.checkpoint import save_checkpoint

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.1"):
            cfg = compose("config", overrides=["solver=compression/debug", "device=cpu"])
    cfg_yaml = OmegaConf.to_yaml(cfg, resolve=True)
    torch.manual_seed(5)
    model = model_builders.get_compression_model(cfg)
    model.train()
    model(0.1 * torch.randn(2, 1, 1600))
    model.eval()
    save_checkpoint(
        {"xp.cfg": cfg_yaml, "best_state": {"model": model.state_dict()}}, tmp_path / "good" / "checkpoint.th"
    )
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "checkpoint.th").write_bytes(b"not a checkpoint")

    mp.spawn(_worker, args=(str(tmp_path / "init"), str(tmp_path), cfg_yaml), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert ranks[0]["good"] == ranks[1]["good"]
    assert set(ranks[0]["good"]) == {"sisnr_db_exported", "sisnr_db_untrained", "sisnr_db_gain"}
    assert json.loads((tmp_path / "good" / "exported" / "export_metrics.json").read_text()) == ranks[0]["good"]
    exported = CompressionModel.get_pretrained(tmp_path / "good" / "exported")
    whole = evaluate_model(exported, _batches(), OmegaConf.create(cfg_yaml), "cpu", only_sisnr=True)
    assert ranks[0]["good"]["sisnr_db_exported"] == pytest.approx(-whole["sisnr"], rel=1e-5)  # the whole split
    # rank 0's own error, and on rank 1 an error saying rank 0 failed: nobody waits forever
    assert ranks[0]["corrupt"].startswith("CheckpointError: could not read training checkpoint")
    assert (
        ranks[1]["corrupt"].startswith("RuntimeError: exporting")
        and "failed on rank 0: CheckpointError" in ranks[1]["corrupt"]
    )
    assert not (tmp_path / "corrupt" / "exported").exists() or not list((tmp_path / "corrupt" / "exported").iterdir())
