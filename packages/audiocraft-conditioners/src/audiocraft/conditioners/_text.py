"""Look-up-table text conditioner (layer: audiocraft-conditioners, private).

``LUTConditioner`` hashes each text (or each word of it) into a row of an ``nn.Embedding`` and projects it to the
model's dimension. State-dict keys are upstream's: ``embed.weight``, ``output_proj.weight``, ``output_proj.bias``.
"""

from __future__ import annotations

import torch
from torch import nn

from ._base import ConditionType, TextConditioner
from ._tokenizers import NoopTokenizer, Tokenizer, WhiteSpaceTokenizer

TOKENIZERS = ("noop", "whitespace")


class LUTConditioner(TextConditioner):
    """Text conditioner on a learned look-up table.

    Args:
        n_bins: Number of rows of the table (the hash range).
        dim: Width of the table.
        output_dim: Width of the returned embeddings.
        tokenizer: ``"noop"`` (one token per text) or ``"whitespace"`` (one per word, needs the ``[spacy]`` extra).
        pad_idx: Token of padding and of missing texts.
        language: spaCy pipeline name or directory for the whitespace tokenizer (not an upstream argument).

    Raises:
        ValueError: for an unknown tokenizer name.
    """

    def __init__(
        self, n_bins: int, dim: int, output_dim: int, tokenizer: str, pad_idx: int = 0, language: str = "en_core_web_sm"
    ) -> None:
        super().__init__(dim, output_dim)
        self.embed = nn.Embedding(n_bins, dim)
        self.tokenizer: Tokenizer
        if tokenizer == "noop":
            self.tokenizer = NoopTokenizer(n_bins, pad_idx=pad_idx)
        elif tokenizer == "whitespace":
            self.tokenizer = WhiteSpaceTokenizer(n_bins, pad_idx=pad_idx, language=language)
        else:
            raise ValueError(f"unknown tokenizer {tokenizer!r}; expected one of {list(TOKENIZERS)}")

    def tokenize(self, x: list[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``[B, T]`` and mask ``[B, T]`` of the texts, on the table's device."""
        device = self.embed.weight.device
        tokens, mask = self.tokenizer(x)
        return tokens.to(device), mask.to(device)

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> ConditionType:
        """Embedding ``[B, T, output_dim]`` (zero on padding) and mask ``[B, T]``."""
        tokens, mask = inputs
        embeds = self.output_proj(self.embed(tokens))
        return embeds * mask.unsqueeze(-1), mask
