"""A thin switchable wrapper around ``torch.autocast`` (layer: audiocraft-conditioners, private).

Moved here from audiocraft-core's ``audiocraft.utils.autocast`` (which re-exports it under upstream's path): the
T5, chroma and joint-embedding conditioners evaluate their frozen encoders under it, and core solvers wrap their
forward passes in ``with self.autocast:``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

logger = logging.getLogger(__name__)


class TorchAutocast:
    """``torch.autocast`` that can be disabled.

    Args:
        enabled: whether autocast is active.
        *args: positional arguments of ``torch.autocast`` (used only when enabled).
        **kwargs: keyword arguments of ``torch.autocast``; ``device_type`` may be a device string such as
            ``'cuda:0'``.
    """

    def __init__(self, enabled: bool, *args: Any, **kwargs: Any) -> None:
        if "device_type" in kwargs:
            kwargs["device_type"] = str(kwargs["device_type"]).split(":")[0]
        self.autocast = torch.autocast(*args, **kwargs) if enabled else None

    def __enter__(self) -> None:
        if self.autocast is None:
            return
        try:
            self.autocast.__enter__()
        except RuntimeError as exc:
            device = self.autocast.device
            dtype = self.autocast.fast_dtype
            raise RuntimeError(
                f"autocast with dtype {dtype} is not supported on device {device}; "
                "set autocast=false or change autocast_dtype"
            ) from exc

    def __exit__(self, *args: Any) -> None:
        if self.autocast is None:
            return
        self.autocast.__exit__(*args)


def conditioner_autocast(name: str, device: torch.device | str, autocast_dtype: str | None) -> TorchAutocast:
    """Upstream's autocast choice for a frozen encoder: off on CPU or without a dtype, else ``autocast_dtype``.

    Raises:
        ValueError: if ``autocast_dtype`` is not a torch dtype name.
    """
    if autocast_dtype is None or str(device) == "cpu":
        if str(device) != "cpu":
            logger.warning("%s runs without autocast, which may lead to NaN", name)
        return TorchAutocast(enabled=False)
    dtype = getattr(torch, autocast_dtype, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"{name}: autocast_dtype {autocast_dtype!r} is not a torch dtype name")
    return TorchAutocast(enabled=True, device_type=str(device), dtype=dtype)
