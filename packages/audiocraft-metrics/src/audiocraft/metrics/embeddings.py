"""Embedding and classifier models for FAD, KLD and CLAP score, all loaded from local files.

Part of `audiocraft.metrics` (layer: metrics). Each adapter is a `torch.nn.Module` mapping audio `[B, C, T]`
to embeddings or class probabilities and exposes `sample_rate`, `channels` and `embedding_dim`, which
`FrechetAudioDistanceMetric` and `KLDivergenceMetric` read. Nothing is downloaded: weights come from paths.

- `VGGish`: a PyTorch VGGish (the model of the original FAD), written here with no extra dependency; it loads
  the PyTorch port's state dict (`features.*`, `embeddings.*` keys, e.g. `vggish-10086976.pth`).
- `PasstModel`: PaSST AudioSet classifier / embedder, needs the `[passt]` extra (hear21passt).
- `ClapModel`: LAION-CLAP audio and text embedder on transformers' ClapModel, needs the `[clap]` extra
  (defined in `_clap.py`, re-exported here).
"""

import contextlib
import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._clap import ClapArchitecture, ClapModel  # noqa: F401  (re-exported: public home, used by FAD and CLAP score)


def _missing_extra(package: str, extra: str, what: str) -> ImportError:
    return ImportError(f"{what} needs the optional package {package!r}: pip install 'audiocraft-metrics[{extra}]'")


def _load_tensors(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} weights not found: {path} (nothing is downloaded at run time)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"could not load {what} weights from {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict for {what}")
    return state


