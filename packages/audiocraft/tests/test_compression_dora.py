"""`dora run solver=compression/debug` and `dora grid compression.debug` through the real CLI, in subprocesses.

These live with the meta-package, which owns the Dora entry point `audiocraft.train`, config/ and grids/; the
in-process end-to-end test of the solver alone is audiocraft-core's test_compression_solver.py.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from audiocraft.data.example import generate_example_dataset


def _env(dora_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DORA_PACKAGE": "audiocraft",
        "AUDIOCRAFT_DORA_DIR": str(dora_dir),
        "PYTHONWARNINGS": "ignore",
    }


def _dora(args: list[str], dora_dir: Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dora", *args],
        env=_env(dora_dir),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
@pytest.mark.integration
def test_dora_run_debug_then_load_exported_with_models_only(tmp_path):
    data = tmp_path / "egs"
    generate_example_dataset(data, num_clips=8, sample_rate=16000, min_duration=2.0, max_duration=3.0)
    overrides = [
        "solver=compression/debug",
        "device=cpu",
        "optim.epochs=2",
        "optim.updates_per_epoch=6",
        "dataset.valid.num_samples=8",
        "dataset.evaluate.num_samples=8",
        "dataset.generate.num_samples=1",
        "dataset.generate.segment_duration=2",
    ] + [f"datasource.{split}={data / split}" for split in ("train", "valid", "evaluate", "generate")]
    dora_dir = tmp_path / "dora"
    proc = _dora(["run", *overrides], dora_dir, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (folder,) = (dora_dir / "xps").iterdir()
    assert (folder / "checkpoint.th").exists()
    assert list((folder / "samples" / "2").glob("*.mp3")) and list((folder / "samples" / "reference").glob("*.mp3"))
    summary = json.loads((folder / "exported" / "export_metrics.json").read_text())
    assert summary["sisnr_db_gain"] > 0
    log = (folder / "solver.log.0").read_text()
    assert "Evaluate SI-SNR: exported model" in log
    # the run ends with one line saying where its results are
    summary_line = (
        f"Run summary: XP {folder.name} | folder {folder} | exported model: "
        f"{folder / 'exported' / 'compression_state_dict.bin'} | samples: {folder / 'samples' / '2'}"
    )
    assert summary_line in log.rstrip().splitlines()[-1]
    assert summary_line in proc.stderr
    # samples named after their generate clip, the JSON sidecar saying which clip and which checkpoint
    manifest = (data / "generate" / "data.jsonl").read_text().splitlines()
    clips = {Path(json.loads(line)["path"]).name for line in manifest}
    sidecars = [json.loads(p.read_text()) for p in (folder / "samples" / "2").glob("*.json")]
    assert len(sidecars) == 1
    for meta in sidecars:
        assert Path(meta["source"]["path"]).name in clips and meta["source"]["manifest"] == str(data / "generate")
        stem = Path(meta["source"]["path"]).stem
        assert re.fullmatch(rf"{stem}_{round(1000 * meta['source']['offset'])}ms_[0-9a-f]{{8}}", meta["id"])
        assert Path(meta["path"]) == folder / "samples" / "2" / f"{meta['id']}.mp3"
        assert meta["checkpoint"] == {"xp_sig": folder.name, "xp_folder": str(folder), "epoch": 2}
        assert Path(meta["reference"]["path"]) == folder / "samples" / "reference" / f"{meta['id']}.mp3"

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
        model = CompressionModel.get_pretrained({str(folder / "exported" / "compression_state_dict.bin")!r})
        x = 0.3 * torch.sin(torch.arange(16000) / 16000 * 2 * torch.pi * 220).view(1, 1, -1)
        with torch.no_grad():
            y = model(x).x
        assert y.shape == x.shape and torch.isfinite(y).all()
        print('RECONSTRUCTED', model.num_codebooks, model.frame_rate)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RECONSTRUCTED 32 50" in out.stdout


@pytest.mark.slow
@pytest.mark.integration
def test_dora_run_distributed_two_workers_trains_and_exports(tmp_path):
    """`dora run -d --ddp_workers 2 solver=compression/debug` ends (the export path used to wait forever for rank 1)
    and every worker scores its share of the split. The worker-related keys are the shipped ones."""
    data = tmp_path / "egs"
    generate_example_dataset(data, num_clips=8, sample_rate=16000, min_duration=2.0, max_duration=3.0)
    overrides = [
        "solver=compression/debug",
        "device=cpu",
        "optim.epochs=2",
        "optim.updates_per_epoch=3",
        "dataset.valid.num_samples=8",
        "dataset.evaluate.num_samples=8",
        "dataset.evaluate.batch_size=4",
        "dataset.generate.num_samples=2",
        "dataset.generate.segment_duration=2",
    ] + [f"datasource.{split}={data / split}" for split in ("train", "valid", "evaluate", "generate")]
    dora_dir = tmp_path / "dora"
    proc = _dora(["run", "-d", "--ddp_workers", "2", *overrides], dora_dir, tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (folder,) = (dora_dir / "xps").iterdir()
    logs = [(folder / f"solver.log.{rank}").read_text() for rank in range(2)]
    assert "Distributed init: 0/2" in proc.stderr + logs[0]
    exported = folder / "exported" / "compression_state_dict.bin"
    assert exported.is_file() and not [p for p in exported.parent.iterdir() if p.name.startswith(".")]
    summary = json.loads((folder / "exported" / "export_metrics.json").read_text())
    # Both workers took part in the comparison and got the same numbers (reduced across workers).
    lines = [re.findall(r"Evaluate SI-SNR: exported model .* dB \(gain .* dB\)", log) for log in logs]
    assert lines[0] and lines[0] == lines[1]
    # The comparison scores the same split as the evaluate stage, whose metrics are reduced the same way.
    history = json.loads((folder / "history.json").read_text())
    assert summary["sisnr_db_exported"] == pytest.approx(-history[-1]["evaluate"]["sisnr"], abs=1e-3)


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
    history = [
        {"train": {"l1": 0.3, "duration": 120.0}, "valid": {"sisnr": 20.0}},
        {"train": {"l1": 0.2}, "valid": {"sisnr": 10.0}, "evaluate": {"sisnr": 9.0, "codebook_usage": 0.5}},
    ]
    parts = explorer.process_sheep(sheep, history)
    assert parts["train"] == {"epoch": 2, "l1": 0.2, "duration": 2.0}
    assert parts["valid"]["sisnr"] == 10.0 and parts["evaluate"] == {"sisnr": 9.0, "codebook_usage": 0.5}
