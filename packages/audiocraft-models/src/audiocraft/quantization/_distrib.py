"""torch.distributed helpers for codebook synchronisation (layer: audiocraft-models, quantization, private).

All functions are no-ops unless a process group with more than one worker is initialised, so single-process use
needs no setup.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """Whether a process group with at least two workers is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def broadcast_tensors(tensors: Iterable[torch.Tensor], src: int = 0) -> None:
    """Overwrite ``tensors`` in place with worker ``src``'s values."""
    if not is_distributed():
        return
    for tensor in tensors:
        dist.broadcast(tensor.data, src=src)


def all_reduce_mean_(tensor: torch.Tensor) -> torch.Tensor:
    """Average ``tensor`` over workers, in place, and return it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor.div_(dist.get_world_size())
    return tensor


def broadcast_int(value: int, src: int = 0) -> int:
    """Return worker ``src``'s ``value`` on every worker."""
    if not is_distributed():
        return value
    tensor = torch.tensor([value], dtype=torch.long)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.broadcast(tensor, src=src)
    return int(tensor.item())
