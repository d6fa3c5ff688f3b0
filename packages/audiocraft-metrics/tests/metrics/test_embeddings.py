"""VGGish written in PyTorch: front end, state-dict layout of the PyTorch port, loading from local files."""

import math

import pytest
import torch

from audiocraft.metrics import FrechetAudioDistanceMetric, VGGish
from audiocraft.metrics.embeddings import vggish_mel_matrix

PORT_KEYS = {f"features.{i}.{p}" for i in (0, 3, 6, 8, 11, 13) for p in ("weight", "bias")} | {
    f"embeddings.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")
}


def test_state_dict_layout_matches_the_pytorch_port() -> None:
    with torch.device("meta"):
        model = VGGish()
    state = model.state_dict()
    assert set(state) == PORT_KEYS
    assert state["embeddings.0.weight"].shape == (4096, 512 * 4 * 6)
    assert state["embeddings.4.weight"].shape == (128, 4096)


def test_mel_matrix_triangles() -> None:
    mel = vggish_mel_matrix()
    assert mel.shape == (257, 64)
    assert (mel[0] == 0).all()  # DC excluded
    freqs = torch.linspace(0, 8000, 257)
    active = freqs[(mel > 0).any(dim=1)]
    assert active.min() >= 125 and active.max() <= 7500
    assert mel.max() <= 1.0


def test_examples_frame_096_seconds() -> None:
    model = VGGish.__new__(VGGish)  # only the front end: no 70 M-parameter network needed
    torch.nn.Module.__init__(model)
    model.register_buffer("mel_matrix", vggish_mel_matrix())
    model.register_buffer("window", torch.hann_window(400, periodic=True))
    t = torch.arange(32000) / 16000
    examples = model.examples(torch.sin(2 * math.pi * 1000 * t)[None])
    assert examples.shape == (1, 2, 96, 64)  # 2 s = 198 frames of 10 ms -> 2 whole examples
    band = examples[0, 0, 10].argmax().item()
    centers = torch.linspace(1127 * math.log1p(125 / 700), 1127 * math.log1p(7500 / 700), 66)[1:-1]
    assert abs(700 * (math.exp(centers[band].item() / 1127) - 1) - 1000) < 60


@pytest.mark.slow
def test_load_local_weights_and_embed(tmp_path, vggish_weights) -> None:
    model = VGGish.from_pretrained(vggish_weights)
    pca = {"pca_eigen_vectors": torch.eye(128).flip(0), "pca_means": torch.zeros(128, 1)}
    torch.save(pca, tmp_path / "pca.pth")
    loaded = VGGish.from_pretrained(vggish_weights, tmp_path / "pca.pth")
    wav = 0.1 * torch.randn(2, 1, 16000)
    with torch.no_grad():
        emb = loaded(wav)
        raw = model(wav)
    assert emb.shape == (2, 1, 128)
    torch.testing.assert_close(emb, raw.flip(-1))
    fad = FrechetAudioDistanceMetric(loaded)
    assert (fad.model_sample_rate, fad.embedding_dim) == (16000, 128)
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth"):
        VGGish.from_pretrained(tmp_path / "bad.pth")
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        VGGish.from_pretrained(tmp_path / "absent.pth")
