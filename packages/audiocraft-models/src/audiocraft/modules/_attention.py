"""Streaming multi-head attention and its key/value cache (layer: audiocraft-models, modules; private).

Part of :mod:`audiocraft.modules.transformer` (which re-exports every public name here under upstream's path; see its
docstring for the deliberate differences from upstream): :class:`StreamingMultiheadAttention` (one implementation
for every mode on ``[B, H, T, D]`` tensors, the streaming key/value cache in geometrically grown buffers, cached
cross-attention keys/values), the efficient-attention backend default and :func:`expand_repeated_kv`.
"""

from __future__ import annotations

import contextvars
import typing as tp

import torch
from torch import nn
from torch.nn import functional as F

from ._packed_linear import pack_linear, pack_weight, packed_linear, packed_module
from .rope import RotaryEmbedding
from .streaming import StreamingModule

__all__ = [
    "StreamingMultiheadAttention",
    "expand_repeated_kv",
    "get_efficient_attention_backend",
    "set_efficient_attention_backend",
]

_BACKENDS = ("torch", "xformers")
# Upstream's process-wide default for the efficient-attention backend, kept for callers of
# `set_efficient_attention_backend`. It is read when a module is built; our builders pass `attention_backend`.
_DEFAULT_BACKEND: contextvars.ContextVar[str] = contextvars.ContextVar("audiocraft_attention_backend", default="torch")
_MIN_CACHE = 64  # smallest key/value buffer, in steps
# scaled_dot_product_attention(enable_gqa=) exists from torch 2.5 (the package allows torch >= 2.1).
_SDPA_GQA = tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 5)


def set_efficient_attention_backend(backend: str = "torch") -> None:
    """Set the default ``attention_backend`` of the attention modules built afterwards (upstream's API).

    Both ``'torch'`` and ``'xformers'`` run :func:`torch.nn.functional.scaled_dot_product_attention`; xformers is
    never imported. An explicit ``attention_backend`` argument of a constructor wins over this default.

    Args:
        backend (str): ``'torch'`` or ``'xformers'``.
    """
    _DEFAULT_BACKEND.set(_check_backend(backend))


def get_efficient_attention_backend() -> str:
    """The current default set by :func:`set_efficient_attention_backend` (``'torch'`` unless set)."""
    return _DEFAULT_BACKEND.get()


def _check_backend(backend: str) -> str:
    if backend not in _BACKENDS:
        raise ValueError(f"unknown attention backend {backend!r}, expected one of {list(_BACKENDS)}")
    return backend


def expand_repeated_kv(x: torch.Tensor, n_rep: int, memory_efficient: bool = True) -> torch.Tensor:
    """Repeat each key/value head ``n_rep`` times (``repeat_interleave`` on the heads dimension).

    Args:
        x (torch.Tensor): ``[B, H, T, D]`` if ``memory_efficient`` else ``[B, T, H, D]`` (upstream's layouts).
        n_rep (int): repetitions.
        memory_efficient (bool): selects the layout, as upstream.

    Returns:
        torch.Tensor: ``n_rep`` times more heads.
    """
    if n_rep == 1:
        return x
    dim = 1 if memory_efficient else 2
    return x.repeat_interleave(n_rep, dim=dim)


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a is b:
        return True
    return a.shape == b.shape and a.dtype == b.dtype and a.device == b.device and bool(torch.equal(a, b))


