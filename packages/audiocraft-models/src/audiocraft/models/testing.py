"""Conformance tests for CompressionModel implementations (layer: audiocraft-models, models; test support).

Subclass :class:`CompressionModelContract` in a pytest test module and implement :meth:`make_model`; pytest then
runs every ``test_*`` method against your model. Set ``supports_forward = False`` for inference-only wrappers.
pytest is imported only when the checks run, so this module costs nothing to import.
"""

from __future__ import annotations

from typing import Any

import torch

from ..quantization import QuantizedResult
from .encodec import CompressionModel

__all__ = ["CompressionModelContract"]


class CompressionModelContract:
    """Mixin of pytest checks every :class:`CompressionModel` must pass.

    Attributes:
        duration: seconds of random audio fed to the model.
        batch_size: batch size of that audio.
        supports_forward: whether ``model(x)`` is implemented (training-capable models).
    """

    duration: float = 0.5
    batch_size: int = 2
    supports_forward: bool = True

    def make_model(self) -> CompressionModel:
        """Return the model under test, in eval mode."""
        raise NotImplementedError("subclasses return the CompressionModel to check")

    def _audio(self, model: CompressionModel, channels: int | None = None) -> torch.Tensor:
        gen = torch.Generator().manual_seed(1234)
        length = int(self.duration * model.sample_rate)
        return 0.1 * torch.randn(self.batch_size, channels or model.channels, length, generator=gen)

    def _frames(self, model: CompressionModel, length: int) -> int:
        hop = model.sample_rate / model.frame_rate
        return int(-(-length // hop))

    def test_properties(self) -> None:
        """Sample rate, channels, frame rate, cardinality and codebook counts are valid."""
        model = self.make_model()
        assert isinstance(model, CompressionModel)
        assert isinstance(model.sample_rate, int) and model.sample_rate > 0
        assert isinstance(model.channels, int) and model.channels >= 1
        assert model.frame_rate > 0
        assert model.cardinality > 1
        assert 1 <= model.num_codebooks <= model.total_codebooks

    def test_encode_gives_codes_in_range(self) -> None:
        """`encode` of ``[B, C, T]`` audio gives integer codes ``[B, K, frames]`` in ``[0, cardinality)``."""
        model = self.make_model()
        x = self._audio(model)
        with torch.no_grad():
            codes, _ = model.encode(x)
        assert codes.shape == (self.batch_size, model.num_codebooks, self._frames(model, x.shape[-1]))
        assert not codes.is_floating_point()
        assert int(codes.min()) >= 0 and int(codes.max()) < model.cardinality

    def test_decode_gives_audio_of_the_frames_length(self) -> None:
        """`decode` gives finite ``[B, C, frames * hop]`` audio; `decode_latent` keeps batch and frames."""
        model = self.make_model()
        x = self._audio(model)
        with torch.no_grad():
            codes, scale = model.encode(x)
            y = model.decode(codes, scale)
            latent = model.decode_latent(codes)
        hop = model.sample_rate / model.frame_rate
        assert y.shape[:2] == (self.batch_size, model.channels)
        assert y.shape[-1] == int(codes.shape[-1] * hop)
        assert torch.isfinite(y).all()
        assert latent.shape[0] == self.batch_size and latent.shape[-1] == codes.shape[-1]

    def test_fewer_codebooks(self) -> None:
        """`set_num_codebooks(1)` gives one codebook; more than `total_codebooks` is a ValueError."""
        model = self.make_model()
        x = self._audio(model)
        before = model.num_codebooks
        try:
            model.set_num_codebooks(1)
            assert model.num_codebooks == 1
            with torch.no_grad():
                codes, scale = model.encode(x)
                y = model.decode(codes, scale)
            assert codes.shape[1] == 1
            assert y.shape[1] == model.channels
        finally:
            model.set_num_codebooks(before)
        import pytest

        with pytest.raises(ValueError):
            model.set_num_codebooks(model.total_codebooks + 1)

    def test_rejects_wrong_channel_count(self) -> None:
        """Audio with the wrong channel count is a ValueError naming the expected count."""
        import pytest

        model = self.make_model()
        x = self._audio(model, channels=model.channels + 1)
        with pytest.raises(ValueError, match=str(model.channels)):
            model.encode(x)

    def test_rejects_codes_out_of_range(self) -> None:
        """Codes past the cardinality or too many codebooks are a ValueError."""
        import pytest

        model = self.make_model()
        frames = 3
        bad = torch.full((1, model.num_codebooks, frames), model.cardinality, dtype=torch.long)
        with pytest.raises(ValueError, match=str(model.cardinality - 1)):
            model.decode(bad)
        too_many = torch.zeros((1, model.total_codebooks + 1, frames), dtype=torch.long)
        with pytest.raises(ValueError, match="codebooks"):
            model.decode(too_many)

    def test_forward_reconstructs_input_length(self) -> None:
        """``model(x)`` gives a `QuantizedResult` of ``x``'s shape (NotImplementedError for inference-only models)."""
        model = self.make_model()
        if not self.supports_forward:
            import pytest

            with pytest.raises(NotImplementedError):
                model(self._audio(model))
            return
        x = self._audio(model)
        with torch.no_grad():
            res: Any = model(x)
        assert isinstance(res, QuantizedResult)
        assert res.x.shape == x.shape
        assert res.codes.shape[0] == self.batch_size
        assert res.bandwidth.numel() == 1 and float(res.bandwidth) > 0