def _hz_to_mel_htk(freq: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(freq / 700.0)


def vggish_mel_matrix(
    num_mel_bins: int = 64,
    num_spectrogram_bins: int = 257,
    sample_rate: int = 16000,
    lower_edge_hertz: float = 125.0,
    upper_edge_hertz: float = 7500.0,
) -> torch.Tensor:
    """VGGish's mel filterbank `[num_spectrogram_bins, num_mel_bins]`: HTK mel triangles drawn in mel space."""
    spec_mel = _hz_to_mel_htk(np.linspace(0.0, sample_rate / 2, num_spectrogram_bins))
    edges = np.linspace(
        _hz_to_mel_htk(np.array(lower_edge_hertz)), _hz_to_mel_htk(np.array(upper_edge_hertz)), num_mel_bins + 2
    )
    weights = np.zeros((num_spectrogram_bins, num_mel_bins))
    for i in range(num_mel_bins):
        low, center, high = edges[i : i + 3]
        rising = (spec_mel - low) / (center - low)
        falling = (high - spec_mel) / (high - center)
        weights[:, i] = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0  # the DC bin never contributes
    return torch.from_numpy(weights).float()


class VGGish(nn.Module):
    """VGGish audio embedding (128-d per 0.96 s of 16 kHz mono audio), in PyTorch.

    The front end follows VGGish: 25 ms periodic-Hann frames every 10 ms, 512-point FFT magnitude, 64 HTK mel
    bands from 125 Hz to 7.5 kHz, `log(mel + 0.01)`, and non-overlapping examples of 96 frames. The network
    (4 conv blocks, 3 fully connected layers) uses the module names of the common PyTorch port, so its
    state dict loads with `VGGish.from_pretrained(path)`. Optionally the PCA of the original release is
    applied (without the 8-bit quantisation).

    Args:
        pca_params: Optional `{"pca_eigen_vectors": [128, 128], "pca_means": [128] or [128, 1]}`.
    """

    sample_rate = 16000
    channels = 1
    embedding_dim = 128
    example_frames = 96
    mel_matrix: torch.Tensor
    window: torch.Tensor

    def __init__(self, pca_params: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 1
        for block in ([64], [128], [256, 256], [512, 512]):
            for out_ch in block:
                layers += [nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                in_ch = out_ch
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 128),
            nn.ReLU(inplace=True),
        )
        self.register_buffer("mel_matrix", vggish_mel_matrix(), persistent=False)
        self.register_buffer("window", torch.hann_window(400, periodic=True), persistent=False)
        self.pca_eigen_vectors: torch.Tensor | None
        self.pca_means: torch.Tensor | None
        if pca_params is not None:
            self.register_buffer("pca_eigen_vectors", pca_params["pca_eigen_vectors"].float(), persistent=False)
            self.register_buffer("pca_means", pca_params["pca_means"].float().reshape(-1), persistent=False)
        else:
            self.pca_eigen_vectors = self.pca_means = None

    @classmethod
    def from_pretrained(cls, weights_path: str | Path, pca_params_path: str | Path | None = None) -> "VGGish":
        """Builds VGGish from a local state dict (and optionally the PCA parameters file)."""
        pca = _load_tensors(pca_params_path, "VGGish PCA") if pca_params_path is not None else None
        model = cls(pca)
        state = _load_tensors(weights_path, "VGGish")
        try:
            missing, unexpected = model.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            raise ValueError(f"{weights_path} does not fit VGGish: {exc}") from exc
        if missing or unexpected:
            raise ValueError(
                f"{weights_path} is not a VGGish state dict: missing {missing[:4]}, unexpected {unexpected[:4]}"
            )
        return model.eval()

    def examples(self, wav: torch.Tensor) -> torch.Tensor:
        """Log-mel examples `[B, E, 96, 64]` of 16 kHz mono audio `[B, T]` (E = whole 0.96 s examples, >= 1)."""
        min_len = 400 + 160 * (self.example_frames - 1)
        if wav.shape[-1] < min_len:
            wav = torch.nn.functional.pad(wav, (0, min_len - wav.shape[-1]))
        frames = wav.unfold(-1, 400, 160) * self.window
        magnitude = torch.fft.rfft(frames, n=512).abs()
        log_mel = torch.log(magnitude @ self.mel_matrix + 0.01)
        n_examples = log_mel.shape[-2] // self.example_frames
        log_mel = log_mel[..., : n_examples * self.example_frames, :]
        return log_mel.reshape(wav.shape[0], n_examples, self.example_frames, -1)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Embeddings `[B, E, 128]` of 16 kHz audio `[B, C, T]` (channels are averaged)."""
        examples = self.examples(wav.mean(dim=1))
        batch, n_ex = examples.shape[:2]
        x = self.features(examples.reshape(batch * n_ex, 1, *examples.shape[-2:]))
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # the port flattens as [frames, mels, channels]
        emb = self.embeddings(x)
        if self.pca_eigen_vectors is not None and self.pca_means is not None:
            emb = (emb - self.pca_means) @ self.pca_eigen_vectors.T
        return emb.reshape(batch, n_ex, -1)


_PASST_VARIANTS: dict[float, tuple[str, int, int]] = {
    10: ("passt_s_swa_p16_128_ap476", 998, 10_000),
    20: ("passt_20sec", 2000, 20_000),
    30: ("passt_30sec", 3000, 30_000),
}


class PasstModel(nn.Module):
    """PaSST (AudioSet, 527 classes) as a classifier (`mode="logits"`) or embedder (`mode="embed_only"`).

    Needs the `[passt]` extra (`hear21passt`). The network is built without pretrained weights and loads the
    released checkpoint from `weights_path` (e.g. `passt-s-f128-20sec-p16-s10-ap.474-swa.pt` for
    `pretrained_length=20`). Audio is 32 kHz mono; one call handles up to `pretrained_length` seconds.

    Args:
        weights_path: Local PaSST checkpoint (a state dict of the network).
        pretrained_length: 10 (default), 20 or 30 seconds: which released variant the weights are.
        mode: "logits" (returns class logits `[B, 527]`) or "embed_only" (`[B, 768]`).
    """

    sample_rate = 32000
    channels = 1

    def __init__(self, weights_path: str | Path, pretrained_length: float | None = None, mode: str = "logits") -> None:
        super().__init__()
        length = pretrained_length or 10
        if length not in _PASST_VARIANTS:
            raise ValueError(f"pretrained_length={pretrained_length!r}; expected one of {sorted(_PASST_VARIANTS)}")
        if mode not in ("logits", "embed_only"):
            raise ValueError(f"mode={mode!r}; expected 'logits' or 'embed_only'")
        try:
            from hear21passt.models.passt import get_model
            from hear21passt.models.preprocess import AugmentMelSTFT
            from hear21passt.wrapper import PasstBasicWrapper
        except ImportError as exc:
            raise _missing_extra("hear21passt", "passt", "PasstModel") from exc
        arch, tdim, window_ms = _PASST_VARIANTS[length]
        state = _load_tensors(weights_path, "PaSST")
        with contextlib.redirect_stdout(io.StringIO()):  # PaSST prints its whole configuration
            net = get_model(arch=arch, pretrained=False, input_tdim=tdim)
            mel = AugmentMelSTFT(
                n_mels=128,
                sr=32000,
                win_length=800,
                hopsize=320,
                n_fft=1024,
                freqm=48,
                timem=192,
                htk=False,
                fmin=0.0,
                fmax=None,
                norm=1,
                fmin_aug_range=10,
                fmax_aug_range=2000,
            )
        net.load_state_dict(state)
        self.model = PasstBasicWrapper(mel=mel, net=net, max_model_window=window_ms, mode=mode).eval()
        self.max_duration = float(length)
        self.embedding_dim = 527 if mode == "logits" else 768

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Logits or embeddings `[B, D]` of 32 kHz audio `[B, C, T]` (channels averaged)."""
        original_stft = torch.stft

        def stft(*args, **kwargs):  # type: ignore[no-untyped-def]  # PaSST's front end predates return_complex
            kwargs.setdefault("return_complex", False)
            if kwargs["return_complex"] is False:
                kwargs["return_complex"] = True
                return torch.view_as_real(original_stft(*args, **kwargs))
            return original_stft(*args, **kwargs)

        torch.stft = stft  # type: ignore[assignment]
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return self.model(wav.mean(dim=1))
        finally:
            torch.stft = original_stft  # type: ignore[assignment]


def segments(wav: torch.Tensor, max_frames: int | None, min_frames: int = 0) -> list[torch.Tensor]:
    """Splits `wav` `[C, T]` into `[1, C, <=max_frames]` pieces, dropping pieces not longer than `min_frames`."""
    if max_frames is None:
        pieces = [wav]
    else:
        pieces = list(torch.split(wav, max_frames, dim=-1))
    return [p[None] for p in pieces if p.shape[-1] > min_frames]
