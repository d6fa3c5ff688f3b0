"""Streaming transformer: causal or cross attention, rotary/sinusoidal positions, a key/value cache.

Layer: audiocraft-models, modules.

This module is upstream's path and holds :class:`StreamingTransformer`; the attention (and its key/value cache) is in
the private ``_attention`` module, the layer, norms and LayerScale in ``_transformer_layer``, and
:func:`create_sin_embedding` is the conditioners' (``audiocraft.conditioners.utils``, whose fuser uses it too).
Every public name stays importable from here.

Batch first everywhere (``[B, T, C]``). Upstream's constructor signatures, attribute names and state-dict keys are
kept (``layers.<i>.self_attn.in_proj_weight``, ``out_proj``, ``cross_attention.*``, ``norm_cross``, ``linear1``,
``linear2``, ``norm1``, ``norm2``, ``layer_scale_1.scale``, ``q_layer_norm``...), so upstream checkpoints load strictly.

Deliberate differences from upstream AudioCraft 1.3 (see docs/LM.md, "Transformer"):

* One attention implementation serves every mode, on ``[B, H, T, D]`` tensors. ``memory_efficient=True`` runs
  :func:`torch.nn.functional.scaled_dot_product_attention`; ``custom=True`` an explicit softmax(QK^T)V. xformers
  is never imported: the ``'xformers'`` backend name is accepted and runs the same PyTorch kernel.
* Streaming keeps keys/values in buffers that grow geometrically and are written in place (one position per step)
  instead of being concatenated at every step; cross-attention keys/values are computed on the first streaming
  step and reused while the same source is given.
* Fixed upstream bugs: the rope offset while streaming with the memory-efficient backend (upstream reads it from the
  heads dimension), ``past_context`` with the memory-efficient backend (ignored in batch mode, a crash when
  streaming), chunked streaming (several steps at once) with the memory-efficient backend (upstream raises), GLU
  activations (``linear2`` takes ``dim_feedforward // 2`` inputs), ``checkpointing`` (upstream asserts on an
  attribute that PyTorch layers do not have).
"""

from __future__ import annotations

import contextlib
import functools
import typing as tp

import torch
from torch import nn
from torch.utils import checkpoint as torch_checkpoint

from audiocraft.conditioners.utils import create_sin_embedding

from ._attention import (
    _MIN_CACHE,
    StreamingMultiheadAttention,
    expand_repeated_kv,
    get_efficient_attention_backend,
    set_efficient_attention_backend,
)
from ._transformer_layer import LayerScale, StreamingTransformerLayer, create_norm_fn
from .rope import RotaryEmbedding
from .streaming import StreamingModule

__all__ = [
    "LayerScale",
    "StreamingMultiheadAttention",
    "StreamingTransformer",
    "StreamingTransformerLayer",
    "create_norm_fn",
    "create_sin_embedding",
    "expand_repeated_kv",
    "get_efficient_attention_backend",
    "set_efficient_attention_backend",
]


# Operations whose outputs the 'xformers_*' checkpointing policies keep (upstream's lists, as aten ops).
_SAVED_OPS = {
    "xformers_default": (
        "aten.addmm.default",
        "aten.mm.default",
        "aten._scaled_dot_product_flash_attention.default",
        "aten._scaled_dot_product_efficient_attention.default",
        "aten._scaled_dot_product_flash_attention_for_cpu.default",
    ),
    "xformers_mm": ("aten.addmm.default", "aten.mm.default"),
}
_CHECKPOINTING = ("none", "torch", *_SAVED_OPS)


def _selective_policy(saved: tuple[str, ...], ctx: tp.Any, op: tp.Any, *args: tp.Any, **kwargs: tp.Any) -> tp.Any:
    keep = str(op) in saved
    return torch_checkpoint.CheckpointPolicy.MUST_SAVE if keep else torch_checkpoint.CheckpointPolicy.PREFER_RECOMPUTE


