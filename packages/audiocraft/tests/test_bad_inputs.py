"""Bad inputs of the training entry point and of ``audiocraft-export``: each stops before any work with one
message naming the key, value or file and what to do (rows of docs/RELIABILITY.md)."""

from __future__ import annotations

import importlib.util
import os

import omegaconf
import pytest
import torch

from audiocraft.export_cli import main as export_main
from audiocraft.models import builders
from audiocraft.utils.checkpoint import save_checkpoint

from .test_train import dora, env, xp_folders  # noqa: F401  (env is a fixture)


@pytest.fixture
def train(env, monkeypatch):  # noqa: F811
    for key in ("DORA_PACKAGE", "AUDIOCRAFT_DORA_DIR", "AUDIOCRAFT_EXTRA_CONFIG", "AUDIOCRAFT_EXTRA_SOLVERS"):
        monkeypatch.setenv(key, env[key])
    from audiocraft import train

    return train


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["optim.lr=abc"], r"optim\.lr='abc' \(expected a number > 0\)"),
        (["optim.lr=-1"], r"optim\.lr=-1 \(expected a number > 0\)"),
        (["optim.lr=nan"], r"optim\.lr=nan \(expected a number > 0\)"),
        (["optim.epochs=0"], r"optim\.epochs=0 \(expected an integer >= 1\)"),
        (["optim.epochs=2.5"], r"optim\.epochs=2\.5 \(expected an integer >= 1\)"),
        (["dataset.batch_size=0"], r"dataset\.batch_size=0 \(expected an integer >= 1\)"),
        (["optim.updates_per_epoch=0"], r"optim\.updates_per_epoch=0 \(expected null or an integer >= 1\)"),
        (["dataset.num_workers=-1"], r"dataset\.num_workers=-1 \(expected an integer >= 0\)"),
        (["dataset.valid.batch_size=0"], r"dataset\.valid\.batch_size=0"),
        (["optim.lr=abc", "optim.epochs=0"], r"optim\.lr='abc' .*; optim\.epochs=0"),  # every bad key at once
    ],
)
def test_bad_values_are_named_when_the_xp_is_built(train, overrides, message):
    with pytest.raises(train.ConfigError, match=message):
        train.main.get_xp(["solver=tiny", *overrides])
    train.main.get_xp(["solver=tiny", "optim.updates_per_epoch=null", "optim.lr=1"])  # valid edge values


@pytest.mark.slow
def test_bad_value_stops_dora_run_before_the_xp_folder(env):  # noqa: F811
    proc = dora(env, "run", "solver=tiny", "optim.lr=abc", "dataset.batch_size=0", check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == (
        "audiocraft.train.ConfigError: bad config value(s): optim.lr='abc' (expected a number > 0); "
        "dataset.batch_size=0 (expected an integer >= 1) (set them on the command line or in the solver config)"
    )
    assert xp_folders(env) == []


def test_check_config_runs_the_value_checks(train):
    cfg = train.main._get_config(["solver=tiny"])
    train.check_config(cfg)
    cfg.optim.updates_per_epoch = 0
    with pytest.raises(train.ConfigError, match="optim.updates_per_epoch=0"):
        train.check_config(cfg)


def test_unknown_config_names_list_the_real_options(train):
    with pytest.raises(
        train.ConfigError,
        match=r"unknown solver 'nope' \(config group 'solver'\); available: "
        r"audiogen/audiogen_base_16khz, .*compression/debug, .*musicgen/debug"
        r".*tiny, tiny_unregistered \(e\.g\. solver=audiogen/debug\)",
    ):
        train.main.get_xp(["solver=nope"])
    with pytest.raises(
        train.ConfigError,
        match=r"unknown dset 'audio/nope' .*available: audio/default, "
        r"audio/example, default",
    ):
        train.main.get_xp(["solver=tiny", "dset=audio/nope"])


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="checks the message without wandb")
def test_log_wandb_without_wandb_names_the_extra(train):
    cfg = train.main._get_config(["solver=tiny", "logging.log_wandb=true"])
    with pytest.raises(
        train.ConfigError,
        match=r"logging\.log_wandb=true but wandb is not installed: "
        r"pip install 'audiocraft-core\[wandb\]'.*logging\.log_wandb=false",
    ):
        train.check_config(cfg)
    with pytest.raises(train.ConfigError, match="wandb is not installed"):
        train.get_solver(cfg)  # notebooks (get_solver_from_xp) go through here


@pytest.mark.slow
def test_log_wandb_without_wandb_stops_dora_run(env):  # noqa: F811
    if importlib.util.find_spec("wandb") is not None:
        pytest.skip("wandb is installed here")
    proc = dora(env, "run", "solver=tiny", "logging.log_wandb=true", check=False)
    assert proc.returncode != 0
    assert "wandb is not installed" in proc.stderr and "'NoneType' object" not in proc.stderr
    assert not any(list(f.glob("checkpoint*")) for f in xp_folders(env))


def test_unregistered_solver_stops_in_check_config(train):
    cfg = train.main._get_config(["solver=tiny_unregistered"])  # a config whose `solver` names no class
    with pytest.raises(
        train.ConfigError,
        match=r"^unknown solver 'no_such_solver' \(config key 'solver'\); expected one of \[.*'compression'.*'tiny'\]$",
    ):
        train.check_config(cfg)


