"""GLU activations: a * f(b) on the two halves of the input."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from audiocraft.modules.activations import CustomGLU, GeGLU, ReGLU, SwiGLU, get_activation_fn


def test_custom_glu_gates_the_first_half_with_the_second():
    x = torch.cat([torch.full((4, 8, 8), 2.0), torch.full((4, 8, 8), -1.0)], dim=-1)
    out = CustomGLU(nn.Identity())(x)
    assert out.shape == (4, 8, 8) and torch.all(out == -2)
    with pytest.raises(ValueError, match="even"):
        CustomGLU(nn.Identity())(torch.randn(2, 5))
    assert CustomGLU(nn.Identity(), dim=1)(torch.randn(3, 4, 5)).shape == (3, 2, 5)


@pytest.mark.parametrize(
    "name, cls, gate", [("swiglu", SwiGLU, F.silu), ("geglu", GeGLU, F.gelu), ("reglu", ReGLU, F.relu)]
)
def test_named_glus(name, cls, gate):
    act = get_activation_fn(name)
    assert isinstance(act, cls)
    x = torch.randn(3, 10)
    torch.testing.assert_close(act(x), x[:, :5] * gate(x[:, 5:]))


def test_other_activations_pass_through():
    assert get_activation_fn("gelu") == "gelu"
    assert get_activation_fn(F.relu) is F.relu
