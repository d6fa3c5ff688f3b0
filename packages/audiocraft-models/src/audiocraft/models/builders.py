"""Build models from the composed training config (layer: audiocraft-models, models).

Each function reads its config sections (upstream AudioCraft's keys: ``compression_model``, ``encodec``,
``seanet``, ``rvq``, ``no_quant``; for language models ``lm_model``, ``transformer_lm``, ``codebooks_pattern``,
``fuser``, ``conditioners``, ``classifier_free_guidance``, ``attribute_dropout``), turns them into plain keyword
arguments (classes never see a DictConfig), dispatches by name through a module-level dict and raises a ValueError
listing the valid names, or naming the unknown keys of a section.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from audiocraft.conditioners import ConditionFuser, ConditioningProvider, LUTConditioner
from audiocraft.conditioners import builders as conditioner_builders

from .. import quantization as qt
from ..modules.codebooks_patterns import (
    CoarseFirstPattern,
    CodebooksPatternProvider,
    DelayedPatternProvider,
    MusicLMPattern,
    ParallelPatternProvider,
    UnrolledPatternProvider,
)
from ..modules.seanet import SEANetDecoder, SEANetEncoder
from ..modules.transformer import StreamingTransformer, StreamingTransformerLayer
from .encodec import CompressionModel, EncodecModel
from .lm import LMModel

__all__ = [
    "dict_from_config",
    "get_compression_model",
    "get_debug_compression_model",
    "get_encodec_autoencoder",
    "get_quantizer",
    "get_wrapped_compression_model",
    "get_codebooks_pattern_provider",
    "get_condition_fuser",
    "get_conditioner_provider",
    "get_lm_model",
    "get_debug_lm_model",
]

ConfigLike = DictConfig | Mapping[str, Any]


def _as_config(cfg: ConfigLike) -> DictConfig:
    return cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))


def dict_from_config(cfg: Any, name: str | None = None) -> dict[str, Any]:
    """Resolve a config section into a plain (recursively converted, interpolations resolved) dict.

    The one implementation for every package (core's ``audiocraft.utils.utils.dict_from_config`` re-exports
    it): a null section (None) gives ``{}``, a mapping gives a new dict, anything else is an error.

    Args:
        cfg: a `DictConfig`, a mapping or None.
        name: the section's config key, named in the error.

    Raises:
        ValueError: when ``cfg`` is not a mapping (e.g. a list or a scalar).
    """
    if cfg is None:
        return {}
    if isinstance(cfg, DictConfig):
        container = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(container, dict)
        return {str(k): v for k, v in container.items()}
    if isinstance(cfg, Mapping):
        return dict(cfg)
    where = f"config section {name!r}" if name else "a config section"
    raise ValueError(f"{where} must be a mapping of keys to values, got {type(cfg).__name__}: {cfg!r}")


def _section(cfg: DictConfig, name: str) -> dict[str, Any]:
    if name not in cfg:
        raise ValueError(f"the config has no section {name!r}, which this model needs")
    return dict_from_config(cfg[name], name)


def _call(target: Callable[..., Any], section: str, kwargs: dict[str, Any]) -> Any:
    """Call ``target(**kwargs)``, first checking every key against its signature."""
    params = inspect.signature(target).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise ValueError(
                f"unknown key(s) {unknown} in config section {section!r} for "
                f"{getattr(target, '__name__', target)}; valid keys: {sorted(params)}"
            )
    return target(**kwargs)


def _seanet(cfg: DictConfig) -> tuple[SEANetEncoder, SEANetDecoder]:
    kwargs = _section(cfg, "seanet")
    encoder_overrides = kwargs.pop("encoder", None) or {}
    decoder_overrides = kwargs.pop("decoder", None) or {}
    encoder = _call(SEANetEncoder, "seanet", {**kwargs, **encoder_overrides})
    decoder = _call(SEANetDecoder, "seanet", {**kwargs, **decoder_overrides})
    return encoder, decoder


_AUTOENCODERS: dict[str, Callable[[DictConfig], tuple[Any, Any]]] = {"seanet": _seanet}

_QUANTIZERS: dict[str, type[qt.BaseQuantizer]] = {
    "no_quant": qt.DummyQuantizer,
    "rvq": qt.ResidualVectorQuantizer,
}


def get_encodec_autoencoder(encoder_name: str, cfg: ConfigLike) -> tuple[Any, Any]:
    """Build the (encoder, decoder) pair named ``encoder_name`` from its section of ``cfg`` (e.g. ``seanet``).

    The section's ``encoder`` and ``decoder`` sub-sections override keys for one side only.
    """
    if encoder_name not in _AUTOENCODERS:
        raise ValueError(f"unknown autoencoder {encoder_name!r}; expected one of {sorted(_AUTOENCODERS)}")
    return _AUTOENCODERS[encoder_name](_as_config(cfg))


def get_quantizer(quantizer: str, cfg: ConfigLike, dimension: int) -> qt.BaseQuantizer:
    """Build the quantizer named ``quantizer`` (``rvq`` or ``no_quant``) from its section of ``cfg``."""
    if quantizer not in _QUANTIZERS:
        raise ValueError(f"unknown quantizer {quantizer!r}; expected one of {sorted(_QUANTIZERS)}")
    cfg = _as_config(cfg)
    kwargs = dict_from_config(cfg.get(quantizer))
    if quantizer != "no_quant":
        kwargs["dimension"] = dimension
    return _call(_QUANTIZERS[quantizer], quantizer, kwargs)


def _encodec(cfg: DictConfig) -> EncodecModel:
    kwargs = _section(cfg, "encodec")
    encoder_name = kwargs.pop("autoencoder", "seanet")
    quantizer_name = kwargs.pop("quantizer", "rvq")
    encoder, decoder = get_encodec_autoencoder(encoder_name, cfg)
    quantizer = get_quantizer(quantizer_name, cfg, encoder.dimension)
    if "sample_rate" not in kwargs:
        raise ValueError("config section 'encodec' needs a 'sample_rate'")
    frame_rate = int(kwargs["sample_rate"]) // int(encoder.hop_length)
    return _call(
        EncodecModel,
        "encodec",
        dict(encoder=encoder, decoder=decoder, quantizer=quantizer, frame_rate=frame_rate, **kwargs),
    )


_COMPRESSION_MODELS: dict[str, Callable[[DictConfig], CompressionModel]] = {"encodec": _encodec}


def get_compression_model(cfg: ConfigLike) -> CompressionModel:
    """Build the compression model selected by ``cfg.compression_model``, on ``cfg.device`` (default cpu).

    Args:
        cfg: the full composed config (or a mapping with the same sections).

    Raises:
        ValueError: unknown model/autoencoder/quantizer name, missing section, or unknown key in a section.
    """
    cfg = _as_config(cfg)
    name = cfg.get("compression_model")
    if name not in _COMPRESSION_MODELS:
        raise ValueError(f"unknown compression_model {name!r}; expected one of {sorted(_COMPRESSION_MODELS)}")
    return _COMPRESSION_MODELS[name](cfg).to(cfg.get("device", "cpu") or "cpu")


def get_wrapped_compression_model(compression_model: CompressionModel, cfg: ConfigLike) -> CompressionModel:
    """Wrap a compression model as ``cfg`` says: ``interleave_stereo_codebooks`` (stereo), ``compression_model_n_q``.

    See :func:`audiocraft.models._stereo.wrap_compression_model`.
    """
    from ._stereo import wrap_compression_model

    return wrap_compression_model(compression_model, cfg)


_DEBUG_RATIOS = {16000: [10, 8, 8], 32000: [10, 8, 16]}  # 25 frames/s at both rates


def get_debug_compression_model(
    device: torch.device | str = "cpu", sample_rate: int = 32000, seed: int | None = 0
) -> EncodecModel:
    """A tiny random EnCodec (25 frames/s, 4 codebooks of 400 codes, latent 32) for tests; needs no file.

    Args:
        device: device of the model.
        sample_rate: 16000 or 32000.
        seed: seed of the weights and codebook initialisation (None: use the global RNG).
    """
    if sample_rate not in _DEBUG_RATIOS:
        raise ValueError(
            f"debug compression model sample_rate must be one of {sorted(_DEBUG_RATIOS)}, got {sample_rate}"
        )
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        seanet_kwargs: dict[str, Any] = dict(
            n_filters=4, n_residual_layers=1, dimension=32, ratios=_DEBUG_RATIOS[sample_rate]
        )
        encoder = SEANetEncoder(**seanet_kwargs)
        decoder = SEANetDecoder(**seanet_kwargs)
        quantizer = qt.ResidualVectorQuantizer(dimension=32, bins=400, n_q=4)
        quantizer(torch.randn(8, 32, 128), 1)  # k-means initialisation of the codebooks
    model = EncodecModel(encoder, decoder, quantizer, frame_rate=25, sample_rate=sample_rate, channels=1)
    return model.to(device).eval()


# --- language models: upstream's sections lm_model, transformer_lm (LMModel's and StreamingTransformer's
# arguments), codebooks_pattern, fuser, conditioners, classifier_free_guidance, attribute_dropout and
# efficient_attention_backend. Deliberate differences from upstream: `codebooks_pattern.music_lm` is read for
# `modeling: musiclm` (upstream looks for a `musiclm` section that its configs do not have, so `group_by` was never
# applied); unknown keys of `transformer_lm` are named in a ValueError; the attention backend is passed to the
# transformer explicitly (no process-wide setting).

_PATTERN_PROVIDERS: dict[str, type[CodebooksPatternProvider]] = {
    "parallel": ParallelPatternProvider,
    "delay": DelayedPatternProvider,
    "unroll": UnrolledPatternProvider,
    "coarse_first": CoarseFirstPattern,
    "musiclm": MusicLMPattern,
}
# Config section of each pattern's arguments when it differs from the pattern's name. Upstream reads
# `codebooks_pattern.musiclm`, but its configs hold `music_lm.group_by`, which was therefore never used.
_PATTERN_SECTIONS = {"musiclm": ("music_lm", "musiclm")}


def get_codebooks_pattern_provider(n_q: int, cfg: ConfigLike) -> CodebooksPatternProvider:
    """Build the pattern named by ``cfg.modeling`` with the arguments of the section of the same name.

    Args:
        n_q: number of codebooks.
        cfg: the ``codebooks_pattern`` section.

    Raises:
        ValueError: unknown pattern, or unknown argument in its section.
    """
    cfg = _as_config(cfg)
    name = cfg.get("modeling")
    if name not in _PATTERN_PROVIDERS:
        raise ValueError(f"unknown codebooks_pattern.modeling {name!r}; expected one of {sorted(_PATTERN_PROVIDERS)}")
    kwargs: dict[str, Any] = {}
    for section in _PATTERN_SECTIONS.get(name, (name,)):
        kwargs.update(dict_from_config(cfg.get(section), f"codebooks_pattern.{section}"))
    return _call(_PATTERN_PROVIDERS[name], f"codebooks_pattern.{name}", {"n_q": n_q, **kwargs})


def get_condition_fuser(cfg: ConfigLike) -> ConditionFuser:
    """Build the ConditionFuser of ``cfg.fuser`` (method lists and options; see audiocraft.conditioners.builders).

    Every fusing method gets a list in ``fuse2cond``, empty when the section lacks it (upstream's configs list all
    four, and upstream's code indexes them).
    """
    section = dict_from_config(_as_config(cfg).get("fuser"), "fuser")
    for method in ConditionFuser.FUSING_METHODS:
        section[method] = section.get(method) or []
    return conditioner_builders.get_condition_fuser(section)


def _clap_quantizer(dim: int, n_q: int, bins: int, **kwargs: Any) -> qt.ResidualVectorQuantizer:
    return qt.ResidualVectorQuantizer(dimension=dim, n_q=n_q, bins=bins, **kwargs)


def get_conditioner_provider(output_dim: int, cfg: ConfigLike) -> ConditioningProvider:
    """Build the ConditioningProvider of ``cfg.conditioners`` (one conditioner per attribute) on ``cfg.device``.

    Each attribute's section names its ``model`` and holds that model's arguments under the same key
    (``{"model": "lut", "lut": {...}}``); the conditioners are built by ``audiocraft.conditioners.builders`` from
    plain dicts, with ``dataset.segment_duration`` (``chroma_stem``) and this package's RVQ (quantized ``clap``).
    """
    cfg = _as_config(cfg)
    dataset = cfg.get("dataset")
    duration = dataset.get("segment_duration") if dataset is not None else None
    return conditioner_builders.get_conditioner_provider(
        output_dim,
        dict_from_config(cfg.get("conditioners"), "conditioners"),
        device=str(cfg.get("device", "cpu") or "cpu"),
        duration=duration,
        quantizer_factory=_clap_quantizer,
    )


def _transformer_lm_keys() -> set[str]:
    keys = set()
    for target in (LMModel, StreamingTransformer, StreamingTransformerLayer):
        keys |= {
            name
            for name, p in inspect.signature(target).parameters.items()
            if p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        }
    return keys - {
        "pattern_provider",
        "condition_provider",
        "fuser",
        "cfg_dropout",
        "cfg_coef",
        "attribute_dropout",
        "d_model",
        "dim_feedforward",
        "rope",
        "device",
        "dtype",
        "attention_backend",
    }


_LM_MODELS = ("transformer_lm",)


def get_lm_model(cfg: ConfigLike) -> LMModel:
    """Build the language model of ``cfg.lm_model`` (``transformer_lm``) on ``cfg.device`` in ``cfg.dtype``.

    The attention backend is ``cfg.efficient_attention_backend``, passed explicitly to the transformer. A fuser
    that sends a condition to cross-attention turns ``cross_attention`` on, as upstream does.

    Raises:
        ValueError: unknown model, pattern or conditioner; unknown key in ``transformer_lm``.
    """
    cfg = _as_config(cfg)
    if cfg.get("lm_model") not in _LM_MODELS:
        raise ValueError(f"unknown lm_model {cfg.get('lm_model')!r}; expected one of {list(_LM_MODELS)}")
    kwargs = _section(cfg, "transformer_lm")
    unknown = sorted(set(kwargs) - _transformer_lm_keys() - {"q_modeling"})
    if unknown:
        raise ValueError(
            f"unknown key(s) {unknown} in config section 'transformer_lm'; valid keys: {sorted(_transformer_lm_keys())}"
        )
    n_q = kwargs["n_q"]
    q_modeling = kwargs.pop("q_modeling", None)
    pattern_cfg = _as_config(dict_from_config(cfg.get("codebooks_pattern"), "codebooks_pattern"))
    if pattern_cfg.get("modeling") is None:
        if q_modeling is None:
            raise ValueError("set codebooks_pattern.modeling (or the older transformer_lm.q_modeling)")
        pattern_cfg = OmegaConf.create({"modeling": q_modeling, "delay": {"delays": list(range(n_q))}})
    guidance = _section(cfg, "classifier_free_guidance")
    fuser = get_condition_fuser(cfg)
    device = str(cfg.get("device", "cpu") or "cpu")
    condition_provider = get_conditioner_provider(kwargs["dim"], cfg).to(device)
    if fuser.fuse2cond["cross"]:
        kwargs["cross_attention"] = True
    model = LMModel(
        pattern_provider=get_codebooks_pattern_provider(n_q, pattern_cfg),
        condition_provider=condition_provider,
        fuser=fuser,
        cfg_dropout=guidance["training_dropout"],
        cfg_coef=guidance["inference_coef"],
        attribute_dropout=dict_from_config(cfg.get("attribute_dropout"), "attribute_dropout"),
        dtype=getattr(torch, str(cfg.get("dtype", "float32"))),
        device=device,
        attention_backend=str(cfg.get("efficient_attention_backend", "torch") or "torch"),
        **kwargs,
    )
    return model.to(device)


def get_debug_lm_model(device: torch.device | str = "cpu", seed: int | None = 0) -> LMModel:
    """A tiny random LM (4 codebooks of 400, dim 16, 2 layers, delay pattern, LUT text on cross-attention).

    Upstream's debug LM, except that its text conditioner uses the ``noop`` tokenizer (one token per
    description) instead of spaCy's ``whitespace``, so it needs no download.

    Args:
        device: device of the model.
        seed: seed of the weights (None: use the global RNG).
    """
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        dim = 16
        provider = ConditioningProvider(
            {"description": LUTConditioner(n_bins=128, dim=dim, output_dim=dim, tokenizer="noop")}
        )
        fuser = ConditionFuser({"cross": ["description"], "prepend": [], "sum": [], "input_interpolate": []})
        lm = LMModel(
            DelayedPatternProvider(n_q=4),
            provider,
            fuser,
            n_q=4,
            card=400,
            dim=dim,
            num_heads=4,
            custom=True,
            num_layers=2,
            cross_attention=True,
            causal=True,
        )
    return lm.to(device).eval()