def test_dataset_agnostic_solver_without_dset_names_datasource_and_dset(train):
    cfg = train.main._get_config(["solver=compression/encodec_musicgen_32khz"])
    with pytest.raises(
        train.ConfigError,
        match=r"^datasource\.train and datasource\.valid not set: .* dset=audio/<name> .*"
        r"datasource\.train=<folder> datasource\.valid=<folder> \(docs/OWN_DATA\.md\)$",
    ):
        train.check_config(cfg)
    cfg = train.main._get_config(["solver=compression/encodec_musicgen_32khz", "datasource.train=egs/mine/train"])
    with pytest.raises(train.ConfigError, match=r"^datasource\.valid not set"):
        train.check_config(cfg)
    cfg = train.main._get_config(["solver=compression/encodec_musicgen_32khz", "dset=audio/example"])
    train.check_config(cfg)  # a dset names the splits
    cfg = train.main._get_config(
        ["solver=compression/encodec_musicgen_32khz", "execute_only=evaluate", "datasource.evaluate=egs/x"]
    )
    train.check_config(cfg)  # one stage needs its own split only


@pytest.mark.slow
def test_dora_run_without_dset_stops_before_the_solver_is_built(env):  # noqa: F811
    proc = dora(env, "run", "solver=compression/encodec_musicgen_32khz", check=False)
    assert proc.returncode != 0
    last = [line for line in proc.stderr.strip().splitlines() if line.strip()][-2:]
    assert any(line.startswith("audiocraft.train.ConfigError: datasource.train and datasource.valid") for line in last)
    assert "dset=" in proc.stderr and "Instantiating solver" not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    "bin_override,message",
    [
        ([], r"config key metrics\.visqol\.bin"),
        (["metrics.visqol.bin=/no/such/visqol"], r"ViSQOL binary not found at /no/such/visqol"),
    ],
)
def test_visqol_without_its_binary_stops_before_the_solver_is_built(
    train, tmp_path, monkeypatch, bin_override, message
):
    monkeypatch.chdir(tmp_path)
    cfg = train.main._get_config(["solver=compression/debug", "evaluate.metrics.visqol=true", *bin_override])
    train.check_config(cfg)
    with pytest.raises(train.ConfigError, match=rf"^evaluate\.metrics\.visqol=true but ViSQOL cannot run: .*{message}"):
        try:
            train.get_solver(cfg)
        except train.ConfigError as exc:
            assert "metrics.visqol.bin=" in str(exc) and "evaluate.metrics.visqol=false" in str(exc)
            raise
    cfg = train.main._get_config(["solver=compression/debug", "evaluate.metrics.visqol=false", *bin_override])
    train.check_visqol(cfg)  # off: the binary is not looked for


def _fake_lm(cfg):
    return torch.nn.Linear(3, 1, bias=False)


def _training_checkpoint(path):
    save_checkpoint(
        {"best_state": {"model": {"weight": torch.arange(3.0).view(1, 3)}}, "xp.cfg": "solver: musicgen\n"}, path
    )
    return path


def test_export_import_and_os_errors_are_one_line(tmp_path, capsys, monkeypatch):
    ckpt = _training_checkpoint(tmp_path / "checkpoint.th")

    def missing_dependency(cfg):
        raise ModuleNotFoundError("No module named 'peft'", name="peft")

    monkeypatch.setattr(builders, "get_lm_model", missing_dependency, raising=False)
    assert export_main([str(ckpt), str(tmp_path / "lm.bin")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("audiocraft-export: a package this export needs is missing: No module named 'peft'")
    assert "Traceback" not in err and not (tmp_path / "lm.bin").exists()
    monkeypatch.setattr(builders, "get_lm_model", _fake_lm, raising=False)
    (tmp_path / "a_file").write_text("")
    assert export_main([str(ckpt), str(tmp_path / "a_file" / "lm.bin")]) == 1  # destination under a file
    err = capsys.readouterr().err
    assert err.startswith("audiocraft-export: ") and "a_file" in err and "nothing was written" in err
    assert "Traceback" not in err
    unreadable = tmp_path / "locked.th"
    unreadable.write_bytes(ckpt.read_bytes())
    unreadable.chmod(0)
    if os.access(unreadable, os.R_OK):  # root reads anything: use a folder in place of the file
        unreadable.chmod(0o644)
        unreadable = tmp_path / "folder.th"
        unreadable.mkdir()
    assert export_main([str(unreadable), str(tmp_path / "x.bin")]) in (1, 2)
    err = capsys.readouterr().err
    assert err.startswith("audiocraft-export: ") and unreadable.name in err and "Traceback" not in err


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_exported_package_mode_follows_the_umask(tmp_path, monkeypatch, umask):
    monkeypatch.setattr(builders, "get_lm_model", _fake_lm, raising=False)
    ckpt = _training_checkpoint(tmp_path / "checkpoint.th")
    old = os.umask(umask)
    try:
        assert export_main([str(ckpt), str(tmp_path / "lm.bin")]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "lm.bin").stat().st_mode & 0o777 == 0o666 & ~umask
    assert torch.load(tmp_path / "lm.bin", weights_only=True)["exported"] is True


def test_config_key_table_names_existing_keys(train):
    """Every key of the value table exists in the shipped compression config (no typo makes a check a no-op)."""
    cfg = train.main._get_config(["solver=compression/debug"])
    absent = {
        key for key in train._VALUE_CHECKS if omegaconf.OmegaConf.select(cfg, key, default="<absent>") == "<absent>"
    }
    assert absent == {f"dataset.{split}.batch_size" for split in ("train", "valid")}  # optional keys


def test_every_shipped_solver_config_passes_the_value_checks(train):
    # */default are bases that the other configs of their folder extend (as upstream), not run on their own
    names = [name for name in train.config_options("solver") if name.rpartition("/")[2] != "default"]
    assert "compression/debug" in names and "musicgen/musicgen_base_32khz" in names
    for name in names:
        train.check_values(train.main._get_config([f"solver={name}"]))
