"""Distributed reduction: every metric over data split between two gloo workers equals the metric over all data."""

import json
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from audiocraft.metrics import EmbeddingStats


def _close(a: object, b: object) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b)
        for key in a:
            _close(a[key], b[key])
    else:
        assert a == pytest.approx(b, rel=1e-6, abs=1e-9)


@pytest.mark.slow
def test_two_gloo_workers_match_single_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import _distributed_worker as worker

    mp.spawn(worker.run, args=(2, str(tmp_path / "dist_init"), str(tmp_path)), nprocs=2, join=True)
    split = [json.loads((tmp_path / f"results_{rank}.json").read_text()) for rank in range(2)]
    assert split[0] == split[1]  # every worker gets the global value

    torch.set_num_threads(1)
    whole = worker.build()
    worker.feed(whole, [0, 1, 2, 3, 4])
    expected = worker.results(whole)
    _close(split[0], expected)

    # the per-worker averages differ from the global one, so the test would catch averages of averages
    partial = worker.build()
    worker.feed(partial, [0, 1, 2])
    assert partial["sisnr"].compute() != pytest.approx(expected["sisnr"], rel=1e-3)

    # reference statistics saved under torch.distributed hold all workers' embeddings
    saved = EmbeddingStats.load(tmp_path / "fad_ref_0.pt")
    reference = whole["fad"].target_stats()
    torch.testing.assert_close(saved.sigma, reference.sigma)
    assert int(saved.count) == int(reference.count)
