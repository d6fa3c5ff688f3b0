"""CLAP joint audio/text conditioner on transformers' ClapModel (layer: audiocraft-conditioners, private).

Needs the ``[clap]`` extra (transformers). Upstream runs laion-clap (``laion_clap.CLAP_Module`` plus a RoBERTa
tokenizer downloaded at run time); laion-clap does not install with this project's pins, so the model here is
transformers' ``ClapModel``, from either of two local sources (never downloaded):

- a laion-clap checkpoint file, as in upstream's config (``music_audioset_epoch_15_esc_90.14.pt``, HTSAT-base): read
  by the data layer's :mod:`audiocraft.data.laion_clap` (the same reader as the CLAP metric's), with laion's audio
  front end computed from the checkpoint's tensors and laion's RoBERTa tokenizer (``tokenizer_path``, or
  ``roberta-base`` in the local Hugging Face cache); its embeddings match laion-clap's within 1e-4;
- a transformers ClapModel folder (model + ``ClapProcessor``) or a hub name in the local cache, e.g.
  ``laion/larger_clap_music`` (the same checkpoint, converted by laion), whose processor computes the features.

Embeddings are L2-normalised, as laion-clap's.

At training time the conditioner embeds the audio (or, with probability ``text_p``, the text); at inference it embeds
the text (a text-to-music model conditioned on audio embeddings). Long audio is cut into windows of
``max_audio_length`` seconds every ``audio_stride`` seconds whose embeddings are averaged.

Deliberate difference from upstream: on the audio path, items whose audio has length 0 (nullified by
classifier-free-guidance dropout) get a zero, masked embedding; upstream masks nothing there, so its CFG dropout
never produces an unconditional example for CLAP models.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from audiocraft.data.audio import audio_read
from audiocraft.data.audio_utils import convert_audio
from audiocraft.data.conditions import JointEmbedCondition
from audiocraft.data.laion_clap import ClapArchitecture, LaionClapEmbedder

from ._cache import EmbeddingCache
from ._hub import resolve_pretrained_dir
from ._joint import JointEmbeddingConditioner

_CLAP_INSTALL = "pip install 'audiocraft-conditioners[clap]'"
_LAION_SUFFIXES = (".pt", ".pth", ".ckpt")  # laion-clap checkpoint files (a transformers model is a folder)


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise ImportError(f"CLAPEmbeddingConditioner needs transformers: {_CLAP_INSTALL}") from exc
    return transformers


def _is_laion_file(checkpoint: str | Path) -> bool:
    return Path(checkpoint).is_file() or Path(checkpoint).suffix in _LAION_SUFFIXES


class _FolderClap(nn.Module):
    """transformers' ``ClapModel`` and ``ClapProcessor`` from a folder; the processor computes the audio features."""

    def __init__(self, transformers: Any, folder: Path) -> None:
        super().__init__()
        self.model = transformers.ClapModel.from_pretrained(folder, local_files_only=True).eval()
        self.processor = transformers.ClapProcessor.from_pretrained(folder, local_files_only=True)
        self.embedding_dim = int(self.model.config.projection_dim)
        self.enable_fusion = bool(self.model.config.audio_config.enable_fusion)
        self.sample_rate = int(self.processor.feature_extractor.sampling_rate)

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """Text embeddings ``[B, D]`` (RoBERTa tokens padded to 77, as laion-clap)."""
        device = next(self.model.parameters()).device
        tokens = self.processor.tokenizer(
            texts, padding="max_length", truncation=True, max_length=77, return_tensors="pt"
        ).to(device)
        return self.model.get_text_features(**tokens).pooler_output

    def embed_audio(self, wav: torch.Tensor) -> torch.Tensor:
        """Audio embeddings ``[B, D]`` of mono audio ``[B, T]`` at :attr:`sample_rate`."""
        device = next(self.model.parameters()).device
        features = self.processor.feature_extractor(
            [w.cpu().numpy() for w in wav], sampling_rate=self.sample_rate, return_tensors="pt"
        ).to(device)
        return self.model.get_audio_features(**features).pooler_output


def load_clap(
    checkpoint: str | Path,
    model_arch: str | ClapArchitecture = "HTSAT-base",
    enable_fusion: bool = False,
    tokenizer_path: str | Path | None = None,
) -> nn.Module:
    """The CLAP embedder of ``checkpoint``: a laion-clap file, a transformers ClapModel folder or a cached hub name.

    The embedder has ``embed_text(texts) -> [B, D]``, ``embed_audio(wav [B, T]) -> [B, D]``, ``embedding_dim`` and
    ``sample_rate``.

    Raises:
        ImportError: transformers is missing (names the extra).
        FileNotFoundError: missing file or directory, name not in the cache, or no RoBERTa tokenizer for a laion file.
        ValueError: a laion file that does not load or does not fit ``model_arch``, or ``enable_fusion`` with one.
    """
    transformers = _import_transformers()
    if _is_laion_file(checkpoint):
        return LaionClapEmbedder(transformers, checkpoint, model_arch, enable_fusion, tokenizer_path).eval()
    return _FolderClap(transformers, resolve_pretrained_dir(str(checkpoint))).eval()


