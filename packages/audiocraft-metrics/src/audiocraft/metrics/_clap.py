"""LAION-CLAP audio/text embedder on ``transformers.ClapModel``, from LAION's own checkpoints (layer: metrics).

Extra ``[clap]`` (transformers, imported only when a model is built). Upstream AudioCraft runs the ``laion_clap``
package, which pins ``numpy<2`` and cannot be installed with this project's pins; we deliberately run the same
network through ``transformers.ClapModel`` instead. Reading laion's checkpoint (key conversion, laion's audio front
end from the STFT kernels and mel filterbank stored in it, :class:`ClapArchitecture`) is the data layer's
:mod:`audiocraft.data.laion_clap`, shared with the CLAP conditioner; this module adds the metric-side call
(``[B, C, T]`` audio, channels averaged). The embeddings match laion-clap 1.1.7 within 1e-4 (tested on a tiny model
made with it).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from audiocraft.data.laion_clap import (  # noqa: F401  (re-exported: this module's names before the move)
    CLAP_ARCHITECTURES,
    ClapArchitecture,
    LaionClapEmbedder,
    convert_laion_state_dict,
)


def _transformers() -> Any:
    try:
        return importlib.import_module("transformers")
    except ImportError as exc:
        raise ImportError(
            "ClapModel needs the optional package 'transformers': pip install 'audiocraft-metrics[clap]'"
        ) from exc


class ClapModel(LaionClapEmbedder):
    """LAION-CLAP joint audio/text embedder (512-d for the published models), from a local laion checkpoint.

    Needs the `[clap]` extra (transformers). Audio goes through laion's pipeline: 48 kHz mono, made 10 s long
    (repeated then zero-padded if shorter; if longer, a random 10 s crop as laion does, drawn from this model's
    own seeded generator), log-mel computed with the checkpoint's STFT kernels and filterbank, then HTS-AT.
    Texts are tokenised by RoBERTa's tokenizer (max 77 tokens) from `tokenizer_path` or the local HF cache.

    Args:
        model_path: Local laion-clap checkpoint (e.g. `music_audioset_epoch_15_esc_90.14.pt`).
        model_arch: laion's audio architecture name ("HTSAT-tiny", "HTSAT-base", "HTSAT-large") or a
            :class:`ClapArchitecture`.
        enable_fusion: Must be False: laion's fusion checkpoints are not supported.
        tokenizer_path: Local RoBERTa tokenizer folder; default: `roberta-base` from the local HF cache.
        seed: Seed of the crop position for audio longer than 10 s.
    """

    channels = 1

    def __init__(
        self,
        model_path: str | Path,
        model_arch: str | ClapArchitecture = "HTSAT-tiny",
        enable_fusion: bool = False,
        tokenizer_path: str | Path | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(_transformers(), model_path, model_arch, enable_fusion, tokenizer_path, seed)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Audio embeddings `[B, D]` (unit norm) of 48 kHz audio `[B, C, T]` (channels averaged)."""
        return self.embed_audio(wav.mean(dim=1))
