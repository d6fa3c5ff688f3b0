"""Building compression models from composed configs (the sections of upstream's model/encodec/* groups)."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from audiocraft.models import builders
from audiocraft.models.encodec import EncodecModel
from audiocraft.modules.seanet import SEANetDecoder, SEANetEncoder
from audiocraft.quantization import DummyQuantizer, ResidualVectorQuantizer


@pytest.fixture
def cfg(upstream):
    """The full composed config stored in the upstream fixture (solver=compression/debug)."""
    pkg = torch.load(upstream.checkpoint, weights_only=True)
    return OmegaConf.create(pkg["xp.cfg"])


def test_builds_the_upstream_debug_encodec(cfg) -> None:
    model = builders.get_compression_model(cfg)
    assert isinstance(model, EncodecModel)
    assert isinstance(model.encoder, SEANetEncoder) and isinstance(model.decoder, SEANetDecoder)
    assert isinstance(model.quantizer, ResidualVectorQuantizer)
    assert model.causal and not model.renormalize
    assert model.frame_rate == 16000 // 320 == 50 and isinstance(model.frame_rate, int)
    assert model.encoder.dimension == 16 and model.quantizer.dimension == 16
    assert model.quantizer.n_q == 4 and model.quantizer.q_dropout and model.quantizer.kmeans_iters == 50
    # Interpolations (${channels}, ${encodec.causal}) were resolved into plain values.
    assert model.encoder.channels == 1 and model.decoder.channels == 1


def test_encoder_and_decoder_overrides(cfg) -> None:
    cfg.seanet.encoder = {"n_filters": 8}
    cfg.seanet.decoder.final_activation = "Tanh"
    model = builders.get_compression_model(cfg)
    assert model.encoder.n_filters == 8 and model.decoder.n_filters == 4
    assert isinstance(model.decoder.model[-1], torch.nn.Tanh)


def test_no_quant_builds_a_dummy_quantizer(cfg) -> None:
    cfg.encodec.quantizer = "no_quant"
    model = builders.get_compression_model(cfg)
    assert isinstance(model.quantizer, DummyQuantizer)
    x = torch.randn(1, 1, 3200)
    res = model(x)
    assert res.x.shape == x.shape


def test_plain_dict_config_is_accepted(cfg) -> None:
    plain = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(plain, dict)
    model = builders.get_compression_model(plain)
    assert model.quantizer.bins == 1024


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("compression_model", "wavtokenizer", "expected one of \\['encodec'\\]"),
        ("encodec.autoencoder", "unet", "expected one of \\['seanet'\\]"),
        ("encodec.quantizer", "fsq", "expected one of \\['no_quant', 'rvq'\\]"),
    ],
)
def test_unknown_names_list_the_valid_ones(cfg, key: str, value: str, message: str) -> None:
    OmegaConf.update(cfg, key, value)
    with pytest.raises(ValueError, match=message):
        builders.get_compression_model(cfg)


def test_unknown_section_key_is_named(cfg) -> None:
    OmegaConf.set_struct(cfg, False)
    cfg.rvq.codebook_dimension = 8
    with pytest.raises(ValueError, match="codebook_dimension.*'rvq'"):
        builders.get_compression_model(cfg)


def test_causal_renormalize_is_rejected(cfg) -> None:
    cfg.encodec.renormalize = True
    with pytest.raises(ValueError, match="renormalize"):
        builders.get_compression_model(cfg)


def test_debug_model_is_deterministic_and_initialised() -> None:
    a = builders.get_debug_compression_model(sample_rate=16000)
    b = builders.get_debug_compression_model(sample_rate=16000)
    assert a.frame_rate == 25 and a.encoder.hop_length == 640
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    assert all(float(layer.inited) == 1.0 for layer in a.quantizer.vq.layers)
    with pytest.raises(ValueError, match="16000, 32000"):
        builders.get_debug_compression_model(sample_rate=44100)
