"""Every loader of the monorepo refuses a pickle that would run code (``weights_only=True``), naming the file.

The file written here holds an object whose unpickling would create a marker file: each loader must raise
and the marker must never appear. A row of docs/RELIABILITY.md.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch


class _Payload:
    """Unpickling this calls ``os.system``-like code: here it only creates a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def evil(tmp_path):
    """``(write(path, wrap), marker)``: write a malicious torch file at ``path`` (``wrap`` builds the object
    around the payload, e.g. a checkpoint dict), and the marker file its unpickling would create."""
    marker = tmp_path / "PWNED"

    def write(path: Path, wrap=lambda payload: payload) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(wrap(_Payload(marker)), path)
        return path

    yield write, marker
    assert not marker.exists(), "a loader executed pickled code"


def test_the_payload_would_run_without_weights_only(evil, tmp_path):
    write, marker = evil
    path = write(tmp_path / "x.th")
    torch.load(path, weights_only=False)  # what a trusting loader would do
    assert marker.exists()
    marker.unlink()


def _checkpoint(payload):
    return {"best_state": {"model": {"w": payload}}, "xp.cfg": "solver: compression\n", "history": []}


def _package(payload):
    return {"best_state": {"w": payload}, "xp.cfg": "solver: compression\n", "exported": True}


def test_release_loaders(evil, tmp_path):
    from audiocraft.models import CompressionModel, loaders

    write, _ = evil
    package = write(tmp_path / "release" / "compression_state_dict.bin", _package)
    lm = write(tmp_path / "lm" / "state_dict.bin", _package)
    for call in (
        lambda: loaders.load_checkpoint_file(package),
        lambda: CompressionModel.get_pretrained(str(package)),
        lambda: loaders.load_compression_model(package.parent),
        lambda: loaders.load_lm_model(lm),
    ):
        with pytest.raises(loaders.CheckpointError, match=r"(compression_state_dict|state_dict)\.bin"):
            call()


def test_musicgen_folder_loader(evil, tmp_path):
    from audiocraft.models import MusicGen, loaders

    write, _ = evil
    write(tmp_path / "mg" / "state_dict.bin", _package)
    write(tmp_path / "mg" / "compression_state_dict.bin", _package)
    with pytest.raises(loaders.CheckpointError, match=r"mg/state_dict\.bin: UnpicklingError: Weights only load"):
        MusicGen.get_pretrained(str(tmp_path / "mg"))


def test_training_checkpoint_loaders(evil, tmp_path):
    from audiocraft.solvers.compression_loading import load_frozen_compression_model
    from audiocraft.utils.checkpoint import load_checkpoint
    from audiocraft.utils.export import export_checkpoint

    write, _ = evil
    ckpt = write(tmp_path / "xp" / "checkpoint.th", _checkpoint)
    with pytest.raises(RuntimeError, match=r"(?s)checkpoint\.th.*weights_only=True"):
        load_checkpoint(ckpt)
    with pytest.raises(Exception, match=r"checkpoint\.th"):
        load_frozen_compression_model(ckpt)
    with pytest.raises(Exception, match=r"checkpoint\.th"):
        export_checkpoint(ckpt, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_export_cli(evil, tmp_path, capsys):
    from audiocraft.export_cli import main

    write, _ = evil
    ckpt = write(tmp_path / "xp" / "checkpoint.th", _checkpoint)
    assert main([str(ckpt), str(tmp_path / "out.bin")]) == 1
    err = capsys.readouterr().err
    assert "checkpoint.th" in err and "Traceback" not in err
    assert not (tmp_path / "out.bin").exists()


def test_batch_cache_loader(evil, tmp_path):
    from audiocraft.utils.cache import CachedBatchLoader, CacheError

    write, _ = evil
    item = write(tmp_path / "item.th", lambda payload: [torch.zeros(2), payload])
    shard = tmp_path / "cache" / "00000" / "000000.zip"
    shard.parent.mkdir(parents=True)
    with zipfile.ZipFile(shard, "w") as zf:
        zf.writestr("0", item.read_bytes())
    loader = CachedBatchLoader(tmp_path / "cache", batch_size=1, num_workers=0)
    loader.start_epoch(0)
    with pytest.raises(CacheError, match=r"000000\.zip \(entry 0\)"):
        next(iter(loader))


def test_embedding_cache(evil, tmp_path):
    from audiocraft.conditioners import EmbeddingCache

    write, _ = evil
    cache = EmbeddingCache(tmp_path / "emb", "cpu", compute_embed_fn=lambda path, x, idx: torch.zeros(3))
    write(cache._file("song.wav"))
    with pytest.raises(RuntimeError, match=r"corrupt embedding cache file .*\.pt \(for song\.wav\); delete it"):
        cache.get_embed_from_cache(["song.wav"], None)


def test_metric_and_codec_weight_loaders(evil, tmp_path):
    from audiocraft.metrics.embeddings import _load_tensors
    from audiocraft.metrics.fad import EmbeddingStats
    from audiocraft.models.dac import load_descript_dac

    write, _ = evil
    weights = write(tmp_path / "vggish.pt", lambda payload: {"w": payload})
    stats = write(tmp_path / "stats.pt", lambda payload: {"mu": payload})
    dac = write(tmp_path / "weights.pth", lambda payload: {"state_dict": payload, "metadata": {"kwargs": {}}})
    with pytest.raises(ValueError, match=r"vggish\.pt"):
        _load_tensors(weights, "VGGish")
    with pytest.raises(ValueError, match=r"stats\.pt"):
        EmbeddingStats.load(stats)
    with pytest.raises(ValueError, match=r"weights\.pth"):
        load_descript_dac(dac)
