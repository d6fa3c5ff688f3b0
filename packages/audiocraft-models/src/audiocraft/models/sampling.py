"""Token sampling helpers of the language models (layer: audiocraft-models, models; public).

Upstream AudioCraft has these in ``audiocraft.utils.utils`` (``multinomial``, ``sample_top_k``, ``sample_top_p``);
audiocraft-core re-exports them there. Same semantics, plus an optional ``generator`` so that sampling can be
reproduced without touching the global RNG. Unlike upstream, ``sample_top_k`` / ``sample_top_p`` leave their
``probs`` argument unchanged (upstream rescales it in place); the samples are the same.
"""

from __future__ import annotations

import torch

__all__ = ["multinomial", "sample_top_k", "sample_top_p"]


def multinomial(
    input: torch.Tensor, num_samples: int, replacement: bool = False, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``torch.multinomial`` over the last dimension of a tensor with any number of dimensions.

    Args:
        input: probabilities (or non-negative weights), ``[..., N]``.
        num_samples: number of indices drawn per distribution.
        replacement: draw with replacement.
        generator: random generator (default: the global one).

    Returns:
        Indices ``[..., num_samples]`` (int64).
    """
    flat = input.reshape(-1, input.shape[-1])
    drawn = torch.multinomial(flat, num_samples=num_samples, replacement=replacement, generator=generator)
    return drawn.reshape(*input.shape[:-1], num_samples)


def sample_top_k(probs: torch.Tensor, k: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one index among the ``k`` most probable (ties with the k-th value are kept), renormalised.

    Args:
        probs: probabilities ``[..., N]``.
        k: number of candidates kept (``k >= N`` keeps them all; upstream fails there).
        generator: random generator (default: the global one).

    Returns:
        Indices ``[..., 1]``.
    """
    kth = torch.topk(probs, min(k, probs.shape[-1]), dim=-1).values[..., -1:]
    kept = probs * (probs >= kth).to(probs.dtype)
    kept = kept / kept.sum(dim=-1, keepdim=True)
    return multinomial(kept, num_samples=1, generator=generator)


def sample_top_p(probs: torch.Tensor, p: float, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Nucleus sampling: draw among the most probable indices whose cumulated mass reaches ``p``.

    An index is kept when the mass of the indices more probable than it is at most ``p`` (so the most probable
    one always is).

    Args:
        probs: probabilities ``[..., N]``.
        p: mass threshold in ``(0, 1]``.
        generator: random generator (default: the global one).

    Returns:
        Indices ``[..., 1]``.
    """
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
    kept = sorted_probs * (before <= p).to(probs.dtype)
    kept = kept / kept.sum(dim=-1, keepdim=True)
    drawn = multinomial(kept, num_samples=1, generator=generator)
    return torch.gather(order, -1, drawn)
