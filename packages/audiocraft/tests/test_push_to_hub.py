"""`audiocraft-export ... --push-to-hub`: push real debug XPs to a local stand-in of the hub, then load them back.

The XPs are trained by `dora run` (compression/debug and musicgen/debug, shortened); the push goes through the
installed `audiocraft-export` entry point in a subprocess whose ``HF_ENDPOINT`` is the stand-in
(tests/hub_standin.py, a loopback server in this process); loading back runs `CompressionModel.get_pretrained` /
`MusicGen.get_pretrained` on the repo id in another subprocess with the same endpoint and an empty hub cache.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from audiocraft.data.example import generate_example_dataset
from audiocraft.export_cli import main
from audiocraft.models import loaders

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hub_standin import HubStandIn  # noqa: E402

SPLITS = ("train", "valid", "evaluate", "generate")
EXPORT = Path(sys.executable).parent / "audiocraft-export"


def _dora(args: list[str], dora_dir: Path, cwd: Path) -> Path:
    env = {**os.environ, "DORA_PACKAGE": "audiocraft", "AUDIOCRAFT_DORA_DIR": str(dora_dir), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "dora", "run", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (folder,) = (dora_dir / "xps").iterdir()
    return folder


def _datasource(data: Path) -> list[str]:
    return [f"datasource.{split}={data / split}" for split in SPLITS]


@pytest.fixture(scope="module")
def xps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A short compression/debug XP (16 kHz data) and a short musicgen/debug XP (32 kHz data), both exported."""
    root = tmp_path_factory.mktemp("xps")
    data16, data32 = root / "egs16", root / "egs32"
    generate_example_dataset(data16, num_clips=8, sample_rate=16000, min_duration=2.0, max_duration=3.0)
    generate_example_dataset(data32, num_clips=8, sample_rate=32000, min_duration=2.5, max_duration=3.0)
    compression = _dora(
        [
            "solver=compression/debug",
            "device=cpu",
            "optim.epochs=2",
            "optim.updates_per_epoch=4",
            "dataset.valid.num_samples=4",
            "dataset.evaluate.num_samples=4",
            "dataset.generate.num_samples=1",
            "dataset.generate.segment_duration=2",
            *_datasource(data16),
        ],
        root / "dora_compression",
        root,
    )
    musicgen = _dora(
        [
            "solver=musicgen/debug",
            "device=cpu",
            "optim.epochs=1",
            "optim.updates_per_epoch=4",
            "dataset.valid.num_samples=4",
            "dataset.evaluate.num_samples=2",
            "dataset.generate.num_samples=1",
            "evaluate.metrics.chroma_cosine=false",
            *_datasource(data32),
        ],
        root / "dora_musicgen",
        root,
    )
    return {"compression": compression, "musicgen": musicgen}


def _env(hub: HubStandIn, tmp: Path, dora_dir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_") and k != "AUDIOCRAFT_CACHE_DIR"}
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HUB_CACHE=str(tmp / "hf_cache"),
        HF_HOME=str(tmp / "hf_home"),
        HF_TOKEN="test-token",
        HF_HUB_DISABLE_TELEMETRY="1",
        PYTHONWARNINGS="ignore",
    )
    if dora_dir is not None:
        env["AUDIOCRAFT_DORA_DIR"] = str(dora_dir)
    return env


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return OmegaConf.to_container(OmegaConf.create(card.split("---\n")[1]))  # type: ignore[return-value]


