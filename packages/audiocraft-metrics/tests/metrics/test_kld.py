"""KL divergence of known distributions through a pluggable classifier."""

import math

import pytest
import torch

from audiocraft.metrics import KLDivergenceMetric, PasstKLDivergenceMetric, kl_divergence

P = torch.tensor([0.5, 0.25, 0.25])
Q = torch.tensor([0.2, 0.3, 0.5])


def _kl(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(sum(x * math.log(x / y) for x, y in zip(a.tolist(), b.tolist())))


class LevelClassifier(torch.nn.Module):
    """Returns probabilities chosen by the signal's DC level: 1.0 -> P, 2.0 -> Q."""

    sample_rate = 16000
    channels = 1

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        level = wav.mean().item()
        return (P if abs(level - 1.0) < 0.1 else Q)[None].clone()


def test_kl_divergence_function_known_values() -> None:
    assert kl_divergence(P[None], P[None]).item() == pytest.approx(0.0, abs=1e-5)
    # kl_divergence(pred, target) is KL(target || pred)
    assert kl_divergence(P[None], Q[None]).item() == pytest.approx(_kl(Q, P), abs=1e-5)


def test_metric_known_distributions() -> None:
    metric = KLDivergenceMetric(LevelClassifier(), outputs="probs")
    preds = torch.ones(3, 1, 1600)
    targets = torch.full((3, 1, 1600), 2.0)
    metric.update(preds, targets)
    out = metric.compute()
    assert out["kld"] == out["kld_pq"] == pytest.approx(_kl(Q, P), abs=1e-5)
    assert out["kld_qp"] == pytest.approx(_kl(P, Q), abs=1e-5)
    assert out["kld_both"] == pytest.approx(_kl(P, Q) + _kl(Q, P), abs=1e-5)
    metric.reset()
    metric.update(preds, preds.clone())
    assert metric.compute()["kld"] == pytest.approx(0.0, abs=1e-5)


def test_logits_segments_and_short_items_skipped() -> None:
    calls = []

    def classifier(wav: torch.Tensor) -> torch.Tensor:
        calls.append(wav.shape[-1])
        return torch.log(P if wav.mean() > 0 else Q)[None]

    metric = KLDivergenceMetric(classifier, sample_rate=1000, max_duration=1.0, min_duration=0.3)
    preds = torch.ones(2, 1, 2500)
    targets = -torch.ones(2, 1, 2500)
    # item 0: 2500 samples -> pieces 1000, 1000, 500; item 1: 250 samples -> no piece longer than 300: skipped
    metric.update(preds, targets, sizes=[2500, 250], sample_rates=1000)
    assert calls == [1000, 1000, 500, 1000, 1000, 500]
    assert metric.compute()["kld"] == pytest.approx(_kl(Q, P), abs=1e-5)
    assert int(metric.reduced_states()["weight"]) == 1


def test_passt_needs_local_weights() -> None:
    with pytest.raises(ValueError, match="weights_path"):
        PasstKLDivergenceMetric(pretrained_length=20)
    with pytest.raises((ImportError, FileNotFoundError), match="passt|not found"):
        PasstKLDivergenceMetric(pretrained_length=20, weights_path="/nonexistent/passt.pt")
