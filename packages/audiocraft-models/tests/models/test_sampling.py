"""Sampling helpers: upstream's semantics (support, renormalisation, global RNG use) and the generator argument."""

from __future__ import annotations

import torch

from audiocraft.models.sampling import multinomial, sample_top_k, sample_top_p


def _probs(shape=(3, 2, 10), seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(*shape, generator=g), dim=-1)


def test_multinomial_keeps_leading_dims_and_uses_the_global_rng() -> None:
    probs = _probs()
    torch.manual_seed(5)
    ours = multinomial(probs, num_samples=4, replacement=True)
    torch.manual_seed(5)
    ref = torch.multinomial(probs.reshape(-1, 10), 4, replacement=True).reshape(3, 2, 4)
    assert ours.shape == (3, 2, 4) and torch.equal(ours, ref)


def test_top_k_draws_only_among_the_k_best_with_renormalised_mass() -> None:
    probs = _probs((1, 10))
    top3 = set(torch.topk(probs[0], 3).indices.tolist())
    g = torch.Generator().manual_seed(1)
    draws = torch.cat([sample_top_k(probs, 3, generator=g) for _ in range(4000)]).view(-1)
    assert set(draws.tolist()) <= top3
    kept = probs[0, sorted(top3)] / probs[0, sorted(top3)].sum()
    freq = torch.tensor([(draws == i).float().mean().item() for i in sorted(top3)])
    assert torch.allclose(freq, kept, atol=0.03)


def test_top_k_one_is_argmax_and_input_is_left_unchanged() -> None:
    probs = _probs()
    before = probs.clone()
    assert torch.equal(sample_top_k(probs, 1), probs.argmax(-1, keepdim=True))
    assert torch.equal(probs, before)


def test_top_k_matches_upstream_draw_under_the_same_global_seed() -> None:
    """Upstream rescales probs in place then calls multinomial with the global RNG: same draws here."""
    probs = _probs((4, 2048), seed=3)
    torch.manual_seed(11)
    ours = sample_top_k(probs, 250)
    kth = torch.topk(probs, 250, dim=-1).values[..., -1:]
    ref_probs = probs * (probs >= kth).float()
    ref_probs = ref_probs / ref_probs.sum(-1, keepdim=True)
    torch.manual_seed(11)
    assert torch.equal(ours, torch.multinomial(ref_probs, 1))


def test_top_p_keeps_the_smallest_prefix_reaching_p() -> None:
    probs = torch.tensor([[0.05, 0.5, 0.3, 0.15]])
    g = torch.Generator().manual_seed(0)
    # mass before 0.5 is 0 (kept), before 0.3 is 0.5 (kept for p=0.6), before 0.15 is 0.8 (dropped)
    draws = {int(sample_top_p(probs, 0.6, generator=g)) for _ in range(500)}
    assert draws == {1, 2}
    assert {int(sample_top_p(probs, 0.4, generator=g)) for _ in range(200)} == {1}


def test_generator_makes_sampling_reproducible_and_independent_of_the_global_rng() -> None:
    probs = _probs((8, 4, 64))
    runs = []
    for global_seed in (0, 1):
        torch.manual_seed(global_seed)
        g = torch.Generator().manual_seed(1234)
        runs.append(
            (
                sample_top_k(probs, 20, generator=g),
                sample_top_p(probs, 0.8, generator=g),
                multinomial(probs, 1, generator=g),
            )
        )
    for a, b in zip(*runs):
        assert torch.equal(a, b)
    g1 = torch.Generator().manual_seed(1)
    g2 = torch.Generator().manual_seed(2)
    assert not torch.equal(multinomial(probs, 1, generator=g1), multinomial(probs, 1, generator=g2))
