"""Worker for test_distributed.py: builds every metric, feeds it a share of a fixed data set, computes.

Not a test module (no `test_` prefix). The test puts this folder on sys.path so that processes started by
torch.multiprocessing (spawn) can import it.
"""

import importlib.util
import json
import math
from pathlib import Path

import torch

from audiocraft.metrics import (
    SISNR,
    ChromaCosineSimilarityMetric,
    FrechetAudioDistanceMetric,
    KLDivergenceMetric,
    MelSpectrogramDistance,
    MultiResolutionSTFTDistance,
    PesqMetric,
    RelativeVolumeMel,
    TextConsistencyMetric,
)

SR = 16000
N_ITEMS = 5
LENGTH = 16000


class Features(torch.nn.Module):
    """Per 1600-sample frame: log energy, mean |diff|, zero-crossing rate, spectral tilt."""

    sample_rate = SR
    channels = 1
    embedding_dim = 4

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        frames = wav[:, 0, : wav.shape[-1] // 1600 * 1600].reshape(wav.shape[0], -1, 1600)
        spec = torch.fft.rfft(frames).abs()
        half = spec.shape[-1] // 2
        return torch.stack(
            [
                torch.log(frames.pow(2).mean(-1) + 1e-6),
                frames.diff(dim=-1).abs().mean(-1),
                (frames[..., 1:] * frames[..., :-1] < 0).float().mean(-1),
                torch.log(spec[..., half:].mean(-1) / (spec[..., :half].mean(-1) + 1e-6) + 1e-6),
            ],
            -1,
        )

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        return torch.stack([torch.tensor([len(t), t.count("a"), t.count("e"), 1.0]) for t in texts])


def classifier(wav: torch.Tensor) -> torch.Tensor:
    """Logits over 5 classes from simple statistics of the audio."""
    x = wav.mean(dim=1)
    return torch.stack([x.std(-1), x.abs().max(-1).values, x.diff().abs().mean(-1), x.mean(-1), x.pow(3).mean(-1)], -1)


def dataset() -> dict:
    """Fixed data: voiced-like references, noisy estimates of varying quality, valid lengths, texts."""
    g = torch.Generator().manual_seed(1234)
    t = torch.arange(LENGTH) / SR
    refs, preds = [], []
    for i in range(N_ITEMS):
        f0 = 120 + 30 * i
        phase = 2 * math.pi * f0 * t
        source = sum(torch.sin(k * phase) / k for k in range(1, 12))
        ref = 0.3 * source * torch.sin(2 * math.pi * 2 * t).clamp(min=0) ** 2
        refs.append(ref)
        preds.append(0.8 * ref + (0.01 + 0.02 * i) * torch.randn(LENGTH, generator=g))
    return {
        "preds": torch.stack(preds)[:, None],
        "targets": torch.stack(refs)[:, None],
        "sizes": torch.tensor([16000, 12000, 16000, 9000, 16000]),
        "texts": ["a happy tune", "sad piano", "energetic beat", "ambient pad", "a e a e"],
    }


def build() -> dict:
    model = Features()
    metrics = {
        "sisnr": SISNR(sample_rate=SR, segment=0.25),
        "mel": MelSpectrogramDistance(sample_rate=SR, n_fft=512, n_mels=40),
        "mrstft": MultiResolutionSTFTDistance(fft_sizes=[512, 256], hop_sizes=[128, 64], win_lengths=[400, 200]),
        "rvm": RelativeVolumeMel(sample_rate=SR),
        "fad": FrechetAudioDistanceMetric(model),
        "kld": KLDivergenceMetric(classifier, sample_rate=SR, max_duration=0.5, min_duration=0.1),
        "chroma_cosine": ChromaCosineSimilarityMetric(sample_rate=SR, radix2_exp=11),
        "text_consistency": TextConsistencyMetric(lambda wav: model(wav).mean(1), model.embed_text, sample_rate=SR),
    }
    if importlib.util.find_spec("pesq") is not None:  # the [pesq] extra
        metrics["pesq"] = PesqMetric(sample_rate=SR)
    return metrics


def feed(metrics: dict, items: list[int], batch_size: int = 2) -> None:
    data = dataset()
    for start in range(0, len(items), batch_size):
        idx = items[start : start + batch_size]
        preds, targets, sizes = data["preds"][idx], data["targets"][idx], data["sizes"][idx]
        rates = torch.full((len(idx),), SR)
        for name, metric in metrics.items():
            if name in ("sisnr", "mel", "mrstft", "rvm", "pesq"):
                metric.update(preds, targets, sizes=sizes)
            elif name == "text_consistency":
                metric.update(preds, [data["texts"][i] for i in idx], sizes, rates)
            else:
                metric.update(preds, targets, sizes, rates)


def results(metrics: dict) -> dict:
    return {name: metric.compute() for name, metric in metrics.items()}


def run(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        metrics = build()
        # uneven shares (3 items and 2 items): an average of per-worker averages would be wrong
        feed(metrics, [0, 1, 2] if rank == 0 else [3, 4])
        out = results(metrics)
        metrics["fad"].save_reference_stats(Path(out_dir) / f"fad_ref_{rank}.pt")
        Path(out_dir, f"results_{rank}.json").write_text(json.dumps(out))
    finally:
        torch.distributed.destroy_process_group()
