"""`dora run solver=musicgen/debug` / `solver=audiogen/debug`, resume after SIGKILL, fine-tuning from an export and
`dora grid musicgen.debug`, through the real Dora CLI in subprocesses (the meta-package owns audiocraft.train,
config/ and grids/). The in-process tests of the solver alone are audiocraft-core's test_musicgen_solver.py.
"""

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

SPLITS = ("train", "valid", "evaluate", "generate")


def _env(dora_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DORA_PACKAGE": "audiocraft",
        "AUDIOCRAFT_DORA_DIR": str(dora_dir),
        "PYTHONWARNINGS": "ignore",
        "OMP_NUM_THREADS": "1",
    }


def _dora(
    args: list[str], dora_dir: Path, cwd: Path, timeout: float = 600, wrapper: Path | None = None
) -> subprocess.CompletedProcess:
    prefix = [sys.executable, str(wrapper)] if wrapper is not None else [sys.executable, "-m", "dora"]
    return subprocess.run(
        [*prefix, *args], env=_env(dora_dir), cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def example_data(tmp_path_factory) -> Path:
    """The example dataset as `python -m audiocraft.data.example` writes it (default: 44 clips, 32 kHz)."""
    root = tmp_path_factory.mktemp("egs") / "example"
    proc = subprocess.run(
        [sys.executable, "-m", "audiocraft.data.example", str(root)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root


def _datasource(data: Path) -> list[str]:
    return [f"datasource.{split}={data / split}" for split in SPLITS]


def _only_xp(dora_dir: Path) -> Path:
    (folder,) = (dora_dir / "xps").iterdir()
    return folder


_LOAD_WITH_MODELS_ONLY = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('flashy', 'dora', 'hydra') or name.startswith(
                ('audiocraft.solvers', 'audiocraft.losses', 'audiocraft.adversarial', 'audiocraft.train')):
            raise ImportError('blocked ' + name)
sys.meta_path.insert(0, Block())
import torch
from audiocraft.models import {cls}
model = {cls}.get_pretrained({folder!r}, device='cpu')
model.set_generation_params(duration=0.4, use_sampling=False)
wav = model.generate(['a calm folk tune with a twangy plucked guitar'])
assert torch.isfinite(wav).all()
print('GENERATED', tuple(wav.shape), model.sample_rate)
"""


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize(
    "solver,cls,rate", [("musicgen/debug", "MusicGen", 32000), ("audiogen/debug", "AudioGen", 16000)]
)
def test_dora_run_debug_config_as_shipped(tmp_path, example_data, solver, cls, rate):
    """The shipped debug config, full budget: finishes well within 5 min, learns, writes samples, exports."""
    dora_dir = tmp_path / "dora"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = _dora(["run", f"solver={solver}", "device=cpu", *_datasource(example_data)], dora_dir, tmp_path)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # CPU time, not wall time (the machine may be shared): within the 5 minutes the run may take on 2 cores.
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu < 300, f"{solver} used {cpu:.0f} s of CPU"
    folder = _only_xp(dora_dir)
    history = json.loads((folder / "history.json").read_text())
    assert len(history) == 3
    assert history[-1]["valid"]["ce"] < 0.5 * history[0]["train"]["ce"]  # cross-entropy falls clearly
    assert {"ce", "ppl", "chroma_cosine"} <= set(history[-1]["evaluate"])
    metas = [json.loads(p.read_text()) for p in (folder / "samples" / "3").glob("*.json")]
    assert len(metas) == 4 and all(m["conditioning"]["description"] for m in metas)
    assert all(Path(m["path"]).suffix == ".wav" and Path(m["path"]).is_file() for m in metas)
    log = (folder / "solver.log.0").read_text()
    assert "global batch 8 per update" in log and "Exported the best state" in log

    script = textwrap.dedent(_LOAD_WITH_MODELS_ONLY.format(cls=cls, folder=str(folder / "exported")))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"GENERATED (1, 1, {rate * 10 // 25}) {rate}" in out.stdout


# Kills the run at the 4th step of epoch 2 (after epoch 1 was checkpointed), inside the real `dora run`.
KILL_MID_EPOCH = """
import os, signal, runpy, sys
from audiocraft.solvers.musicgen import MusicGenSolver
real_step = MusicGenSolver.run_step
def run_step(self, idx, batch, metrics):
    if self.is_training and self.epoch == 2 and idx == 3 and os.environ.get("KILL_MID_EPOCH"):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_step(self, idx, batch, metrics)
MusicGenSolver.run_step = run_step
sys.argv = ["dora"] + sys.argv[1:]
runpy.run_module("dora", run_name="__main__", alter_sys=True)
"""

_SHORT = [
    "solver=musicgen/debug",
    "device=cpu",
    "optim.epochs=3",
    "optim.updates_per_epoch=6",
    # CFG dropout is 0.2 in the debug config: the dropout generator's state matters for the resume
    "dataset.valid.num_samples=8",
    "dataset.evaluate.num_samples=4",
    "evaluate.metrics.chroma_cosine=false",
]


def _flat(tree, prefix=""):
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in _flat(value, f"{prefix}.{key}").items()}
    if isinstance(tree, (list, tuple)):
        return {k: v for i, value in enumerate(tree) for k, v in _flat(value, f"{prefix}.{i}").items()}
    return {prefix: tree}


def _timeless(history: list[dict]) -> list[dict]:
    return [
        {
            stage: {k: v for k, v in m.items() if k != "duration" and not k.startswith("rtf")}
            for stage, m in epoch.items()
        }
        for epoch in history
    ]


@pytest.mark.slow
@pytest.mark.integration
def test_sigkill_mid_epoch_then_resume_ends_as_an_uninterrupted_run(tmp_path, example_data):
    wrapper = tmp_path / "kill_wrapper.py"
    wrapper.write_text(KILL_MID_EPOCH)
    args = ["run", *_SHORT, *_datasource(example_data)]
    reference = _dora(args, tmp_path / "ref", tmp_path, wrapper=wrapper)
    assert reference.returncode == 0, reference.stderr[-3000:]

    killed_dir = tmp_path / "killed"
    env_kill = {**_env(killed_dir), "KILL_MID_EPOCH": "1"}
    killed = subprocess.run(
        [sys.executable, str(wrapper), *args], env=env_kill, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    folder = _only_xp(killed_dir)
    assert len(torch.load(folder / "checkpoint.th", weights_only=True)["history"]) == 1
    resumed = _dora(args, killed_dir, tmp_path, wrapper=wrapper)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    a = torch.load(_only_xp(tmp_path / "ref") / "checkpoint.th", weights_only=True)
    b = torch.load(folder / "checkpoint.th", weights_only=True)
    for key in ("model", "optimizer", "best_state", "dropout_rng"):
        flat_a, flat_b = _flat(a[key]), _flat(b[key])
        assert flat_a.keys() == flat_b.keys(), key
        for name, value in flat_a.items():
            same = torch.equal(value, flat_b[name]) if isinstance(value, torch.Tensor) else value == flat_b[name]
            assert same, f"{key}{name} differs after the resume"
    assert _timeless(a["history"]) == _timeless(b["history"])


@pytest.mark.slow
@pytest.mark.integration
def test_fine_tune_from_an_exported_folder(tmp_path, example_data):
    """`continue_from=<exported folder>` starts from the exported LM (not from scratch)."""
    short = [
        "solver=musicgen/debug",
        "device=cpu",
        "optim.epochs=1",
        "optim.updates_per_epoch=6",
        "dataset.valid.num_samples=8",
        "dataset.evaluate.num_samples=4",
        "evaluate.metrics.chroma_cosine=false",
    ]
    base = _dora(["run", *short, *_datasource(example_data)], tmp_path / "base", tmp_path)
    assert base.returncode == 0, base.stderr[-3000:]
    exported = _only_xp(tmp_path / "base") / "exported"
    tuned = _dora(
        ["run", *short, "optim.lr=1e-4", f"continue_from={exported}", *_datasource(example_data)],
        tmp_path / "tuned",
        tmp_path,
    )
    assert tuned.returncode == 0, tuned.stderr[-3000:]
    first = json.loads((_only_xp(tmp_path / "base") / "history.json").read_text())[0]
    second = json.loads((_only_xp(tmp_path / "tuned") / "history.json").read_text())[0]
    assert second["train"]["ce"] < 0.7 * first["train"]["ce"]  # already trained: far lower from the first step
    assert (_only_xp(tmp_path / "tuned") / "exported" / "state_dict.bin").is_file()


def test_dora_grid_musicgen_debug_lists_its_xps(tmp_path):
    repo = Path(__file__).resolve().parents[3]
    proc = _dora(["grid", "musicgen.debug", "--dry_run", "--init"], tmp_path / "dora", repo, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cod.modeling=delay" in proc.stdout and "opt.grad_accum_steps=2" in proc.stdout
    assert len(list((tmp_path / "dora" / "xps").iterdir())) == 3


def test_lm_explorer_reports_ce_ppl_and_evaluate_metrics():
    from audiocraft.grids.musicgen._explorers import LMExplorer

    explorer = LMExplorer.__new__(LMExplorer)
    sheep = type("Sheep", (), {"log": None})()
    history = [
        {"train": {"ce": 3.0, "ppl": 20.0, "duration": 60.0}, "valid": {"ce": 2.5, "ppl": 12.2}},
        {
            "train": {"ce": 2.0, "ppl": 7.4},
            "valid": {"ce": 1.9, "ppl": 6.7},
            "evaluate": {"ce": 1.8, "fad": 4.2, "kld_both": 1.1},
        },
    ]
    parts = explorer.process_sheep(sheep, history)
    assert parts["train"] == {"epoch": 2, "ce": 2.0, "ppl": 7.4, "duration": 1.0}
    assert parts["valid"] == {"ce": 1.9, "ppl": 6.7} and parts["evaluate"]["fad"] == 4.2
    names = [leaf.key for group in explorer.get_grid_metrics() for leaf in group.groups]
    assert {"ce", "ppl", "fad", "kld_both", "text_consistency", "chroma_cosine"} <= set(names)


@pytest.mark.slow
@pytest.mark.integration
def test_dora_run_two_workers_trains_and_exports(tmp_path, example_data):
    """`dora run -d --ddp_workers 2` (gloo): the batch is split, rank 0 exports while rank 1 waits for the outcome.

    The export used to kill rank 1: recording the debug codec by name made rank 0's reload check rebuild it, whose
    codebook initialisation is a collective, against rank 1's wait for the export's outcome.
    """
    proc = _dora(
        [
            "run",
            "-d",
            "--ddp_workers",
            "2",
            "solver=musicgen/debug",
            "device=cpu",
            "optim.epochs=1",
            "optim.updates_per_epoch=3",
            "dataset.valid.num_samples=8",
            "dataset.evaluate.num_samples=4",
            *_datasource(example_data),
        ],
        tmp_path / "dora",
        tmp_path,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    folder = _only_xp(tmp_path / "dora")
    for rank in range(2):
        log = (folder / f"solver.log.{rank}").read_text()
        assert "4 items per step per worker, 1 accumulation step(s), 2 worker(s): global batch 8 per update" in log
    assert {p.name for p in (folder / "exported").iterdir()} == {"state_dict.bin", "compression_state_dict.bin"}
