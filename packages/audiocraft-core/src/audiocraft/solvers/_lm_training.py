"""Training pieces of the language-model solvers (`MusicGenSolver`, `AudioGenSolver`).

The frozen compression model and its agreement with the LM, the per-codebook cross-entropy, the padding mask, the
dropout generators' state and the code cache's item format.

Part of audiocraft-core (task solvers, private). Where we differ from upstream: a compression model that does not
fit the LM is a ValueError naming both values and the key to change (upstream asserts); with no
``compression_model_checkpoint`` a small debug compression model is built in place (upstream fails on its own
audiogen/debug config, which sets it to null); cached items are stored as plain containers, read back with
``weights_only=True`` (upstream pickles its dataclasses).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import typing as tp

import torch
from torch.nn import functional as F

from audiocraft.data.conditions import ConditioningAttributes

from .compression_loading import check_compression_model, load_frozen_compression_model

if tp.TYPE_CHECKING:
    from omegaconf import DictConfig

    from audiocraft.models import CompressionModel

logger = logging.getLogger(__name__)

__all__ = [
    "DEBUG_COMPRESSION_RATES",
    "DropoutRNGState",
    "check_lm_fits_compression",
    "compute_cross_entropy",
    "exported_lm_as_pretrained",
    "info_from_plain",
    "info_to_plain",
    "keep_used_attributes",
    "load_compression_for_lm",
    "padding_mask_from_infos",
]

DEBUG_COMPRESSION_RATES = (16000, 32000)


def load_compression_for_lm(cfg: DictConfig, device: str, environment: tp.Any = None) -> CompressionModel:
    """The frozen compression model of ``cfg.compression_model_checkpoint``, wrapped as ``cfg`` asks.

    With no checkpoint (null), a small random debug model (25 frames/s, 4 codebooks of 400 codes, seed 0) is built
    at ``cfg.sample_rate``: enough to debug the pipeline, not to train anything useful.

    Raises:
        ValueError: the model does not run at ``cfg.sample_rate`` with ``cfg.channels``, or no checkpoint is given
            and ``cfg.sample_rate`` is not one the debug model supports.
    """
    from audiocraft.models import builders as model_builders

    source = cfg.get("compression_model_checkpoint")
    if source is None:
        if cfg.sample_rate not in DEBUG_COMPRESSION_RATES or cfg.channels != 1:
            raise ValueError(
                f"compression_model_checkpoint is null, so a debug compression model is built in place, "
                f"which needs channels=1 and sample_rate in {DEBUG_COMPRESSION_RATES} (got "
                f"channels={cfg.channels}, sample_rate={cfg.sample_rate}); set "
                "compression_model_checkpoint to a compression model (file, //sig/SIG, //pretrained/...)"
            )
        logger.warning("compression_model_checkpoint is null: using a random debug compression model built in place")
        model: CompressionModel = model_builders.get_debug_compression_model(device, sample_rate=cfg.sample_rate)
        for param in model.parameters():
            param.requires_grad_(False)
    else:
        model = load_frozen_compression_model(str(source), device, environment=environment)
    model = model_builders.get_wrapped_compression_model(model, cfg)
    check_compression_model(model, cfg.sample_rate, cfg.channels, f"compression_model_checkpoint={source}")
    return model.eval()


def exported_lm_as_pretrained(continue_from: tp.Any) -> str | None:
    """Map ``continue_from`` to ``//pretrained/<absolute path>`` when it is an exported LM.

    An exported LM is a folder holding ``state_dict.bin`` and no training checkpoint, or that file itself; it is
    then read as a release package.

    Args:
        continue_from: the ``continue_from`` config value (a path, a ``//`` reference, or empty).

    Returns:
        The ``//pretrained/`` reference, or None when ``continue_from`` is not an exported LM.
    """
    from pathlib import Path

    from audiocraft.models import loaders

    if not continue_from or str(continue_from).startswith("//"):
        return None
    path = Path(str(continue_from))
    is_export = (
        path.is_dir() and (path / loaders.LM_FILENAME).is_file() and not (path / "checkpoint.th").exists()
    ) or (path.is_file() and path.name == loaders.LM_FILENAME)
    return loaders.PRETRAINED_PREFIX + str(path.resolve()) if is_export else None


def check_lm_fits_compression(cfg: DictConfig, compression_model: CompressionModel) -> None:
    """Raise a ValueError naming both values when the LM's ``n_q`` / ``card`` differ from the compression model's."""
    lm = cfg.transformer_lm
    source = cfg.get("compression_model_checkpoint")
    problems = []
    if int(lm.n_q) != int(compression_model.num_codebooks):
        problems.append(
            f"transformer_lm.n_q={lm.n_q} but the compression model gives {compression_model.num_codebooks}"
            " codebooks (set transformer_lm.n_q, or compression_model_n_q to use fewer codebooks)"
        )
    if int(lm.card) != int(compression_model.cardinality):
        card = compression_model.cardinality
        problems.append(
            f"transformer_lm.card={lm.card} but the compression model's codebooks have {card} codes "
            f"(set transformer_lm.card={card})"
        )
    if problems:
        raise ValueError(
            f"the LM does not fit the compression model compression_model_checkpoint={source}: " + "; ".join(problems)
        )


def compute_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Cross-entropy of each codebook over its valid steps, and their mean.

    Args:
        logits: ``[B, K, T, card]`` (NaN where ``mask`` is False is fine: those steps are not read).
        targets: codes ``[B, K, T]``.
        mask: valid steps ``[B, K, T]`` (the pattern's and the padding's).

    Returns:
        The mean over codebooks (with gradient) and each codebook's value (detached), as upstream's solver.

    Raises:
        ValueError: for shapes that do not agree.
    """
    if logits.shape[:-1] != targets.shape or mask.shape != targets.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)}, targets {tuple(targets.shape)} and mask {tuple(mask.shape)} do not agree"
        )
    K = targets.shape[1]
    total = torch.zeros([], device=targets.device)
    per_codebook: list[torch.Tensor] = []
    for k in range(K):
        mask_k = mask[:, k].reshape(-1)
        q_ce = F.cross_entropy(logits[:, k].reshape(-1, logits.shape[-1])[mask_k], targets[:, k].reshape(-1)[mask_k])
        total = total + q_ce
        per_codebook.append(q_ce.detach())
    return total / K, per_codebook


