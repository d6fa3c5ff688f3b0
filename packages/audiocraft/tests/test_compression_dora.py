"""`dora run solver=compression/debug` and `dora grid compression.debug` through the real CLI, in subprocesses.

These live with the meta-package, which owns the Dora entry point `audiocraft.train`, config/ and grids/; the
in-process end-to-end test of the solver alone is audiocraft-core's test_compression_solver.py.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from audiocraft.data.example import generate_example_dataset


def _env(dora_dir: Path) -> dict[str, str]:
    return {**os.environ, "DORA_PACKAGE": "audiocraft", "AUDIOCRAFT_DORA_DIR": str(dora_dir),
            "PYTHONWARNINGS": "ignore"}


def _dora(args: list[str], dora_dir: Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dora", *args], env=_env(dora_dir), cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.integration
def test_dora_run_debug_then_load_exported_with_models_only(tmp_path):
    data = tmp_path / "egs"
    generate_example_dataset(data, num_clips=8, sample_rate=16000, min_duration=2.0, max_duration=3.0)
    overrides = ["solver=compression/debug", "device=cpu", "optim.epochs=2", "optim.updates_per_epoch=6",
                 "dataset.valid.num_samples=8", "dataset.evaluate.num_samples=8", "dataset.generate.num_samples=1",
                 "dataset.generate.segment_duration=2"] + [
        f"datasource.{split}={data / split}" for split in ("train", "valid", "evaluate", "generate")]
    dora_dir = tmp_path / "dora"
    proc = _dora(["run", *overrides], dora_dir, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (folder,) = (dora_dir / "xps").iterdir()
    assert (folder / "checkpoint.th").exists()
    assert list((folder / "samples" / "2").glob("*.mp3")) and list((folder / "samples" / "reference").glob("*.mp3"))
    summary = json.loads((folder / "exported" / "export_metrics.json").read_text())
    assert summary["sisnr_db_gain"] > 0
    assert "Evaluate SI-SNR: exported model" in (folder / "solver.log.0").read_text()

    info = _dora(["info", "-f", folder.name], dora_dir, tmp_path, timeout=120)
    assert info.returncode == 0 and "compression/debug" in info.stdout + info.stderr

    # Load the export with the training stack made unimportable: audiocraft-models alone must do.
    script = textwrap.dedent(f"""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('flashy', 'dora', 'hydra') or name.startswith(
                        ('audiocraft.solvers', 'audiocraft.losses', 'audiocraft.adversarial', 'audiocraft.train')):
                    raise ImportError('blocked ' + name)
        sys.meta_path.insert(0, Block())
        import torch
        from audiocraft.models import CompressionModel
        model = CompressionModel.get_pretrained({str(folder / 'exported' / 'compression_state_dict.bin')!r})
        x = 0.3 * torch.sin(torch.arange(16000) / 16000 * 2 * torch.pi * 220).view(1, 1, -1)
        with torch.no_grad():
            y = model(x).x
        assert y.shape == x.shape and torch.isfinite(y).all()
        print('RECONSTRUCTED', model.num_codebooks, model.frame_rate)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RECONSTRUCTED 32 50" in out.stdout


def test_dora_grid_debug_lists_its_xps(tmp_path):
    repo = Path(__file__).resolve().parents[4]
    proc = _dora(["grid", "compression.debug", "--dry_run", "--init"], tmp_path / "dora", repo, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rvq.bins=2048 rvq.n_q=4" in proc.stdout
    assert len(list((tmp_path / "dora" / "xps").iterdir())) == 2


def test_explorer_reports_latest_metrics_per_stage():
    from audiocraft.grids.compression._explorers import CompressionExplorer
    explorer = CompressionExplorer.__new__(CompressionExplorer)
    sheep = type("Sheep", (), {"log": None})()
    history = [{"train": {"l1": 0.3, "duration": 120.}, "valid": {"sisnr": 20.}},
               {"train": {"l1": 0.2}, "valid": {"sisnr": 10.}, "evaluate": {"sisnr": 9., "codebook_usage": 0.5}}]
    parts = explorer.process_sheep(sheep, history)
    assert parts["train"] == {"epoch": 2, "l1": 0.2, "duration": 2.}
    assert parts["valid"]["sisnr"] == 10. and parts["evaluate"] == {"sisnr": 9., "codebook_usage": 0.5}
