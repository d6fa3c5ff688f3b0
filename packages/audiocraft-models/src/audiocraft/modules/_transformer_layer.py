"""Transformer layer: attention, feed-forward, norms and LayerScale (layer: audiocraft-models, modules; private).

Part of :mod:`audiocraft.modules.transformer` (which re-exports every public name here under upstream's path):
:class:`StreamingTransformerLayer` with upstream's attribute names (``self_attn``, ``cross_attention``, ``norm_cross``,
``linear1``, ``linear2``, ``norm1``, ``norm2``, ``layer_scale_1``...), :class:`LayerScale` and :func:`create_norm_fn`.
"""

from __future__ import annotations

import typing as tp

import torch
from torch import nn
from torch.nn import functional as F

from ._attention import StreamingMultiheadAttention
from ._packed_linear import pack_linear, packed_module
from .activations import CustomGLU
from .rope import RotaryEmbedding
from .streaming import StreamingModule

__all__ = ["LayerScale", "StreamingTransformerLayer", "create_norm_fn"]


def _layer_norm(dim: int, **kwargs: tp.Any) -> nn.Module:
    return nn.LayerNorm(dim, eps=1e-5, **kwargs)


_NORMS: dict[str, tp.Callable[..., nn.Module]] = {"layer_norm": _layer_norm}


def create_norm_fn(norm_type: str, dim: int, **kwargs: tp.Any) -> nn.Module:
    """Normalization module of a transformer layer.

    Args:
        norm_type (str): ``'layer_norm'`` (the only type upstream defines).
        dim (int): normalized dimension.
        **kwargs: passed to the module (``device``, ``dtype``).

    Returns:
        nn.Module: the normalization.
    """
    if norm_type not in _NORMS:
        raise ValueError(f"unknown norm type {norm_type!r}, expected one of {sorted(_NORMS)}")
    return _NORMS[norm_type](dim, **kwargs)


