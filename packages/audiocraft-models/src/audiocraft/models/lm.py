"""LMModel: a transformer language model over several parallel streams of codec codes (layer: audiocraft-models).

The codes ``[B, K, T]`` of ``K`` codebooks are laid out by a codebook pattern (``modules.codebooks_patterns``) as a
sequence ``[B, K, S]``; each step embeds to the sum of one :class:`ScaledEmbedding` per codebook (``card + 1``
rows, the last one is the special token of the pattern's holes), conditions enter through the fuser (sum, prepend,
cross-attention), and one linear head per codebook gives the logits. Module and parameter names are upstream
AudioCraft's, so its exported LMs load strictly.

Generation is autoregressive over the pattern's steps with the transformer's streaming cache (one step per
call), classifier-free guidance in one batched pass or two passes, and top-k / top-p / greedy sampling from an
optional ``torch.Generator``. Deliberate differences from upstream: ``two_step_cfg`` uses the ``cfg_coef`` given
to :meth:`LMModel.generate` (upstream uses the model's default there), ``generate`` takes ``generator`` / ``seed``,
the logits heads run on the last step only while generating, bad arguments raise ValueError instead of asserting,
and the number of samples of prompt, conditions and ``num_samples`` must agree (upstream's check is a no-op).
``generate`` has upstream 1.4's ``cfg_coef_beta`` (double CFG; without conditions it means no guidance, where
upstream fails) and, on CPU in float32, runs its per-step linears on oneDNN-packed weights (``pack_weights_max_bytes``;
float32 rounding differences from ``F.linear`` only).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import torch
from torch import nn

from audiocraft.conditioners import (
    AttributeDropout,
    ClassifierFreeGuidanceDropout,
    ConditionFuser,
    ConditioningAttributes,
    ConditioningProvider,
)

from ..modules._packed_linear import can_pack, is_plain_linear, pack_weight, packed_linear
from ..modules.activations import get_activation_fn
from ..modules.codebooks_patterns import CodebooksPatternProvider
from ..modules.streaming import State, StreamingModule
from ..modules.transformer import StreamingTransformer, create_norm_fn
from .sampling import multinomial, sample_top_k, sample_top_p

__all__ = ["ScaledEmbedding", "LMOutput", "LMModel", "get_init_fn", "init_layer", "ConditionTensors", "CFGConditions"]

ConditionTensors = dict[str, tuple[torch.Tensor, torch.Tensor]]
"""Condition name to (embedding, mask), as the fuser takes them."""
CFGConditions = ConditionTensors | tuple[ConditionTensors, ConditionTensors]
"""The conditions, or (conditions, null conditions) for classifier-free guidance."""
Heads = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]  # stacked weight, bias, packed weight

_INIT_METHODS = ("gaussian", "uniform")
_FEW_ROWS = 4  # up to this many rows, the generation heads run as W @ x^T (see LMModel._last_logits)
_DEPTHWISE_INITS = ("current", "global")


def get_init_fn(method: str, input_dim: int, init_depth: int | None = None) -> Callable[[torch.Tensor], Any]:
    """The in-place initialiser of a weight with ``input_dim`` inputs: std ``1 / sqrt(input_dim)``.

    Args:
        method: ``gaussian`` (normal truncated at 3 std) or ``uniform`` (same std).
        input_dim: fan-in of the layer.
        init_depth: if given, the std is further divided by ``sqrt(2 * init_depth)``.

    Raises:
        ValueError: for an unknown method.
    """
    std = 1 / math.sqrt(input_dim)
    if init_depth is not None:
        std = std / math.sqrt(2 * init_depth)
    if method == "gaussian":
        return partial(nn.init.trunc_normal_, mean=0.0, std=std, a=-3 * std, b=3 * std)
    if method == "uniform":
        bound = math.sqrt(3) * std
        return partial(nn.init.uniform_, a=-bound, b=bound)
    raise ValueError(f"unknown weight_init method {method!r}; expected one of {list(_INIT_METHODS)}")


def _init_weight(weight: torch.Tensor, init_fn: Callable[[torch.Tensor], Any]) -> None:
    if weight.device.type == "cpu" and weight.dtype == torch.float16:  # CPU half lacks the kernels: go through fp32
        full = weight.detach().float()
        init_fn(full)
        with torch.no_grad():
            weight.copy_(full.half())
    else:
        init_fn(weight)


def init_layer(m: nn.Module, method: str, init_depth: int | None = None, zero_bias_init: bool = False) -> None:
    """Initialise ``m`` if it is a Linear (fan-in scaled, depth-scaled) or an Embedding (by its dim, no depth).

    Args:
        m: any module; other types are left alone (so that ``module.apply`` works).
        method: see :func:`get_init_fn`.
        init_depth: depth used to rescale the std of Linears.
        zero_bias_init: zero the bias of Linears.
    """
    if isinstance(m, nn.Linear):
        _init_weight(m.weight, get_init_fn(method, m.in_features, init_depth=init_depth))
        if zero_bias_init and m.bias is not None:
            nn.init.constant_(m.bias, 0)
    elif isinstance(m, nn.Embedding):
        _init_weight(m.weight, get_init_fn(method, m.embedding_dim, init_depth=None))


def _drop_description(conditions: list[ConditioningAttributes]) -> list[ConditioningAttributes]:
    """Copies of ``conditions`` without their text ``description``, every other attribute kept (double CFG).

    Upstream's ``_drop_description_condition`` (an ``AttributeDropout`` that always drops ``text.description``
    and never ``wav.self_wav``; its draws come from its own generator, not the global RNG).

    Raises:
        ValueError: a condition without a ``description`` text or a ``self_wav`` waveform attribute (upstream
            asserts both; MusicGen's generate methods always set them).
    """
    for index, condition in enumerate(conditions):
        missing = [
            f"{kind} attribute {name!r}"
            for kind, name, present in (
                ("text", "description", "description" in condition.text),
                ("wav", "self_wav", "self_wav" in condition.wav),
            )
            if not present
        ]
        if missing:
            raise ValueError(
                f"cfg_coef_beta (double classifier-free guidance) needs conditions with a text 'description' and "
                f"a wav 'self_wav' attribute (as MusicGen's generate methods give); condition {index} has no "
                f"{' and no '.join(missing)}"
            )
    return AttributeDropout(p={"text": {"description": 1.0}, "wav": {"self_wav": 0.0}})(conditions)


class ScaledEmbedding(nn.Embedding):
    """An embedding that can have its own learning rate (``lr``) in the optimiser."""

    def __init__(self, *args: Any, lr: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lr = lr

    def make_optim_group(self) -> dict[str, Any]:
        """The parameter group of this embedding, with its ``lr`` if set."""
        group: dict[str, Any] = {"params": list(self.parameters())}
        if self.lr is not None:
            group["lr"] = self.lr
        return group


@dataclass
class LMOutput:
    """Logits aligned with the input codes (no shift needed for the loss) and where they are valid.

    Attributes:
        logits: ``[B, K, T, card]``, NaN where ``mask`` is False.
        mask: ``[B, K, T]``.
    """

    logits: torch.Tensor
    mask: torch.Tensor


class LMModel(StreamingModule):
    """Transformer language model over ``n_q`` parallel streams of codes, conditioned.

    Args:
        pattern_provider: the codebook interleaving pattern.
        condition_provider: turns :class:`ConditioningAttributes` into condition tensors.
        fuser: how condition tensors enter the transformer.
        n_q: number of codebooks.
        card: codebook size (the special token is ``card``).
        dim: model dimension.
        num_heads: attention heads.
        hidden_scale: feed-forward width as a multiple of ``dim``.
        norm: normalisation (see ``modules.transformer.create_norm_fn``).
        norm_first: pre-norm transformer, plus a final ``out_norm``.
        emb_lr: learning rate of the embeddings (None: the optimiser's).
        bias_proj: bias in the output heads.
        weight_init: ``gaussian`` / ``uniform`` / None (PyTorch's defaults).
        depthwise_init: ``current`` (layer index) / ``global`` (number of layers) / None: depth-scaled init.
        zero_bias_init: zero the biases (needs ``weight_init``).
        cfg_dropout: classifier-free guidance dropout probability in training.
        cfg_coef: default guidance coefficient.
        attribute_dropout: per attribute kind and name, the dropout probability.
        two_step_cfg: default guidance mode (two passes instead of one batched pass).
        **kwargs: passed to :class:`StreamingTransformer` (e.g. ``num_layers``, ``cross_attention``,
            ``positional_embedding``, ``attention_backend``, ``device``, ``dtype``).

    Attributes:
        pack_weights_max_bytes: on CPU in float32, :meth:`generate` runs the transformer's per-step linears and the
            heads on oneDNN-packed copies of their weights (1.5-3x faster products for the few rows of a step,
            equal to ``F.linear`` to float32 rounding) when the model's weight matrices take at most this many
            bytes (the copy lives while ``generate`` runs); 0 turns it off. Default 2 GiB.

    Raises:
        ValueError: for inconsistent initialisation options.
    """

    pack_weights_max_bytes: int = 2 * 2**30

    def __init__(
        self,
        pattern_provider: CodebooksPatternProvider,
        condition_provider: ConditioningProvider,
        fuser: ConditionFuser,
        n_q: int = 8,
        card: int = 1024,
        dim: int = 128,
        num_heads: int = 8,
        hidden_scale: int = 4,
        norm: str = "layer_norm",
        norm_first: bool = False,
        emb_lr: float | None = None,
        bias_proj: bool = True,
        weight_init: str | None = None,
        depthwise_init: str | None = None,
        zero_bias_init: bool = False,
        cfg_dropout: float = 0,
        cfg_coef: float = 1.0,
        attribute_dropout: Mapping[str, Mapping[str, float]] | None = None,
        two_step_cfg: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.cfg_coef = cfg_coef
        self.cfg_dropout = ClassifierFreeGuidanceDropout(p=cfg_dropout)
        self.att_dropout = AttributeDropout(p={k: dict(v) for k, v in (attribute_dropout or {}).items()})
        self.condition_provider = condition_provider
        self.fuser = fuser
        self.card = card
        self.n_q = n_q
        self.dim = dim
        self.pattern_provider = pattern_provider
        self.two_step_cfg = two_step_cfg
        self.emb = nn.ModuleList([ScaledEmbedding(card + 1, dim, lr=emb_lr) for _ in range(n_q)])
        if "activation" in kwargs:
            kwargs["activation"] = get_activation_fn(kwargs["activation"])
        self.transformer = StreamingTransformer(
            d_model=dim,
            num_heads=num_heads,
            dim_feedforward=int(hidden_scale * dim),
            norm=norm,
            norm_first=norm_first,
            **kwargs,
        )
        self.out_norm: nn.Module | None = create_norm_fn(norm, dim) if norm_first else None
        self.linears = nn.ModuleList([nn.Linear(dim, card, bias=bias_proj) for _ in range(n_q)])
        self._init_weights(weight_init, depthwise_init, zero_bias_init)
        self._fsdp: nn.Module | None
        self.__dict__["_fsdp"] = None  # set by training code that wraps the model; not a submodule

    def _init_weights(self, weight_init: str | None, depthwise_init: str | None, zero_bias_init: bool) -> None:
        """Initialise embeddings, transformer layers and heads (see :func:`init_layer`)."""
        if depthwise_init is not None and depthwise_init not in _DEPTHWISE_INITS:
            raise ValueError(f"unknown depthwise_init {depthwise_init!r}; expected one of {list(_DEPTHWISE_INITS)}")
        if weight_init is None:
            if depthwise_init is not None or zero_bias_init:
                raise ValueError("depthwise_init and zero_bias_init need a weight_init method (gaussian or uniform)")
            return
        for emb in self.emb:
            init_layer(emb, method=weight_init, zero_bias_init=zero_bias_init)
        num_layers = len(self.transformer.layers)
        for index, layer in enumerate(self.transformer.layers):
            depth = {"current": index + 1, "global": num_layers}.get(depthwise_init or "")
            layer.apply(partial(init_layer, method=weight_init, init_depth=depth, zero_bias_init=zero_bias_init))
        for linear in self.linears:
            init_layer(linear, method=weight_init, zero_bias_init=zero_bias_init)

    @property
    def special_token_id(self) -> int:
        """The token of the pattern's holes (``card``)."""
        return self.card

    @property
    def num_codebooks(self) -> int:
        """Number of codebooks ``n_q``."""
        return self.n_q

    def _encode(
        self,
        sequence: torch.Tensor,
        conditions: list[ConditioningAttributes],
        condition_tensors: ConditionTensors | None,
        stage: int,
    ) -> torch.Tensor:
        """Transformer output ``[B, S, dim]`` on the sequence's steps (prepended conditions removed)."""
        B, K, S = sequence.shape
        if K != self.n_q:
            raise ValueError(f"the sequence has {K} codebooks, the model {self.n_q}")
        input_ = self.emb[0](sequence[:, 0])
        for k in range(1, K):
            input_ = input_ + self.emb[k](sequence[:, k])
        if condition_tensors is None:
            if self._is_streaming:
                raise ValueError("while streaming, pass precomputed condition_tensors, not conditions")
            conditions = self.att_dropout(self.cfg_dropout(conditions))
            condition_tensors = self.condition_provider(self.condition_provider.tokenize(conditions))
        elif conditions:
            raise ValueError("pass either conditions or condition_tensors, not both")
        input_, cross_attention_input = self.fuser(input_, condition_tensors)
        masks = getattr(self, "attn_mask_per_stage", None)  # set by per-stage subclasses (MAGNeT)
        src_mask = masks[stage] if stage >= 0 and masks is not None else None
        out = self.transformer(input_, cross_attention_src=cross_attention_input, src_mask=src_mask)
        out = out[:, -S:]  # drop the prepended condition steps (they come first)
        return out if self.out_norm is None else self.out_norm(out)

    def forward(
        self,
        sequence: torch.Tensor,
        conditions: list[ConditioningAttributes],
        condition_tensors: ConditionTensors | None = None,
        stage: int = -1,
    ) -> torch.Tensor:
        """Logits of the next step at every step of an interleaved sequence.

        Args:
            sequence: ``[B, K, S]`` tokens (special token where the pattern has holes).
            conditions: attributes, tokenised and encoded here (after CFG and attribute dropout in training).
            condition_tensors: precomputed condition tensors instead of ``conditions`` (required while streaming).
            stage: codebook being predicted, for per-stage attention masks (MAGNeT); -1: none.

        Returns:
            Logits ``[B, K, S, card]``.
        """
        out = self._encode(sequence, conditions, condition_tensors, stage)
        return torch.stack([linear(out) for linear in self.linears], dim=1)

    def compute_predictions(
        self,
        codes: torch.Tensor,
        conditions: list[ConditioningAttributes],
        condition_tensors: ConditionTensors | None = None,
        stage: int = -1,
        keep_only_valid_steps: bool = True,
    ) -> LMOutput:
        """Logits for every code of ``codes`` ``[B, K, T]``, through the pattern and back.

        Args:
            codes: input codes.
            conditions: attributes (see :meth:`forward`).
            condition_tensors: precomputed condition tensors instead of ``conditions``.
            stage: see :meth:`forward`.
            keep_only_valid_steps: run only the pattern steps that need no code past ``T``.

        Returns:
            :class:`LMOutput`: ``logits[:, k, t]`` predicts ``codes[:, k, t]``; NaN where the mask is False.
        """
        B, K, T = codes.shape
        pattern = self.pattern_provider.get_pattern(T)
        sequence, _, _ = pattern.build_pattern_sequence(
            codes.contiguous(), self.special_token_id, keep_only_valid_steps=keep_only_valid_steps
        )
        model = self if self._fsdp is None else self._fsdp
        logits = model(sequence, conditions, condition_tensors, stage=stage)  # [B, K, S, card]
        logits, _, mask = pattern.revert_pattern_logits(
            logits.permute(0, 3, 1, 2), float("nan"), keep_only_valid_steps=keep_only_valid_steps
        )
        return LMOutput(logits.permute(0, 2, 3, 1), mask[None].expand(B, -1, -1))

    def _stacked_heads(self, rows: int | None = None) -> Heads:
        """The heads' weights ``[K * card, dim]`` (and biases) in one tensor, for one matmul per step.

        Args:
            rows: if given, also a oneDNN-packed copy of the weight for inputs of that many rows (None where
                packing does not apply, see ``modules._packed_linear``).
        """
        heads = [cast(nn.Linear, linear) for linear in self.linears]  # plain linears (see _generation_heads)
        weight = torch.cat([linear.weight for linear in heads])
        bias = None if heads[0].bias is None else torch.cat([linear.bias for linear in heads])
        return weight, bias, None if rows is None else pack_weight(weight, rows)

    def _pack_for_generation(self, rows: int) -> bool:
        """Whether generation runs its linears on packed weights (CPU float32, weights under the size cap).

        Wrapped layers (e.g. peft's LoRA) are never packed: ``modules._packed_linear.pack_linear`` packs plain
        ``nn.Linear`` only, and the stacked heads are used only when every head is one.
        """
        weights = [p for p in self.parameters() if p.dim() == 2]
        size = sum(p.numel() * p.element_size() for p in weights)
        return rows > 0 and size <= self.pack_weights_max_bytes and all(can_pack(p) for p in weights)

    @contextlib.contextmanager
    def _generation_heads(self, rows: int) -> Iterator[Heads | None]:
        """The stacked heads of a generation, with the transformer's weights packed for the block if it applies."""
        if not all(is_plain_linear(linear) for linear in self.linears):
            yield None  # wrapped heads (e.g. LoRA) run their own forward, one by one
            return
        if not self._pack_for_generation(rows):
            yield self._stacked_heads()
            return
        with self.transformer.packed_weights(rows):
            yield self._stacked_heads(rows)

    def _last_logits(
        self,
        sequence: torch.Tensor,
        condition_tensors: ConditionTensors,
        heads: Heads | None = None,
    ) -> torch.Tensor:
        """Logits ``[B, K, card]`` of the last step only.

        With ``heads`` (from :meth:`_stacked_heads`) holding a packed weight, the K heads are one packed product.
        Otherwise, with at most ``_FEW_ROWS`` rows, the K heads run as one ``W @ x^T`` product: with so few rows
        CPU BLAS streams the weight rows faster in that orientation than in ``x @ W^T`` (measured on 2 rows: 1.3 ms
        instead of 3.3 ms for the 4 x [2048, 512] heads; on 8 rows it is slower, so larger batches keep the
        per-head linears). Values equal the per-head linears to float rounding.
        """
        out = self._encode(sequence, [], condition_tensors, stage=-1)[:, -1]
        if heads is not None and heads[2] is not None:
            return packed_linear(out, *heads).view(out.shape[0], self.n_q, self.card)
        if heads is None or out.shape[0] > _FEW_ROWS:
            return torch.stack([linear(out) for linear in self.linears], dim=1)
        weight, bias, _ = heads
        logits = torch.mm(weight, out.t()).t()
        if bias is not None:
            logits = logits + bias
        return logits.view(out.shape[0], self.n_q, self.card)

    def _guided_logits(
        self,
        sequence: torch.Tensor,
        cfg_conditions: CFGConditions,
        null_state: State,
        two_step_cfg: bool,
        cfg_coef: float,
        heads: Heads | None = None,
        cfg_coef_beta: float | None = None,
    ) -> torch.Tensor:
        """Next-step logits ``[B, K, card]`` with classifier-free guidance (none if there are no conditions).

        With ``cfg_coef_beta`` (conditions from :meth:`_cfg_conditions` with the same beta), double CFG as
        upstream: ``uncond + cfg_coef * (wav + cfg_coef_beta * (cond - wav) - uncond)`` where ``wav`` are the
        logits without the text description.
        """
        if cfg_coef_beta is not None and cfg_conditions and not isinstance(cfg_conditions, tuple):
            three = self._last_logits(torch.cat([sequence, sequence, sequence], dim=0), cfg_conditions, heads)
            cond_logits, wav_logits, uncond_logits = three.split(sequence.shape[0], dim=0)
            return uncond_logits + cfg_coef * (wav_logits + cfg_coef_beta * (cond_logits - wav_logits) - uncond_logits)
        if isinstance(cfg_conditions, tuple):
            conditioned, null = cfg_conditions
            cond_logits = self._last_logits(sequence, conditioned, heads)
            state = self.get_streaming_state()
            self.set_streaming_state(null_state)
            uncond_logits = self._last_logits(sequence, null, heads)
            null_state.clear()
            null_state.update(self.get_streaming_state())
            self.set_streaming_state(state)
        elif cfg_conditions:
            both = self._last_logits(torch.cat([sequence, sequence], dim=0), cfg_conditions, heads)
            cond_logits, uncond_logits = both.split(sequence.shape[0], dim=0)
        else:
            return self._last_logits(sequence, {}, heads)
        return uncond_logits + (cond_logits - uncond_logits) * cfg_coef

    @staticmethod
    def _sample(
        logits: torch.Tensor,
        use_sampling: bool,
        temp: float,
        top_k: int,
        top_p: float,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """One token per codebook ``[B, K, 1]`` from logits ``[B, K, card]`` (greedy unless sampling, temp > 0)."""
        if not use_sampling or temp <= 0.0:
            return torch.argmax(logits, dim=-1, keepdim=True)
        probs = torch.softmax(logits / temp, dim=-1)
        if top_p > 0.0:
            return sample_top_p(probs, p=top_p, generator=generator)
        if top_k > 0:
            return sample_top_k(probs, k=top_k, generator=generator)
        return multinomial(probs, num_samples=1, generator=generator)

    def _cfg_conditions(
        self, conditions: list[ConditioningAttributes], two_step_cfg: bool, cfg_coef_beta: float | None = None
    ) -> CFGConditions:
        """Condition tensors of the guidance: one batch (conditions then null ones), or a pair for two-step CFG.

        With ``cfg_coef_beta`` (double CFG, upstream 1.4's MusicGen-Style), one batch of three: the conditions,
        the conditions without their text description (the ``self_wav`` condition and every other attribute
        kept), then the fully nullified ones; ``two_step_cfg`` is then ignored, as upstream.
        """
        if not conditions:
            return {}
        provider = self.condition_provider
        if cfg_coef_beta is not None:
            wav_conditions = _drop_description(conditions)
            null_conditions = ClassifierFreeGuidanceDropout(p=1.0)(conditions)
            return provider(provider.tokenize(conditions + wav_conditions + null_conditions))
        null_conditions = ClassifierFreeGuidanceDropout(p=1.0)(conditions)
        if two_step_cfg:
            return provider(provider.tokenize(conditions)), provider(provider.tokenize(null_conditions))
        return provider(provider.tokenize(conditions + null_conditions))

    @torch.no_grad()
    def generate(
        self,
        prompt: torch.Tensor | None = None,
        conditions: list[ConditioningAttributes] | None = None,
        num_samples: int | None = None,
        max_gen_len: int = 256,
        use_sampling: bool = True,
        temp: float = 1.0,
        top_k: int = 250,
        top_p: float = 0.0,
        cfg_coef: float | None = None,
        cfg_coef_beta: float | None = None,
        two_step_cfg: bool | None = None,
        remove_prompts: bool = False,
        check: bool = False,
        callback: Callable[[int, int], None] | None = None,
        *,
        generator: torch.Generator | None = None,
        seed: int | None = None,
        temperature: float | None = None,
        on_step: Callable[[torch.Tensor, int], None] | None = None,
    ) -> torch.Tensor:
        """Generate ``max_gen_len`` timesteps of codes, continuing ``prompt`` if given.

        Args:
            prompt: ``[B, K, T_prompt]`` codes to continue (``T_prompt < max_gen_len``).
            conditions: one :class:`ConditioningAttributes` per sample; with conditions, classifier-free guidance
                against their nullified copy is applied.
            num_samples: number of samples without prompt and conditions (default 1).
            max_gen_len: number of timesteps of the result, prompt included.
            use_sampling: sample (else greedy argmax).
            temp: softmax temperature (``temperature`` is accepted as an alias); 0 means greedy.
            top_k: sample among the k most probable tokens (when ``top_p`` is 0).
            top_p: nucleus sampling threshold (takes precedence over ``top_k`` when > 0).
            cfg_coef: guidance coefficient (default: the model's).
            cfg_coef_beta: None: plain guidance. Otherwise double classifier-free guidance (upstream 1.4,
                MusicGen-Style paper section 4.3): one batch of three (conditions; conditions without their text
                ``description``; null conditions) and logits ``uncond + cfg_coef * (wav + cfg_coef_beta * (cond -
                wav) - uncond)``, which pushes the text over the ``self_wav`` (style / melody) condition. Every
                condition needs a ``description`` text and a ``self_wav`` waveform attribute; ``two_step_cfg``
                is ignored (as upstream). Without conditions there is no guidance (upstream fails there).
            two_step_cfg: guidance in two passes with separate caches (default: the model's).
            remove_prompts: return only the generated timesteps.
            check: verify the sequence against the pattern at every step.
            callback: called as ``callback(step, total_steps)`` after each step.
            generator: random generator for sampling (default: the global RNG).
            seed: seed of a new generator for sampling (instead of ``generator``).
            temperature: alias of ``temp``.
            on_step: called as ``on_step(sequence, offset)`` after each step with the interleaved sequence
                ``[B, K, S]`` filled up to step ``offset`` (read it, do not modify it; used to stream audio out).

        Returns:
            Codes ``[B, K, max_gen_len]`` (or without the prompt's timesteps with ``remove_prompts``).

        Raises:
            ValueError: training mode, inconsistent batch sizes, a prompt as long as ``max_gen_len``, both
                ``generator`` and ``seed``, or ``cfg_coef_beta`` with conditions lacking ``description`` /
                ``self_wav``.
        """
        if self.training:
            raise ValueError("generate() needs the model in eval mode (call .eval())")
        device = next(iter(self.parameters())).device
        if temperature is not None:
            temp = temperature
        if seed is not None:
            if generator is not None:
                raise ValueError("pass either generator or seed, not both")
            generator = torch.Generator(device=device).manual_seed(seed)
        conditions = list(conditions or [])
        sizes = {
            name: n
            for name, n in (
                ("num_samples", num_samples),
                ("prompt", None if prompt is None else prompt.shape[0]),
                ("conditions", len(conditions) or None),
            )
            if n is not None
        }
        if len(set(sizes.values())) > 1:
            raise ValueError(f"inconsistent number of samples: {sizes}")
        num_samples = next(iter(sizes.values()), 1)
        cfg_coef = self.cfg_coef if cfg_coef is None else cfg_coef
        two_step_cfg = self.two_step_cfg if two_step_cfg is None else two_step_cfg
        cfg_conditions = self._cfg_conditions(conditions, two_step_cfg, cfg_coef_beta)

        if prompt is None:
            prompt = torch.zeros((num_samples, self.n_q, 0), dtype=torch.long, device=device)
        prompt = prompt.to(device=device, dtype=torch.long)
        B, K, prompt_len = prompt.shape
        if K != self.n_q:
            raise ValueError(f"the prompt has {K} codebooks, the model {self.n_q}")
        if prompt_len >= max_gen_len:
            raise ValueError(f"the prompt ({prompt_len} steps) must be shorter than max_gen_len ({max_gen_len})")
        pattern = self.pattern_provider.get_pattern(max_gen_len)
        unknown = -1  # codes not generated yet
        gen_codes = torch.full((B, K, max_gen_len), unknown, dtype=torch.long, device=device)
        gen_codes[..., :prompt_len] = prompt
        gen_sequence, _, mask = pattern.build_pattern_sequence(gen_codes, self.special_token_id)
        start = pattern.get_first_step_with_timesteps(prompt_len)
        if start is None:
            raise ValueError(f"the pattern has no step for timestep {prompt_len}")
        total = gen_sequence.shape[-1]
        null_state: State = {}
        branches = 1  # rows of one transformer call per sample
        if isinstance(cfg_conditions, dict) and cfg_conditions:
            branches = 2 if cfg_coef_beta is None else 3
        with self._generation_heads(B * branches) as heads, self.streaming():
            previous = 0
            for offset in range(start, total):
                current = gen_sequence[..., previous:offset]
                if check:
                    current_mask = mask[None, :, previous:offset].expand(B, -1, -1)
                    if not (current == torch.where(current_mask, current, self.special_token_id)).all():
                        raise RuntimeError(f"step {offset}: a hole of the pattern holds a code")
                    if (current == unknown).any():
                        raise RuntimeError(f"step {offset}: feeding a code that was not generated")
                logits = self._guided_logits(
                    current, cfg_conditions, null_state, two_step_cfg, cfg_coef, heads, cfg_coef_beta
                )
                next_token = self._sample(logits, use_sampling, temp, top_k, top_p, generator)
                next_token[~mask[:, offset : offset + 1].expand(B, -1, -1)] = self.special_token_id
                step = gen_sequence[..., offset : offset + 1]
                gen_sequence[..., offset : offset + 1] = torch.where(step == unknown, next_token, step)
                previous = offset
                if on_step is not None:
                    on_step(gen_sequence, offset)
                if callback is not None:
                    callback(1 + offset - start, total - start)
        null_state.clear()
        if (gen_sequence == unknown).any():
            raise RuntimeError("generation left codes unfilled")
        out_codes, _, out_mask = pattern.revert_pattern_sequence(gen_sequence, special_token=unknown)
        if not bool(out_mask[:, :max_gen_len].all()) or bool((out_codes[..., :max_gen_len] == unknown).any()):
            raise RuntimeError("generated codes do not cover every timestep")
        out_codes = out_codes[..., (prompt_len if remove_prompts else 0) : max_gen_len]
        if not ((out_codes >= 0) & (out_codes <= self.card)).all():
            raise RuntimeError("generated codes out of range")
        return out_codes
