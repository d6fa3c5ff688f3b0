"""Every metric of the package against the MetricContract conformance mixin."""

import math
import stat
import sys
from pathlib import Path

import pytest
import torch

from audiocraft.metrics import (
    SISNR,
    ChromaCosineSimilarityMetric,
    FrechetAudioDistanceMetric,
    KLDivergenceMetric,
    MelSpectrogramDistance,
    MultiResolutionSTFTDistance,
    RelativeVolumeMel,
    TextConsistencyMetric,
    ViSQOL,
)
from audiocraft.metrics.testing import MetricContract

SR = 16000


def _pair(seed: int, batch: int = 2, length: int = 8000) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length) / SR
    ref = torch.stack([0.3 * torch.sin(2 * math.pi * (220 + 110 * i + 30 * seed) * t) for i in range(batch)])[:, None]
    est = 0.9 * ref + 0.05 * torch.randn(ref.shape, generator=g)
    return est, ref


class _Embed(torch.nn.Module):
    sample_rate = SR
    channels = 1
    embedding_dim = 3

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        frames = wav[:, 0, : wav.shape[-1] // 800 * 800].reshape(wav.shape[0], -1, 800)
        return torch.stack([frames.std(-1), frames.diff(dim=-1).abs().mean(-1), frames.mean(-1)], -1)


class TestSISNR(MetricContract):
    def make_metric(self):
        return SISNR(sample_rate=SR, segment=0.2)

    def batches(self):
        return [_pair(0), _pair(1, batch=3)]


class TestMel(MetricContract):
    def make_metric(self):
        return MelSpectrogramDistance(sample_rate=SR, n_fft=512, n_mels=32)

    def batches(self):
        return [_pair(0), (*_pair(1), [8000, 5000])]


class TestMRSTFT(MetricContract):
    def make_metric(self):
        return MultiResolutionSTFTDistance(fft_sizes=[256, 512], hop_sizes=[64, 128], win_lengths=[256, 400])

    def batches(self):
        return [_pair(0), _pair(1)]


class TestRVM(MetricContract):
    def make_metric(self):
        return RelativeVolumeMel(sample_rate=SR)

    def batches(self):
        return [_pair(0), (*_pair(1), [8000, 6000])]


class TestFAD(MetricContract):
    def make_metric(self):
        return FrechetAudioDistanceMetric(_Embed())

    def batches(self):
        return [(*_pair(0), None, SR), (*_pair(1, batch=3), [8000, 4000, 8000], SR), (*_pair(2), None, SR)]


class TestKLD(MetricContract):
    def make_metric(self):
        return KLDivergenceMetric(lambda wav: _Embed()(wav).mean(1), sample_rate=SR, max_duration=0.25)

    def batches(self):
        return [(*_pair(0), None, SR), (*_pair(1), [8000, 3000], SR)]


class TestChroma(MetricContract):
    def make_metric(self):
        return ChromaCosineSimilarityMetric(sample_rate=SR, radix2_exp=11)

    def batches(self):
        return [(*_pair(0), None, SR), (*_pair(1), [8000, 5000], SR)]


class TestTextConsistency(MetricContract):
    def make_metric(self):
        embed = _Embed()
        return TextConsistencyMetric(
            lambda wav: embed(wav).mean(1),
            lambda texts: torch.tensor([[len(t), t.count("o"), 1.0] for t in texts]),
            sample_rate=SR,
        )

    def batches(self):
        return [(_pair(0)[0], ["a loud drum", "soft organ"]), (_pair(1)[0], ["piano", "choir of voices"], [8000, 4000])]


class TestViSQOL(MetricContract):
    @pytest.fixture(autouse=True)
    def _stand_in(self, tmp_path: Path) -> None:
        exe = tmp_path / "visqol"
        exe.write_text(
            f"#!{sys.executable}\n"
            + "\n".join(
                [
                    "import argparse, csv",
                    "p = argparse.ArgumentParser()",
                    "flags = ('--batch_input_csv', '--results_csv', '--similarity_to_quality_model')",
                    "[p.add_argument(a) for a in flags]",
                    "a = p.parse_args()",
                    "rows = list(csv.DictReader(open(a.batch_input_csv)))",
                    "out = open(a.results_csv, 'w')",
                    "out.write('reference,degraded,moslqo\\n')",
                    "[out.write(f\"{r['reference']},{r['degraded']},{1 + len(r['degraded']) % 4}\\n\") for r in rows]",
                ]
            )
        )
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
        (tmp_path / "model").mkdir()
        (tmp_path / "model" / "libsvm_nu_svr_model.txt").write_text("m")
        self.exe = exe

    def make_metric(self):
        return ViSQOL(self.exe)

    def batches(self):
        return [(*_pair(0, length=4800), SR), (*_pair(1, batch=3, length=4800), SR)]
