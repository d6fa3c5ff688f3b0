"""Small audio helpers shared by the metrics: channel/sample-rate conversion and batch checks.

Private module of `audiocraft.metrics` (layer: metrics). `convert_audio` has a twin in
`audiocraft.data.audio_utils` (upstream's helper of the same name); it is kept here, short, so that the
metrics do not depend on the data package's internals.
"""
from collections.abc import Sequence
from typing import Any

import torch
import torchaudio


def convert_audio_channels(wav: torch.Tensor, channels: int) -> torch.Tensor:
    """Converts `wav` of shape `[*, C, T]` to `channels` channels (mean to downmix, repeat mono to upmix)."""
    src = wav.shape[-2]
    if src == channels:
        return wav
    if channels == 1:
        return wav.mean(dim=-2, keepdim=True)
    if src == 1:
        return wav.expand(*wav.shape[:-2], channels, wav.shape[-1])
    if src > channels:
        return wav[..., :channels, :]
    raise ValueError(f"cannot convert audio from {src} to {channels} channels")


def convert_audio(wav: torch.Tensor, from_rate: int, to_rate: int, to_channels: int) -> torch.Tensor:
    """Resamples `wav` `[*, C, T]` from `from_rate` to `to_rate` and converts it to `to_channels` channels."""
    wav = convert_audio_channels(wav, to_channels)
    if int(from_rate) != int(to_rate):
        wav = torchaudio.functional.resample(wav, int(from_rate), int(to_rate))
    return wav


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