class StreamingMultiheadAttention(StreamingModule):
    """Multi-head attention with causal masking, a finite receptive field and streaming (a key/value cache).

    Args:
        embed_dim (int): model dimension.
        num_heads (int): number of query heads.
        dropout (float): attention dropout.
        bias (bool): biases in the input and output projections.
        causal (bool): causal mask.
        past_context (int or None): a query at ``t`` sees keys ``t - past_context .. t`` (causal only).
        custom (bool): own projection parameters (``in_proj_weight``, ``out_proj``) and explicit softmax attention.
            Otherwise the parameters live in an ``nn.MultiheadAttention`` named ``mha`` (upstream's layout); its
            keys without the ``mha.`` prefix also load.
        memory_efficient (bool): ``scaled_dot_product_attention`` (implies ``custom``'s parameter layout).
        attention_as_float32 (bool): compute the attention in float32.
        rope (RotaryEmbedding or None): rotary embedding of queries and keys.
        cross_attention (bool): keys/values come from another sequence, given whole; streaming is over queries.
        safe_streaming (bool): on CUDA, compute streaming attention scores in float32 (upstream's option).
        qk_layer_norm (bool): layer norm of queries and keys (over the model dimension) before attention.
        kv_repeat (int): each key/value head serves ``kv_repeat`` query heads (grouped attention).
        device (torch.device or None): device.
        dtype (torch.dtype or None): dtype.
        attention_backend (str or None): ``'torch'`` or ``'xformers'`` (both run PyTorch's kernel); None takes the
            default of :func:`set_efficient_attention_backend`.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        causal: bool = False,
        past_context: int | None = None,
        custom: bool = False,
        memory_efficient: bool = False,
        attention_as_float32: bool = False,
        rope: RotaryEmbedding | None = None,
        cross_attention: bool = False,
        safe_streaming: bool = True,
        qk_layer_norm: bool = False,
        kv_repeat: int = 1,
        device=None,
        dtype=None,
        attention_backend: str | None = None,
    ) -> None:
        super().__init__()
        factory: dict[str, tp.Any] = {"device": device, "dtype": dtype}
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not a multiple of num_heads {num_heads}")
        if past_context is not None and not causal:
            raise ValueError("past_context needs causal=True")
        if cross_attention and (causal or rope is not None):
            raise ValueError("cross attention cannot be causal nor use rope")
        if num_heads % kv_repeat or (kv_repeat > 1 and (cross_attention or qk_layer_norm)):
            raise ValueError(
                f"kv_repeat={kv_repeat} must divide num_heads={num_heads} and excludes cross "
                "attention and qk_layer_norm"
            )
        self.embed_dim, self.num_heads, self.kv_repeat = embed_dim, num_heads, kv_repeat
        self.causal, self.past_context, self.cross_attention = causal, past_context, cross_attention
        self.memory_efficient, self.attention_as_float32 = memory_efficient, attention_as_float32
        self.rope, self.safe_streaming, self.dropout = rope, safe_streaming, dropout
        self.attention_backend = _check_backend(attention_backend or get_efficient_attention_backend())
        self.custom = custom or memory_efficient
        head_dim = embed_dim // num_heads
        self._kv_dim = head_dim * (num_heads // kv_repeat)
        if self.custom:
            # A bare parameter, as upstream (LMModel's init then leaves it at nn.Linear's default init).
            in_proj = nn.Linear(embed_dim, embed_dim + 2 * self._kv_dim, bias=bias, **factory)
            self.in_proj_weight = in_proj.weight
            self.in_proj_bias = in_proj.bias
            self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
            if bias:
                self.in_proj_bias.data.zero_()
                self.out_proj.bias.data.zero_()
        else:
            if kv_repeat > 1 or qk_layer_norm:
                raise ValueError("kv_repeat and qk_layer_norm need custom=True or memory_efficient=True")
            # Only the parameters (and their init) of nn.MultiheadAttention are used, never its forward.
            self.mha = nn.MultiheadAttention(
                embed_dim, num_heads, dropout=dropout, bias=bias, batch_first=True, **factory
            )
        self.qk_layer_norm = qk_layer_norm
        if qk_layer_norm:
            self.q_layer_norm = nn.LayerNorm(embed_dim, **factory)
            self.k_layer_norm = nn.LayerNorm(embed_dim, **factory)
        # oneDNN copies of the weights of every step (query or q/k/v projection, output projection), set by
        # set_packed_weights for the time of a CPU generation; not parameters, not in the state dict.
        self._packed_in: torch.Tensor | None = None
        self._packed_out: torch.Tensor | None = None

    def set_packed_weights(self, rows: int | None) -> None:
        """Pack the projections that run at every streaming step for inputs of ``rows`` rows (None: drop them).

        The input projection packed is the whole q/k/v one for self-attention, the query part only for cross
        attention (its keys/values are computed once per source). See ``modules._packed_linear``.

        Args:
            rows (int or None): expected rows per call (batch size of a generation step); None frees the copies.
        """
        if rows is None:
            self._packed_in = self._packed_out = None
            return
        weight, _, out_proj = self._projections()
        self._packed_in = pack_weight(weight[: self.embed_dim] if self.cross_attention else weight, rows)
        self._packed_out = pack_linear(out_proj, rows)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        if not self.custom:  # accept nn.MultiheadAttention's keys at this level, as upstream
            for name, _ in self.mha.named_parameters():
                if prefix + name in state_dict:
                    state_dict[prefix + "mha." + name] = state_dict.pop(prefix + name)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _projections(self) -> tuple[torch.Tensor, torch.Tensor | None, nn.Linear]:
        if self.custom:
            return self.in_proj_weight, self.in_proj_bias, self.out_proj
        return self.mha.in_proj_weight, self.mha.in_proj_bias, self.mha.out_proj

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, h * D] -> [B, h, T, D]."""
        return x.unflatten(-1, (-1, self.embed_dim // self.num_heads)).transpose(1, 2)

    def _project(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        weight, bias, _ = self._projections()
        if query.dtype != weight.dtype:  # e.g. float32 attention parameters in a bf16 model, as upstream allows
            key_is_query, value_is_key = key is query, value is key
            query = query.to(weight.dtype)
            key = query if key_is_query else key.to(weight.dtype)
            value = key if value_is_key else value.to(weight.dtype)
        e, kv = self.embed_dim, self._kv_dim
        cuts = [0, e, e + kv, e + 2 * kv]

        def linear(x: torch.Tensor, i: int) -> torch.Tensor:
            b = None if bias is None else bias[cuts[i] : cuts[i + 1]]
            packed = self._packed_in if i == 0 and self.cross_attention else None  # the query part, packed
            return packed_linear(x, weight[cuts[i] : cuts[i + 1]], b, packed)

        if query is key and key is value and not self.cross_attention:
            q, k, v = packed_linear(query, weight, bias, self._packed_in).split([e, kv, kv], dim=-1)
        else:
            q = linear(query, 0)
            if self.cross_attention and self._cached_cross(key, value):
                return self._heads(self.q_layer_norm(q) if self.qk_layer_norm else q), None, None
            k, v = linear(key, 1), linear(value, 2)
        if self.qk_layer_norm:
            q, k = self.q_layer_norm(q), self.k_layer_norm(k)
        return self._heads(q), self._heads(k), self._heads(v)

    def _cached_cross(self, key: torch.Tensor, value: torch.Tensor) -> bool:
        state = self._streaming_state
        if not self._is_streaming or "cross_keys" not in state:
            return False
        return _same_tensor(key, state["cross_key_src"]) and _same_tensor(value, state["cross_value_src"])

    def _cache_meta(self, batch: int) -> tuple[int, int]:
        """(number of cached steps, absolute position of the first one) of the streaming cache."""
        state = self._streaming_state
        if "meta" not in state:
            return 0, 0
        if state["keys"].shape[0] != batch:
            raise ValueError(f"streaming batch size changed from {state['keys'].shape[0]} to {batch}")
        filled, start = state["meta"][0].tolist()
        return filled, start

    def _append_kv(
        self,
        k: torch.Tensor,
        v: torch.Tensor,
        filled: int,
        start: int,
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Add the new keys/values (at positions ``start + filled..``) to the cache.

        Returns:
            The keys and values a query may attend to, and the absolute position of the first one.
        """
        state = self._streaming_state
        batch, steps = k.shape[0], k.shape[2]
        pos = start + filled
        keep = 0  # cache entries before `keep` are out of every future query's window
        if self.past_context is not None:
            keep = min(filled, max(0, pos - self.past_context - start))
        if "keys" not in state:
            keys, values = k.new_empty(0), v.new_empty(0)
        else:
            keys, values = state["keys"], state["values"]
        if torch.is_grad_enabled() and (k.requires_grad or v.requires_grad):
            # Autograd may hold the previous views: concatenate rather than write in place.
            keys = torch.cat([keys[:, :, keep:filled], k], dim=2) if filled else k
            values = torch.cat([values[:, :, keep:filled], v], dim=2) if filled else v
            start, filled, keep = start + keep, filled - keep + steps, 0
        elif keys.dim() != 4 or filled + steps > keys.shape[2]:
            # New buffers (never writing into the old ones keeps earlier get_streaming_state() snapshots valid).
            live = filled - keep
            capacity = max(_MIN_CACHE, 2 * (live + steps))
            new_keys = k.new_empty(batch, k.shape[1], capacity, k.shape[3])
            new_values = v.new_empty(batch, v.shape[1], capacity, v.shape[3])
            if live:
                new_keys[:, :, :live] = keys[:, :, keep:filled]
                new_values[:, :, :live] = values[:, :, keep:filled]
            new_keys[:, :, live : live + steps] = k
            new_values[:, :, live : live + steps] = v
            keys, values = new_keys, new_values
            start, filled, keep = start + keep, live + steps, 0
        else:
            keys[:, :, filled : filled + steps] = k
            values[:, :, filled : filled + steps] = v
            filled += steps
        state["keys"], state["values"] = keys, values
        state["meta"] = torch.tensor([[filled, start]], dtype=torch.long).expand(batch, 2)
        return keys[:, :, keep:filled], values[:, :, keep:filled], start + keep

    def _causal_mask(
        self,
        q_pos: int,
        steps: int,
        k_pos: int,
        keys: int,
        device: torch.device,
    ) -> torch.Tensor | None:
        """Boolean ``[T, S]`` mask (True = attend) of a causal query block, None when nothing is masked."""
        if steps == 1 and (self.past_context is None or q_pos - k_pos <= self.past_context):
            return None  # one query at the end of the keys: it sees them all
        delta = (
            torch.arange(q_pos, q_pos + steps, device=device)[:, None]
            - torch.arange(k_pos, k_pos + keys, device=device)[None, :]
        )
        allowed = delta >= 0
        if self.past_context is not None:
            allowed &= delta <= self.past_context
        return allowed

    def _user_mask(
        self, attn_mask: torch.Tensor | None, key_padding_mask: torch.Tensor | None, batch: int, steps: int, keys: int
    ) -> torch.Tensor | None:
        """nn.MultiheadAttention's conventions (bool True = masked out, float = added) -> additive float mask."""
        mask = None
        for m in (attn_mask, key_padding_mask):
            if m is None:
                continue
            if m is key_padding_mask:
                m = m[:, None, None, :]
            else:
                if m.dim() == 3:
                    m = m.view(batch, self.num_heads, *m.shape[1:])
                m = m[..., :steps, :keys]  # as upstream: masks padded to a multiple of 8 are cut
            if m.dtype == torch.bool:
                m = torch.zeros(m.shape, device=m.device).masked_fill(m, float("-inf"))
            mask = m if mask is None else mask + m
        return mask

    def _attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, is_causal: bool
    ) -> torch.Tensor:
        if self.attention_as_float32:
            q, k, v = q.float(), k.float(), v.float()
        if mask is not None and mask.dtype != torch.bool:
            mask = mask.to(q.dtype)
        p = self.dropout if self.training else 0.0
        rep = self.kv_repeat
        if self.memory_efficient:
            if rep > 1 and _SDPA_GQA:  # grouped heads without copying the cache
                return F.scaled_dot_product_attention(
                    q, k, v, attn_mask=mask, dropout_p=p, is_causal=is_causal, enable_gqa=True
                )
            if rep > 1:
                k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=is_causal)
        if is_causal:
            mask = self._causal_mask(0, q.shape[2], 0, k.shape[2], q.device)
        batch, heads, steps, head_dim = q.shape
        grouped = rep > 1 and (mask is None or mask.dim() == 2)
        if grouped:  # the `rep` query heads of a key/value head become rows of one matrix product
            q = q.reshape(batch, heads // rep, rep * steps, head_dim)
            mask = None if mask is None else mask.repeat(rep, 1)
        elif rep > 1:
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        q = q / head_dim**0.5
        if self._is_streaming and self.safe_streaming and q.device.type == "cuda":
            scores = q.float() @ k.float().transpose(-1, -2)
        else:
            scores = q @ k.transpose(-1, -2)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
        weights = F.dropout(torch.softmax(scores, dim=-1), p, training=self.training)
        out = weights.to(v.dtype) @ v
        return out.view(batch, heads, steps, head_dim) if grouped else out

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = False,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, None]:
        """Attend from ``query`` ``[B, T, C]`` to ``key``/``value`` ``[B, S, C]``.

        Args:
            query (torch.Tensor): queries.
            key (torch.Tensor): keys (the same tensor as ``query`` for self-attention).
            value (torch.Tensor): values.
            key_padding_mask (torch.Tensor or None): ``[B, S]``, True (or -inf) where a key is padding.
            need_weights (bool): ignored (no weights are returned, as upstream).
            attn_mask (torch.Tensor or None): ``[T, S]`` or ``[B * H, T, S]``, True (or -inf) where masked out;
                combined with the causal mask. Not supported while streaming.
            average_attn_weights (bool): ignored.
            is_causal (bool): must be False; causality is a constructor argument.

        Returns:
            tuple[torch.Tensor, None]: ``[B, T, C]`` and None.
        """
        if is_causal:
            raise ValueError("StreamingMultiheadAttention takes causal=True in its constructor, not is_causal")
        streaming = self._is_streaming
        if streaming and not (self.causal or self.cross_attention):
            raise ValueError("streaming needs a causal or a cross attention")
        if streaming and (attn_mask is not None or key_padding_mask is not None):
            raise ValueError("attn_mask and key_padding_mask are not supported while streaming")
        batch, steps, _ = query.shape
        q, k, v = self._project(query, key, value)
        user_mask = self._user_mask(attn_mask, key_padding_mask, batch, steps, key.shape[1])
        causal_block = False
        if k is None or v is None:  # cross attention, cached
            k, v = self._streaming_state["cross_keys"], self._streaming_state["cross_values"]
        elif self.cross_attention:
            if streaming:
                self._streaming_state.update(cross_key_src=key, cross_value_src=value, cross_keys=k, cross_values=v)
        else:
            if self.causal and k.shape[2] != steps:
                raise ValueError(f"causal attention needs as many keys as queries, got {k.shape[2]} and {steps}")
            filled, start = self._cache_meta(batch) if streaming else (0, 0)
            pos = k_pos = start + filled
            if self.rope is not None:
                q, k = self.rope.rotate_qk(q, k, start=pos, time_dim=2)
            if streaming:
                k, v, k_pos = self._append_kv(k, v, filled, start)
            if self.causal:
                causal_block = user_mask is None and pos == k_pos and self.past_context is None
                if not causal_block:
                    causal = self._causal_mask(pos, steps, k_pos, k.shape[2], q.device)
                    if causal is not None and user_mask is not None:
                        user_mask = user_mask.masked_fill(~causal, float("-inf"))
                    elif causal is not None:
                        user_mask = causal
        out_proj = self._projections()[2]
        x = self._attend(q, k, v, user_mask, causal_block and steps > 1).to(out_proj.weight.dtype)
        out = packed_module(x.transpose(1, 2).flatten(2), out_proj, self._packed_out)
        return out.to(query.dtype), None
