"""Rotary positional embeddings, with the optional xPos decay (layer: audiocraft-models, modules).

Feature pairs ``(x[2i], x[2i + 1])`` of every head are rotated by ``t * frequencies[i]`` at time step ``t``, with
``frequencies[i] = max_period ** (-2i / dim)``. ``scale`` blends the rotation with the identity
(``rotation * scale + (1 - scale)``; 0 turns the embedding off). With xPos, queries are also multiplied by
``decay_rates[i] ** (t / base_scale)`` and keys by its inverse, so that a query/key product decays with their
distance. Buffers ``frequencies`` and ``xpos.decay_rates`` are part of the state dict, as upstream.

The cos/sin tables are cached on the module for the largest position seen so far (they are not buffers).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RotaryEmbedding", "XPos"]


def _time_shape(x: torch.Tensor, time_dim: int) -> list[int]:
    """Shape that broadcasts a ``[T, C/2]`` table over ``x``'s real (or imaginary) parts along ``time_dim``."""
    shape = [1] * x.dim()
    shape[time_dim % x.dim()] = x.shape[time_dim]
    shape[-1] = x.shape[-1] // 2
    return shape


def _check_args(name: str, dim: int, dtype: torch.dtype) -> None:
    if dim % 2:
        raise ValueError(f"{name} dim must be even, got {dim}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{name} dtype must be float32 or float64, got {dtype}")


class XPos(nn.Module):
    """Length-extrapolatable decay of xPos (Sun et al. 2022, https://arxiv.org/abs/2212.10554v1).

    Args:
        dim (int): embedding dimension (per head), even.
        smoothing (float): smoothing of the decay rates.
        base_scale (int): time scale of the decay, in steps.
        device (torch.device or None): device of the buffer.
        dtype (torch.dtype): float32 or float64, the precision of the decay computation.
    """

    def __init__(
        self, dim: int, smoothing: float = 0.4, base_scale: int = 512, device=None, dtype: torch.dtype = torch.float32
    ) -> None:
        super().__init__()
        _check_args("XPos", dim, dtype)
        self.dtype = dtype
        self.base_scale = base_scale
        half = dim // 2
        rates = (torch.arange(half, device=device, dtype=dtype) / half + smoothing) / (1.0 + smoothing)
        self.register_buffer("decay_rates", rates)
        self._decay: torch.Tensor | None = None

    def get_decay(self, start: int, end: int) -> torch.Tensor:
        """Decay factors ``[end - start, dim / 2]`` for positions ``start..end - 1`` (real, not complex)."""
        rates: torch.Tensor = self.decay_rates  # type: ignore[assignment]
        cache = self._decay
        if cache is None or cache.shape[0] < end or cache.device != rates.device:
            steps = torch.arange(
                max(end, 2 * (cache.shape[0] if cache is not None else 0)), device=rates.device, dtype=self.dtype
            )
            cache = rates ** (steps / self.base_scale).unsqueeze(-1)
            self._decay = cache
        return cache[start:end]


class RotaryEmbedding(nn.Module):
    """Rotary positional embedding (Su et al. 2021, https://arxiv.org/abs/2104.09864).

    Args:
        dim (int): embedding dimension per head (twice the number of frequencies), even.
        max_period (float): maximum period of the rotations.
        xpos (bool): apply the xPos decay.
        scale (float): strength of the embedding, 0 turns it off.
        device (torch.device or None): device of the buffers.
        dtype (torch.dtype): float32 or float64, the precision of the rotation.
    """

    def __init__(
        self,
        dim: int,
        max_period: float = 10000.0,
        xpos: bool = False,
        scale: float = 1.0,
        device=None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        _check_args("RotaryEmbedding", dim, dtype)
        self.scale = scale
        self.dtype = dtype
        exponents = torch.arange(0, dim, 2, device=device, dtype=dtype)[: dim // 2] / dim
        self.register_buffer("frequencies", 1.0 / (max_period**exponents))
        self.xpos = XPos(dim, device=device, dtype=dtype) if xpos else None
        self._cos_sin: tuple[torch.Tensor, torch.Tensor] | None = None

    def get_rotation(self, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Cosines and sines ``[end - start, dim / 2]`` of the rotation angles of positions ``start..end - 1``."""
        freqs: torch.Tensor = self.frequencies  # type: ignore[assignment]
        cache = self._cos_sin
        if cache is None or cache[0].shape[0] < end or cache[0].device != freqs.device:
            # Grow geometrically: streaming asks for one more position at every step.
            length = max(end, 2 * (cache[0].shape[0] if cache is not None else 0))
            angles = torch.outer(torch.arange(length, device=freqs.device, dtype=self.dtype), freqs)
            cache = (torch.cos(angles), torch.sin(angles))
            self._cos_sin = cache
        return cache[0][start:end], cache[1][start:end]

    def rotate(self, x: torch.Tensor, start: int = 0, time_dim: int = 1, invert_decay: bool = False) -> torch.Tensor:
        """Rotate ``x`` (last dim = features of one head) whose step ``j`` along ``time_dim`` is position ``start + j``.

        Args:
            x (torch.Tensor): queries or keys, e.g. ``[B, T, H, D]`` (``time_dim=1``) or ``[B, H, T, D]`` (2).
            start (int): absolute position of the first step.
            time_dim (int): the time dimension of ``x``.
            invert_decay (bool): use the inverse xPos decay (keys).

        Returns:
            torch.Tensor: the rotated tensor, same shape and dtype as ``x``.
        """
        steps = x.shape[time_dim]
        cos, sin = self.get_rotation(start, start + steps)
        if self.xpos is not None:
            decay = self.xpos.get_decay(start, start + steps).to(self.dtype)
            if invert_decay:
                decay = decay.reciprocal()
            cos, sin = cos * decay, sin * decay
        shape = _time_shape(x, time_dim)
        cos = (cos * self.scale + (1.0 - self.scale)).view(shape)
        sin = (sin * self.scale).view(shape)
        pairs = x.to(self.dtype).unflatten(-1, (-1, 2))
        real, imag = pairs[..., 0], pairs[..., 1]
        out = torch.stack([real * cos - imag * sin, real * sin + imag * cos], dim=-1).flatten(-2)
        return out.type_as(x)

    def rotate_qk(
        self, query: torch.Tensor, key: torch.Tensor, start: int = 0, time_dim: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate queries and keys; the queries are the last ``query.shape[time_dim]`` positions of the keys.

        Args:
            query (torch.Tensor): queries, ``Tq`` steps along ``time_dim``.
            key (torch.Tensor): keys, ``Tk >= Tq`` steps, the first at position ``start``.
            start (int): absolute position of the first key.
            time_dim (int): the time dimension of both tensors.

        Returns:
            tuple[torch.Tensor, torch.Tensor]: the rotated queries and keys.
        """
        shift = key.shape[time_dim] - query.shape[time_dim]
        return (self.rotate(query, start + shift, time_dim), self.rotate(key, start, time_dim, invert_decay=True))
