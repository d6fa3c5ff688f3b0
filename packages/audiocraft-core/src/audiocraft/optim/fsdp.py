"""Fully Sharded Data Parallel helpers (``fsdp.use=true``), available on CUDA only.

Part of audiocraft-core (training layer). On CPU, asking for FSDP is a configuration error with a clear
message; the helpers are no-ops when FSDP is off. torch.distributed.fsdp is imported only when FSDP is
used (its import costs seconds).
"""

from __future__ import annotations

import typing as tp
from contextlib import contextmanager

import torch


def is_fsdp_used(use: bool, device: str) -> bool:
    """Whether FSDP applies: requested, on CUDA, with torch.distributed initialised."""
    if not use:
        return False
    if not str(device).startswith("cuda") or not torch.cuda.is_available():
        raise ValueError(f"fsdp.use=true needs CUDA, but device={device!r}; set fsdp.use=false")
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def wrap_with_fsdp(
    use: bool,
    device: str,
    model: torch.nn.Module,
    param_dtype: str = "float16",
    reduce_dtype: str = "float32",
    buffer_dtype: str = "float32",
    sharding_strategy: str = "shard_grad_op",
    **kwargs: tp.Any,
) -> torch.nn.Module:
    """Wrap ``model`` with FSDP when `is_fsdp_used`, else return it unchanged."""
    if not is_fsdp_used(use, device):
        return model
    from torch.distributed.fsdp import MixedPrecision, ShardingStrategy

    strategies = {
        "no_shard": ShardingStrategy.NO_SHARD,
        "shard_grad_op": ShardingStrategy.SHARD_GRAD_OP,
        "full_shard": ShardingStrategy.FULL_SHARD,
    }
    if sharding_strategy not in strategies:
        raise ValueError(f"unknown fsdp.sharding_strategy {sharding_strategy!r}; expected one of {sorted(strategies)}")
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    mixed = MixedPrecision(
        param_dtype=getattr(torch, param_dtype),
        reduce_dtype=getattr(torch, reduce_dtype),
        buffer_dtype=getattr(torch, buffer_dtype),
    )
    return FSDP(
        model,
        sharding_strategy=strategies[sharding_strategy],
        mixed_precision=mixed,
        device_id=torch.cuda.current_device(),
        sync_module_states=True,
        use_orig_params=True,
    )


@contextmanager
def switch_to_full_state_dict(models: list[torch.nn.Module]) -> tp.Iterator[None]:
    """Within the context, FSDP modules return full (unsharded) state dicts on rank 0."""
    if not models:
        yield
        return
    from torch.distributed.fsdp import FullStateDictConfig, StateDictType
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

    cfg = FullStateDictConfig(offload_to_cpu=True, rank0_only=True)
    contexts = [FSDP.state_dict_type(m, StateDictType.FULL_STATE_DICT, cfg) for m in models]
    for ctx in contexts:
        ctx.__enter__()
    try:
        yield
    finally:
        for ctx in reversed(contexts):
            ctx.__exit__(None, None, None)
