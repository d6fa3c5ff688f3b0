"""The DAC wrapper passes the CompressionModel contract (on a small stand-in for ``dac.DAC``)."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from audiocraft.models.dac import DAC
from audiocraft.models.testing import CompressionModelContract


class _FakeQuantizer(nn.Module):
    def __init__(self, n_codebooks: int, codebook_size: int, dim: int) -> None:
        super().__init__()
        self.books = nn.Parameter(torch.randn(n_codebooks, codebook_size, dim))

    def from_codes(self, codes: torch.Tensor) -> tuple[torch.Tensor]:
        z = sum(self.books[k][codes[:, k]] for k in range(codes.shape[1]))
        return (z.transpose(1, 2),)


class _FakeDacModel(nn.Module):
    """Same attributes and methods as descript-audio-codec's ``dac.DAC`` that the wrapper uses."""

    sample_rate, hop_length, codebook_size, n_codebooks = 8000, 80, 64, 3

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.quantizer = _FakeQuantizer(self.n_codebooks, self.codebook_size, 8)
        self.proj = nn.Conv1d(1, 8, self.hop_length, stride=self.hop_length)
        self.up = nn.ConvTranspose1d(8, 1, self.hop_length, stride=self.hop_length)

    def encode(self, x: torch.Tensor, n_quantizers: int):
        pad = (-x.shape[-1]) % self.hop_length
        z = self.proj(nn.functional.pad(x, (0, pad)))  # [B, 8, F]
        dists = torch.cdist(z.transpose(1, 2), self.quantizer.books[0][None])  # [B, F, card]
        codes = dists.argmin(-1)[:, None].repeat(1, self.n_codebooks, 1)
        return z, codes, None, None, None

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(z)


class TestDacContract(CompressionModelContract):
    supports_forward = False

    def make_model(self) -> DAC:
        return DAC(model=_FakeDacModel())


def test_missing_dac_package_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "dac", None)
    monkeypatch.setitem(sys.modules, "dac.utils", None)
    with pytest.raises(ImportError, match=r"audiocraft-models\[dac\]"):
        DAC("44khz")
