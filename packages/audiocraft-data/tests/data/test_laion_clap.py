"""audiocraft.data.laion_clap without transformers: reading files, architectures, laion's audio front end.

The embeddings themselves (a tiny laion-clap model against laion-clap's output) are tested where transformers is
installed: audiocraft-metrics' test_clap_consistency.py and audiocraft-conditioners' test_clap.py.
"""

import math
from pathlib import Path

import pytest
import torch

from audiocraft.data.laion_clap import (
    CLAP_ARCHITECTURES,
    ClapArchitecture,
    LaionAudioFrontEnd,
    clap_architecture,
    read_laion_checkpoint,
)


def test_reading_checkpoint_files(tmp_path: Path) -> None:
    state = {"module.logit_scale_a": torch.tensor(1.0)}
    torch.save({"epoch": 15, "state_dict": state}, tmp_path / "laion.pt")  # laion's published layout
    torch.save(state, tmp_path / "bare.pt")
    for name in ("laion.pt", "bare.pt"):
        assert read_laion_checkpoint(tmp_path / name).keys() == state.keys()
    with pytest.raises(FileNotFoundError, match=r"CLAP weights not found: .*none\.pt \(nothing is downloaded"):
        read_laion_checkpoint(tmp_path / "none.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"could not load CLAP weights from .*empty\.pt"):
        read_laion_checkpoint(tmp_path / "empty.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match=r"list\.pt does not hold a laion-clap state dict"):
        read_laion_checkpoint(tmp_path / "list.pt")


def test_architectures_by_laion_name() -> None:
    assert clap_architecture("HTSAT-base") == ClapArchitecture(embed_dim=128, depths=(2, 2, 12, 2))
    toy = ClapArchitecture(hop_size=10)
    assert clap_architecture(toy) is toy and sorted(CLAP_ARCHITECTURES) == ["HTSAT-base", "HTSAT-large", "HTSAT-tiny"]
    with pytest.raises(ValueError, match=r"model_arch='PANN-14'; expected one of \['HTSAT-base'"):
        clap_architecture("PANN-14")


def _dft_front_end(n_fft: int = 64, mels: int = 5) -> dict[str, torch.Tensor]:
    """torchlibrosa's STFT kernels (periodic Hann times the DFT) and a random non-negative filterbank."""
    n = torch.arange(n_fft, dtype=torch.float64)
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    window = 0.5 - 0.5 * torch.cos(2 * math.pi * n / n_fft)
    angle = 2 * math.pi * k * n / n_fft
    return {
        "conv_real": (torch.cos(angle) * window).float()[:, None],
        "conv_imag": (-torch.sin(angle) * window).float()[:, None],
        "melW": torch.rand(n_fft // 2 + 1, mels, generator=torch.Generator().manual_seed(0)),
    }


def test_front_end_is_the_log_mel_of_the_centred_stft() -> None:
    front = LaionAudioFrontEnd(_dft_front_end(), ClapArchitecture(hop_size=16, max_samples=640))
    wav = torch.randn(2, 640, generator=torch.Generator().manual_seed(1))
    stft = torch.stft(
        wav, 64, hop_length=16, window=torch.hann_window(64), center=True, pad_mode="reflect", return_complex=True
    )  # [B, 33, frames]
    expected = 10 * torch.log10((stft.abs() ** 2).transpose(1, 2) @ front.mel_filters).clamp(min=-100)
    features = front(wav)
    assert features.shape == (2, 1, 640 // 16 + 1, 5)
    torch.testing.assert_close(features[:, 0], expected, rtol=0, atol=1e-3)
    assert list(front.state_dict()) == []  # the checkpoint's tensors are not the embedder's state


def test_front_end_fits_every_clip_to_ten_seconds_as_laion() -> None:
    front = LaionAudioFrontEnd(_dft_front_end(), ClapArchitecture(max_samples=10), seed=3)
    short = torch.arange(1.0, 4.0)[None]  # repeated 3 times, then zero-padded
    assert front.fit_length(short).tolist() == [[1, 2, 3, 1, 2, 3, 1, 2, 3, 0]]
    long = torch.arange(15.0)[None]
    start = int(torch.randint(0, 6, (1,), generator=torch.Generator().manual_seed(3)))  # the seeded crop
    assert front.fit_length(long).tolist() == [list(range(start, start + 10))]
