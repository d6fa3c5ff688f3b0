"""Model cards of exported models (audiocraft.models.model_card) and hub repo ids (audiocraft.models.hub)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from audiocraft.models import builders
from audiocraft.models.hub import check_repo_id
from audiocraft.models.model_card import build_model_card


def _front_matter(card: str) -> dict:
    return OmegaConf.to_container(OmegaConf.create(card.split("---\n")[1]))  # type: ignore[return-value]


def _rows(card: str, section: str) -> list[list[str]]:
    text = card.split(f"## {section}\n")[1].split("\n## ")[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines() if line.startswith("| ")][2:]


def test_encodec_card_front_matter_architecture_metrics_datasets() -> None:
    model = builders.get_debug_compression_model(sample_rate=16000)
    cfg = OmegaConf.create(
        {
            "solver": "compression",
            "sample_rate": 16000,
            "optim": {"lr": 3e-4, "epochs": 2},
            "datasource": {"max_sample_rate": 16000, "train": "egs/a/train", "valid": "egs/a/valid"},
            "dataset": {"batch_size": "${optim.epochs}"},  # interpolations are resolved
        }
    )
    metrics = {"valid (epoch 2)": {"sisnr": 5.123456789, "mel": 1.5}}
    card = build_model_card(cfg, model, metrics=metrics, signature="1a2b3c4d", repo_id="me/enc")
    assert _front_matter(card) == {
        "library_name": "audiocraft",
        "license": "mit",
        "tags": ["audiocraft", "encodec", "audio-compression"],
        "pipeline_tag": "audio-to-audio",
    }
    arch = dict(_rows(card, "Architecture"))
    assert arch["sample rate"] == "16000" and arch["channels"] == "1" and arch["frame rate"] == "25"
    assert arch["num codebooks"] == str(model.num_codebooks) == "4" and arch["cardinality"] == "400"
    assert arch["parameters"] == str(sum(p.numel() for p in model.parameters()))
    config = dict(_rows(card, "Training configuration"))
    assert config == {
        "XP signature": "1a2b3c4d",
        "solver": "compression",
        "sample_rate": "16000",
        "optim.lr": "0.0003",
        "optim.epochs": "2",
        "dataset.batch_size": "2",
    }
    assert _rows(card, "Metrics") == [["valid (epoch 2)", "sisnr", "5.12346"], ["valid (epoch 2)", "mel", "1.5"]]
    assert "- train: `egs/a/train`\n- valid: `egs/a/valid`\n" in card and "max_sample_rate" not in card
    assert 'CompressionModel.get_pretrained("me/enc")' in card


def test_card_without_metrics_or_datasets_says_so() -> None:
    card = build_model_card(OmegaConf.create({"solver": "compression"}), builders.get_debug_compression_model())
    assert "No metrics were recorded." in card and "No dataset manifests in the config." in card


def test_lm_card_describes_the_lm_and_weights_derived_from_meta_keep_their_license() -> None:
    lm = builders.get_debug_lm_model()
    cfg = OmegaConf.create(
        {
            "solver": "musicgen",
            "continue_from": "facebook/musicgen-small",
            "transformer_lm": {"dim": 16, "num_layers": 2},
            "conditioners": {"description": {"model": "lut"}},
        }
    )
    card = build_model_card(cfg, builders.get_debug_compression_model(), lm, repo_id="me/mg")
    front = _front_matter(card)
    assert front["license"] == "cc-by-nc-4.0" and front["pipeline_tag"] == "text-to-audio"
    assert "musicgen" in front["tags"]
    arch = dict(_rows(card, "Architecture"))
    assert arch["kind"] == "MusicGen" and arch["LM dim"] == "16" and arch["LM layers"] == "2"
    assert arch["LM n_q"] == "4" and arch["LM card"] == "400" and arch["conditioners"] == "description (lut)"
    assert "derive from weights released by Meta" in card and 'MusicGen.get_pretrained("me/mg")' in card
    explicit = build_model_card(cfg, builders.get_debug_compression_model(), lm, license="apache-2.0")
    assert _front_matter(explicit)["license"] == "apache-2.0" and "derive from weights released by Meta" in explicit


@pytest.mark.parametrize("repo_id", ["me/enc", "My-Org/encodec_32khz.v2", "a/b"])
def test_valid_repo_ids(repo_id: str) -> None:
    assert check_repo_id(repo_id) == repo_id


@pytest.mark.parametrize("repo_id", ["enc", "me/", "/enc", "a/b/c", "me/bad name", "me/-x", "me/x.", "me/x..y", ""])
def test_malformed_repo_ids_are_named(repo_id: str) -> None:
    with pytest.raises(ValueError, match="is not a Hugging Face repo id: expected owner/name"):
        check_repo_id(repo_id)


def test_audiogen_card_is_text_to_audio_and_loads_with_audiogen() -> None:
    cfg = OmegaConf.create({"solver": "audiogen", "datasource": {"train": "egs/sounds/train"}})
    card = build_model_card(
        cfg, builders.get_debug_compression_model(sample_rate=16000), builders.get_debug_lm_model(), repo_id="a/b"
    )
    front = _front_matter(card)
    assert front["pipeline_tag"] == "text-to-audio" and "audiogen" in front["tags"] and front["license"] == "mit"
    assert 'from audiocraft.models import AudioGen\nmodel = AudioGen.get_pretrained("a/b")' in card
    assert dict(_rows(card, "Architecture"))["kind"] == "AudioGen" and "- train: `egs/sounds/train`" in card
