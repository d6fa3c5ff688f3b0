"""A thin switchable wrapper around ``torch.autocast``.

Part of audiocraft-core (training layer): solvers wrap forward passes in ``with self.autocast:`` and the
``autocast`` / ``autocast_dtype`` config keys decide whether it does anything.
"""

from __future__ import annotations

import typing as tp

import torch


class TorchAutocast:
    """``torch.autocast`` that can be disabled.

    Args:
        enabled: whether autocast is active.
        device_type: ``'cpu'`` or ``'cuda'`` (a device string such as ``'cuda:0'`` is accepted).
        dtype: the autocast dtype (``torch.bfloat16``, ``torch.float16``).
    """

    def __init__(self, enabled: bool, *args: tp.Any, **kwargs: tp.Any):
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
            raise RuntimeError(f"autocast with dtype {dtype} is not supported on device {device}; "
                               "set autocast=false or change autocast_dtype") from exc

    def __exit__(self, *args: tp.Any) -> None:
        if self.autocast is None:
            return
        self.autocast.__exit__(*args)
