"""LoRA fine-tuning of the LM (audiocraft-core, solvers; public): adapters, merging, the merged export source.

The implementation is the solvers' private ``_lora`` module (see its docstring; upstream AudioCraft has no LoRA
mode); this module is its public path, for code outside audiocraft-core such as the meta-package's
``audiocraft-export`` command.
"""

from __future__ import annotations

from ._lora import (
    LORA_DEFAULTS,
    apply_lora,
    has_lora,
    lora_parameter_counts,
    merge_lora,
    merge_lora_state_dict,
    merged_lora_checkpoint,
)

__all__ = [
    "LORA_DEFAULTS",
    "apply_lora",
    "has_lora",
    "lora_parameter_counts",
    "merge_lora",
    "merge_lora_state_dict",
    "merged_lora_checkpoint",
]
