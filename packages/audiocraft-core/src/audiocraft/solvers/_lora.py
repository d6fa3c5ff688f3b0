"""LoRA fine-tuning of a language model through ``peft`` (``lora.use=true``), and the merge that export needs.

Part of audiocraft-core (task solvers); ``peft`` is the ``[lora]`` extra, imported only when LoRA is used. Upstream
AudioCraft has no LoRA mode. `apply_lora` injects low-rank adapters into the LM's ``nn.Linear`` layers named by
``lora.target_modules`` (default: the attention output projections ``out_proj`` of self and cross attention and the
feed-forward ``linear1`` / ``linear2``) and freezes every other parameter. The fused q/k/v projection
``in_proj_weight`` is a bare parameter in upstream's state-dict layout, so it is not adapted. The model stays an
``LMModel``, so the solver's code and the streaming generation run as before. A plain (non-LoRA) state dict, such
as a pretrained model's best state loaded through ``continue_from``, still loads into the adapted model: its
weights go to the frozen base layers and the adapters keep their initial value (zero update).

The export merges the adapters: `merge_lora` folds them into the base weights of a live model
(``W + alpha / r * B @ A``) and puts plain ``nn.Linear`` layers back. `merge_lora_state_dict` does the same on a
saved state dict, without peft. Either way the result has exactly the keys of a plain ``LMModel``, so the
exported model loads with ``MusicGen.get_pretrained`` like any other.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import typing as tp
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from audiocraft.models.export import atomic_torch_save, best_model_state

from ..utils.utils import dict_from_config

__all__ = [
    "LORA_DEFAULTS",
    "apply_lora",
    "has_lora",
    "lora_parameter_counts",
    "merge_lora",
    "merge_lora_state_dict",
    "merged_lora_checkpoint",
]

logger = logging.getLogger(__name__)

# The ``lora`` config section: keys and defaults (config/solver/musicgen/default.yaml carries the same).
LORA_DEFAULTS: dict[str, tp.Any] = {
    "use": False,
    "r": 8,
    "alpha": 16.0,
    "dropout": 0.0,
    "target_modules": ["out_proj", "linear1", "linear2"],
}
"""The keys of the ``lora`` config section and their defaults."""
_ADAPTER = "default"  # peft's adapter name: keys ``<layer>.lora_A.default.weight``
_LORA_KEYS = (".lora_A.", ".lora_B.", ".lora_embedding_A.", ".lora_embedding_B.", ".lora_magnitude_vector.")


def _section(cfg: tp.Any) -> dict[str, tp.Any]:
    section = dict_from_config(cfg, "lora")
    unknown = sorted(set(section) - set(LORA_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in config section 'lora'; valid keys: {sorted(LORA_DEFAULTS)}")
    out = {**LORA_DEFAULTS, **section}
    if not isinstance(out["r"], int) or out["r"] <= 0:
        raise ValueError(f"lora.r must be a positive integer, got {out['r']!r}")
    if not 0.0 <= float(out["dropout"]) < 1.0:
        raise ValueError(f"lora.dropout must be in [0, 1), got {out['dropout']!r}")
    targets = out["target_modules"]
    if isinstance(targets, str):
        targets = [targets]
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise ValueError(f"lora.target_modules must be a non-empty list of module names, got {targets!r}")
    out["target_modules"] = list(targets)
    return out


def _import_peft() -> tp.Any:
    try:
        import peft
    except ImportError as exc:
        raise ImportError("LoRA fine-tuning (lora.use=true) needs peft: pip install 'audiocraft-core[lora]'") from exc
    return peft


def lora_parameter_counts(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` numbers of parameters of ``model``."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def has_lora(model: nn.Module) -> bool:
    """Whether ``model`` holds LoRA adapters (as injected by `apply_lora`)."""
    return any(_is_lora_layer(m) for m in model.modules())


def _is_lora_layer(module: nn.Module) -> bool:
    return hasattr(module, "lora_A") and hasattr(module, "get_base_layer")


def _load_plain_weights(module: nn.Module, state_dict: dict, prefix: str, *args: tp.Any) -> None:
    """Load-state-dict pre-hook of an adapted layer: a plain layer's ``weight`` / ``bias`` go to the base layer.

    The adapters, absent from a plain state dict, keep their current value.

    An adapted layer has no ``weight`` of its own, so a ``<layer>.weight`` key always comes from a plain model and
    wins over a ``base_layer`` entry (StandardSolver loads ``{**live_state, **best_state}`` when it swaps states).
    """
    for name in ("weight", "bias"):
        if prefix + name in state_dict:
            state_dict[prefix + "base_layer." + name] = state_dict.pop(prefix + name)
    if prefix + "base_layer.weight" in state_dict:
        for key, value in module.state_dict().items():
            if any(part in "." + key for part in _LORA_KEYS) and prefix + key not in state_dict:
                state_dict[prefix + key] = value.detach().clone()


def _load_upstream_mha_keys(module: nn.Module, state_dict: dict, prefix: str, *args: tp.Any) -> None:
    """Load-state-dict pre-hook of an attention whose ``mha.out_proj`` is adapted.

    Upstream keeps nn.MultiheadAttention's keys one level up (``<attn>.out_proj.weight``); the attention's own
    remapping (by parameter name) no longer sees them, so this hook moves them under ``mha.``.
    """
    for name in ("weight", "bias"):
        if prefix + "out_proj." + name in state_dict:
            state_dict[prefix + "mha.out_proj." + name] = state_dict.pop(prefix + "out_proj." + name)


def apply_lora(model: nn.Module, cfg: tp.Any) -> nn.Module:
    """Inject LoRA adapters into ``model`` in place when ``cfg.use`` is true; only the adapters stay trainable.

    Args:
        model: the language model (an ``LMModel``).
        cfg: the ``lora`` config section (``use``, ``r``, ``alpha``, ``dropout``, ``target_modules``); None or
            ``use=false`` leave the model as it is.

    Returns:
        ``model`` itself (still an ``LMModel``), adapted.

    Raises:
        ImportError: naming ``pip install 'audiocraft-core[lora]'`` when peft is missing.
        ValueError: for a bad section, or target modules that match no ``nn.Linear`` of the model.
    """
    section = _section(cfg)
    if not section["use"]:
        return model
    if has_lora(model):
        raise ValueError("apply_lora: the model already holds LoRA adapters")
    peft = _import_peft()
    linear_names = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    targets = section["target_modules"]
    if not any(name.split(".")[-1] in targets or name in targets for name in linear_names):
        raise ValueError(
            f"lora.target_modules={targets} matches no nn.Linear of the model; its linear layers are "
            f"named {sorted({n.split('.')[-1] for n in linear_names})}"
        )
    config = peft.LoraConfig(
        r=section["r"],
        lora_alpha=float(section["alpha"]),
        lora_dropout=float(section["dropout"]),
        target_modules=targets,
        bias="none",
    )
    before, total = lora_parameter_counts(model)
    peft.inject_adapter_in_model(config, model, adapter_name=_ADAPTER)
    adapted = [(name, m) for name, m in model.named_modules() if _is_lora_layer(m)]
    for name, module in adapted:
        module.register_load_state_dict_pre_hook(_load_plain_weights)
        if name.endswith(".mha.out_proj"):  # non-custom attention (see the hook)
            model.get_submodule(name[: -len(".mha.out_proj")]).register_load_state_dict_pre_hook(
                _load_upstream_mha_keys
            )
    trainable, new_total = lora_parameter_counts(model)
    logger.info(
        "LoRA (r=%d, alpha=%g, dropout=%g) on %d layers (%s): training %d of %d parameters (%.2f%%; %d before LoRA)",
        section["r"],
        float(section["alpha"]),
        float(section["dropout"]),
        len(adapted),
        ", ".join(targets),
        trainable,
        new_total,
        100.0 * trainable / max(new_total, 1),
        before,
    )
    return model


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold the adapters into the base weights and put plain layers back, in place.

    The result has exactly the parameters (and state-dict keys) of the model before `apply_lora`, with merged
    weights, all trainable again. A model without adapters is returned unchanged.
    """
    named = [(name, m) for name, m in model.named_modules() if _is_lora_layer(m)]
    for name, module in named:
        module.merge(safe_merge=True)  # raises on a non-finite merged weight
        parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
        setattr(parent, name.rpartition(".")[2], module.get_base_layer())
    if named:
        for param in model.parameters():
            param.requires_grad_(True)
    return model


