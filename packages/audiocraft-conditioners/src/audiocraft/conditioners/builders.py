"""Builders of the conditioning modules from upstream's config sections, as plain mappings.

Layer: audiocraft-conditioners (public). omegaconf, hydra and transformers are not dependencies: callers convert their
config sections to dicts first (audiocraft-models' ``builders.get_conditioner_provider`` / ``get_condition_fuser``
do, with ``OmegaConf.to_container(section, resolve=True)``). The sections are those of upstream's
``config/conditioner/*.yaml`` groups:

.. code-block:: python

    provider = get_conditioner_provider(
        output_dim=1024,                        # the LM's width
        conditioners={"description": {"model": "t5", "t5": {"name": "t5-base", "finetune": False}}},
        device="cpu", duration=30.0)            # cfg.device, cfg.dataset.segment_duration
    fuser = get_condition_fuser({"cross_attention_pos_emb": False, "cross": ["description"], "sum": []})

Each conditioner ``model`` is dispatched through one dict literal; an unknown model or an unknown argument is a
``ValueError`` that names the section and the valid keys.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from ._base import BaseConditioner
from ._chroma import ChromaExtractor, ChromaStemConditioner
from ._clap import CLAPEmbeddingConditioner
from ._fuser import ConditionFuser
from ._provider import ConditioningProvider
from ._t5 import T5Conditioner
from ._text import LUTConditioner

__all__ = [
    "CONDITIONERS",
    "check_conditioner",
    "check_conditioners",
    "get_condition_fuser",
    "get_conditioner",
    "get_conditioner_provider",
]

CONDITIONERS: dict[str, type[BaseConditioner]] = {
    "lut": LUTConditioner,
    "t5": T5Conditioner,
    "chroma_stem": ChromaStemConditioner,
    "clap": CLAPEmbeddingConditioner,
}
"""Conditioner class of each upstream ``model`` key."""

# Upstream models whose conditioner wraps a model of audiocraft-models (STYLE.md: they live there).
_IN_MODELS = ("style", "chords_emb", "drum_latents", "melody")
# Keys of upstream's `conditioners.args` that configure the dataset, not the provider.
_DATASET_ARGS = ("merge_text_conditions_p", "drop_desc_p")

QuantizerFactory = Callable[..., nn.Module]
"""``factory(dim, n_q=..., bins=..., **rvq_kwargs) -> quantizer`` (e.g. audiocraft-models' ResidualVectorQuantizer)."""


def _parameters(*targets: Callable[..., Any]) -> set[str]:
    names: set[str] = set()
    for target in targets:
        names |= {
            name
            for name, p in inspect.signature(target).parameters.items()
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and name != "self"
        }
    return names


def _check(section: str, given: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {section}; expected some of {sorted(allowed)}")


def _allowed(model: str) -> set[str]:
    """Section keys of a conditioner model (its constructor's, less what the builder passes itself)."""
    if model == "chroma_stem":
        return _parameters(ChromaStemConditioner, ChromaExtractor) - {"output_dim", "duration", "device"}
    return _parameters(CONDITIONERS[model]) - {"output_dim", "device", "quantizer"}


def check_conditioner(model: str, args: Mapping[str, Any], section: str = "conditioner") -> None:
    """Check a conditioner section without building it (no model is loaded).

    The keys of a ``clap`` section that are not its arguments go to the quantizer factory and are not checked here.

    Raises:
        ValueError: unknown model, or unknown argument.
    """
    if model in _IN_MODELS:
        raise ValueError(f"{section}: conditioner model {model!r} wraps an audiocraft-models model and is built there")
    if model not in CONDITIONERS:
        raise ValueError(f"{section}: unknown conditioner model {model!r}; expected one of {sorted(CONDITIONERS)}")
    if model != "clap":
        _check(section, args, _allowed(model))


def get_conditioner(
    model: str,
    output_dim: int,
    args: Mapping[str, Any],
    *,
    device: str = "cpu",
    duration: float | None = None,
    quantizer_factory: QuantizerFactory | None = None,
    resolve_path: Callable[[str], str] | None = None,
    section: str = "conditioner",
) -> BaseConditioner:
    """One conditioner from its ``model`` key and that model's argument section.

    Args:
        model: ``lut``, ``t5``, ``chroma_stem`` or ``clap``.
        output_dim: Width of the embeddings (the LM's ``dim``).
        args: The model's section (e.g. ``{"n_bins": 128, "dim": 32, "tokenizer": "noop"}`` for ``lut``).
        device: Device of the encoders (``t5``, ``chroma_stem``, ``clap``).
        duration: Training segment duration in seconds (``chroma_stem``; upstream's ``dataset.segment_duration``).
        quantizer_factory: Builds the CLAP quantizer when ``quantize`` is true; section keys that are not
            ``CLAPEmbeddingConditioner`` arguments (e.g. ``kmeans_iters``) are passed to it (and ignored without
            quantization, as upstream).
        resolve_path: Maps ``//reference/...`` paths (the CLAP ``checkpoint``) to real ones.
        section: Name of the section, for error messages.

    Raises:
        ValueError: unknown model or argument, or a missing ``duration`` / ``quantizer_factory``.
    """
    check_conditioner(model, args, section)
    kwargs: dict[str, Any] = dict(args)
    if model == "lut":
        return LUTConditioner(output_dim=output_dim, **kwargs)
    if model == "t5":
        return T5Conditioner(output_dim=output_dim, device=device, **kwargs)
    if model == "chroma_stem":
        if duration is None:
            raise ValueError(f"{section}: chroma_stem needs the training segment duration (dataset.segment_duration)")
        return ChromaStemConditioner(output_dim=output_dim, duration=duration, device=device, **kwargs)
    own = _allowed("clap")
    quantizer_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k not in own}
    if resolve_path is not None and "checkpoint" in kwargs:
        kwargs["checkpoint"] = resolve_path(str(kwargs["checkpoint"]))
    quantizer = None
    if kwargs.get("quantize", False):
        if quantizer_factory is None:
            raise ValueError(
                f"{section}: clap with quantize=true needs a quantizer_factory (audiocraft-models "
                "passes its ResidualVectorQuantizer)"
            )
        quantizer = quantizer_factory(kwargs["dim"], n_q=kwargs["n_q"], bins=kwargs["bins"], **quantizer_kwargs)
    return CLAPEmbeddingConditioner(output_dim=output_dim, device=device, quantizer=quantizer, **kwargs)


def _sections(conditioners: Mapping[str, Any] | None) -> dict[str, tuple[str, dict[str, Any]]]:
    """``{attribute: (model, model arguments)}`` of a ``conditioners`` section, with its ``args`` checked."""
    sections = dict(conditioners or {})
    provider_args = dict(sections.pop("args", None) or {})
    for key in _DATASET_ARGS:
        provider_args.pop(key, None)
    _check("conditioners.args", provider_args, set())
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    for attribute, section in sections.items():
        if not isinstance(section, Mapping) or "model" not in section:
            raise ValueError(f"conditioners.{attribute} must be a mapping with a 'model' key, got {section!r}")
        model = str(section["model"])
        out[str(attribute)] = (model, dict(section.get(model) or {}))
    return out


def check_conditioners(conditioners: Mapping[str, Any] | None) -> None:
    """Check upstream's whole ``conditioners`` section without building anything (see :func:`check_conditioner`)."""
    for attribute, (model, args) in _sections(conditioners).items():
        check_conditioner(model, args, f"conditioners.{attribute}.{model}")


def get_conditioner_provider(
    output_dim: int,
    conditioners: Mapping[str, Any] | None,
    *,
    device: str = "cpu",
    duration: float | None = None,
    quantizer_factory: QuantizerFactory | None = None,
    resolve_path: Callable[[str], str] | None = None,
) -> ConditioningProvider:
    """The ConditioningProvider of upstream's ``conditioners`` section.

    Args:
        output_dim: Width of the embeddings (the LM's ``dim``).
        conditioners: ``{attribute: {"model": <key>, <key>: {...arguments}}, "args": {...}}``, or None (no
            conditioning, upstream's ``conditioner: none``). Of ``args``, upstream's dataset keys
            ``merge_text_conditions_p`` / ``drop_desc_p`` are ignored, as upstream does.
        device: ``cfg.device``.
        duration: ``cfg.dataset.segment_duration`` (needed by ``chroma_stem``).
        quantizer_factory: See :func:`get_conditioner`.
        resolve_path: See :func:`get_conditioner`.

    Raises:
        ValueError: a section without ``model``, or see :func:`get_conditioner`.
    """
    built: dict[str, BaseConditioner] = {}
    for attribute, (model, args) in _sections(conditioners).items():
        built[attribute] = get_conditioner(
            model,
            output_dim,
            args,
            device=device,
            duration=duration,
            quantizer_factory=quantizer_factory,
            resolve_path=resolve_path,
            section=f"conditioners.{attribute}.{model}",
        )
    return ConditioningProvider(built, device=device)


def get_condition_fuser(fuser: Mapping[str, Any] | None) -> ConditionFuser:
    """The ConditionFuser of upstream's ``fuser`` section (method lists, then the fuser's own options).

    Raises:
        ValueError: for a key that is neither a fusing method nor a ConditionFuser option.
    """
    section = dict(fuser or {})
    fuse2cond = {
        method: list(section.pop(method) or []) for method in ConditionFuser.FUSING_METHODS if method in section
    }
    _check("fuser", section, _parameters(ConditionFuser) - {"fuse2cond"})
    return ConditionFuser(fuse2cond=fuse2cond, **section)
