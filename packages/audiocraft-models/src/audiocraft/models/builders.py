"""Build models from the composed training config (layer: audiocraft-models, models).

Each function reads its config sections (upstream AudioCraft's keys: ``compression_model``, ``encodec``,
``seanet``, ``rvq``, ``no_quant``), turns them into plain keyword arguments (classes never see a DictConfig),
dispatches by name through a module-level dict and raises a ValueError listing the valid names, or naming the
unknown keys of a section.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from .. import quantization as qt
from ..modules.seanet import SEANetDecoder, SEANetEncoder
from .encodec import CompressionModel, EncodecModel

__all__ = [
    "dict_from_config", "get_compression_model", "get_debug_compression_model", "get_encodec_autoencoder",
    "get_quantizer", "get_wrapped_compression_model",
]

ConfigLike = DictConfig | Mapping[str, Any]


def _as_config(cfg: ConfigLike) -> DictConfig:
    return cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))


def dict_from_config(cfg: Any) -> dict[str, Any]:
    """Resolve a config section into a plain (recursively converted) dict; None gives an empty dict."""
    if cfg is None:
        return {}
    if isinstance(cfg, DictConfig):
        container = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(container, dict)
        return container  # type: ignore[return-value]
    return dict(cfg)


def _section(cfg: DictConfig, name: str) -> dict[str, Any]:
    if name not in cfg:
        raise ValueError(f"the config has no section {name!r}, which this model needs")
    return dict_from_config(cfg[name])


def _call(target: Callable[..., Any], section: str, kwargs: dict[str, Any]) -> Any:
    """Call ``target(**kwargs)``, first checking every key against its signature."""
    params = inspect.signature(target).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise ValueError(f"unknown key(s) {unknown} in config section {section!r} for "
                             f"{getattr(target, '__name__', target)}; valid keys: {sorted(params)}")
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
    return _call(EncodecModel, "encodec", dict(encoder=encoder, decoder=decoder, quantizer=quantizer,
                                                frame_rate=frame_rate, **kwargs))


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
    """Hook for wrapping a compression model according to ``cfg`` (no wrapper is defined yet: identity)."""
    return compression_model


_DEBUG_RATIOS = {16000: [10, 8, 8], 32000: [10, 8, 16]}  # 25 frames/s at both rates


def get_debug_compression_model(device: torch.device | str = "cpu", sample_rate: int = 32000,
                                seed: int | None = 0) -> EncodecModel:
    """A tiny random EnCodec (25 frames/s, 4 codebooks of 400 codes, latent 32) for tests; needs no file.

    Args:
        device: device of the model.
        sample_rate: 16000 or 32000.
        seed: seed of the weights and codebook initialisation (None: use the global RNG).
    """
    if sample_rate not in _DEBUG_RATIOS:
        raise ValueError(f"debug compression model sample_rate must be one of {sorted(_DEBUG_RATIOS)}, "
                         f"got {sample_rate}")
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        seanet_kwargs: dict[str, Any] = dict(n_filters=4, n_residual_layers=1, dimension=32,
                                             ratios=_DEBUG_RATIOS[sample_rate])
        encoder = SEANetEncoder(**seanet_kwargs)
        decoder = SEANetDecoder(**seanet_kwargs)
        quantizer = qt.ResidualVectorQuantizer(dimension=32, bins=400, n_q=4)
        quantizer(torch.randn(8, 32, 128), 1)  # k-means initialisation of the codebooks
    model = EncodecModel(encoder, decoder, quantizer, frame_rate=25, sample_rate=sample_rate, channels=1)
    return model.to(device).eval()