def merge_lora_state_dict(state_dict: Mapping[str, torch.Tensor], cfg: tp.Any) -> dict[str, torch.Tensor]:
    """The plain state dict of a LoRA model's ``state_dict`` (e.g. a checkpoint's best state), without peft.

    Each adapted layer's ``base_layer.weight`` becomes ``weight + alpha / r * lora_B @ lora_A`` (computed in
    float32, stored in the base weight's dtype); ``base_layer.*`` keys lose their ``base_layer.`` part and the
    adapter keys are dropped. A state dict without adapters is returned as a copy.

    Args:
        state_dict: keys as produced by a model adapted with `apply_lora`.
        cfg: the ``lora`` section the model was trained with (``r`` and ``alpha`` give the scaling).

    Raises:
        KeyError: naming the layer if an adapter misses its other half or its base weight.
    """
    section = _section(cfg)
    scaling = float(section["alpha"]) / section["r"]
    out: dict[str, torch.Tensor] = {}
    suffix_a = f".lora_A.{_ADAPTER}.weight"
    for key, value in state_dict.items():
        if key.endswith(suffix_a):
            layer = key[: -len(suffix_a)]
            try:
                lora_b = state_dict[f"{layer}.lora_B.{_ADAPTER}.weight"]
                base = state_dict[f"{layer}.base_layer.weight"]
            except KeyError as exc:
                raise KeyError(f"LoRA layer {layer!r}: {exc.args[0]} is missing from the state dict") from None
            if f"{layer}.weight" in state_dict:
                raise KeyError(f"LoRA layer {layer!r} has both a plain weight and adapters in the state dict")
            delta = lora_b.float() @ value.float()
            out[f"{layer}.weight"] = (base.float() + scaling * delta).to(base.dtype)
        elif any(part in key for part in _LORA_KEYS):
            continue
        elif ".base_layer." in key:
            layer, _, name = key.rpartition(".base_layer.")
            if not (name == "weight" and f"{layer}{suffix_a}" in state_dict):  # else merged above
                out[f"{layer}.{name}"] = value
        else:
            out[key] = value
    return out