def padding_mask_from_infos(
    tokens: torch.Tensor, infos: tp.Sequence[tp.Any], frame_rate: float, special_token: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Put ``special_token`` on the steps of padded audio and mask them out (``tokens.padding_with_special_token``).

    Args:
        tokens: codes ``[B, K, T]``.
        infos: one segment info per item (``n_frames`` real audio frames at ``sample_rate``).
        frame_rate: the compression model's frame rate.
        special_token: the LM's special token.

    Returns:
        The new codes and the mask ``[B, K, T]`` (True on real audio).
    """
    tokens = tokens.clone()
    mask = torch.ones_like(tokens, dtype=torch.bool)
    for i, info in enumerate(infos):
        valid = math.floor(float(info.n_frames) / info.sample_rate * frame_rate)
        tokens[i, :, valid:] = special_token
        mask[i, :, valid:] = False
    return tokens, mask


def keep_used_attributes(attributes: list[ConditioningAttributes], used: set[str]) -> list[ConditioningAttributes]:
    """Drop the attributes no conditioner reads and no attribute dropout names, in place.

    E.g. ``self_wav`` without a melody conditioner: dropout then copies no audio for nothing. Dropout draws do not
    depend on the attribute set.

    Args:
        attributes: the conditioning attributes of a batch.
        used: names of the attributes that a conditioner or an attribute dropout reads.

    Returns:
        The same list, its attributes stripped of unused entries.
    """
    for attribute in attributes:
        for kind in ("text", "wav", "joint_embed"):
            values = getattr(attribute, kind)
            for name in [n for n in values if n not in used]:
                del values[name]
    return attributes


class DropoutRNGState:
    """The generators of the LM's classifier-free-guidance and attribute dropouts, as one stateful source.

    Registered with the solver's state so that a resumed run draws what the uninterrupted run would have drawn.
    """

    def __init__(self, model: tp.Any):
        self.modules: dict[str, tp.Any] = {"cfg_dropout": model.cfg_dropout, "att_dropout": model.att_dropout}

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: module.get_rng_state() for name, module in self.modules.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, module in self.modules.items():
            module.set_rng_state(state[name])


# --- code cache items: plain containers (weights_only loading), rebuilt into the dataset's info class -------------
_NOT_CACHED = ("self_wav", "joint_embed", "audio_tokens")


def info_to_plain(info: tp.Any) -> dict[str, tp.Any]:
    """The fields of a segment info as plain values (its file's metadata as a dict; audio conditions left out).

    Raises:
        ValueError: for joint-embedding conditions, which the cache cannot hold (as upstream).
    """
    if getattr(info, "joint_embed", None):
        raise ValueError("the code cache cannot hold joint-embedding conditions (cache.path with a CLAP conditioner)")
    out = {f.name: getattr(info, f.name) for f in dataclasses.fields(info) if f.name not in _NOT_CACHED}
    out["meta"] = info.meta.to_dict()
    return out


def info_from_plain(info_class: tp.Any, plain: dict[str, tp.Any], tokens: torch.Tensor) -> tp.Any:
    """Rebuild a segment info of ``info_class`` from `info_to_plain`'s output, with its cached ``audio_tokens``."""
    from audiocraft.data.audio_dataset import AudioMeta

    values = dict(plain)
    meta = AudioMeta.from_dict(values.pop("meta"))
    info = info_class.from_dict({**values, "meta": meta})
    info.meta = meta
    info.audio_tokens = tokens
    return info
