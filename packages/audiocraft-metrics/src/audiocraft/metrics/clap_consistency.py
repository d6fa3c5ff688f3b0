"""Text-audio consistency: cosine similarity between the embeddings of a text and of the audio made from it.

Part of `audiocraft.metrics` (layer: metrics). `TextConsistencyMetric` takes any pair of embedders (audio and
text); `CLAPTextConsistencyMetric` uses LAION-CLAP loaded from a local laion checkpoint, as upstream AudioCraft's
metric of the same name (config section `metrics.text_consistency.clap`); it runs on transformers' ClapModel
(`[clap]` extra) instead of the laion_clap package, with the same embeddings (see `_clap.py`). The sum of
similarities and the item count are accumulated, so the mean is exact across workers.
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from ._audio import as_sample_rates, as_sizes, convert_audio, model_attr
from ._base import Metric
from ._clap import ClapArchitecture, ClapModel


class TextConsistencyMetric(Metric):
    """Mean cosine similarity between audio embeddings and text embeddings of matching pairs.

    Args:
        audio_embedder: Module or callable mapping audio `[B, C, T]` to `[B, D]`; it may expose `sample_rate`,
            `channels` and `embed_text(texts) -> [B, D]`.
        text_embedder: Callable mapping a list of B texts to `[B, D]` (default: `audio_embedder.embed_text`).
        sample_rate: Sample rate the audio embedder expects (default: `audio_embedder.sample_rate`).
        channels: Channels the audio embedder expects (default: `audio_embedder.channels`, else 1).
    """

    cosine_sum: torch.Tensor
    weight: torch.Tensor

    def __init__(
        self,
        audio_embedder: torch.nn.Module | Callable[[torch.Tensor], torch.Tensor] | None = None,
        text_embedder: Callable[[list[str]], torch.Tensor] | None = None,
        sample_rate: int | None = None,
        channels: int | None = None,
    ) -> None:
        super().__init__()
        self.audio_embedder = audio_embedder
        self.text_embedder = text_embedder or model_attr(audio_embedder, "embed_text", None)
        self.model_sample_rate = sample_rate or model_attr(audio_embedder, "sample_rate", None)
        self.model_channels = int(channels or model_attr(audio_embedder, "channels", 1))
        if audio_embedder is not None and (self.text_embedder is None or self.model_sample_rate is None):
            raise ValueError("TextConsistencyMetric needs a text embedder and the audio embedder's sample rate")
        self.add_state("cosine_sum", torch.tensor(0.0, dtype=torch.float64))
        self.add_state("weight", torch.tensor(0, dtype=torch.int64))

    @torch.no_grad()
    def update(
        self,
        audio: torch.Tensor,
        text: list[str],  # type: ignore[override]
        sizes: torch.Tensor | Sequence[int] | None = None,
        sample_rates: torch.Tensor | Sequence[int] | int | None = None,
    ) -> None:
        """Adds a batch of audio `[B, C, T]` and the B texts it was generated from.

        Args:
            audio: Audio `[B, C, T]`.
            text: One text per item.
            sizes: Valid length of each item `[B]` (items are embedded one by one when they differ).
            sample_rates: Sample rate of the items (int or `[B]`, all equal); default: the embedder's.
        """
        if self.audio_embedder is None or self.text_embedder is None:
            raise NotImplementedError("pass embedders to TextConsistencyMetric or use CLAPTextConsistencyMetric")
        if audio.shape[0] != len(text):
            raise ValueError(f"got {audio.shape[0]} audio items but {len(text)} texts")
        assert self.model_sample_rate is not None
        lengths = as_sizes(sizes, audio)
        rates = as_sample_rates(
            sample_rates if sample_rates is not None else int(self.model_sample_rate), audio.shape[0]
        )
        if len(set(rates)) > 1:
            raise ValueError(f"all items of a batch must share one sample rate, got {sorted(set(rates))}")
        rate, channels = int(self.model_sample_rate), self.model_channels
        if all(n == audio.shape[-1] for n in lengths):
            audio_emb = self.audio_embedder(convert_audio(audio, rates[0], rate, channels))
        else:
            audio_emb = torch.cat(
                [
                    self.audio_embedder(convert_audio(a[None, :, :n], rates[0], rate, channels))
                    for a, n in zip(audio, lengths)
                ]
            )
        text_emb = self.text_embedder(list(text))
        if audio_emb.shape != text_emb.shape or audio_emb.dim() != 2:
            raise ValueError(
                f"audio embeddings {tuple(audio_emb.shape)} and text embeddings {tuple(text_emb.shape)} "
                "must both be [B, D]"
            )
        cosine = torch.nn.functional.cosine_similarity(
            audio_emb.float(), text_emb.float().to(audio_emb.device), dim=1, eps=1e-8
        )
        self.cosine_sum += cosine.double().sum().to(self.cosine_sum.device)
        self.weight += cosine.numel()

    def compute(self) -> float:
        """Mean cosine similarity over all pairs on all workers."""
        states = self.reduced_states()
        if int(states["weight"]) == 0:
            raise RuntimeError(f"{type(self).__name__}.compute() called before any update()")
        return float(states["cosine_sum"]) / int(states["weight"])


class CLAPTextConsistencyMetric(TextConsistencyMetric):
    """Text consistency measured with LAION-CLAP (the "CLAP score"), from a local laion checkpoint.

    Needs the `[clap]` extra. Arguments match upstream's config section `metrics.text_consistency.clap`.

    Args:
        model_path: Local laion-clap checkpoint (e.g. `music_audioset_epoch_15_esc_90.14.pt`).
        model_arch: Audio encoder architecture ("HTSAT-tiny", "HTSAT-base", "HTSAT-large") or a `ClapArchitecture`.
        enable_fusion: Must be False (laion's fusion checkpoints are not supported).
        tokenizer_path: Local RoBERTa tokenizer folder (default: `roberta-base` from the local HF cache).
    """

    def __init__(
        self,
        model_path: str | Path,
        model_arch: str | ClapArchitecture = "HTSAT-tiny",
        enable_fusion: bool = False,
        tokenizer_path: str | Path | None = None,
    ) -> None:
        model = ClapModel(model_path, model_arch=model_arch, enable_fusion=enable_fusion, tokenizer_path=tokenizer_path)
        super().__init__(model, model.embed_text, sample_rate=model.sample_rate, channels=1)
