"""Builders turning upstream-style config sections (`metrics.<name>`) into metric objects.

Part of `audiocraft.metrics` (layer: metrics). Each function takes one section as a plain mapping (an OmegaConf
`DictConfig` works too: it is read once and turned into plain dicts, so no metric ever holds a config object),
picks the implementation named by its `model` key through a dict literal, and raises `ValueError` listing the
valid names. Path-valued keys can be mapped through `resolve_path` (e.g. the training environment's
`//reference/...` resolver); the metrics themselves only take resolved paths. Keys that belong to the solver
(`use_gt`) are ignored here.
"""

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._base import Metric

PathResolver = Callable[[str], str | Path]
_PATH_KEYS = frozenset({"model_path", "weights_path", "pca_params_path", "tokenizer_path", "reference_stats", "bin"})


def _plain(section: Any) -> Any:
    if isinstance(section, Mapping):
        return {str(k): _plain(v) for k, v in section.items()}
    if isinstance(section, (list, tuple)):
        return [_plain(v) for v in section]
    return section


def _resolve(kwargs: dict[str, Any], resolve_path: PathResolver | None) -> dict[str, Any]:
    if resolve_path is None:
        return kwargs
    return {k: (resolve_path(str(v)) if k in _PATH_KEYS and v is not None else v) for k, v in kwargs.items()}


def _choose(section: Mapping, table: Mapping[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    cfg = _plain(section)
    model = cfg.get("model")
    if model not in table:
        raise ValueError(f"unknown {where}.model={model!r}; expected one of {sorted(table)}")
    sub = cfg.get(model) or {}
    if not isinstance(sub, dict):
        raise ValueError(f"{where}.{model} must be a mapping of arguments, got {sub!r}")
    return model, sub


def _fad_vggish(model_path: str | Path | None = None, pca_params_path: str | Path | None = None) -> Any:
    from .embeddings import VGGish

    if model_path is None:
        raise ValueError("metrics.fad.vggish.model_path must point to local PyTorch VGGish weights")
    return VGGish.from_pretrained(model_path, pca_params_path)


def _fad_passt(weights_path: str | Path | None = None, pretrained_length: float | None = None) -> Any:
    from .embeddings import PasstModel

    if weights_path is None:
        raise ValueError("metrics.fad.passt.weights_path must point to a local PaSST checkpoint")
    return PasstModel(weights_path, pretrained_length=pretrained_length, mode="embed_only")


def _fad_clap(
    model_path: str | Path | None = None,
    model_arch: str = "HTSAT-tiny",
    enable_fusion: bool = False,
    tokenizer_path: str | Path | None = None,
) -> Any:
    from .embeddings import ClapModel

    if model_path is None:
        raise ValueError("metrics.fad.clap.model_path must point to a local CLAP checkpoint")
    return ClapModel(model_path, model_arch=model_arch, enable_fusion=enable_fusion, tokenizer_path=tokenizer_path)


def _fad_tf(**_: Any) -> Any:
    raise ValueError(
        "metrics.fad.model=tf is upstream's TensorFlow FAD tool, which this project replaces: set "
        "metrics.fad.model=vggish and metrics.fad.vggish.model_path to PyTorch VGGish weights "
        "(the same network), or use passt / clap embeddings"
    )


_FAD_EMBEDDERS: dict[str, Callable[..., Any]] = {
    "vggish": _fad_vggish,
    "passt": _fad_passt,
    "clap": _fad_clap,
    "tf": _fad_tf,
}


def get_fad(section: Mapping, resolve_path: PathResolver | None = None) -> Metric:
    """`FrechetAudioDistanceMetric` from `metrics.fad` (`model`, its sub-section, optional `reference_stats`)."""
    from .fad import FrechetAudioDistanceMetric

    model, kwargs = _choose(section, _FAD_EMBEDDERS, "metrics.fad")
    embedder = _FAD_EMBEDDERS[model](**_resolve(kwargs, resolve_path))
    reference = _resolve({"reference_stats": _plain(section).get("reference_stats")}, resolve_path)
    return FrechetAudioDistanceMetric(embedder, reference_stats=reference["reference_stats"])


def get_kldiv(section: Mapping, resolve_path: PathResolver | None = None) -> Metric:
    """`PasstKLDivergenceMetric` from `metrics.kld` (`model: passt`, `passt.{pretrained_length, weights_path}`)."""
    from .kld import PasstKLDivergenceMetric

    table = {"passt": PasstKLDivergenceMetric}
    model, kwargs = _choose(section, table, "metrics.kld")
    return table[model](**_resolve(kwargs, resolve_path))


def get_text_consistency(section: Mapping, resolve_path: PathResolver | None = None) -> Metric:
    """`CLAPTextConsistencyMetric` from `metrics.text_consistency` (`model: clap`, `clap.{model_path, ...}`)."""
    from .clap_consistency import CLAPTextConsistencyMetric

    table = {"clap": CLAPTextConsistencyMetric}
    model, kwargs = _choose(section, table, "metrics.text_consistency")
    return table[model](**_resolve(kwargs, resolve_path))


def get_chroma_cosine_similarity(section: Mapping, resolve_path: PathResolver | None = None) -> Metric:
    """`ChromaCosineSimilarityMetric` from `metrics.chroma_cosine` (`model: chroma_base`, `chroma_base.{...}`)."""
    from .chroma_cosinesim import ChromaCosineSimilarityMetric

    table = {"chroma_base": ChromaCosineSimilarityMetric}
    model, kwargs = _choose(section, table, "metrics.chroma_cosine")
    return table[model](**kwargs)


def get_visqol(section: Mapping, resolve_path: PathResolver | None = None) -> Metric:
    """`ViSQOL` from `metrics.visqol` (`bin`, `mode`, `model`, optional `debug`, `timeout`)."""
    from .visqol import ViSQOL

    return ViSQOL(**_resolve(_plain(section), resolve_path))