def _metrics_table(card: str) -> dict[tuple[str, str], float]:
    section = card.split("## Metrics\n")[1].split("\n## ")[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| ")][2:]
    return {(source.strip(), metric.strip()): float(value) for source, metric, value in rows}


def _expected_metrics(xp: Path) -> dict[tuple[str, str], float]:
    history = json.loads((xp / "history.json").read_text())
    expected = {
        (f"{stage} (epoch {len(history)})", key): float(value)
        for stage, values in history[-1].items()
        for key, value in values.items()
        if isinstance(value, (int, float))
    }
    export_metrics = xp / "exported" / "export_metrics.json"
    if export_metrics.is_file():
        for key, value in json.loads(export_metrics.read_text()).items():
            expected[("export (evaluate split)", key)] = float(value)
    return expected


def _check_card(card: str, xp: Path, pipeline_tag: str, tag: str) -> None:
    front = _front_matter(card)
    assert front["library_name"] == "audiocraft" and front["license"] == "mit"
    assert front["pipeline_tag"] == pipeline_tag and tag in front["tags"]
    table = _metrics_table(card)
    expected = _expected_metrics(xp)
    assert expected and set(table) == set(expected)
    for key, value in expected.items():
        assert table[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    cfg = OmegaConf.load(xp / ".hydra" / "config.yaml")
    for split in SPLITS:
        assert f"- {split}: `{cfg.datasource[split]}`" in card
    assert f"| XP signature | {xp.name} |" in card
    assert f"| solver | {cfg.solver} |" in card and f"| optim.lr | {cfg.optim.lr:.6g} |" in card
    assert "The weights are released under `mit`." in card


_LOAD = """
import sys, torch
from audiocraft.models import CompressionModel, MusicGen
kind, repo, out = sys.argv[1:]
x = 0.1 * torch.randn(1, 1, 8000, generator=torch.Generator().manual_seed(0))
if kind == "compression":
    model = CompressionModel.get_pretrained(repo)
    with torch.no_grad():
        codes = model.encode(x)[0]
    torch.save({"state": model.state_dict(), "codes": codes, "audio": model.decode(codes)}, out)
else:
    model = MusicGen.get_pretrained(repo, device="cpu")
    torch.save({"lm": model.lm.state_dict(), "compression": model.compression_model.state_dict()}, out)
"""


def _load_back(kind: str, repo: str, env: dict[str, str], tmp: Path) -> dict:
    out = tmp / f"loaded_{kind}.th"
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD, kind, repo, str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(out, weights_only=True)


def _export(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run the installed ``audiocraft-export`` with ``args``; it must succeed."""
    proc = subprocess.run([str(EXPORT), *args], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.allow_hosts(["127.0.0.1"])
def test_push_encodec_then_load_it_back(xps: dict[str, Path], tmp_path: Path) -> None:
    xp = xps["compression"]
    out = tmp_path / "release" / "encodec.bin"
    with HubStandIn(token="test-token") as hub:
        env = _env(hub, tmp_path, xp.parent.parent)
        proc = _export(env, xp.name, str(out), "--push-to-hub", "me/debug-encodec", "--commit-message", "first")
        assert "Pushed" in proc.stdout and "me/debug-encodec/commit/" in proc.stdout
        repo = hub.repos["me/debug-encodec"]
        files = repo.files("main")
        assert files is not None and sorted(files) == ["README.md", "compression_state_dict.bin"]
        assert files["compression_state_dict.bin"] == out.read_bytes()
        assert repo.messages[repo.branches["main"]] == "first" and set(hub.tokens) == {"test-token"}
        _check_card(files["README.md"].decode(), xp, "audio-to-audio", "encodec")

        loaded = _load_back("compression", "me/debug-encodec", env, tmp_path)
        local = loaders.load_compression_model(out)
        _same_state(loaded["state"], local.state_dict())
        x = 0.1 * torch.randn(1, 1, 8000, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            codes = local.encode(x)[0]
            assert torch.equal(loaded["codes"], codes)
            # Same weights and codes (bitwise, above); the decoded floats of two processes may differ in the last
            # bits (their thread counts differ).
            torch.testing.assert_close(loaded["audio"], local.decode(codes), atol=1e-6, rtol=1e-5)

        # Again to a branch: main keeps its commit, the branch gets the new one.
        main_commit = repo.branches["main"]
        _export(env, xp.name, str(tmp_path / "again.bin"), "--push-to-hub", "me/debug-encodec", "--branch", "dev")
        assert repo.branches["main"] == main_commit and repo.branches["dev"] != main_commit
        dev = repo.files("dev")
        assert dev is not None and dev["compression_state_dict.bin"] == (tmp_path / "again.bin").read_bytes()

        # --card-only: a new commit on main with the regenerated card alone (here with another license).
        _export(
            env,
            xp.name,
            str(tmp_path / "card.bin"),
            "--push-to-hub",
            "me/debug-encodec",
            "--card-only",
            "--license",
            "apache-2.0",
        )
        assert repo.branches["main"] != main_commit
        main = repo.files("main")
        assert main is not None and main["compression_state_dict.bin"] == out.read_bytes()
        assert _front_matter(main["README.md"].decode())["license"] == "apache-2.0"


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.allow_hosts(["127.0.0.1"])
def test_push_musicgen_private_then_load_it_back(xps: dict[str, Path], tmp_path: Path) -> None:
    xp = xps["musicgen"]
    out = tmp_path / "release" / "state_dict.bin"
    with HubStandIn(token="test-token") as hub:
        env = _env(hub, tmp_path, xp.parent.parent)
        _export(env, xp.name, str(out), "--push-to-hub", "me/debug-musicgen", "--private")
        repo = hub.repos["me/debug-musicgen"]
        files = repo.files("main")
        assert repo.private and files is not None
        assert sorted(files) == ["README.md", "compression_state_dict.bin", "state_dict.bin"]
        assert files["state_dict.bin"] == out.read_bytes()
        assert files["compression_state_dict.bin"] == (xp / "exported" / "compression_state_dict.bin").read_bytes()
        card = files["README.md"].decode()
        _check_card(card, xp, "text-to-audio", "musicgen")
        lm = loaders.load_lm_model(out)
        assert f"| LM dim | {lm.dim} |" in card and f"| LM layers | {len(lm.transformer.layers)} |" in card
        assert "| conditioners | description (lut) |" in card

        loaded = _load_back("musicgen", "me/debug-musicgen", env, tmp_path)
        _same_state(loaded["lm"], lm.state_dict())
        _same_state(loaded["compression"], loaders.load_compression_model(xp / "exported").state_dict())

        # A private repo is not visible without a token.
        anonymous = {k: v for k, v in env.items() if k != "HF_TOKEN"}
        proc = subprocess.run(
            [sys.executable, "-c", _LOAD, "musicgen", "me/debug-musicgen", str(tmp_path / "x.th")],
            env={**anonymous, "HF_HUB_CACHE": str(tmp_path / "empty_cache")},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode != 0 and "me/debug-musicgen" in proc.stderr


@pytest.mark.parametrize("repo_id", ["no-owner", "a/b/c", "me/bad name", "me/-dash", "me/x..y"])
def test_malformed_repo_id_is_refused_before_exporting(tmp_path: Path, capsys, repo_id: str) -> None:
    out = tmp_path / "out.bin"
    assert main(["1a2b3c4d", str(out), "--push-to-hub", repo_id, "--dora-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{repo_id!r} is not a Hugging Face repo id: expected owner/name" in err
    assert not out.exists()


def test_missing_hub_extra_names_it_before_exporting(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails as if it were not installed
    out = tmp_path / "out.bin"
    assert main(["1a2b3c4d", str(out), "--push-to-hub", "me/repo", "--dora-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "pip install 'audiocraft[hub]'" in err and "nothing was exported" in err
    assert not out.exists()


def test_push_without_a_token_says_how_to_get_one(monkeypatch) -> None:
    import huggingface_hub

    from audiocraft.models.hub import HubPushError, push_files_to_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(HubPushError, match=r"pushing to me/repo: no Hugging Face token \(pass --token, set HF_TOKEN"):
        push_files_to_hub({"README.md": b"# card\n"}, "me/repo")


@pytest.mark.allow_hosts(["127.0.0.1"])
def test_hub_errors_name_the_repo() -> None:
    from audiocraft.models.hub import HubPushError, push_files_to_hub

    with HubStandIn(token="right") as hub:
        # An HTTP error: the token is refused.
        with pytest.raises(HubPushError, match=r"hub repo me/repo \(http://127\.0\.0\.1:\d+\) failed: .*401"):
            push_files_to_hub({"README.md": b"# card\n"}, "me/repo", token="wrong", endpoint=hub.url)
    # A connection error: nothing listens on the port.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(HubPushError, match=rf"hub repo me/repo \(http://127\.0\.0\.1:{port}\) failed: \w*Connect"):
        push_files_to_hub({"README.md": b"# card\n"}, "me/repo", token="t", endpoint=f"http://127.0.0.1:{port}")


def test_card_only_needs_push_to_hub(tmp_path: Path, capsys) -> None:
    assert main(["1a2b3c4d", str(tmp_path / "x.bin"), "--card-only"]) == 2
    assert "--card-only goes with --push-to-hub REPO_ID" in capsys.readouterr().err


def test_push_safetensors_output_is_refused(tmp_path: Path, capsys) -> None:
    assert main(["1a2b3c4d", str(tmp_path / "x.safetensors"), "--push-to-hub", "me/repo"]) == 2
    assert "uploads a torch package (.bin/.th)" in capsys.readouterr().err
