"""AudioGen: text to sound with upstream AudioCraft's API (layer: audiocraft-models, models).

``AudioGen.get_pretrained(name)`` loads ``facebook/audiogen-medium`` (hub, extra ``[hub]``, offline from the local
cache with ``HF_HUB_OFFLINE=1``), a local folder in upstream's layout, ``//pretrained/NAME``, or ``'debug'`` (a tiny
random 16 kHz model built in place, no download). Generation is :class:`~audiocraft.models.genmodel.BaseGenModel`'s.

Deliberate differences from upstream: the debug model needs no download (``noop`` text tokenizer), and a checkpoint
with a melody conditioner raises a ValueError instead of an AssertionError.
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import builders
from .genmodel import BaseGenModel, default_device, load_pretrained_parts

__all__ = ["AudioGen"]


class AudioGen(BaseGenModel):
    """AudioGen: a language model over the codes of a compression model, conditioned on text.

    Arguments: see :class:`~audiocraft.models.genmodel.BaseGenModel`.
    """

    default_duration = 5  # upstream's effective default duration

    @staticmethod
    def get_pretrained(
        name: str | Path = "facebook/audiogen-medium", device: torch.device | str | None = None
    ) -> AudioGen:
        """Load a pretrained AudioGen, in eval mode.

        Args:
            name: ``'debug'``, ``facebook/audiogen-medium`` (1.5B), a local folder holding ``state_dict.bin`` and
                ``compression_state_dict.bin``, or ``//pretrained/NAME``.
            device: device of the model (default: cuda if available, else cpu).

        Raises:
            ValueError: the checkpoint conditions on a waveform, which AudioGen does not support.
        """
        device = default_device(device)
        if str(name) == "debug":
            return AudioGen(
                "debug",
                builders.get_debug_compression_model(device, sample_rate=16000),
                builders.get_debug_lm_model(device),
                max_duration=10,
            )
        compression_model, lm = load_pretrained_parts(name, device, kind="AudioGen")
        if "self_wav" in lm.condition_provider.conditioners:
            raise ValueError(
                f"{name!r} conditions on a waveform (self_wav), which AudioGen does not support; "
                "load it with MusicGen.get_pretrained"
            )
        return AudioGen(str(name), compression_model, lm)

    def set_generation_params(
        self,
        use_sampling: bool = True,
        top_k: int = 250,
        top_p: float = 0.0,
        temperature: float = 1.0,
        duration: float = 10.0,
        cfg_coef: float = 3.0,
        two_step_cfg: bool = False,
        extend_stride: float = 2,
    ) -> None:
        """Set the generation parameters, with upstream AudioGen's defaults.

        The parameters are those of ``MusicGen.set_generation_params`` without ``cfg_coef_beta``; the
        constructor then sets ``duration=5``.
        """
        self._store_generation_params(
            use_sampling=use_sampling,
            top_k=top_k,
            top_p=top_p,
            temperature=temperature,
            duration=duration,
            cfg_coef=cfg_coef,
            two_step_cfg=two_step_cfg,
            extend_stride=extend_stride,
        )
