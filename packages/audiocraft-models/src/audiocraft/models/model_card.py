"""Model cards (the hub repo's ``README.md``) for exported EnCodec, MusicGen and AudioGen packages.

Layer: audiocraft-models, models. :func:`build_model_card` writes a Hugging Face model card from what an export
holds: the loaded models (architecture), the training config (``xp.cfg``: solver, main hyperparameters, the
``datasource.*`` manifests), the metrics the caller read from the XP (history, ``export_metrics.json``), the XP
signature and a license. It is plain text assembly: the callers (``audiocraft-export --push-to-hub`` in the
meta-package) gather the metrics, since the training history belongs to audiocraft-core, which this package does not
import. The YAML front matter carries ``library_name: audiocraft``, ``license``, ``tags`` and ``pipeline_tag``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

__all__ = ["DEFAULT_LICENSE", "META_WEIGHTS_LICENSE", "build_model_card", "derived_from_meta_weights"]

DEFAULT_LICENSE = "mit"
"""License of a generated model card unless one is given or the weights derive from Meta's."""
META_WEIGHTS_LICENSE = "cc-by-nc-4.0"  # the license of the MusicGen / AudioGen weights released by Meta
"""License of the MusicGen / AudioGen weights released by Meta."""

# (pipeline_tag, tags) per training solver; EnCodec maps audio to codes and back.
_HUB_TAGS: dict[str, tuple[str, list[str]]] = {
    "compression": ("audio-to-audio", ["audiocraft", "encodec", "audio-compression"]),
    "musicgen": ("text-to-audio", ["audiocraft", "musicgen", "text-to-music"]),
    "audiogen": ("text-to-audio", ["audiocraft", "audiogen", "text-to-sound"]),
}
_TITLES = {"compression": "EnCodec", "musicgen": "MusicGen", "audiogen": "AudioGen"}

# Training config keys shown in the card, when the config has them.
_TRAINING_KEYS = [
    "solver",
    "seed",
    "sample_rate",
    "channels",
    "optim.optimizer",
    "optim.lr",
    "optim.epochs",
    "optim.updates_per_epoch",
    "optim.ema.use",
    "schedule.lr_scheduler",
    "dataset.batch_size",
    "dataset.segment_duration",
    "compression_model_checkpoint",
    "compression_model_n_q",
    "continue_from",
    "lora.use",
]
_LM_KEYS = ["transformer_lm.dim", "transformer_lm.num_heads", "transformer_lm.num_layers", "codebooks_pattern.modeling"]


def _select(cfg: DictConfig, key: str) -> Any:
    try:
        value = OmegaConf.select(cfg, key, throw_on_missing=False)
    except Exception:  # an interpolation that cannot resolve outside the XP (e.g. ${dora.dir}): show it unresolved
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
    if isinstance(value, DictConfig):
        return OmegaConf.to_container(value)
    return value


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def derived_from_meta_weights(cfg: DictConfig) -> bool:
    """Whether the config starts from weights released by Meta (``facebook/...``, which keep their license)."""
    for key in ("continue_from", "compression_model_checkpoint"):
        source = _select(cfg, key)
        if isinstance(source, str) and "facebook/" in source:
            return True
    return False


def _architecture(solver: str, cfg: DictConfig, compression: nn.Module, lm: nn.Module | None) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [("kind", _TITLES.get(solver, solver))]
    rows.append(("compression model", type(compression).__name__))
    for name in ("sample_rate", "channels", "frame_rate", "num_codebooks", "cardinality"):
        value = getattr(compression, name, None)
        if value is not None:
            rows.append((name.replace("_", " "), value))
    if lm is not None:
        rows.append(("language model", type(lm).__name__))
        for name in ("dim", "n_q", "card"):
            rows.append((f"LM {name}", getattr(lm, name, None)))
        transformer = getattr(lm, "transformer", None)
        rows.append(("LM layers", len(getattr(transformer, "layers", []))))
        rows.append(("LM parameters", sum(p.numel() for p in lm.parameters())))
        for key in _LM_KEYS:
            if _select(cfg, key) is not None:
                rows.append((key, _select(cfg, key)))
        conditioners = _select(cfg, "conditioners")
        if isinstance(conditioners, dict):
            names = [f"{k} ({v.get('model')})" for k, v in conditioners.items() if isinstance(v, dict)]
            rows.append(("conditioners", ", ".join(names) or "none"))
    else:
        rows.append(("parameters", sum(p.numel() for p in compression.parameters())))
    return rows


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_value(cell) for cell in row) + " |" for row in rows]
    return lines


