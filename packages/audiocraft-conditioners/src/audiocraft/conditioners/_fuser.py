"""ConditionFuser: how embedded conditions enter a transformer's input (layer: audiocraft-conditioners, private).

Four ways, chosen per attribute: ``sum`` adds the condition to the input steps, ``input_interpolate`` first
stretches it (nearest neighbour) to the input's length then adds it, ``prepend`` puts it before the input steps,
``cross`` hands it to cross-attention (optionally with sinusoidal positions).

Streaming (inside ``with lm.streaming():`` or ``with fuser.streaming():``) the input comes in successive chunks and
the fuser keeps the offset of the next step. Deliberate differences from upstream, so that a streamed run gives the
same values as one pass over the whole input:

* ``sum`` of a time-varying condition ``[B, T_total, D]`` adds the condition steps that belong to the chunk
  (upstream adds the condition's first steps to every chunk); a global condition ``[B, 1, D]`` is added everywhere.
* ``input_interpolate`` stretches the condition to the length of the whole stream, which the caller declares with
  :meth:`ConditionFuser.set_streaming_length` (upstream stretches it to each chunk's length).
* sums apply to the model's input steps before anything is prepended, whatever the order of the conditions
  (upstream applies the operations in the conditions' order, so a sum after a prepend would add to the prefix).
* the input tensor is never modified in place (upstream's ``input += cond`` changes the caller's tensor).

``prepend`` acts on the first step of a stream only, as upstream's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._base import ConditionType
from ._streaming import StreamingStateModule
from .utils import create_sin_embedding


class ConditionFuser(StreamingStateModule):
    """Fuse embedded conditions into a transformer input.

    Args:
        fuse2cond: Attributes by fusing method, e.g. ``{"prepend": ["self_wav"], "cross": ["description"]}``;
            methods are those of :attr:`FUSING_METHODS`.
        cross_attention_pos_emb: Add sinusoidal positions to the cross-attention input.
        cross_attention_pos_emb_scale: Scale of those positions.

    Raises:
        ValueError: for an unknown fusing method.
    """

    FUSING_METHODS = ["sum", "prepend", "cross", "input_interpolate"]

    def __init__(
        self,
        fuse2cond: dict[str, list[str]],
        cross_attention_pos_emb: bool = False,
        cross_attention_pos_emb_scale: float = 1.0,
    ) -> None:
        super().__init__()
        unknown = sorted(set(fuse2cond) - set(self.FUSING_METHODS))
        if unknown:
            raise ValueError(f"unknown fusing method(s) {unknown}; expected some of {self.FUSING_METHODS}")
        self.cross_attention_pos_emb = cross_attention_pos_emb
        self.cross_attention_pos_emb_scale = cross_attention_pos_emb_scale
        self.fuse2cond: dict[str, list[str]] = {method: list(conds) for method, conds in fuse2cond.items()}
        self.cond2fuse: dict[str, str] = {}
        for method, conditions in self.fuse2cond.items():
            for condition in conditions:
                self.cond2fuse[condition] = method

    def set_streaming_length(self, length: int) -> None:
        """Declare the total number of input steps of the current stream (needed by ``input_interpolate``).

        Call it inside the streaming context, before the first step.
        """
        if not self._is_streaming:
            raise RuntimeError("set_streaming_length() is only meaningful inside a streaming context")
        self._streaming_state["length"] = torch.tensor([length], dtype=torch.long)

    def _steps(self, cond: torch.Tensor, offsets: torch.Tensor, steps: int, name: str) -> torch.Tensor:
        """The condition steps ``offsets[b] : offsets[b] + steps`` of each item (a global condition as is)."""
        if cond.shape[1] == 1:
            return cond
        if not self._is_streaming:
            if cond.shape[1] != steps:
                raise ValueError(
                    f"condition {name!r} has {cond.shape[1]} steps, the input {steps}: a summed "
                    "condition must have one step or as many as the input"
                )
            return cond
        end = int(offsets.max().item()) + steps
        if end > cond.shape[1]:
            raise ValueError(f"condition {name!r} has {cond.shape[1]} steps but the stream reached step {end}")
        index = offsets[:, None] + torch.arange(steps, device=cond.device)[None, :]
        return cond.gather(1, index[:, :, None].expand(-1, -1, cond.shape[-1]))

    def _interpolated(self, cond: torch.Tensor, steps: int, name: str) -> torch.Tensor:
        total = steps
        if self._is_streaming:
            if "length" not in self._streaming_state:
                raise ValueError(
                    f"condition {name!r} uses input_interpolate: while streaming, declare the stream's "
                    "total length first with ConditionFuser.set_streaming_length(n)"
                )
            total = int(self._streaming_state["length"][0])
        return F.interpolate(cond.transpose(1, 2), size=total).transpose(1, 2)

    def forward(
        self, input: torch.Tensor, conditions: dict[str, ConditionType]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fuse ``conditions`` into ``input``.

        Args:
            input: Transformer input ``[B, T, D]`` (one chunk of it while streaming).
            conditions: Embedded conditions ``(embedding [B, T_c, D], mask [B, T_c])`` by attribute.

        Returns:
            The fused input ``[B, T', D]`` (``T' > T`` when conditions are prepended) and the cross-attention input
            ``[B, T_cross, D]``, or None when no condition goes to cross-attention.

        Raises:
            ValueError: for an attribute the fuser does not know, or condition lengths that do not fit.
        """
        unknown = sorted(set(conditions) - set(self.cond2fuse))
        if unknown:
            raise ValueError(f"conditions {unknown} have no fusing method; the fuser knows {sorted(self.cond2fuse)}")
        steps = input.shape[1]
        first_step = "offsets" not in self._streaming_state
        offsets = (
            torch.zeros(input.shape[0], dtype=torch.long, device=input.device)
            if first_step
            else self._streaming_state["offsets"]
        )
        fused = input
        for name, (cond, _) in conditions.items():
            method = self.cond2fuse[name]
            if method == "sum":
                fused = fused + self._steps(cond, offsets, steps, name)
            elif method == "input_interpolate":
                fused = fused + self._steps(self._interpolated(cond, steps, name), offsets, steps, name)
        cross: torch.Tensor | None = None
        for name, (cond, _) in conditions.items():
            method = self.cond2fuse[name]
            if method == "prepend" and first_step:
                fused = torch.cat([cond, fused], dim=1)
            elif method == "cross":
                cross = cond if cross is None else torch.cat([cross, cond], dim=1)
        if self.cross_attention_pos_emb and cross is not None:
            positions = torch.arange(cross.shape[1], device=cross.device).view(1, -1, 1)
            pos_emb = create_sin_embedding(positions, cross.shape[-1]).to(cross.dtype)
            cross = cross + self.cross_attention_pos_emb_scale * pos_emb
        if self._is_streaming:
            self._streaming_state["offsets"] = offsets + steps
        return fused, cross