class StreamingTransformer(StreamingModule):
    """Stack of :class:`StreamingTransformerLayer` with sinusoidal and/or rotary positions.

    Args:
        d_model (int): model dimension.
        num_heads (int): number of heads.
        num_layers (int): number of layers.
        dim_feedforward (int): feed-forward hidden size.
        dropout (float): dropout.
        bias_ff (bool): feed-forward biases.
        bias_attn (bool): attention biases.
        causal (bool): causal self-attention.
        past_context (int or None): receptive field of the causal attention.
        custom (bool): see :class:`StreamingMultiheadAttention`.
        memory_efficient (bool): see :class:`StreamingMultiheadAttention`.
        attention_as_float32 (bool): attention in float32.
        cross_attention (bool): cross-attention in every layer.
        layer_scale (float or None): LayerScale init.
        positional_embedding (str): ``'sin'``, ``'rope'`` or ``'sin_rope'``.
        max_period (float): longest period of the positional embeddings.
        positional_scale (float): scale of the positional embeddings (0 turns them off).
        xpos (bool): xPos decay of the rotary embedding.
        lr (float or None): learning rate of :meth:`make_optim_group`.
        weight_decay (float or None): weight decay of :meth:`make_optim_group`.
        layer_class (type): layer class, called with the layer keyword arguments.
        checkpointing (str): ``'none'``; ``'torch'`` (recompute each layer in backward); ``'xformers_default'`` /
            ``'xformers_mm'``: upstream's policies (keep matmul and attention outputs, recompute the rest), run
            with PyTorch's selective checkpointing.
        device (torch.device or None): device.
        dtype (torch.dtype or None): dtype.
        attention_backend (str or None): see :class:`StreamingMultiheadAttention`.
        **kwargs: more :class:`StreamingTransformerLayer` arguments (``activation``, ``norm``, ``norm_first``,
            ``qk_layer_norm``, ``kv_repeat``...).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        num_layers: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        bias_ff: bool = True,
        bias_attn: bool = True,
        causal: bool = False,
        past_context: int | None = None,
        custom: bool = False,
        memory_efficient: bool = False,
        attention_as_float32: bool = False,
        cross_attention: bool = False,
        layer_scale: float | None = None,
        positional_embedding: str = "sin",
        max_period: float = 10_000,
        positional_scale: float = 1.0,
        xpos: bool = False,
        lr: float | None = None,
        weight_decay: float | None = None,
        layer_class: type[StreamingTransformerLayer] = StreamingTransformerLayer,
        checkpointing: str = "none",
        device=None,
        dtype=None,
        attention_backend: str | None = None,
        **kwargs: tp.Any,
    ) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not a multiple of num_heads {num_heads}")
        if positional_embedding not in ("sin", "rope", "sin_rope"):
            raise ValueError(f"unknown positional_embedding {positional_embedding!r}: expected sin, rope, sin_rope")
        if checkpointing not in _CHECKPOINTING:
            raise ValueError(f"unknown checkpointing {checkpointing!r}, expected one of {list(_CHECKPOINTING)}")
        self.positional_embedding, self.max_period = positional_embedding, max_period
        self.positional_scale, self.lr, self.weight_decay = positional_scale, lr, weight_decay
        self.checkpointing = checkpointing
        self.rope: RotaryEmbedding | None = None
        self._sin_table: torch.Tensor | None = None  # create_sin_embedding of positions 0..N-1, grown on demand
        if positional_embedding in ("rope", "sin_rope"):
            self.rope = RotaryEmbedding(
                d_model // num_heads, max_period=max_period, xpos=xpos, scale=positional_scale, device=device
            )
        self.layers = nn.ModuleList(
            [
                layer_class(
                    d_model=d_model,
                    num_heads=num_heads,
                    dim_feedforward=dim_feedforward,
                    dropout=dropout,
                    bias_ff=bias_ff,
                    bias_attn=bias_attn,
                    causal=causal,
                    past_context=past_context,
                    custom=custom,
                    memory_efficient=memory_efficient,
                    attention_as_float32=attention_as_float32,
                    cross_attention=cross_attention,
                    layer_scale=layer_scale,
                    rope=self.rope,
                    device=device,
                    dtype=dtype,
                    attention_backend=attention_backend,
                    **kwargs,
                )
                for _ in range(num_layers)
            ]
        )

    def _apply_layer(self, layer: nn.Module, x: torch.Tensor, *args: tp.Any) -> torch.Tensor:
        # Checkpointing only matters when a backward follows; recomputing a streaming step would append twice
        # to the cache, so streaming never checkpoints.
        if self.checkpointing == "none" or self._is_streaming or not torch.is_grad_enabled():
            return layer(x, *args)
        if self.checkpointing == "torch":
            return torch_checkpoint.checkpoint(layer, x, *args, use_reentrant=False)
        if not hasattr(torch_checkpoint, "create_selective_checkpoint_contexts"):
            raise ValueError(
                f"checkpointing={self.checkpointing!r} needs torch >= 2.4 (selective checkpointing), "
                f"found {torch.__version__}"
            )
        policy = functools.partial(_selective_policy, _SAVED_OPS[self.checkpointing])
        context = functools.partial(torch_checkpoint.create_selective_checkpoint_contexts, policy)
        return torch_checkpoint.checkpoint(layer, x, *args, use_reentrant=False, context_fn=context)

    def forward(
        self,
        x: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        src_key_padding_mask: torch.Tensor | None = None,
        cross_attention_src: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``[B, T, C]`` -> ``[B, T, C]``.

        Args:
            x (torch.Tensor): input (the next chunk while streaming).
            src_mask (torch.Tensor or None): extra self-attention mask (``nn.MultiheadAttention`` conventions).
            src_key_padding_mask (torch.Tensor or None): ``[B, T]`` key padding mask.
            cross_attention_src (torch.Tensor or None): ``[B, S, C]``, required iff ``cross_attention``.

        Returns:
            torch.Tensor: the output.
        """
        batch, steps, channels = x.shape
        if steps == 0:  # an empty streaming chunk: nothing to do, state unchanged
            return x
        offsets = self._streaming_state.get("offsets")
        if offsets is None:
            offsets = torch.zeros(batch, dtype=torch.long, device=x.device)
        if self.positional_embedding in ("sin", "sin_rope"):
            positions = torch.arange(steps, device=x.device).view(1, -1) + offsets.view(-1, 1)
            if x.device.type == "cpu":  # the table lookup needs the largest position: a sync point on GPUs
                emb = self._sin_embedding(positions, channels, x.dtype)
            else:
                emb = create_sin_embedding(positions[..., None], channels, self.max_period, x.dtype)
            x = x + self.positional_scale * emb
        for layer in self.layers:
            x = self._apply_layer(layer, x, src_mask, src_key_padding_mask, cross_attention_src)
        if self._is_streaming:
            self._streaming_state["offsets"] = offsets + steps
        return x

    def _sin_embedding(self, positions: torch.Tensor, channels: int, dtype: torch.dtype) -> torch.Tensor:
        """``create_sin_embedding`` of ``positions`` ``[B, T]``, read from a cached table (one lookup per step)."""
        table, end = self._sin_table, int(positions.max()) + 1
        if table is None or table.shape[0] < end or table.dtype != dtype or table.device != positions.device:
            size = max(end, 2 * table.shape[0] if table is not None else 0, _MIN_CACHE)
            grid = torch.arange(size, device=positions.device).view(1, -1, 1)
            table = create_sin_embedding(grid, channels, self.max_period, dtype)[0]
            self._sin_table = table
        return table[positions]

    @contextlib.contextmanager
    def packed_weights(self, rows: int) -> tp.Iterator[None]:
        """Within the block, the layers' per-step linears run on oneDNN-packed copies of their weights (CPU, float32).

        For inference only (the weights must not change inside the block): about 1.5-3x faster matrix products
        for the few rows of a generation step, equal to ``F.linear`` to float32 rounding, at the cost of one copy
        of those weights while the block runs. Layers without ``set_packed_weights`` (custom layer classes) and
        weights the packed kernel does not take (GPU, half precision) keep ``F.linear``.

        Args:
            rows (int): expected rows of each call (batch size of a step).
        """
        # Any: nn.Module.__getattr__ types the attribute as Tensor | Module, which mypy refuses to call.
        layers: list[tp.Any] = [layer for layer in self.layers if hasattr(layer, "set_packed_weights")]
        try:
            for layer in layers:
                layer.set_packed_weights(rows)
            yield
        finally:
            for layer in layers:
                layer.set_packed_weights(None)

    def make_optim_group(self) -> dict[str, tp.Any]:
        """Optimizer parameter group with this module's ``lr`` / ``weight_decay`` overrides."""
        group: dict[str, tp.Any] = {"params": list(self.parameters())}
        if self.lr is not None:
            group["lr"] = self.lr
        if self.weight_decay is not None:
            group["weight_decay"] = self.weight_decay
        return group
