"""Small audio helpers shared by the metrics: sample-rate/channel conversion and batch checks.

Private module of `audiocraft.metrics` (layer: metrics, above audiocraft-data). Metrics resample exactly as the data
layer and upstream's metrics do: through `audiocraft.data.audio_utils.convert_audio` (julius sinc resampling).
The one exception is ViSQOL, whose upstream implementation resamples with `torchaudio.transforms.Resample`:
`resample_torchaudio` keeps that, so that ViSQOL scores match upstream's.
"""

from collections.abc import Sequence
from typing import Any

import torch
import torchaudio

from audiocraft.data.audio_utils import convert_audio

__all__ = ["convert_audio", "resample_torchaudio", "as_sizes", "as_sample_rates", "check_pair", "model_attr"]


def resample_torchaudio(wav: torch.Tensor, from_rate: int, to_rate: int) -> torch.Tensor:
    """Resamples `wav` `[*, T]` with `torchaudio.transforms.Resample`, as upstream's ViSQOL does.

    The transform (not `torchaudio.functional.resample`, whose kernel differs by ~1e-5) gives upstream's samples.
    """
    if int(from_rate) == int(to_rate):
        return wav
    return torchaudio.transforms.Resample(int(from_rate), int(to_rate)).to(wav.device)(wav)


def as_sizes(sizes: torch.Tensor | Sequence[int] | None, wav: torch.Tensor, name: str = "sizes") -> list[int]:
    """Returns the valid length of each item of `wav` `[B, C, T]` (all of `T` when `sizes` is None)."""
    batch, length = wav.shape[0], wav.shape[-1]
    if sizes is None:
        return [length] * batch
    out = [int(s) for s in (sizes.tolist() if isinstance(sizes, torch.Tensor) else sizes)]
    if len(out) != batch:
        raise ValueError(f"{name} has {len(out)} entries but the batch has {batch} items")
    for i, s in enumerate(out):
        if not 0 < s <= length:
            raise ValueError(f"{name}[{i}]={s} is outside [1, {length}] (audio length {length})")
    return out


def as_sample_rates(sample_rates: torch.Tensor | Sequence[int] | int, batch: int) -> list[int]:
    """Returns one sample rate per item from an int, a list or a `[B]` tensor."""
    if isinstance(sample_rates, int):
        return [sample_rates] * batch
    out = [int(s) for s in (sample_rates.tolist() if isinstance(sample_rates, torch.Tensor) else sample_rates)]
    if len(out) != batch:
        raise ValueError(f"sample_rates has {len(out)} entries but the batch has {batch} items")
    return out


def check_pair(preds: torch.Tensor, targets: torch.Tensor) -> None:
    """Checks that `preds` and `targets` are `[B, C, T]` tensors of the same shape."""
    if preds.dim() != 3:
        raise ValueError(f"expected preds of shape [B, C, T], got {tuple(preds.shape)}")
    if preds.shape != targets.shape:
        raise ValueError(f"preds {tuple(preds.shape)} and targets {tuple(targets.shape)} differ in shape")


def model_attr(model: object, name: str, default: Any = None) -> Any:
    """Attribute `name` of an embedding model or classifier (e.g. `sample_rate`), or `default`."""
    return getattr(model, name, default)
