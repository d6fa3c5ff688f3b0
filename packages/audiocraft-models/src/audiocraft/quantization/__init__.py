"""Quantizers for compression models (layer: audiocraft-models).

``ResidualVectorQuantizer`` (EnCodec's RVQ with EMA codebooks), ``DummyQuantizer`` and the ``QuantizedResult`` they
return.
"""

from .base import BaseQuantizer, DummyQuantizer, QuantizedResult
from .vq import ResidualVectorQuantizer

__all__ = ["BaseQuantizer", "DummyQuantizer", "QuantizedResult", "ResidualVectorQuantizer"]
