"""Load exported models from files, folders, ``//pretrained/`` names, model names and the Hugging Face hub.

Layer: audiocraft-models, models. An exported package is upstream AudioCraft's layout: a dict with ``best_state``
(the state dict), ``xp.cfg`` (the training config as a YAML string, or a plain dict), ``version`` and
``exported``. It is read with ``torch.load(weights_only=True)`` (no arbitrary pickle) or from a ``.safetensors``
file (extra ``[safetensors]``) whose metadata holds ``xp.cfg`` and ``version``. The config goes through
:func:`migrate_cfg` (keys renamed or removed since the checkpoint's version), the model is rebuilt by the builder
of its kind (:data:`MODEL_KINDS`: ``compression``, ``lm``) and the state dict is loaded strictly: a checkpoint that
does not fit fails naming its missing and unexpected keys.

Sources, in order: a model name of :data:`NAMED_MODELS` (built locally, no file; e.g. ``debug_compression_model``);
an existing local file; a local folder (``<folder>/compression_state_dict.bin`` or ``.safetensors``, ``state_dict.bin``
for language models); ``//pretrained/NAME`` (:data:`PRETRAINED_PREFIX`), looked up under the folder given as
``pretrained_dir`` or ``$AUDIOCRAFT_PRETRAINED_DIR`` (else NAME is tried by the other rules); an ``https://`` URL
(torch hub cache); a hub repo id (extra ``[hub]``; ``HF_HUB_OFFLINE=1`` means use the local cache only;
``cache_dir`` or ``$AUDIOCRAFT_CACHE_DIR`` choose the cache). Training configs that name a model with
``//pretrained/`` (``continue_from``, ``compression_model_checkpoint``) go through the same lookup.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from . import builders
from .encodec import CompressionModel

__all__ = [
    "CheckpointError",
    "COMPRESSION_FILENAME",
    "LM_FILENAME",
    "MODEL_KINDS",
    "NAMED_MODELS",
    "PRETRAINED_PREFIX",
    "build_model",
    "config_from_package",
    "get_audiocraft_cache_dir",
    "load_checkpoint_file",
    "load_compression_model",
    "load_compression_model_ckpt",
    "load_lm_model",
    "load_lm_model_ckpt",
    "load_model",
    "load_state_dict_strict",
    "migrate_cfg",
    "model_from_package",
    "resolve_pretrained",
]

PRETRAINED_PREFIX = "//pretrained/"
"""Prefix of a checkpoint path naming a model of `NAMED_MODELS` (``//pretrained/<name>``)."""
COMPRESSION_FILENAME = "compression_state_dict.bin"
"""File name of an exported compression model."""
LM_FILENAME = "state_dict.bin"
"""File name of an exported language model."""
OWN_VERSION_PREFIX = "audiocraft-models/"


class CheckpointError(RuntimeError):
    """A checkpoint could not be found, read, or does not fit its model; the message names the source."""


@dataclass(frozen=True)
class ModelKind:
    """How to rebuild one kind of exported model.

    Attributes:
        filename: the package's file name inside a folder or a hub repo (upstream's names).
        build: builds the model from a full training config (``cfg.device`` set).
        base: the class every model of this kind is an instance of (checked after loading).
    """

    filename: str
    build: Callable[[DictConfig], nn.Module]
    base: type[nn.Module]


# Kinds of exported models. The builders are looked up at call time, so a test may monkeypatch them.
MODEL_KINDS: dict[str, ModelKind] = {
    "compression": ModelKind(COMPRESSION_FILENAME, lambda cfg: builders.get_compression_model(cfg), CompressionModel),
    "lm": ModelKind(LM_FILENAME, lambda cfg: builders.get_lm_model(cfg), nn.Module),
}
"""The kinds of exported models, by the ``kind`` an export records."""


def _dac(model_type: str, cache_dir: str | Path | None) -> CompressionModel:
    from .dac import DAC

    return DAC(model_type, cache_dir=cache_dir)


@dataclass(frozen=True)
class NamedModel:
    """A model known by name, built locally (no exported file).

    Attributes:
        kind: key of :data:`MODEL_KINDS`.
        build: builds the model on the given device; the second argument is the ``cache_dir`` given to the loader
            (the Hugging Face cache folder a named model is looked up in, None for the hub's default).
    """

    kind: str
    build: Callable[[torch.device | str, str | Path | None], nn.Module]


# The one table of models known by name (``CompressionModel.get_pretrained(name)``, ``//pretrained/name``).
NAMED_MODELS: dict[str, NamedModel] = {
    "debug_compression_model": NamedModel(
        "compression", lambda device, cache_dir: builders.get_debug_compression_model(device)
    ),
    "dac_44khz": NamedModel("compression", lambda device, cache_dir: _dac("44khz", cache_dir)),
    "dac_24khz": NamedModel("compression", lambda device, cache_dir: _dac("24khz", cache_dir)),
    "dac_16khz": NamedModel("compression", lambda device, cache_dir: _dac("16khz", cache_dir)),
}
"""The models known by name (``CompressionModel.get_pretrained(name)``, ``//pretrained/name``)."""


def get_audiocraft_cache_dir() -> str | None:
    """The cache folder for downloads set by ``$AUDIOCRAFT_CACHE_DIR``, if any."""
    return os.environ.get("AUDIOCRAFT_CACHE_DIR")


def _import_optional(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"this needs `{module}`: pip install 'audiocraft-models[{extra}]'") from exc


def _load_safetensors(path: Path, device: torch.device | str) -> dict[str, Any]:
    st = _import_optional("safetensors", "safetensors")
    st_torch = importlib.import_module("safetensors.torch")
    with st.safe_open(str(path), framework="pt", device=str(device)) as handle:
        metadata = dict(handle.metadata() or {})
    state = st_torch.load_file(str(path), device=str(device))
    pkg: dict[str, Any] = {"best_state": state, "exported": metadata.get("exported", "true") == "true"}
    if "xp.cfg" in metadata:
        pkg["xp.cfg"] = metadata["xp.cfg"]
    if "version" in metadata:
        pkg["version"] = metadata["version"]
    return pkg


def load_checkpoint_file(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read an exported package (torch or safetensors file) without running arbitrary pickle code.

    Raises:
        CheckpointError: naming the file if it is missing, corrupt, or not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            pkg = _load_safetensors(path, device)
        else:
            pkg = torch.load(path, map_location=device, weights_only=True)
    except ImportError:
        raise
    except Exception as exc:
        raise CheckpointError(f"could not read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(pkg, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(pkg).__name__}, expected a dict")
    return pkg


def resolve_pretrained(name: str, pretrained_dir: str | Path | None = None) -> str:
    """Turn ``//pretrained/NAME`` into a local path under the pretrained folder if it exists there, else NAME.

    Args:
        name: any source; only names starting with :data:`PRETRAINED_PREFIX` are changed.
        pretrained_dir: the pretrained folder (default ``$AUDIOCRAFT_PRETRAINED_DIR``).
    """
    if not name.startswith(PRETRAINED_PREFIX):
        return name
    rel = name[len(PRETRAINED_PREFIX) :]
    root = pretrained_dir if pretrained_dir is not None else os.environ.get("AUDIOCRAFT_PRETRAINED_DIR")
    if root:
        candidate = Path(root) / rel
        if candidate.exists():
            return str(candidate)
    return rel


def _hub_download(repo_id: str, filename: str, cache_dir: str | Path | None) -> str:
    hub = _import_optional("huggingface_hub", "hub")
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        return hub.hf_hub_download(
            repo_id=repo_id,
            filename=filename,
            cache_dir=cache_dir,
            local_files_only=offline,
            library_name="audiocraft-models",
        )
    except Exception as exc:
        hint = " (HF_HUB_OFFLINE is set: only the local cache was searched)" if offline else ""
        raise CheckpointError(
            f"could not get {filename!r} from the Hugging Face hub repo {repo_id!r}{hint}: {type(exc).__name__}: {exc}"
        ) from exc


# A source with one of these suffixes names a file, never a Hugging Face repo id (owner/name).
_CHECKPOINT_SUFFIXES = (".bin", ".th", ".pt", ".pth", ".ckpt", ".safetensors")


def _get_package(
    file_or_url_or_id: str | Path,
    filename: str,
    device: torch.device | str = "cpu",
    cache_dir: str | Path | None = None,
    pretrained_dir: str | Path | None = None,
) -> dict[str, Any]:
    source = resolve_pretrained(str(file_or_url_or_id), pretrained_dir)
    path = Path(source)
    if path.is_file():
        return load_checkpoint_file(path, device)
    if path.is_dir():
        stem = Path(filename).stem
        for candidate in (path / filename, path / f"{stem}.safetensors"):
            if candidate.is_file():
                return load_checkpoint_file(candidate, device)
        raise CheckpointError(f"folder {path} holds neither {filename} nor {stem}.safetensors")
    if source.startswith("https://"):
        try:
            return torch.hub.load_state_dict_from_url(source, map_location=device, check_hash=True, weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"could not load checkpoint from {source}: {exc}") from exc
    if re.fullmatch(r"[\w.-]+/[\w.-]+", source) and not source.startswith((".", "/")):
        if path.suffix in _CHECKPOINT_SUFFIXES or path.parent.is_dir():  # `release/model.bin`: a mistyped local path
            found = "exists" if path.parent.is_dir() else "does not exist"
            raise CheckpointError(
                f"no such file or folder: {source} (a local path: {path.parent}/ {found}; not looked up on the hub)"
            )
        if cache_dir is None:
            cache_dir = get_audiocraft_cache_dir()
        return load_checkpoint_file(_hub_download(source, filename, cache_dir), device)
    raise CheckpointError(
        f"checkpoint {source!r} is not an existing file or folder, a model name "
        f"{sorted(NAMED_MODELS)}, a //pretrained/ name, an https:// URL or a Hugging Face repo id "
        "(owner/name)"
    )


def load_compression_model_ckpt(
    file_or_url_or_id: str | Path,
    cache_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
    pretrained_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Read the exported package of a compression model from any supported source (see module docstring)."""
    return _get_package(
        file_or_url_or_id, COMPRESSION_FILENAME, device=device, cache_dir=cache_dir, pretrained_dir=pretrained_dir
    )


def load_lm_model_ckpt(
    file_or_url_or_id: str | Path,
    cache_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
    pretrained_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Read the exported package of a language model from any supported source (see module docstring)."""
    return _get_package(
        file_or_url_or_id, LM_FILENAME, device=device, cache_dir=cache_dir, pretrained_dir=pretrained_dir
    )


# Keys upstream AudioCraft removed or renamed, with the first upstream version that no longer has them (None:
# upstream's own loader still drops them from every checkpoint). Checkpoints written by this project (version
# "audiocraft-models/X") already use the current keys.
_REMOVED_KEYS: list[tuple[str, str | None]] = [
    ("encodec.renorm", "1.0.0"),
    ("conditioners.self_wav.chroma_stem.cache_path", None),
    ("conditioners.args.merge_text_conditions_p", None),
    ("conditioners.args.drop_desc_p", None),
]
_RENAMED_KEYS: list[tuple[str, str, str]] = []  # (old key, new key, first version with the new key)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version.split("+")[0])[:3])


def _applies(version: str | None, fixed_in: str | None) -> bool:
    if version is None or fixed_in is None:
        return True
    version = str(version)
    if version.startswith(OWN_VERSION_PREFIX):
        return False
    return _version_tuple(version) < _version_tuple(fixed_in)


def _delete_key(cfg: DictConfig, dotted: str) -> None:
    *parents, leaf = dotted.split(".")
    node: Any = cfg
    for part in parents:
        if not isinstance(node, DictConfig) or part not in node:
            return
        node = node[part]
    if isinstance(node, DictConfig) and leaf in node:
        OmegaConf.set_struct(node, False)
        del node[leaf]


def migrate_cfg(cfg: DictConfig, version: str | None) -> DictConfig:
    """Update, in place, a checkpoint's config written by an older version to today's keys.

    Args:
        cfg: the checkpoint's ``xp.cfg``.
        version: the checkpoint's ``version`` (upstream AudioCraft's, or ``audiocraft-models/X`` for ours;
            None when unknown, then every migration applies).

    Returns:
        ``cfg``.
    """
    for old, new, since in _RENAMED_KEYS:
        if _applies(version, since) and OmegaConf.select(cfg, old) is not None:
            value = OmegaConf.select(cfg, old)
            _delete_key(cfg, old)
            OmegaConf.update(cfg, new, value, force_add=True)
    for key, removed_in in _REMOVED_KEYS:
        if _applies(version, removed_in):
            _delete_key(cfg, key)
    return cfg


def load_state_dict_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``, raising a CheckpointError naming missing/unexpected/mismatched keys."""
    expected = model.state_dict()
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    if mismatched:
        raise CheckpointError(f"checkpoint {source} does not fit the model: shape mismatch for {mismatched}")
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {source} does not fit the model: {exc}") from exc
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"checkpoint {source} does not fit the model built from its config: "
            f"missing keys {result.missing_keys}, unexpected keys {result.unexpected_keys}"
        )


def config_from_package(pkg: dict[str, Any], source: str) -> DictConfig:
    """The migrated ``xp.cfg`` of an exported package (YAML string or plain dict)."""
    if "xp.cfg" not in pkg:
        raise CheckpointError(
            f"checkpoint {source} has no 'xp.cfg' (keys: {sorted(pkg)}); "
            "is it an exported package? (see audiocraft.models.export)"
        )
    raw = pkg["xp.cfg"]
    try:
        cfg = OmegaConf.create(raw)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {source}: cannot parse 'xp.cfg': {exc}") from exc
    if not isinstance(cfg, DictConfig):
        raise CheckpointError(f"checkpoint {source}: 'xp.cfg' is not a mapping")
    return migrate_cfg(cfg, pkg.get("version"))


def _model_kind(kind: str) -> ModelKind:
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {sorted(MODEL_KINDS)}")
    return MODEL_KINDS[kind]


def build_model(kind: str, cfg: DictConfig, device: torch.device | str = "cpu") -> nn.Module:
    """Build a model of ``kind`` from its full training config, as the loaders do (``cfg`` is updated in place).

    Args:
        kind: key of :data:`MODEL_KINDS`.
        cfg: the training config (``xp.cfg``); its ``device`` (and, for language models, ``dtype``: float32 on
            CPU, float16 elsewhere, as upstream's loader) are set for ``device``.
        device: device of the model.
    """
    model_kind = _model_kind(kind)
    cfg.device = str(device)
    if kind == "lm":
        cfg.dtype = "float32" if str(device) == "cpu" else "float16"
    return model_kind.build(cfg)


def model_from_package(kind: str, pkg: dict[str, Any], source: str, device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild the model of an exported package from its config and load its ``best_state`` strictly.

    Returns:
        The model on ``device``, in eval mode (a language model keeps its config as ``model.cfg``).

    Raises:
        CheckpointError: naming ``source``, if the package has no state or config, or does not fit.
    """
    if "best_state" not in pkg:
        raise CheckpointError(f"checkpoint {source} has no 'best_state' (keys: {sorted(pkg)})")
    best = pkg["best_state"]
    if "history" in pkg or (isinstance(best, dict) and any(isinstance(v, dict) for v in best.values())):
        # A training checkpoint nests the model's state (best_state['model'], ...) next to optimizer/history.
        raise CheckpointError(
            f"{source} is a training checkpoint, not an exported model: export it first with "
            f"`audiocraft-export {source} <out.bin>` (or audiocraft.utils.export.export_checkpoint), "
            "then load the exported file"
        )
    cfg = config_from_package(pkg, source)
    model = build_model(kind, cfg, device)
    load_state_dict_strict(model, pkg["best_state"], source)
    if kind == "lm":
        # As upstream's load_lm_model: generation reads e.g. dataset.segment_duration from it.
        model.cfg = cfg  # type: ignore[assignment]
    return model.to(device).eval()


def load_model(
    kind: str,
    file_or_url_or_id: str | Path,
    device: torch.device | str = "cpu",
    cache_dir: str | Path | None = None,
    pretrained_dir: str | Path | None = None,
) -> nn.Module:
    """Load an exported model of ``kind`` (see :data:`MODEL_KINDS`), in eval mode, on ``device``.

    Args:
        kind: ``compression`` or ``lm``.
        file_or_url_or_id: model name, file, folder, ``//pretrained/NAME``, https URL or hub repo id.
        device: device of the model.
        cache_dir: hub cache folder (default ``$AUDIOCRAFT_CACHE_DIR`` or huggingface_hub's).
        pretrained_dir: root of ``//pretrained/`` names (default ``$AUDIOCRAFT_PRETRAINED_DIR``).

    Raises:
        CheckpointError: the source cannot be read or does not fit the architecture of its config.
    """
    model_kind = _model_kind(kind)
    source = str(file_or_url_or_id)
    resolved = resolve_pretrained(source, pretrained_dir)
    named = NAMED_MODELS.get(resolved)
    if named is not None and not Path(resolved).exists():
        if named.kind != kind:
            raise CheckpointError(f"{resolved!r} is a {named.kind} model, not a {kind} model")
        model = named.build(device, cache_dir)
    else:
        pkg = _get_package(
            source, model_kind.filename, device="cpu", cache_dir=cache_dir, pretrained_dir=pretrained_dir
        )
        if "pretrained" in pkg:  # a package that only names a model (export_pretrained_compression_model)
            model = load_model(
                kind, pkg["pretrained"], device=device, cache_dir=cache_dir, pretrained_dir=pretrained_dir
            )
        else:
            model = model_from_package(kind, pkg, source, device)
    if not isinstance(model, model_kind.base):
        raise CheckpointError(f"{source} gives a {type(model).__name__}, not a {model_kind.base.__name__}")
    return model.to(device).eval()


def load_compression_model(
    file_or_url_or_id: str | Path,
    device: torch.device | str = "cpu",
    cache_dir: str | Path | None = None,
    pretrained_dir: str | Path | None = None,
) -> CompressionModel:
    """Load a compression model (see :func:`load_model`), in eval mode, on ``device``."""
    model = load_model(
        "compression", file_or_url_or_id, device=device, cache_dir=cache_dir, pretrained_dir=pretrained_dir
    )
    assert isinstance(model, CompressionModel)
    return model


def load_lm_model(
    file_or_url_or_id: str | Path,
    device: torch.device | str = "cpu",
    cache_dir: str | Path | None = None,
    pretrained_dir: str | Path | None = None,
) -> nn.Module:
    """Load a language model (see :func:`load_model`), in eval mode, on ``device``."""
    return load_model("lm", file_or_url_or_id, device=device, cache_dir=cache_dir, pretrained_dir=pretrained_dir)