def _stored_lora_section(pkg: Mapping[str, tp.Any]) -> tp.Any:
    from omegaconf import DictConfig, OmegaConf

    stored = pkg.get("xp.cfg")
    cfg = OmegaConf.create(stored) if isinstance(stored, str) else None
    return cfg.get("lora") if isinstance(cfg, DictConfig) else None


@contextlib.contextmanager
def merged_lora_checkpoint(
    training_checkpoint: str | Path, cfg: tp.Any = None, from_checkpoint: bool = False
) -> Iterator[Path]:
    """The training checkpoint to export: itself without LoRA, else a temporary copy with the adapters merged.

    The copy (next to the checkpoint, removed on exit) holds the checkpoint's ``xp.cfg`` and its best model state
    merged by `merge_lora_state_dict`, so that `audiocraft.models.export.export_lm` writes a plain LM.

    Args:
        training_checkpoint: the solver's checkpoint (``best_state`` / ``fsdp_best_state`` with LoRA keys).
        cfg: the ``lora`` config section of the run.
        from_checkpoint: read the ``lora`` section from the checkpoint's stored ``xp.cfg`` instead of ``cfg``
            (for tools that export any checkpoint, e.g. ``audiocraft-export``).
    """
    training_checkpoint = Path(training_checkpoint)
    pkg: tp.Any = None
    if from_checkpoint:
        try:
            pkg = torch.load(training_checkpoint, map_location="cpu", weights_only=True)
        except Exception:  # not ours to report: the exporter names the file and the fix (e.g. trust_pickle)
            yield training_checkpoint
            return
        cfg = _stored_lora_section(pkg)
    if not _section(cfg)["use"]:
        yield training_checkpoint
        return
    if pkg is None:
        pkg = torch.load(training_checkpoint, map_location="cpu", weights_only=True)
    merged = merge_lora_state_dict(best_model_state(pkg, training_checkpoint), cfg)
    logger.info("LoRA: exporting the best state with its adapters merged (%d tensors)", len(merged))
    out = training_checkpoint.with_name(f".lora_merged.{os.getpid()}.{secrets.token_hex(4)}.th")
    atomic_torch_save({"xp.cfg": pkg["xp.cfg"], "best_state": {"model": merged}}, out)
    try:
        yield out
    finally:
        out.unlink(missing_ok=True)
