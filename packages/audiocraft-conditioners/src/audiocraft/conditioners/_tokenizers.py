"""Text tokenizers of the look-up-table conditioner (layer: audiocraft-conditioners, private).

Both map words to look-up-table rows with the hash trick (sha256 modulo the table size), so no vocabulary is stored
and the same word always lands in the same row, in any process. ``NoopTokenizer`` keeps a whole attribute value as
one token (for genre, artist, key...); ``WhiteSpaceTokenizer`` splits descriptions into words with spaCy, which is
the optional ``[spacy]`` extra and is imported only when that tokenizer is built.
"""

from __future__ import annotations

import abc
import re
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence

from .utils import hash_trick, length_to_mask

_SPACY_INSTALL = "pip install 'audiocraft-conditioners[spacy]'"


class Tokenizer(abc.ABC):
    """Turns a batch of optional texts into ``(tokens [B, T], mask [B, T])``; None gives one padding token."""

    @abc.abstractmethod
    def __call__(self, texts: list[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenize a batch of texts."""


class NoopTokenizer(Tokenizer):
    """One token per text, the hash of the whole string: ``["Jeff Buckley", None]`` -> ``[[h("Jeff Buckley")], [0]]``.

    Meant for global attributes (artist, genre, key...). Tokens are int64 ``[B, 1]``, the mask int32 ``[B, 1]``.

    Args:
        n_bins: Size of the look-up table.
        pad_idx: Token of a missing (None) text.
    """

    def __init__(self, n_bins: int, pad_idx: int = 0) -> None:
        self.n_bins = n_bins
        self.pad_idx = pad_idx

    def __call__(self, texts: list[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokenize ``texts``; see the class docstring."""
        tokens = [self.pad_idx if text is None else hash_trick(text, self.n_bins) for text in texts]
        lengths = torch.tensor([0 if text is None else 1 for text in texts], dtype=torch.int32)
        return torch.tensor(tokens, dtype=torch.long).unsqueeze(1), length_to_mask(lengths).int()


def load_spacy_pipeline(language: str) -> Any:
    """Load a spaCy pipeline by installed package name (``en_core_web_sm``) or from a local directory.

    Unlike upstream, nothing is ever downloaded: a missing pipeline is an error that says how to install it.

    Raises:
        ImportError: spaCy is not installed (names the extra).
        FileNotFoundError: ``language`` looks like a path and does not exist.
        OSError: no installed pipeline has that name.
    """
    try:
        import spacy
    except ImportError as exc:
        raise ImportError(f"the whitespace tokenizer needs spaCy: {_SPACY_INSTALL}") from exc
    looks_like_path = any(sep in language for sep in ("/", "\\")) or language.startswith(".")
    if looks_like_path and not Path(language).exists():
        raise FileNotFoundError(f"spaCy pipeline directory not found: {language}")
    try:
        return spacy.load(language)
    except OSError as exc:
        raise OSError(
            f"spaCy pipeline {language!r} is not installed and is never downloaded at run time; install "
            f"it (e.g. `python -m spacy download {language}`) or pass the path of a saved pipeline"
        ) from exc


class WhiteSpaceTokenizer(Tokenizer):
    """Word-level tokenizer for natural-language descriptions, on a spaCy pipeline.

    Each text goes through upstream's steps: numbers become words (num2words, English), spaCy tokenizes, stop words
    are dropped (``stopwords=True``), punctuation tokens among ``?:!.,;`` are dropped, each word is replaced by its
    lemma (``lemma=True``) or kept as is, then hashed into ``n_bins`` rows. With the same spaCy pipeline and
    versions, the tokens equal upstream's (the hash is the same function). Tokens are int32 ``[B, T]`` padded with
    ``pad_idx``; the mask is int32.

    Args:
        n_bins: Size of the look-up table.
        pad_idx: Padding token (and token of a missing text).
        language: Installed spaCy pipeline name, or the path of a pipeline saved with ``nlp.to_disk``.
        lemma: Replace each word by its lemma.
        stopwords: Drop stop words.
    """

    PUNCTUATION = "?:!.,;"

    def __init__(
        self,
        n_bins: int,
        pad_idx: int = 0,
        language: str = "en_core_web_sm",
        lemma: bool = True,
        stopwords: bool = True,
    ) -> None:
        self.n_bins = n_bins
        self.pad_idx = pad_idx
        self.lemma = lemma
        self.stopwords = stopwords
        try:
            from num2words import num2words
        except ImportError as exc:
            raise ImportError(f"the whitespace tokenizer needs num2words: {_SPACY_INSTALL}") from exc
        self._num2words = num2words
        self.nlp = load_spacy_pipeline(language)

    def words(self, text: str) -> list[str]:
        """The normalised words of one text (before hashing)."""
        text = re.sub(r"(\d+)", lambda m: str(self._num2words(int(m.group(0)))), text)
        doc = self.nlp(text)
        kept = [w for w in doc if not (self.stopwords and w.is_stop) and w.text not in self.PUNCTUATION]
        return [w.lemma_ if self.lemma else w.text for w in kept]

    def normalize(self, texts: list[str | None]) -> list[str | None]:
        """The texts with their normalised words joined by spaces (None stays None); used by T5's normalize_text."""
        return [None if text is None else " ".join(self.words(text)) for text in texts]

    def __call__(self, texts: list[str | None], return_text: bool = False) -> Any:
        """Tokenize ``texts``; see the class docstring.

        Returns:
            ``(tokens, mask)``, and with ``return_text`` (upstream's argument) also the normalised texts.
        """
        if return_text:
            return (*self(texts), self.normalize(texts))
        rows: list[torch.Tensor] = []
        lengths: list[int] = []
        for text in texts:
            if text is None:
                rows.append(torch.tensor([self.pad_idx], dtype=torch.int32))
                lengths.append(0)
                continue
            words = self.words(text)
            rows.append(torch.tensor([hash_trick(w, self.n_bins) for w in words], dtype=torch.int32))
            lengths.append(len(words))
        mask = length_to_mask(torch.tensor(lengths, dtype=torch.int32)).int()
        tokens = pad_sequence(rows, batch_first=True, padding_value=self.pad_idx)
        if tokens.shape[1] < mask.shape[1]:  # every text was empty after normalisation
            tokens = torch.full_like(mask, self.pad_idx)
        return tokens.int(), mask
