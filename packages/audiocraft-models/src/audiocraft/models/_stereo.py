"""Stereo through a mono compression model, codes of both channels interleaved (layer: audiocraft-models, models).

:class:`InterleaveStereoCompressionModel` is upstream AudioCraft's wrapper used by the stereo MusicGen checkpoints
(``facebook/musicgen-stereo-*``): the mono model encodes left and right separately and the two code streams are
interleaved, on the codebook axis (``[B, 2K, T]``: left k, right k, left k+1, ...) or, with ``per_timestep``, on
the time axis (``[B, K, 2T]``). Upstream's path ``audiocraft.models.encodec.InterleaveStereoCompressionModel``
re-exports it. :func:`wrap_compression_model` applies a training config's ``interleave_stereo_codebooks`` and
``compression_model_n_q`` keys, as upstream's ``builders.get_wrapped_compression_model``.

Deliberate difference from upstream: ``decode`` reads the per-channel scales as ``scale[:, 0]`` / ``scale[:, 1]``,
the layout ``encode`` returns; upstream indexes the batch axis (``scale[0]``), which is only harmless because
MusicGen's codecs do not renormalise (their scale is None). Bad shapes raise a ValueError naming them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..quantization import QuantizedResult
from .encodec import CompressionModel

__all__ = ["InterleaveStereoCompressionModel", "wrap_compression_model"]


class InterleaveStereoCompressionModel(CompressionModel):
    """A stereo compression model made of a mono one applied to each channel.

    Args:
        model: the mono compression model.
        per_timestep: interleave left/right codes on the time axis instead of the codebook axis.

    Raises:
        ValueError: if ``model`` is not mono.
    """

    def __init__(self, model: CompressionModel, per_timestep: bool = False) -> None:
        super().__init__()
        if model.channels != 1:
            raise ValueError(f"InterleaveStereoCompressionModel wraps a mono model, got {model.channels} channels")
        self.model = model
        self.per_timestep = per_timestep

    @property
    def total_codebooks(self) -> int:  # type: ignore[override]
        """Codebooks of the mono model (before interleaving)."""
        return self.model.total_codebooks

    @property
    def num_codebooks(self) -> int:  # type: ignore[override]
        """Codebooks of the interleaved codes (twice the mono model's unless ``per_timestep``)."""
        return self.model.num_codebooks if self.per_timestep else 2 * self.model.num_codebooks

    def set_num_codebooks(self, n: int) -> None:
        """Set the codebooks in use of the mono model (before interleaving)."""
        self.model.set_num_codebooks(n)

    @property
    def num_virtual_steps(self) -> int:
        """Code steps per frame of the mono model: 2 with ``per_timestep``, else 1."""
        return 2 if self.per_timestep else 1

    @property
    def frame_rate(self) -> float:  # type: ignore[override]
        """Code steps per second (the mono model's, times :attr:`num_virtual_steps`)."""
        return self.model.frame_rate * self.num_virtual_steps

    @property
    def sample_rate(self) -> int:  # type: ignore[override]
        """Sample rate of the mono model."""
        return self.model.sample_rate

    @property
    def channels(self) -> int:  # type: ignore[override]
        """Always 2."""
        return 2

    @property
    def cardinality(self) -> int:  # type: ignore[override]
        """Codebook size of the mono model."""
        return self.model.cardinality

    def forward(self, x: torch.Tensor) -> QuantizedResult:
        """Not supported (as upstream): use :meth:`encode` and :meth:`decode`."""
        raise NotImplementedError("InterleaveStereoCompressionModel has no forward; use encode and decode")

    def _interleave(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        both = torch.stack([left, right], dim=-1)  # [B, K, T, 2]
        if self.per_timestep:
            return both.flatten(-2)  # [B, K, 2T]: t0 left, t0 right, t1 left...
        return both.transpose(-1, -2).flatten(1, 2)  # [B, 2K, T]: k0 left, k0 right, k1 left...

    def get_left_right_codes(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Split interleaved codes into the codes of the left and of the right channel."""
        B, K, T = codes.shape
        if self.per_timestep:
            both = codes.view(B, K, T // 2, 2)
            return both[..., 0], both[..., 1]
        both = codes.view(B, K // 2, 2, T)
        return both[:, :, 0], both[:, :, 1]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Stereo audio ``[B, 2, T]`` -> interleaved codes and scales ``[B, 2, 1]`` (or None)."""
        if x.dim() != 3 or x.shape[1] != 2:
            raise ValueError(f"expected stereo audio of shape [B, 2, T], got shape {tuple(x.shape)}")
        left, scale_left = self.model.encode(x[:, :1])
        right, scale_right = self.model.encode(x[:, 1:])
        scale = None
        if scale_left is not None and scale_right is not None:
            scale = torch.stack([scale_left, scale_right], dim=1)
        return self._interleave(left, right), scale

    def decode(self, codes: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """Interleaved codes -> stereo audio ``[B, 2, T]``."""
        if codes.dim() != 3:
            raise ValueError(f"expected codes of shape [B, K, T], got shape {tuple(codes.shape)}")
        B, K, T = codes.shape
        if T % self.num_virtual_steps:
            raise ValueError(f"codes interleaved per timestep need an even number of steps, got {T}")
        if K != self.num_codebooks:
            raise ValueError(f"expected {self.num_codebooks} interleaved codebooks, got {K}")
        scale_left = scale_right = None
        if scale is not None:
            if scale.shape[0] != B or scale.shape[1] != 2:
                raise ValueError(f"expected scales of shape [B, 2, ...], got shape {tuple(scale.shape)}")
            scale_left, scale_right = scale[:, 0], scale[:, 1]
        left, right = self.get_left_right_codes(codes)
        return torch.cat([self.model.decode(left, scale_left), self.model.decode(right, scale_right)], dim=1)

    def decode_latent(self, codes: torch.Tensor) -> torch.Tensor:
        """Not supported (as upstream): the two channels have separate latents."""
        raise NotImplementedError("decode_latent is not supported by the interleaved stereo wrapper")


def wrap_compression_model(compression_model: CompressionModel, cfg: Mapping[str, Any] | Any) -> CompressionModel:
    """Apply a training config's stereo interleaving and codebook count to a loaded compression model.

    Args:
        compression_model: the (mono) compression model.
        cfg: the LM's training config: ``interleave_stereo_codebooks.use`` (with the wrapper's arguments beside
            it) wraps the model; ``compression_model_n_q``, if set, is the number of codebooks in use.

    Returns:
        The wrapped model, or ``compression_model`` itself.
    """
    stereo = cfg.get("interleave_stereo_codebooks") if hasattr(cfg, "get") else None
    if stereo is not None and stereo.get("use", False):
        kwargs = {str(k): v for k, v in stereo.items() if k != "use"}
        compression_model = InterleaveStereoCompressionModel(compression_model, **kwargs)
    n_q = cfg.get("compression_model_n_q") if hasattr(cfg, "get") else None
    if n_q is not None:
        compression_model.set_num_codebooks(int(n_q))
    return compression_model
