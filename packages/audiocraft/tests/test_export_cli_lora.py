"""``audiocraft-export`` of a LoRA run's checkpoint writes a plain LM with the adapters merged (no peft needed)."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from audiocraft.export_cli import main
from audiocraft.models import builders, loaders
from audiocraft.utils.checkpoint import save_checkpoint

XP_CFG = {
    "solver": "musicgen",
    "device": "cpu",
    "dtype": "float32",
    "lm_model": "transformer_lm",
    "efficient_attention_backend": "torch",
    "transformer_lm": {
        "n_q": 2,
        "card": 32,
        "dim": 16,
        "num_heads": 2,
        "num_layers": 1,
        "custom": True,
        "causal": True,
    },
    "codebooks_pattern": {"modeling": "delay", "delay": {"delays": [0, 1]}},
    "classifier_free_guidance": {"training_dropout": 0.0, "inference_coef": 3.0},
    "attribute_dropout": {},
    "fuser": {"sum": [], "prepend": [], "cross": ["description"], "input_interpolate": []},
    "conditioners": {"description": {"model": "lut", "lut": {"n_bins": 16, "dim": 8, "tokenizer": "noop"}}},
    "lora": {"use": True, "r": 2, "alpha": 6.0, "dropout": 0.0, "target_modules": ["out_proj", "linear1", "linear2"]},
}


def test_export_of_a_lora_checkpoint_merges_the_adapters(tmp_path, capsys):
    torch.manual_seed(0)
    plain = builders.get_lm_model(OmegaConf.create(XP_CFG)).state_dict()
    # The best state of a LoRA run, as peft names it: base weights under base_layer, adapters A [r, in], B [out, r].
    lora_state, expected = {}, {}
    for key, value in plain.items():
        layer, _, name = key.rpartition(".")
        if layer.rpartition(".")[2] in ("out_proj", "linear1", "linear2") and name == "weight":
            a, b = torch.randn(2, value.shape[1]), torch.randn(value.shape[0], 2)
            lora_state.update(
                {
                    f"{layer}.base_layer.weight": value,
                    f"{layer}.lora_A.default.weight": a,
                    f"{layer}.lora_B.default.weight": b,
                }
            )
            expected[key] = value + 3.0 * b @ a  # alpha / r = 3
        else:
            lora_state[key] = expected[key] = value
    assert len(lora_state) == len(plain) + 2 * 4  # 4 adapted layers
    checkpoint = tmp_path / "xps" / "1a2b3c4d" / "checkpoint.th"
    save_checkpoint(
        {"best_state": {"model": lora_state}, "xp.cfg": OmegaConf.to_yaml(OmegaConf.create(XP_CFG))}, checkpoint
    )
    out = tmp_path / "release" / "state_dict.bin"
    assert main([str(checkpoint), str(out)]) == 0, capsys.readouterr().err
    assert f"Exported {checkpoint} to {out}" in capsys.readouterr().out
    state = loaders.load_lm_model(out.parent).state_dict()  # strict load into a plain LMModel
    assert state.keys() == plain.keys()
    for key, value in expected.items():
        torch.testing.assert_close(state[key], value, rtol=1e-6, atol=1e-6)
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["checkpoint.th"]  # temporary copy removed
