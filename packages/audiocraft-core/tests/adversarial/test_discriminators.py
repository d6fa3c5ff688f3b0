"""Discriminators: output shapes, feature maps and upstream state-dict key names."""

import pytest
import torch

from audiocraft.adversarial import MultiPeriodDiscriminator, MultiScaleDiscriminator, MultiScaleSTFTDiscriminator


@pytest.fixture(autouse=True)
def _threads():
    torch.manual_seed(0)


def test_msstftd_shapes_and_keys():
    disc = MultiScaleSTFTDiscriminator(filters=4, n_ffts=[256, 128], hop_lengths=[64, 32], win_lengths=[256, 128])
    x = torch.randn(2, 1, 4000)
    logits, fmaps = disc(x)
    assert disc.num_discriminators == 2 and len(logits) == 2 and len(fmaps) == 2
    # frames = (T - n_fft) // hop + 1 (no centering); freqs = n_fft // 2 + 1 halved 3 times by the stride (1, 2).
    assert logits[0].shape == (2, 1, (4000 - 256) // 64 + 1, 17)
    assert logits[1].shape == (2, 1, (4000 - 128) // 32 + 1, 9)
    assert len(fmaps[0]) == 5 and fmaps[0][0].shape[1] == 4
    keys = set(disc.state_dict())
    assert {
        "discriminators.0.spec_transform.window",
        "discriminators.0.convs.0.conv.weight",
        "discriminators.0.convs.1.conv.weight_g",
        "discriminators.0.convs.1.conv.weight_v",
        "discriminators.1.conv_post.conv.weight_v",
    } <= keys
    # The first convolution has no normalisation, as upstream.
    assert "discriminators.0.convs.0.conv.weight_g" not in keys


def test_msd_shapes_downsampling_and_keys():
    disc = MultiScaleDiscriminator(
        filters=4,
        max_filters=32,
        downsample_scales=[4, 4],
        groups=[1, 4],
        scale_norms=["spectral_norm", "weight_norm", "weight_norm"],
    )
    x = torch.randn(2, 1, 1024)
    logits, fmaps = disc(x)
    assert [tuple(lg.shape) for lg in logits] == [(2, 1, 64), (2, 1, 33), (2, 1, 17)]  # each scale pooled by 2
    assert len(fmaps[0]) == 5 and fmaps[0][-1] is logits[0]
    keys = set(disc.state_dict())
    assert "discriminators.1.convs.0.1.conv.weight_g" in keys  # ReflectionPad1d + conv in a Sequential
    assert any(k.startswith("discriminators.0.convs.0.1.conv.weight_") for k in keys)


def test_mpd_shapes_and_keys():
    disc = MultiPeriodDiscriminator(periods=[2, 3], n_layers=3, filters=2, max_filters=16)
    x = torch.randn(1, 1, 301)
    logits, fmaps = disc(x)
    # period 2: 301 padded to 302 -> [151, 2]; time strides 3, 3, 1 with kernel 5 padding 2.
    assert logits[0].shape == (1, 1, 17, 2)
    assert logits[1].shape == (1, 1, 12, 3)
    assert [f.shape[1] for f in fmaps[0]] == [8, 16, 16, 1]
    assert "discriminators.1.convs.2.conv.weight_g" in disc.state_dict()
