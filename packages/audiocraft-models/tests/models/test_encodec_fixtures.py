"""The upstream golden EnCodec fixture: strict loading, exact codes, float outputs within atol 1e-4."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiocraft.models import CompressionModel, EncodecModel

ATOL = 1e-4


def _close(upstream, actual: torch.Tensor, name: str) -> None:
    expected = upstream.npy(name)
    assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
    np.testing.assert_allclose(actual.numpy(), expected, atol=ATOL, rtol=0, err_msg=name)


def test_checkpoint_loads_strictly_with_upstream_keys(upstream, golden_model: EncodecModel) -> None:
    pkg = torch.load(upstream.checkpoint, weights_only=True)
    assert isinstance(golden_model, EncodecModel)
    assert not golden_model.training
    state = golden_model.state_dict()
    assert sorted(state) == sorted(pkg["best_state"])
    assert len(state) == 116
    assert sum(p.numel() for p in golden_model.parameters()) == 231_982
    for key, value in pkg["best_state"].items():
        assert torch.equal(state[key], value), key
    assert golden_model.frame_rate == 50 and golden_model.sample_rate == 16000 and golden_model.channels == 1
    assert golden_model.cardinality == 1024 and golden_model.num_codebooks == golden_model.total_codebooks == 4


@pytest.mark.parametrize("suffix", ["", "_odd"])
def test_codes_are_exactly_upstream(upstream, golden_model: EncodecModel, suffix: str) -> None:
    x = upstream.wav(f"input{suffix}.wav")
    with torch.no_grad():
        codes, scale = golden_model.encode(x)
    assert scale is None
    assert codes.dtype == torch.int64
    np.testing.assert_array_equal(codes.numpy(), upstream.npy(f"codes{suffix}.npy"))


def test_latents_and_audio_match_upstream(upstream, golden_model: EncodecModel) -> None:
    x = upstream.wav("input.wav")
    codes = torch.from_numpy(upstream.npy("codes.npy"))
    with torch.no_grad():
        _close(upstream, golden_model.encoder(x), "encoder_out.npy")
        _close(upstream, golden_model.decode_latent(codes), "quantized_latent.npy")
        _close(upstream, golden_model.decode(codes, None), "decoded.npy")
        _close(upstream, golden_model(x).x, "forward_out.npy")


def test_odd_length_decode_is_untrimmed_and_forward_trimmed(upstream, golden_model: EncodecModel) -> None:
    x = upstream.wav("input_odd.wav")
    assert x.shape[-1] == 19752
    codes = torch.from_numpy(upstream.npy("codes_odd.npy"))
    with torch.no_grad():
        decoded = golden_model.decode(codes, None)
        out = golden_model(x).x
    assert decoded.shape[-1] == 62 * 320
    _close(upstream, decoded, "decoded_odd.npy")
    _close(upstream, out, "forward_out_odd.npy")


def test_parametrization_layout_loads_to_the_same_model(upstream, tmp_path, golden_model: EncodecModel) -> None:
    pkg = torch.load(upstream.checkpoint, weights_only=True)
    renamed = {}
    for key, value in pkg["best_state"].items():
        key = key.replace(".weight_g", ".parametrizations.weight.original0")
        key = key.replace(".weight_v", ".parametrizations.weight.original1")
        renamed[key] = value
    assert any("parametrizations" in k for k in renamed)
    pkg["best_state"] = renamed
    torch.save(pkg, tmp_path / "param.th")
    model = CompressionModel.get_pretrained(tmp_path / "param.th")
    x = upstream.wav("input.wav")
    with torch.no_grad():
        codes, _ = model.encode(x)
        _close(upstream, model.decode(codes), "decoded.npy")
    np.testing.assert_array_equal(codes.numpy(), upstream.npy("codes.npy"))
    assert sorted(model.state_dict()) == sorted(golden_model.state_dict())  # saved back in upstream's layout


def test_folded_weight_norm_gives_the_same_outputs(upstream, golden_model: EncodecModel) -> None:
    import copy

    model = copy.deepcopy(golden_model)
    n_weight_normed = sum(k.endswith(".weight_g") for k in golden_model.state_dict())
    assert n_weight_normed == 28
    assert model.fold_weight_norm() == n_weight_normed
    assert not any(k.endswith(("weight_g", "weight_v")) for k in model.state_dict())
    x = upstream.wav("input.wav")
    with torch.no_grad():
        codes, _ = model.encode(x)
        _close(upstream, model.decode(codes), "decoded.npy")
    np.testing.assert_array_equal(codes.numpy(), upstream.npy("codes.npy"))
