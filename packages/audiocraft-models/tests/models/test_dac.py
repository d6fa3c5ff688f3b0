"""The DAC model (on transformers' DacModel): CompressionModel contract, and parity with descript's original DAC.

The parity fixture (tests/fixtures/dac_original, see its README) was made with descript-audio-codec 1.0.0: a tiny
random original model saved in descript's weights-file layout, and the codes / latent / audio it gives for a fixed
input. Our model, loaded from that file through the key conversion, must give the same codes and the same audio.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from audiocraft.models.dac import DAC, convert_descript_state_dict, descript_weights_path, load_descript_dac
from audiocraft.models.testing import CompressionModelContract

FIXTURE = Path(__file__).parent.parent / "fixtures" / "dac_original"


def _tiny_dac_model():
    from transformers import DacConfig, DacModel

    torch.manual_seed(0)
    config = DacConfig(
        encoder_hidden_size=4,
        downsampling_ratios=[2, 4],
        decoder_hidden_size=16,
        n_codebooks=3,
        codebook_size=16,
        codebook_dim=4,
        sampling_rate=8000,
    )
    return DacModel(config)


class TestDacContract(CompressionModelContract):
    supports_forward = False

    def make_model(self) -> DAC:
        return DAC(model=_tiny_dac_model())


@pytest.fixture(scope="module")
def original() -> dict[str, torch.Tensor]:
    return torch.load(FIXTURE / "outputs.pt", weights_only=True)


def test_original_weights_give_the_original_codes_and_audio(original) -> None:
    model = DAC(weights_path=FIXTURE / "weights_tiny.pth")
    assert (model.sample_rate, model.frame_rate, model.cardinality, model.total_codebooks) == (8000, 1000.0, 16, 3)
    with torch.no_grad():
        codes, scale = model.encode(original["audio"])
        latent = model.decode_latent(codes)
        audio = model.decode(codes)
        model.set_num_codebooks(2)
        codes_2, _ = model.encode(original["audio"])
    assert scale is None
    assert codes.dtype == torch.long and torch.equal(codes, original["codes"])
    assert torch.equal(codes_2, original["codes_2"])
    assert original["codes"].unique().numel() == 16  # the fixture exercises every code
    assert (latent - original["latent"]).abs().max() < 1e-4
    assert audio.shape == original["decoded"].shape == (2, 1, 2000)
    assert (audio - original["decoded"]).abs().max() < 1e-4


def test_conversion_covers_every_parameter_and_folds_weight_norm() -> None:
    pkg = torch.load(FIXTURE / "weights_tiny.pth", weights_only=True)
    state = convert_descript_state_dict(pkg["state_dict"], n_blocks=2)
    expected = set(_tiny_dac_model().state_dict())
    assert set(state) == expected
    g, v = pkg["state_dict"]["encoder.block.0.weight_g"], pkg["state_dict"]["encoder.block.0.weight_v"]
    norms = state["encoder.conv1.weight"].flatten(1).norm(dim=1)
    assert torch.allclose(norms, g.flatten(), atol=1e-5) and not torch.allclose(norms, v.flatten(1).norm(dim=1))
    with pytest.raises(ValueError, match=r"unexpected key 'encoder.block.9.bias'"):
        convert_descript_state_dict({**pkg["state_dict"], "encoder.block.9.bias": torch.zeros(1)}, n_blocks=2)


def test_bad_weight_files_are_named(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_descript_dac(tmp_path / "missing.pth")
    torch.save({"best_state": {}}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"other.pth is not a descript DAC weights file"):
        load_descript_dac(tmp_path / "other.pth")
    pkg = torch.load(FIXTURE / "weights_tiny.pth", weights_only=True)
    pkg["metadata"]["kwargs"]["decoder_rates"] = [2, 4]
    torch.save(pkg, tmp_path / "odd.pth")
    with pytest.raises(ValueError, match=r"odd.pth: decoder_rates=\[2, 4\] must be encoder_rates=\[2, 4\] reversed"):
        load_descript_dac(tmp_path / "odd.pth")


def test_named_model_is_looked_up_locally_only(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    hub = tmp_path / "hub"
    with pytest.raises(FileNotFoundError, match=r"weights_16khz_8kbps_0.0.5.pth.*descript/dac_16khz"):
        DAC("16khz", cache_dir=hub)
    # A transformers snapshot in the Hugging Face cache layout is found without any connection.
    snapshot = hub / "models--descript--dac_16khz" / "snapshots" / "0123abcd"
    hf_model = _tiny_dac_model()
    hf_model.save_pretrained(snapshot)
    (hub / "models--descript--dac_16khz" / "refs").mkdir()
    (hub / "models--descript--dac_16khz" / "refs" / "main").write_text("0123abcd")
    from_hub = DAC("16khz", cache_dir=hub)
    assert torch.equal(
        from_hub.model.quantizer.quantizers[0].codebook.weight, hf_model.quantizer.quantizers[0].codebook.weight
    )
    assert torch.equal(DAC(weights_path=snapshot).model.decoder.conv2.weight, hf_model.decoder.conv2.weight)
    # The file descript's own package would have downloaded comes first.
    target = descript_weights_path("16khz")
    target.parent.mkdir(parents=True)
    target.write_bytes((FIXTURE / "weights_tiny.pth").read_bytes())
    from_descript = DAC("16khz", cache_dir=hub)
    original = torch.load(FIXTURE / "weights_tiny.pth", weights_only=True)["state_dict"]
    assert torch.equal(
        from_descript.model.quantizer.quantizers[0].codebook.weight, original["quantizer.quantizers.0.codebook.weight"]
    )
    with pytest.raises(ValueError, match="model_type='8khz'"):
        DAC("8khz")


def test_get_pretrained_passes_cache_dir_to_dac(tmp_path, monkeypatch) -> None:
    import huggingface_hub

    from audiocraft.models import CompressionModel, loaders

    monkeypatch.setenv("HOME", str(tmp_path))  # no descript weights file
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "default_hub"))  # empty
    hub = tmp_path / "my_cache"
    snapshot = hub / "models--descript--dac_24khz" / "snapshots" / "0123abcd"
    hf_model = _tiny_dac_model()
    hf_model.save_pretrained(snapshot)
    (hub / "models--descript--dac_24khz" / "refs").mkdir()
    (hub / "models--descript--dac_24khz" / "refs" / "main").write_text("0123abcd")
    with pytest.raises(FileNotFoundError, match="DAC 24khz weights not found locally"):
        CompressionModel.get_pretrained("dac_24khz")  # the hub's default cache is empty
    for model in (
        CompressionModel.get_pretrained("dac_24khz", cache_dir=hub),
        loaders.load_compression_model("dac_24khz", cache_dir=str(hub)),
        loaders.load_compression_model(
            "//pretrained/dac_24khz", cache_dir=hub, pretrained_dir=tmp_path / "no_pretrained"
        ),
    ):
        assert isinstance(model, DAC) and not model.training
        assert torch.equal(
            model.model.quantizer.quantizers[0].codebook.weight, hf_model.quantizer.quantizers[0].codebook.weight
        )


def test_missing_transformers_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError, match=r"pip install 'audiocraft-models\[dac\]'"):
        DAC(weights_path=FIXTURE / "weights_tiny.pth")
