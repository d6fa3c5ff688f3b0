"""Loading exported compression models from every source, and failing clearly on bad checkpoints."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from audiocraft.models import CompressionModel, loaders
from audiocraft.models.loaders import CheckpointError, load_compression_model, migrate_cfg


def _codes(model: CompressionModel, upstream) -> np.ndarray:
    with torch.no_grad():
        return model.encode(upstream.wav("input_odd.wav"))[0].numpy()


def test_local_file_and_folder(tmp_path, upstream) -> None:
    folder = tmp_path / "release"
    folder.mkdir()
    (folder / "compression_state_dict.bin").write_bytes(upstream.checkpoint.read_bytes())
    for source in (upstream.checkpoint, str(upstream.checkpoint), folder):
        model = load_compression_model(source)
        assert not model.training
        np.testing.assert_array_equal(_codes(model, upstream), upstream.npy("codes_odd.npy"))
    with pytest.raises(CheckpointError, match="neither compression_state_dict.bin"):
        load_compression_model(tmp_path)


def test_pretrained_prefix_uses_argument_then_env(tmp_path, monkeypatch, upstream) -> None:
    root = tmp_path / "pretrained"
    (root / "encodec_debug").mkdir(parents=True)
    (root / "encodec_debug" / "checkpoint.th").write_bytes(upstream.checkpoint.read_bytes())
    model = load_compression_model("//pretrained/encodec_debug/checkpoint.th", pretrained_dir=root)
    np.testing.assert_array_equal(_codes(model, upstream), upstream.npy("codes_odd.npy"))
    monkeypatch.setenv("AUDIOCRAFT_PRETRAINED_DIR", str(root))
    model = CompressionModel.get_pretrained("//pretrained/encodec_debug/checkpoint.th")
    np.testing.assert_array_equal(_codes(model, upstream), upstream.npy("codes_odd.npy"))
    monkeypatch.delenv("AUDIOCRAFT_PRETRAINED_DIR")
    assert loaders.resolve_pretrained("//pretrained/debug_compression_model") == "debug_compression_model"
    assert load_compression_model("//pretrained/debug_compression_model").frame_rate == 25


def _fake_hub(monkeypatch, path, calls: list) -> None:
    fake = types.ModuleType("huggingface_hub")

    def hf_hub_download(**kwargs):
        calls.append(kwargs)
        if kwargs["local_files_only"] and kwargs["repo_id"] == "someone/not-cached":
            raise FileNotFoundError("not in the local cache")
        return str(path)

    fake.hf_hub_download = hf_hub_download  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)


def test_hub_repo_through_huggingface_hub(tmp_path, monkeypatch, upstream) -> None:
    calls: list = []
    _fake_hub(monkeypatch, upstream.checkpoint, calls)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    model = load_compression_model("someone/encodec-debug", cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(_codes(model, upstream), upstream.npy("codes_odd.npy"))
    assert calls[-1]["repo_id"] == "someone/encodec-debug"
    assert calls[-1]["filename"] == "compression_state_dict.bin"
    assert calls[-1]["cache_dir"] == tmp_path / "cache"
    assert calls[-1]["local_files_only"] is False


def test_hub_offline_mode_uses_only_the_cache(monkeypatch, upstream) -> None:
    calls: list = []
    _fake_hub(monkeypatch, upstream.checkpoint, calls)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("AUDIOCRAFT_CACHE_DIR", "/some/cache")
    load_compression_model("someone/cached")
    assert calls[-1]["local_files_only"] is True and calls[-1]["cache_dir"] == "/some/cache"
    with pytest.raises(CheckpointError, match="someone/not-cached.*HF_HUB_OFFLINE"):
        load_compression_model("someone/not-cached")


def test_hub_without_the_extra_names_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ImportError, match=r"audiocraft-models\[hub\]"):
        load_compression_model("someone/encodec-debug")


def test_mistyped_local_path_is_not_looked_up_on_the_hub(tmp_path, monkeypatch) -> None:
    calls: list = []
    _fake_hub(monkeypatch, tmp_path / "never", calls)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "release").mkdir()
    for typo in ("release/compresion_state_dict.bin", "relaese/compression_state_dict.bin", "release/model"):
        with pytest.raises(CheckpointError, match=f"no such file or folder: {typo}.*not looked up on the hub"):
            load_compression_model(typo)
    assert calls == []


def test_safetensors_package(tmp_path, upstream) -> None:
    from safetensors.torch import save_file

    pkg = torch.load(upstream.checkpoint, weights_only=True)
    path = tmp_path / "encodec.safetensors"
    save_file(pkg["best_state"], str(path), metadata={"xp.cfg": pkg["xp.cfg"], "version": pkg["version"]})
    model = load_compression_model(path)
    np.testing.assert_array_equal(_codes(model, upstream), upstream.npy("codes_odd.npy"))


def test_corrupt_file_is_named(tmp_path) -> None:
    bad = tmp_path / "broken.th"
    bad.write_bytes(b"this is not a torch checkpoint")
    with pytest.raises(CheckpointError, match="broken.th"):
        load_compression_model(bad)
    with pytest.raises(CheckpointError, match="not an existing file"):
        load_compression_model(str(tmp_path / "missing.th"))


def test_pickled_objects_are_refused(tmp_path) -> None:
    path = tmp_path / "pickle.th"
    torch.save({"xp.cfg": "a: 1", "best_state": {}, "evil": types.SimpleNamespace(a=1)}, path)
    with pytest.raises(CheckpointError, match="pickle.th"):
        load_compression_model(path)


def test_other_architecture_names_missing_and_unexpected_keys(tmp_path, upstream) -> None:
    pkg = torch.load(upstream.checkpoint, weights_only=True)
    state = pkg["best_state"]
    state = {k: v for k, v in state.items() if "encoder.model.13.lstm" not in k}  # as if built with lstm=0
    state["encoder.extra.weight"] = torch.zeros(1)
    pkg["best_state"] = state
    torch.save(pkg, tmp_path / "other.th")
    with pytest.raises(
        CheckpointError,
        match=r"other.th.*missing keys \['encoder.model.13.lstm.weight_ih_l0'"
        r".*unexpected keys \['encoder.extra.weight'\]",
    ):
        load_compression_model(tmp_path / "other.th")
    pkg["best_state"] = dict(torch.load(upstream.checkpoint, weights_only=True)["best_state"])
    pkg["best_state"]["quantizer.vq.layers.0._codebook.embed"] = torch.zeros(512, 16)
    torch.save(pkg, tmp_path / "shape.th")
    with pytest.raises(CheckpointError, match=r"codebook.embed: checkpoint \(512, 16\) vs model \(1024, 16\)"):
        load_compression_model(tmp_path / "shape.th")


def test_package_without_config_is_explained(tmp_path, upstream) -> None:
    pkg = torch.load(upstream.checkpoint, weights_only=True)
    del pkg["xp.cfg"]
    torch.save(pkg, tmp_path / "nocfg.th")
    with pytest.raises(CheckpointError, match="nocfg.th has no 'xp.cfg'"):
        load_compression_model(tmp_path / "nocfg.th")


def test_migrate_cfg_removes_keys_of_old_versions(tmp_path, upstream) -> None:
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"encodec": {"renorm": None, "sample_rate": 16000}})
    migrate_cfg(cfg, "0.0.2a1")
    assert "renorm" not in cfg.encodec
    cfg = OmegaConf.create({"encodec": {"renorm": None}})
    migrate_cfg(cfg, "audiocraft-models/0.1.0")
    assert "renorm" in cfg.encodec  # our own checkpoints never need it
    # An old upstream checkpoint with the removed key still loads.
    pkg = torch.load(upstream.checkpoint, weights_only=True)
    old = OmegaConf.create(pkg["xp.cfg"])
    old.encodec.renorm = None
    pkg["xp.cfg"], pkg["version"] = OmegaConf.to_yaml(old), "0.0.2"
    torch.save(pkg, tmp_path / "old.th")
    assert load_compression_model(tmp_path / "old.th").sample_rate == 16000


def test_get_pretrained_debug_name() -> None:
    model = CompressionModel.get_pretrained("debug_compression_model")
    assert model.frame_rate == 25 and model.sample_rate == 32000 and not model.training


def test_named_models_are_one_table_of_kinds(monkeypatch) -> None:
    assert {"debug_compression_model", "dac_44khz", "dac_24khz", "dac_16khz"} <= set(loaders.NAMED_MODELS)
    assert all(named.kind in loaders.MODEL_KINDS for named in loaders.NAMED_MODELS.values())
    with pytest.raises(CheckpointError, match="'debug_compression_model' is a compression model, not a lm model"):
        loaders.load_lm_model("debug_compression_model")
    # get_pretrained only delegates: a name added to the table is found by it.
    debug = loaders.NAMED_MODELS["debug_compression_model"]
    monkeypatch.setitem(loaders.NAMED_MODELS, "my_codec", debug)
    assert CompressionModel.get_pretrained("my_codec").frame_rate == 25
    with pytest.raises(ValueError, match="unknown model kind 'vocoder'"):
        loaders.load_model("vocoder", "debug_compression_model")
