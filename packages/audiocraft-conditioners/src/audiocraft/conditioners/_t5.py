"""T5 text conditioner (layer: audiocraft-conditioners, private; needs the ``[t5]`` extra).

The texts of a batch go through a T5 encoder (transformers' ``T5EncoderModel``) and a linear projection. The model
is a Hugging Face hub name, found in the local Hugging Face cache, or a local directory saved with
``save_pretrained`` (model and tokenizer); nothing is ever downloaded at run time. Differences from upstream, on
purpose:

* local directories and any T5 checkpoint are accepted (upstream asserts the name is one of ten hub names), and the
  hidden size is read from the model's config (upstream's table has no entry for ``google/flan-t5-xl`` / ``-xxl``,
  so those raise KeyError there);
* a missing model is an error that says how to get it, instead of a download.

As upstream: a frozen T5 (``finetune=False``) is kept out of the module tree, so it is neither in the state dict
nor moved by ``.to()`` (it lives on ``device``); a finetuned one is the submodule ``t5``. Word dropout draws from
Python's global ``random``, as upstream's, so the solver's RNG state covers it.
"""

from __future__ import annotations

import random
from typing import Any

import torch

from ._autocast import conditioner_autocast
from ._base import ConditionType, TextConditioner
from ._hub import resolve_pretrained_dir
from ._tokenizers import WhiteSpaceTokenizer

_T5_INSTALL = "pip install 'audiocraft-conditioners[t5]'"


class T5Conditioner(TextConditioner):
    """T5-based text conditioner.

    Args:
        name: Hub name (``t5-base``, ``google/flan-t5-xl``...) in the local Hugging Face cache, or a local directory
            holding a saved T5 encoder and its tokenizer.
        output_dim: Width of the returned embeddings.
        finetune: Train T5 with the model (it is then part of the state dict, under ``t5.``).
        device: Device of the T5 encoder.
        autocast_dtype: Autocast dtype of the encoder (autocast is off on CPU or when None).
        word_dropout: Probability of dropping each word of a text at training time.
        normalize_text: Normalise texts as the whitespace tokenizer does (lemmas, no stop words); needs the
            ``[spacy]`` extra.
        language: spaCy pipeline (name or directory) used by ``normalize_text`` (not an upstream argument).
    """

    MODELS = [
        "t5-small",
        "t5-base",
        "t5-large",
        "t5-3b",
        "t5-11b",
        "google/flan-t5-small",
        "google/flan-t5-base",
        "google/flan-t5-large",
        "google/flan-t5-xl",
        "google/flan-t5-xxl",
    ]
    """Upstream's list of names; any T5 encoder works here."""
    MODELS_DIMS = {
        "t5-small": 512,
        "t5-base": 768,
        "t5-large": 1024,
        "t5-3b": 1024,
        "t5-11b": 1024,
        "google/flan-t5-small": 512,
        "google/flan-t5-base": 768,
        "google/flan-t5-large": 1024,
        "google/flan-t5-xl": 2048,
        "google/flan-t5-xxl": 4096,
    }
    """Hidden sizes of those models (for reference; the conditioner reads ``d_model`` from the model's config)."""

    def __init__(
        self,
        name: str,
        output_dim: int,
        finetune: bool,
        device: str,
        autocast_dtype: str | None = "float32",
        word_dropout: float = 0.0,
        normalize_text: bool = False,
        language: str = "en_core_web_sm",
    ) -> None:
        try:
            from transformers import T5EncoderModel, T5Tokenizer
        except ImportError as exc:
            raise ImportError(f"T5Conditioner needs transformers and sentencepiece: {_T5_INSTALL}") from exc
        folder = resolve_pretrained_dir(name)
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"no T5 model in {folder} (config.json is missing)")
        if not any((folder / f).is_file() for f in ("tokenizer.json", "spiece.model")):
            raise FileNotFoundError(f"no T5 tokenizer in {folder} (neither tokenizer.json nor spiece.model)")
        t5 = T5EncoderModel.from_pretrained(folder, local_files_only=True).train(mode=finetune)
        tokenizer = T5Tokenizer.from_pretrained(folder, local_files_only=True)
        super().__init__(int(t5.config.d_model), output_dim)
        self.device = device
        self.name = name
        self.finetune = finetune
        self.word_dropout = word_dropout
        self.autocast = conditioner_autocast("T5Conditioner", device, autocast_dtype)
        self.t5_tokenizer = tokenizer
        if finetune:
            self.t5 = t5
        else:  # outside the module tree: not in the state dict, as upstream
            self.__dict__["t5"] = t5.to(device)
        self.normalize_text = normalize_text
        if normalize_text:
            self.text_normalizer = WhiteSpaceTokenizer(1, lemma=True, stopwords=True, language=language)

    def tokenize(self, x: list[str | None]) -> dict[str, torch.Tensor]:
        """T5 inputs (``input_ids``, ``attention_mask``) of the texts; a missing or empty text is fully masked."""
        entries: list[str] = [xi if xi is not None else "" for xi in x]
        if self.normalize_text:
            entries = [e or "" for e in self.text_normalizer.normalize(list(entries))]
        if self.word_dropout > 0.0 and self.training:
            entries = [
                " ".join(w for w in entry.split(" ") if random.random() >= self.word_dropout) for entry in entries
            ]
        empty_idx = torch.tensor([i for i, entry in enumerate(entries) if entry == ""], dtype=torch.long)
        inputs: Any = self.t5_tokenizer(entries, return_tensors="pt", padding=True).to(self.device)
        inputs["attention_mask"][empty_idx, :] = 0
        return dict(inputs)

    def forward(self, inputs: dict[str, torch.Tensor]) -> ConditionType:
        """Embedding ``[B, T, output_dim]`` (zero on masked tokens) and mask ``[B, T]``."""
        mask = inputs["attention_mask"]
        with torch.set_grad_enabled(self.finetune), self.autocast:
            embeds = self.t5(**inputs).last_hidden_state
        embeds = self.output_proj(embeds.to(self.output_proj.weight))
        return embeds * mask.unsqueeze(-1), mask