def build_model_card(
    cfg: DictConfig,
    compression_model: nn.Module,
    lm: nn.Module | None = None,
    *,
    metrics: Mapping[str, Mapping[str, float]] | None = None,
    signature: str | None = None,
    license: str | None = None,
    repo_id: str | None = None,
) -> str:
    """The model card (``README.md`` with YAML front matter) of an exported model.

    Args:
        cfg: the training config of the export (``xp.cfg``; the LM's for MusicGen / AudioGen).
        compression_model: the exported compression model (EnCodec), or the one the LM was trained on.
        lm: the exported language model (None for an EnCodec export).
        metrics: ``{source: {metric: value}}``, e.g. ``{"valid (epoch 2)": {"sisnr": 5.1}}``, shown in one table.
        signature: the Dora signature of the XP the export comes from.
        license: the weights' license (hub identifier); default :data:`META_WEIGHTS_LICENSE` when the config
            starts from Meta's weights (:func:`derived_from_meta_weights`), else :data:`DEFAULT_LICENSE`.
        repo_id: the hub repo, for the loading snippet.

    Returns:
        The card's Markdown text.
    """
    solver = str(_select(cfg, "solver") or ("compression" if lm is None else "musicgen"))
    from_meta = derived_from_meta_weights(cfg)
    license = license or (META_WEIGHTS_LICENSE if from_meta else DEFAULT_LICENSE)
    pipeline_tag, tags = _HUB_TAGS.get(solver, ("audio-to-audio", ["audiocraft"]))
    front = {"library_name": "audiocraft", "license": license, "tags": tags, "pipeline_tag": pipeline_tag}
    title = _TITLES.get(solver, solver)
    lines = ["---", OmegaConf.to_yaml(OmegaConf.create(front)).rstrip(), "---", ""]
    lines += [f"# {title} model{f' {repo_id}' if repo_id else ''}", ""]
    origin = f" from the Dora XP `{signature}`" if signature else ""
    lines += [f"Exported with `audiocraft-export`{origin} (AudioCraft-compatible toolkit).", ""]
    name = repo_id or "<repo id>"
    loader = (
        f'from audiocraft.models import CompressionModel\nmodel = CompressionModel.get_pretrained("{name}")'
        if lm is None
        else f'from audiocraft.models import {title}\nmodel = {title}.get_pretrained("{name}")'
    )
    lines += ["```python", loader, "```", "", "## Architecture", ""]
    lines += _table(("property", "value"), _architecture(solver, cfg, compression_model, lm))
    lines += ["", "## Training configuration", ""]
    rows = [(key, _select(cfg, key)) for key in _TRAINING_KEYS if _select(cfg, key) is not None]
    if signature:
        rows.insert(0, ("XP signature", signature))
    lines += _table(("key", "value"), rows)
    lines += ["", "## Metrics", ""]
    metric_rows = [(source, key, value) for source, values in (metrics or {}).items() for key, value in values.items()]
    lines += _table(("source", "metric", "value"), metric_rows) if metric_rows else ["No metrics were recorded."]
    lines += ["", "## Datasets", ""]
    datasource = _select(cfg, "datasource")
    splits = {k: v for k, v in datasource.items() if k not in ("max_sample_rate", "max_channels")} if datasource else {}
    lines += [f"- {split}: `{path}`" for split, path in splits.items()] or ["No dataset manifests in the config."]
    lines += ["", "## License", "", f"The weights are released under `{license}`."]
    if from_meta:
        lines += [
            "They derive from weights released by Meta (`facebook/...`), whose own license (CC-BY-NC 4.0 for the "
            "MusicGen / AudioGen weights) still applies; this export does not relicense them."
        ]
    lines += ["The code that trained and loads them (the AudioCraft-compatible toolkit) is MIT-licensed.", ""]
    return "\n".join(lines)
