"""EncodecModel passes the CompressionModel conformance checks, and checks its inputs."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import pytest
import torch

from audiocraft.models import CompressionModel, builders
from audiocraft.models.testing import CompressionModelContract


@cache
def _debug_model() -> CompressionModel:
    return builders.get_debug_compression_model(sample_rate=16000)


@cache
def _fixture_model() -> CompressionModel:
    path = Path(__file__).parents[1] / "fixtures" / "upstream" / "encodec_debug" / "checkpoint.th"
    return CompressionModel.get_pretrained(path)


class TestDebugEncodecContract(CompressionModelContract):
    def make_model(self) -> CompressionModel:
        return copy.deepcopy(_debug_model())


class TestUpstreamFixtureContract(CompressionModelContract):
    duration = 0.33  # not a whole number of frames

    def make_model(self) -> CompressionModel:
        return copy.deepcopy(_fixture_model())


def test_wrong_sample_rate_says_what_was_expected() -> None:
    model = _debug_model()
    with pytest.raises(ValueError, match="16000 Hz.*44100 Hz"):
        model.encode(torch.zeros(1, 1, 4410), sample_rate=44100)


def test_wrong_shapes_and_dtypes_are_named() -> None:
    model = _debug_model()
    with pytest.raises(ValueError, match=r"\[B, 1, T\].*\(1, 1600\)"):
        model.encode(torch.zeros(1, 1600))
    with pytest.raises(ValueError, match="floating point"):
        model.encode(torch.zeros(1, 1, 1600, dtype=torch.int16))
    with pytest.raises(ValueError, match="integer codes"):
        model.decode(torch.zeros(1, 4, 3))
    with pytest.raises(ValueError, match=r"got values in \[-1, 0\]"):
        model.decode(torch.tensor([[[0, -1, 0]]]))


def test_renormalize_scales_back() -> None:
    from audiocraft.models.encodec import EncodecModel

    base = copy.deepcopy(_debug_model())
    model = EncodecModel(
        base.encoder, base.decoder, base.quantizer, frame_rate=25, sample_rate=16000, channels=1, renormalize=True
    ).eval()
    x = 0.3 * torch.sin(torch.linspace(0, 600, 16000))[None, None]
    with torch.no_grad():
        codes, scale = model.encode(x)
        codes_loud, scale_loud = model.encode(4 * x)
        y = model.decode(codes, scale)
        y_loud = model.decode(codes_loud, scale_loud)
    assert scale is not None and scale.shape == (1, 1)
    torch.testing.assert_close(scale_loud, 4 * scale)
    assert torch.equal(codes, codes_loud)  # the normalised input is the same
    torch.testing.assert_close(y_loud, 4 * y)
    with pytest.raises(ValueError, match="does not renormalize"):
        base.decode(codes, scale)
