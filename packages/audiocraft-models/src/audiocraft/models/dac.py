"""Wrapper exposing Descript's DAC codec as a CompressionModel (layer: audiocraft-models, models; extra ``[dac]``).

Inference only: the pretrained weights are fetched by the ``dac`` package itself (``dac.utils.load_model``).
``dac`` is imported when a :class:`DAC` is created, never at module import.
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from ..quantization import QuantizedResult
from ..quantization.vq import check_codes
from .encodec import CompressionModel

__all__ = ["DAC"]


def _import_dac_utils() -> Any:
    try:
        return importlib.import_module("dac.utils")
    except ImportError as exc:
        raise ImportError("the DAC wrapper needs the `dac` package: pip install 'audiocraft-models[dac]'") from exc


class DAC(CompressionModel):
    """Descript Audio Codec, for encoding and decoding only.

    Args:
        model_type: ``44khz``, ``24khz`` or ``16khz``.
        model: an already loaded ``dac.DAC`` model (then ``model_type`` is ignored and nothing is downloaded).
    """

    def __init__(self, model_type: str = "44khz", model: Any | None = None) -> None:
        super().__init__()
        if model is None:
            model = _import_dac_utils().load_model(model_type=model_type)
        self.model = model
        self.n_quantizers = self.total_codebooks
        self.model.eval()

    def forward(self, x: torch.Tensor) -> QuantizedResult:
        """Not supported: DAC is wrapped for inference only."""
        raise NotImplementedError("training through the DAC wrapper is not supported")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Audio [B, 1, T] -> (codes [B, num_codebooks, F], None)."""
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"DAC expects mono audio [B, 1, T], got shape {tuple(x.shape)}")
        codes = self.model.encode(x, self.n_quantizers)[1]
        return codes[:, : self.n_quantizers], None

    def decode(self, codes: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """Codes [B, K, F] -> audio [B, 1, T]."""
        if scale is not None:
            raise ValueError("DAC does not use a scale")
        return self.model.decode(self.decode_latent(codes))

    def decode_latent(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, K, F] -> latent [B, D, F]."""
        check_codes(codes, self.cardinality, self.total_codebooks)
        return self.model.quantizer.from_codes(codes)[0]

    @property
    def channels(self) -> int:
        """Always 1."""
        return 1

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return self.model.sample_rate / self.model.hop_length

    @property
    def sample_rate(self) -> int:
        """Audio sample rate."""
        return int(self.model.sample_rate)

    @property
    def cardinality(self) -> int:
        """Codebook size."""
        return int(self.model.codebook_size)

    @property
    def num_codebooks(self) -> int:
        """Codebooks in use."""
        return self.n_quantizers

    @property
    def total_codebooks(self) -> int:
        """Codebooks available."""
        return int(self.model.n_codebooks)

    def set_num_codebooks(self, n: int) -> None:
        """Use the first ``n`` codebooks."""
        if not 1 <= n <= self.total_codebooks:
            raise ValueError(f"number of codebooks must be in [1, {self.total_codebooks}], got {n}")
        self.n_quantizers = n