class CLAPEmbeddingConditioner(JointEmbeddingConditioner):
    """Joint-embedding conditioner on a pretrained CLAP model, with an optional on-disk embedding cache.

    Args:
        dim: CLAP embedding width (the model's projection dimension).
        output_dim: Width of the returned embeddings.
        device: Device of CLAP.
        attribute: Joint-embedding attribute read by the conditioner.
        quantize: Quantize the embedding with the injected ``quantizer``.
        n_q: Residual codebooks of the quantizer (upstream's argument; the quantizer is built by the caller).
        bins: Codebook size (idem).
        checkpoint: laion-clap checkpoint file (upstream's ``music_audioset_epoch_15_esc_90.14.pt``), transformers
            ClapModel directory, or hub name in the local Hugging Face cache.
        model_arch: laion's architecture name (``HTSAT-base`` for upstream's checkpoint) or a
            :class:`~audiocraft.data.laion_clap.ClapArchitecture`: the sizes of a laion file's model (a folder's
            config defines its model, and this is informational there).
        enable_fusion: Must match the model's ``audio_config.enable_fusion`` (laion files: False).
        sample_rate: Sample rate CLAP expects (must match the processor's; 48000 for a laion file).
        max_audio_length: CLAP window, in seconds.
        audio_stride: Stride of the windows over long audio, in seconds.
        normalize: L2-normalise the embeddings (again).
        text_p: Probability of using the text embedding instead of the audio one at training time.
        batch_size: Windows per CLAP call (default 1).
        autocast_dtype: Autocast dtype of CLAP (off on CPU).
        cache_path: Folder of on-disk caches of whole-file audio embeddings and of text embeddings.
        quantizer: Quantizer module, required when ``quantize`` (see ``JointEmbeddingConditioner``).
        tokenizer_path: RoBERTa tokenizer folder (``vocab.json``, ``merges.txt``) of a laion file; default:
            ``roberta-base`` from the local Hugging Face cache (not an upstream argument: upstream downloads it).
        **kwargs: Further quantizer arguments of upstream's signature (used by the caller that builds it).

    Raises:
        ValueError: ``dim``, ``enable_fusion`` or ``sample_rate`` disagree with the loaded model.
    """

    def __init__(
        self,
        dim: int,
        output_dim: int,
        device: str,
        attribute: str,
        quantize: bool,
        n_q: int,
        bins: int,
        checkpoint: str | Path,
        model_arch: str | ClapArchitecture,
        enable_fusion: bool,
        sample_rate: int,
        max_audio_length: float,
        audio_stride: float,
        normalize: bool,
        text_p: float,
        batch_size: int | None = None,
        autocast_dtype: str | None = "float32",
        cache_path: str | None = None,
        quantizer: nn.Module | None = None,
        tokenizer_path: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        clap = load_clap(checkpoint, model_arch, enable_fusion, tokenizer_path)
        if clap.embedding_dim != dim:
            raise ValueError(f"CLAP conditioner dim={dim} but {checkpoint} embeds into {clap.embedding_dim}")
        if clap.enable_fusion != bool(enable_fusion):
            raise ValueError(f"enable_fusion={enable_fusion} but {checkpoint} has enable_fusion={clap.enable_fusion}")
        if clap.sample_rate != sample_rate:
            raise ValueError(f"CLAP sample_rate={sample_rate} but {checkpoint} expects {clap.sample_rate} Hz")
        super().__init__(
            dim=dim,
            output_dim=output_dim,
            device=device,
            attribute=attribute,
            autocast_dtype=autocast_dtype,
            quantize=quantize,
            n_q=n_q,
            bins=bins,
            quantizer=quantizer,
            **kwargs,
        )
        self.checkpoint = checkpoint
        self.enable_fusion = enable_fusion
        self.model_arch = model_arch
        self.__dict__["clap"] = clap.to(device)  # frozen, outside the state dict (as upstream)
        self.clap_sample_rate = sample_rate
        self.clap_max_frames = int(self.clap_sample_rate * max_audio_length)
        self.clap_stride = int(self.clap_sample_rate * audio_stride)
        self.batch_size = batch_size or 1
        self.normalize = normalize
        self.text_p = text_p
        self.wav_cache: EmbeddingCache | None = None
        self.text_cache: EmbeddingCache | None = None
        if cache_path is not None:
            self.wav_cache = EmbeddingCache(
                Path(cache_path) / "wav",
                self.device,
                compute_embed_fn=self._get_wav_embedding_for_cache,
                extract_embed_fn=self._extract_wav_embedding_chunk,
            )
            self.text_cache = EmbeddingCache(
                Path(cache_path) / "text", self.device, compute_embed_fn=self._get_text_embedding_for_cache
            )

    @torch.no_grad()
    def _compute_text_embedding(self, text: list[str]) -> torch.Tensor:
        """CLAP embedding ``[B, 1, D]`` of the texts (RoBERTa tokens padded to 77, as laion-clap)."""
        embed = F.normalize(self.__dict__["clap"].embed_text(text), dim=-1)
        return embed.view(embed.size(0), 1, embed.size(-1))

    def _get_text_embedding_for_cache(self, path: str | Path, x: JointEmbedCondition, idx: int) -> torch.Tensor:
        text = x.text[idx]
        return self._compute_text_embedding([text if text is not None else ""])[0]

    def _preprocess_wav(self, wav: torch.Tensor, sample_rates: list[int]) -> torch.Tensor:
        """Mono audio ``[B, T]`` at CLAP's sample rate, from ``[B, C, T]``."""
        if wav.dim() != 3:
            raise ValueError(f"expected audio [B, C, T], got {tuple(wav.shape)}")
        wav = torch.stack([convert_audio(audio, sr, self.clap_sample_rate, 1) for audio, sr in zip(wav, sample_rates)])
        return wav.mean(dim=1)

    @torch.no_grad()
    def _compute_wav_embedding(
        self, wav: torch.Tensor, sample_rates: list[int], reduce_mean: bool = False
    ) -> torch.Tensor:
        """CLAP embeddings ``[B, F, D]`` of the windows of each item (``F = 1`` with ``reduce_mean``)."""
        wav = self._preprocess_wav(wav, sample_rates)
        batch, length = wav.shape
        if length >= self.clap_max_frames:
            windows = wav.unfold(-1, self.clap_max_frames, self.clap_stride)  # [B, F, T]
        else:
            windows = wav.view(batch, 1, length)
        flat = windows.reshape(-1, windows.shape[-1])
        embeds = [
            F.normalize(self.__dict__["clap"].embed_audio(flat[start : start + self.batch_size]), dim=-1)
            for start in range(0, flat.shape[0], self.batch_size)
        ]
        embed = torch.cat(embeds).view(batch, -1, self.dim)
        return embed.mean(dim=1, keepdim=True) if reduce_mean else embed

    def _get_wav_embedding_for_cache(self, path: str | Path, x: JointEmbedCondition, idx: int) -> torch.Tensor:
        """Window embeddings ``[F, D]`` of the whole file at ``path``."""
        wav, sr = audio_read(path)
        return self._compute_wav_embedding(wav[None].to(self.device), [sr])[0]

    def _extract_wav_embedding_chunk(self, full_embed: torch.Tensor, x: JointEmbedCondition, idx: int) -> torch.Tensor:
        """Mean ``[1, D]`` of the whole-file windows that cover item ``idx``'s segment (upstream's arithmetic)."""
        sample_rate = x.sample_rate[idx]
        seek_time = x.seek_time[idx] or 0.0
        clap_stride = int(self.clap_stride / self.clap_sample_rate) * sample_rate
        end_seek_time = seek_time + self.clap_max_frames / self.clap_sample_rate
        start_offset = int(seek_time * sample_rate // clap_stride)
        end_offset = int(end_seek_time * sample_rate // clap_stride)
        return full_embed[start_offset:end_offset].mean(dim=0, keepdim=True).to(self.device)

    def _get_text_embedding(self, x: JointEmbedCondition) -> torch.Tensor:
        no_nullified_cond = x.wav.shape[-1] > 1
        if self.text_cache is not None and no_nullified_cond:
            if any(p is None for p in x.path):
                raise ValueError("the CLAP text cache needs the path of every JointEmbedCondition item")
            embed = self.text_cache.get_embed_from_cache([Path(p) for p in x.path if p is not None], x)
        else:
            embed = self._compute_text_embedding([t if t is not None else "" for t in x.text])
        return F.normalize(embed, p=2.0, dim=-1) if self.normalize else embed

    def _get_wav_embedding(self, x: JointEmbedCondition) -> torch.Tensor:
        no_undefined_paths = all(p is not None for p in x.path)
        no_nullified_cond = x.wav.shape[-1] > 1
        if self.wav_cache is not None and no_undefined_paths and no_nullified_cond:
            embed = self.wav_cache.get_embed_from_cache([Path(p) for p in x.path if p is not None], x)
        else:
            embed = self._compute_wav_embedding(x.wav, x.sample_rate, reduce_mean=True)
        return F.normalize(embed, p=2.0, dim=-1) if self.normalize else embed

    def tokenize(self, x: JointEmbedCondition) -> JointEmbedCondition:
        """The condition unchanged; fills the caches for conditions that all have paths."""
        if all(p is not None for p in x.path):
            paths = [Path(p) for p in x.path if p is not None]
            if self.wav_cache is not None:
                self.wav_cache.populate_embed_cache(paths, x)
            if self.text_cache is not None:
                self.text_cache.populate_embed_cache(paths, x)
        return x

    def _get_embed(self, x: JointEmbedCondition) -> tuple[torch.Tensor, torch.Tensor]:
        use_text_embed = random.random() < self.text_p
        if self.training and not use_text_embed:
            embed = self._get_wav_embedding(x)
            empty = [i for i, n in enumerate(x.length.reshape(-1).tolist()) if n == 0]  # nullified audio
        else:
            embed = self._get_text_embedding(x)
            empty = [i for i, t in enumerate(x.text) if t is None or t == ""]
        return embed, torch.tensor(empty, dtype=torch.long)
