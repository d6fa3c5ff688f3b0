"""CLAPEmbeddingConditioner on a tiny transformers ClapModel saved by the test (embeddings, windows, CFG nulls) and on
a tiny laion-clap checkpoint (upstream's kind of file), whose embeddings must be laion-clap's."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

transformers = pytest.importorskip("transformers")

from audiocraft.conditioners import (  # noqa: E402
    CLAPEmbeddingConditioner,
    ClassifierFreeGuidanceDropout,
    ConditioningAttributes,
    ConditioningProvider,
    JointEmbedCondition,
)
from audiocraft.data.laion_clap import ClapArchitecture  # noqa: E402

from .conftest import CLAP_SR as SR  # noqa: E402


class Halve(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("factor", torch.tensor(0.5))

    def forward(self, x: torch.Tensor, frame_rate: int) -> SimpleNamespace:
        return SimpleNamespace(x=x * self.factor)


def _conditioner(folder: Path, **kwargs: object) -> CLAPEmbeddingConditioner:
    args: dict = dict(
        dim=8,
        output_dim=6,
        device="cpu",
        attribute="description",
        quantize=False,
        n_q=2,
        bins=16,
        checkpoint=str(folder),
        model_arch="HTSAT-base",
        enable_fusion=False,
        sample_rate=SR,
        max_audio_length=1,
        audio_stride=1,
        normalize=True,
        text_p=0.0,
    )
    args.update(kwargs)
    return CLAPEmbeddingConditioner(**args)


def _noise(seconds: float, seed: int) -> torch.Tensor:
    return torch.randn(1, 1, int(seconds * SR), generator=torch.Generator().manual_seed(seed)) * 0.1


def _direct(folder: Path) -> tuple:
    model = transformers.ClapModel.from_pretrained(folder).eval()
    return model, transformers.ClapProcessor.from_pretrained(folder)


def test_text_embeddings_equal_transformers(tiny_clap: Path) -> None:
    cond = _conditioner(tiny_clap).eval()
    x = JointEmbedCondition(
        torch.zeros(2, 1, 1), ["calm piano", None], torch.zeros(2), [SR, SR], [None, None], [None, None]
    )
    with torch.no_grad():
        out, mask = cond(cond.tokenize(x))
    model, processor = _direct(tiny_clap)
    tokens = processor.tokenizer(
        ["calm piano"], padding="max_length", truncation=True, max_length=77, return_tensors="pt"
    )
    with torch.no_grad():
        embed = F.normalize(model.get_text_features(**tokens).pooler_output, dim=-1)
    assert out.shape == (2, 1, 6) and mask.tolist() == [[1.0], [0.0]]
    torch.testing.assert_close(out[0, 0], cond.output_proj(embed[0]), rtol=0, atol=1e-6)
    assert torch.count_nonzero(out[1]) == 0
    assert sorted(cond.state_dict()) == ["output_proj.bias", "output_proj.weight"]  # CLAP is frozen, outside


def test_audio_windows_are_averaged_in_training(tiny_clap: Path) -> None:
    cond = _conditioner(tiny_clap, batch_size=2).train()
    wav = _noise(2.5, seed=1)  # windows at 0 s and 1 s (1 s long, 1 s stride)
    x = JointEmbedCondition(wav, ["ignored"], torch.tensor([wav.shape[-1]]), [SR], [None], [None])
    with torch.no_grad():
        embed, empty = cond._get_embed(x)
    model, processor = _direct(tiny_clap)
    windows = [wav[0, 0, :SR].numpy(), wav[0, 0, SR : 2 * SR].numpy()]
    with torch.no_grad():
        feats = model.get_audio_features(
            **processor.feature_extractor(windows, sampling_rate=SR, return_tensors="pt")
        ).pooler_output
    expected = F.normalize(F.normalize(feats, dim=-1).mean(0), dim=-1)
    torch.testing.assert_close(embed[0, 0], expected, rtol=0, atol=1e-6)
    assert empty.tolist() == []


def test_cfg_dropout_gives_masked_zeros_on_the_audio_path(tiny_clap: Path) -> None:
    cond = _conditioner(tiny_clap, quantize=True, quantizer=Halve())
    provider = ConditioningProvider({"description": cond}).train()
    wav = _noise(1.0, seed=2)
    items = [
        ConditioningAttributes(
            joint_embed={
                "description": JointEmbedCondition(
                    wav, ["calm piano"], torch.tensor([wav.shape[-1]]), [SR], [None], [None]
                )
            }
        )
    ]
    with torch.no_grad():
        kept, kept_mask = provider(provider.tokenize(items))["description"]
        dropped_items = ClassifierFreeGuidanceDropout(p=1.0).train()(items)
        dropped, dropped_mask = provider(provider.tokenize(dropped_items))["description"]
    assert kept_mask.tolist() == [[1.0]] and kept.abs().sum() > 0
    assert dropped_mask.tolist() == [[0.0]] and torch.count_nonzero(dropped) == 0
    assert "conditioners.description.quantizer.factor" in provider.state_dict()


def test_bad_checkpoints(tiny_clap: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dim=4"):
        _conditioner(tiny_clap, dim=4)
    with pytest.raises(ValueError, match="48000"):
        _conditioner(tiny_clap, sample_rate=48000)
    laion = tmp_path / "music_audioset_epoch_15_esc_90.14.pt"
    laion.write_bytes(b"")  # a laion-clap file is read (see the tests below): this one is not a checkpoint
    with pytest.raises(ValueError, match="could not load CLAP weights from .*music_audioset_epoch_15_esc_90.14.pt"):
        _conditioner(laion, model_arch=TOY, tokenizer_path=LAION / "tokenizer")
    with pytest.raises(FileNotFoundError, match="CLAP weights not found: .*missing.pt"):
        _conditioner(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        _conditioner("laion/larger_clap_music")


# ---- upstream's laion-clap checkpoint files ---------------------------------------------------------------------
# tests/fixtures/clap_original (a copy of audiocraft-metrics' CLAP parity fixture, see the fixtures README): a tiny
# original laion-clap model in the layout of laion's published checkpoints, and the embeddings laion-clap 1.1.7 gives.
LAION = Path(__file__).resolve().parent.parent / "fixtures" / "clap_original"
TOY = ClapArchitecture(
    hop_size=2400, spec_size=64, embed_dim=8, depths=(2, 2, 2), num_heads=(1, 2, 4), window_size=4, text_heads=2
)  # the sizes the fixture's laion model was made with


@pytest.fixture(scope="module")
def laion_outputs() -> dict:
    return torch.load(LAION / "outputs.pt", weights_only=True)


def _laion_conditioner(**kwargs: object) -> CLAPEmbeddingConditioner:
    args: dict = dict(
        dim=16,
        sample_rate=48000,
        max_audio_length=10,
        model_arch=TOY,
        checkpoint=str(LAION / "clap_toy.pt"),
        tokenizer_path=str(LAION / "tokenizer"),
    )
    args.update(kwargs)
    return _conditioner(LAION, **args)


def _joint(wav: torch.Tensor, texts: list) -> JointEmbedCondition:
    n = wav.shape[0]
    return JointEmbedCondition(wav, texts, torch.full((n,), wav.shape[-1]), [48000] * n, [None] * n, [None] * n)


def test_laion_checkpoint_gives_laion_clap_embeddings(laion_outputs: dict) -> None:
    """The same embeddings as laion-clap (and as audiocraft-metrics' ClapModel on the same file), within 1e-4."""
    cond = _laion_conditioner().train()
    short = laion_outputs["short_audio"][:, None]  # 1.5 s: one window, repeated then padded to 10 s as laion does
    full = laion_outputs["full_pattern"].repeat(1, 100)[:, None]  # exactly one 10 s window
    with torch.no_grad():
        short_embed, empty = cond._get_embed(_joint(short, ["x", "y"]))
        stereo_embed, _ = cond._get_embed(_joint(short.repeat(1, 2, 1), ["x", "y"]))
        full_embed, _ = cond._get_embed(_joint(full, ["x"]))
        text_embed, _ = cond.eval()._get_embed(_joint(torch.zeros(2, 1, 1), laion_outputs["texts"]))
        out, mask = cond(_joint(torch.zeros(2, 1, 1), laion_outputs["texts"]))
    assert short_embed.shape == (2, 1, 16) and empty.tolist() == []
    assert (short_embed[:, 0] - laion_outputs["short_embedding"]).abs().max() < 1e-4
    assert (stereo_embed[:, 0] - laion_outputs["short_embedding"]).abs().max() < 1e-4  # downmixed
    assert (full_embed[:, 0] - laion_outputs["full_embedding"]).abs().max() < 1e-4
    assert (text_embed[:, 0] - laion_outputs["text_embedding"]).abs().max() < 1e-4
    torch.testing.assert_close(out, cond.output_proj(text_embed), rtol=0, atol=1e-6)
    assert mask.tolist() == [[1.0], [1.0]]
    assert not torch.allclose(short_embed[0], short_embed[1], atol=1e-2)  # the fixture tells inputs apart
    assert sorted(cond.state_dict()) == ["output_proj.bias", "output_proj.weight"]  # CLAP is frozen, outside


def test_laion_checkpoint_long_audio_windows_are_averaged(laion_outputs: dict) -> None:
    cond = _laion_conditioner(max_audio_length=1, audio_stride=1, batch_size=2).train()
    wav = laion_outputs["short_audio"][:1, None]  # 1.5 s: a 1 s window at 0 s only (1 s stride)
    long = torch.cat([wav, wav], dim=-1)  # 3 s: windows at 0, 1 and 2 s
    with torch.no_grad():
        embed, _ = cond._get_embed(_joint(long, ["x"]))
        windows = [cond._get_embed(_joint(long[..., s * 48000 : (s + 1) * 48000], ["x"]))[0] for s in range(3)]
    expected = F.normalize(torch.cat(windows).mean(0), dim=-1)
    torch.testing.assert_close(embed[0], expected, rtol=0, atol=1e-6)


def test_laion_checkpoint_is_checked_against_the_arguments() -> None:
    with pytest.raises(ValueError, match="dim=8 but .*clap_toy.pt embeds into 16"):
        _laion_conditioner(dim=8)
    with pytest.raises(ValueError, match="sample_rate=32000 but .*clap_toy.pt expects 48000 Hz"):
        _laion_conditioner(sample_rate=32000)
    with pytest.raises(ValueError, match="enable_fusion=True"):
        _laion_conditioner(enable_fusion=True)
    with pytest.raises(ValueError, match="clap_toy.pt does not fit CLAP"):
        _laion_conditioner(model_arch="HTSAT-base")  # upstream's name: the real checkpoint's sizes, not the toy's
    with pytest.raises(ValueError, match="model_arch='PANN-14'"):
        _laion_conditioner(model_arch="PANN-14")
    with pytest.raises(FileNotFoundError, match="RoBERTa tokenizer not found in"):
        _laion_conditioner(tokenizer_path=str(LAION))