class LayerScale(nn.Module):
    """Learnt per-channel scale of a residual branch (Touvron et al. 2021), initialised to ``init``.

    Args:
        channels (int): number of channels.
        init (float): initial scale.
        channel_last (bool): ``[*, C]`` inputs if True, else ``[*, C, T]``.
        device (torch.device or None): device.
        dtype (torch.dtype or None): dtype.
    """

    def __init__(self, channels: int, init: float = 1e-4, channel_last: bool = True, device=None, dtype=None) -> None:
        super().__init__()
        self.channel_last = channel_last
        self.scale = nn.Parameter(torch.full((channels,), init, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale ``x`` channel-wise."""
        return self.scale * x if self.channel_last else self.scale[:, None] * x


_ACTIVATIONS: dict[str, tp.Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "gelu": F.gelu}


class StreamingTransformerLayer(StreamingModule):
    """Transformer layer (self-attention, optional cross-attention, feed-forward) with streaming support.

    Attribute names follow ``nn.TransformerEncoderLayer`` and upstream, so state dicts are interchangeable.

    Args:
        d_model (int): model dimension.
        num_heads (int): number of heads.
        dim_feedforward (int): hidden size of the feed-forward block (the output of ``linear1``; with a GLU
            activation, ``linear2`` takes half of it).
        dropout (float): dropout of the residual branches (and of the attention unless ``attention_dropout``).
        bias_ff (bool): biases in the feed-forward linears.
        bias_attn (bool): biases in the attention projections.
        causal (bool): causal self-attention.
        past_context (int or None): receptive field of the causal self-attention.
        custom (bool): see :class:`StreamingMultiheadAttention`.
        memory_efficient (bool): see :class:`StreamingMultiheadAttention`.
        attention_as_float32 (bool): attention in float32.
        qk_layer_norm (bool): layer norm of queries/keys in the self-attention.
        qk_layer_norm_cross (bool): the same in the cross-attention.
        cross_attention (bool): add a cross-attention block (``cross_attention``, ``norm_cross``).
        layer_scale (float or None): initial LayerScale of every residual branch, None for none.
        rope (RotaryEmbedding or None): rotary embedding of the self-attention.
        attention_dropout (float or None): attention dropout, defaults to ``dropout``.
        kv_repeat (int): grouped keys/values of the self-attention.
        norm (str): normalization type (see :func:`create_norm_fn`).
        device (torch.device or None): device.
        dtype (torch.dtype or None): dtype.
        activation (str or callable): ``'relu'``, ``'gelu'``, a callable or a module (e.g. a GLU).
        norm_first (bool): pre-norm if True, else post-norm.
        layer_norm_eps (float): accepted for ``nn.TransformerEncoderLayer`` compatibility; as upstream, the norms
            use 1e-5.
        bias (bool): accepted for ``nn.TransformerEncoderLayer`` compatibility, unused (as upstream).
        attention_backend (str or None): see :class:`StreamingMultiheadAttention`.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        bias_ff: bool = True,
        bias_attn: bool = True,
        causal: bool = False,
        past_context: int | None = None,
        custom: bool = False,
        memory_efficient: bool = False,
        attention_as_float32: bool = False,
        qk_layer_norm: bool = False,
        qk_layer_norm_cross: bool = False,
        cross_attention: bool = False,
        layer_scale: float | None = None,
        rope: RotaryEmbedding | None = None,
        attention_dropout: float | None = None,
        kv_repeat: int = 1,
        norm: str = "layer_norm",
        device=None,
        dtype=None,
        activation: str | tp.Callable[[torch.Tensor], torch.Tensor] = "relu",
        norm_first: bool = False,
        layer_norm_eps: float = 1e-5,
        bias: bool = True,
        attention_backend: str | None = None,
    ) -> None:
        super().__init__()
        factory: dict[str, tp.Any] = {"device": device, "dtype": dtype}
        attn_kwargs: dict[str, tp.Any] = dict(
            embed_dim=d_model,
            num_heads=num_heads,
            dropout=dropout if attention_dropout is None else attention_dropout,
            bias=bias_attn,
            custom=custom,
            memory_efficient=memory_efficient,
            attention_as_float32=attention_as_float32,
            attention_backend=attention_backend,
            **factory,
        )
        self.self_attn = StreamingMultiheadAttention(
            causal=causal,
            past_context=past_context,
            rope=rope,
            qk_layer_norm=qk_layer_norm,
            kv_repeat=kv_repeat,
            **attn_kwargs,
        )
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise ValueError(
                    f"unknown activation {activation!r}: expected one of {sorted(_ACTIVATIONS)}, "
                    "'reglu'/'geglu'/'swiglu' through get_activation_fn, or a callable"
                )
            activation = _ACTIVATIONS[activation]
        self.activation = activation
        glu = isinstance(activation, CustomGLU)
        if glu and dim_feedforward % 2:
            raise ValueError(f"a GLU activation needs an even dim_feedforward, got {dim_feedforward}")
        self.linear1 = nn.Linear(d_model, dim_feedforward, bias=bias_ff, **factory)
        self.dropout = nn.Dropout(dropout)
        # A GLU halves its input: upstream sizes linear2 with dim_feedforward inputs and crashes.
        self.linear2 = nn.Linear(dim_feedforward // 2 if glu else dim_feedforward, d_model, bias=bias_ff, **factory)
        self.norm_first = norm_first
        self.norm1 = create_norm_fn(norm, d_model, **factory)
        self.norm2 = create_norm_fn(norm, d_model, **factory)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

        def scale() -> nn.Module:
            return nn.Identity() if layer_scale is None else LayerScale(d_model, layer_scale, **factory)

        self.layer_scale_1, self.layer_scale_2 = scale(), scale()
        self.cross_attention: StreamingMultiheadAttention | None = None
        if cross_attention:
            self.cross_attention = StreamingMultiheadAttention(
                cross_attention=True, qk_layer_norm=qk_layer_norm_cross, **attn_kwargs
            )
            self.dropout_cross = nn.Dropout(dropout)
            self.norm_cross = nn.LayerNorm(d_model, eps=1e-5, **factory)
            self.layer_scale_cross = scale()
        self._packed_ff: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)  # see set_packed_weights

    def set_packed_weights(self, rows: int | None) -> None:
        """Pack the weights of every step (attention projections, feed-forward) for ``rows`` input rows.

        Used by ``LMModel.generate`` on CPU for the time of a generation (see ``modules._packed_linear``).

        Args:
            rows (int or None): expected rows per call; None frees the packed copies.
        """
        self.self_attn.set_packed_weights(rows)
        if self.cross_attention is not None:
            self.cross_attention.set_packed_weights(rows)
        if rows is None:
            self._packed_ff = (None, None)
        else:
            self._packed_ff = (pack_linear(self.linear1, rows), pack_linear(self.linear2, rows))

    def _sa_block(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None, key_padding_mask: torch.Tensor | None
    ) -> torch.Tensor:
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask)[0]
        return self.dropout1(x)

    def _cross_attention_block(self, x: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
        assert self.cross_attention is not None
        return self.dropout_cross(self.cross_attention(x, src, src)[0])

    def _ff_block(self, x: torch.Tensor) -> torch.Tensor:
        packed1, packed2 = self._packed_ff
        x = packed_module(x, self.linear1, packed1)
        return self.dropout2(packed_module(self.dropout(self.activation(x)), self.linear2, packed2))

    def forward(
        self,
        src: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        src_key_padding_mask: torch.Tensor | None = None,
        cross_attention_src: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``[B, T, C]`` -> ``[B, T, C]``; ``cross_attention_src`` ``[B, S, C]`` is required iff cross attention."""
        if (self.cross_attention is None) != (cross_attention_src is None):
            raise ValueError("cross_attention_src must be given exactly when the layer has cross_attention=True")
        x = src
        if self.norm_first:
            x = x + self.layer_scale_1(self._sa_block(self.norm1(x), src_mask, src_key_padding_mask))
            if cross_attention_src is not None:
                x = x + self.layer_scale_cross(self._cross_attention_block(self.norm_cross(x), cross_attention_src))
            x = x + self.layer_scale_2(self._ff_block(self.norm2(x)))
        else:
            x = self.norm1(x + self.layer_scale_1(self._sa_block(x, src_mask, src_key_padding_mask)))
            if cross_attention_src is not None:
                # As upstream (checkpoints depend on it): post-norm cross attention queries with the layer input.
                x = self.norm_cross(x + self.layer_scale_cross(self._cross_attention_block(src, cross_attention_src)))
            x = self.norm2(x + self.layer_scale_2(self._ff_block(x)))
        return x
