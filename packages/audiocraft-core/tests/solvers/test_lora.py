"""LoRA mode: only the adapters train, plain weights load into the adapted LM, the merged export loads strictly."""

import contextlib
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from audiocraft.data.conditions import ConditioningAttributes
from audiocraft.models import builders, loaders
from audiocraft.models.export import export_lm
from audiocraft.solvers._lora import apply_lora, has_lora, lora_parameter_counts, merge_lora, merge_lora_state_dict

# A small MusicGen-style LM config (what a solver stores as xp.cfg): 4 codebooks, delay pattern, LUT text condition.
XP_CFG = {
    "solver": "musicgen",
    "device": "cpu",
    "dtype": "float32",
    "lm_model": "transformer_lm",
    "efficient_attention_backend": "torch",
    "transformer_lm": {
        "n_q": 4,
        "card": 64,
        "dim": 32,
        "num_heads": 4,
        "num_layers": 2,
        "custom": True,
        "causal": True,
    },
    "codebooks_pattern": {"modeling": "delay", "delay": {"delays": [0, 1, 2, 3]}},
    "classifier_free_guidance": {"training_dropout": 0.0, "inference_coef": 3.0},
    "attribute_dropout": {},
    "fuser": {"sum": [], "prepend": [], "cross": ["description"], "input_interpolate": []},
    "conditioners": {"description": {"model": "lut", "lut": {"n_bins": 64, "dim": 16, "tokenizer": "noop"}}},
}
LORA = {"use": True, "r": 4, "alpha": 8.0, "dropout": 0.0, "target_modules": ["out_proj", "linear1", "linear2"]}


def _lm(seed: int = 0):
    torch.manual_seed(seed)
    return builders.get_lm_model(OmegaConf.create(XP_CFG))


def _batch(seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 64, (4, 4, 12), generator=gen)
    attrs = [ConditioningAttributes(text={"description": d}) for d in ("rock", "jazz", "rock", "ambient")]
    return codes, attrs


def _adapted_key(key: str, state: dict) -> str:
    """Where the plain model's ``key`` lives in an adapted model's ``state`` (``<layer>.base_layer.<name>``)."""
    layer, _, name = key.rpartition(".")
    return key if key in state else f"{layer}.base_layer.{name}"


def _ce(lm, codes, attrs) -> torch.Tensor:
    out = lm.compute_predictions(codes, attrs)
    mask = out.mask.bool()
    return torch.nn.functional.cross_entropy(out.logits[mask], codes[mask])


def _train(lm, steps: int = 5) -> list[float]:
    params = [p for p in lm.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-2)
    losses = []
    codes, attrs = _batch()
    lm.train()
    for _ in range(steps):
        loss = _ce(lm, codes, attrs)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    lm.eval()
    return losses


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow  # the first test to import peft (which imports transformers): ~10-25 s here
def test_only_the_adapters_train_and_the_base_stays_frozen():
    lm = _lm()
    plain_state = {k: v.clone() for k, v in lm.state_dict().items()}
    _, total = lora_parameter_counts(lm)
    assert apply_lora(lm, {**LORA, "use": False}) is lm and not has_lora(lm)
    assert apply_lora(lm, LORA) is lm and has_lora(lm) and type(lm).__name__ == "LMModel"
    trainable, total_after = lora_parameter_counts(lm)
    names = [n for n, p in lm.named_parameters() if p.requires_grad]
    assert names and all(".lora_A." in n or ".lora_B." in n for n in names)
    assert len(names) == 2 * 8  # 2 layers x (self out_proj, cross out_proj, linear1, linear2) x (A, B)
    assert trainable == total_after - total and trainable < total / 5
    losses = _train(lm)
    assert losses[-1] < losses[0]
    state = lm.state_dict()
    for key, value in plain_state.items():  # every base weight unchanged, bit for bit
        assert torch.equal(state[_adapted_key(key, state)], value), key
    # Every adapter moved (B starts at 0), the attention output projections' too: their forward must run.
    moved = {k: bool(state[k].abs().sum() > 0) for k in state if ".lora_B." in k}
    assert len(moved) == 2 * 4 and all(moved.values()), moved


def test_merged_export_loads_strictly_as_a_plain_lm_with_the_adapted_logits(tmp_path):
    lm = apply_lora(_lm(), LORA)
    _train(lm)
    codes, attrs = _batch(seed=2)
    with torch.no_grad():
        adapted = lm.compute_predictions(codes, attrs).logits
        tokens = lm.generate(None, attrs, max_gen_len=8, use_sampling=False)  # streaming through the adapters
    merged_state = merge_lora_state_dict(lm.state_dict(), LORA)
    plain = _lm(seed=3)
    assert merged_state.keys() == plain.state_dict().keys()
    plain.load_state_dict(merged_state, strict=True)
    plain.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            plain.compute_predictions(codes, attrs).logits, adapted, rtol=1e-5, atol=1e-5, equal_nan=True
        )

    # The release export of a training checkpoint holding the merged best state, loaded by the release loader.
    checkpoint = tmp_path / "checkpoint.th"
    torch.save(
        {"xp.cfg": OmegaConf.to_yaml(OmegaConf.create(XP_CFG)), "best_state": {"model": merged_state}}, checkpoint
    )
    out = export_lm(checkpoint, tmp_path / "release" / "state_dict.bin")
    released = loaders.load_lm_model(out.parent)  # strict: missing and unexpected keys are errors
    with torch.no_grad():
        torch.testing.assert_close(
            released.compute_predictions(codes, attrs).logits, adapted, rtol=1e-5, atol=1e-5, equal_nan=True
        )
        assert torch.equal(released.generate(None, attrs, max_gen_len=8, use_sampling=False), tokens)

    # peft's own merge of the live model gives the same plain model.
    merge_lora(lm)
    assert not has_lora(lm) and lm.state_dict().keys() == plain.state_dict().keys()
    assert all(p.requires_grad for p in lm.parameters())
    for key, value in lm.state_dict().items():
        torch.testing.assert_close(value, merged_state[key], rtol=1e-6, atol=1e-6)


def test_unmerged_lora_state_does_not_load_into_a_plain_lm():
    lm = apply_lora(_lm(), LORA)
    with pytest.raises(RuntimeError, match="base_layer"):
        _lm().load_state_dict(lm.state_dict(), strict=True)


def test_a_plain_state_dict_loads_into_the_adapted_lm_with_zero_update():
    # continue_from a pretrained (plain) model: its best state is loaded after build_model applied LoRA.
    pretrained = _lm(seed=5)
    lm = apply_lora(_lm(seed=6), LORA)
    lm.load_state_dict(pretrained.state_dict(), strict=True)
    codes, attrs = _batch()
    with torch.no_grad():
        torch.testing.assert_close(
            lm.eval().compute_predictions(codes, attrs).logits,
            pretrained.eval().compute_predictions(codes, attrs).logits,
            equal_nan=True,
        )
    # and the adapted model's own state (a resumed LoRA run) round-trips
    _train(lm, steps=2)
    again = apply_lora(_lm(seed=7), LORA)
    again.load_state_dict(lm.state_dict(), strict=True)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in lm.state_dict().items())


def test_bad_lora_sections_and_missing_peft(monkeypatch):
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['rank'\] in config section 'lora'"):
        apply_lora(_lm(), {"use": True, "rank": 4})
    with pytest.raises(ValueError, match="lora.r must be a positive integer"):
        apply_lora(_lm(), {"use": True, "r": 0})
    with pytest.raises(ValueError, match=r"matches no nn.Linear of the model; its linear layers are named .*linear1"):
        apply_lora(_lm(), {"use": True, "target_modules": ["q_proj"]})
    lm = apply_lora(_lm(), LORA)
    with pytest.raises(ValueError, match="already holds LoRA adapters"):
        apply_lora(lm, LORA)
    with pytest.raises(KeyError, match="lora_B"):
        merge_lora_state_dict({k: v for k, v in lm.state_dict().items() if ".lora_B." not in k}, LORA)
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(ImportError, match=r"pip install 'audiocraft-core\[lora\]'"):
        apply_lora(_lm(), LORA)
    assert apply_lora(_lm(), None) is not None  # no section: LoRA off, peft not needed


# ---- slow: solver=musicgen/debug with lora.use=true, fine-tuning an exported LM ------------------------------
def _dora_run(dora_dir, overrides: list[str]):
    """Run the solver of ``overrides`` inside a Dora XP (as `dora run` does, without the CLI)."""
    from dora import XP
    from dora.conf import DoraConfig

    from audiocraft.solvers.builders import get_solver

    with initialize_dir_cfg(overrides) as cfg:  # upstream's configs need Hydra's version_base 1.1 behaviour
        pass
    torch.manual_seed(cfg.seed)
    xp = XP(dora=DoraConfig(dir=dora_dir, exclude=[]), cfg=cfg, argv=overrides, delta=[("argv", overrides)])
    xp.folder.mkdir(parents=True, exist_ok=True)
    with xp.enter():
        solver = get_solver(cfg)
        solver.run()
    return cfg, solver


CONFIG_DIR = Path(__file__).resolve().parents[4] / "config"


@contextlib.contextmanager
def initialize_dir_cfg(overrides: list[str]):
    import warnings

    from hydra import compose, initialize_config_dir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.1"):
            yield compose("config", overrides=overrides)


@pytest.mark.slow
def test_musicgen_debug_lora_fine_tune_of_an_exported_lm_trains_adapters_and_exports_merged(tmp_path, caplog):
    from audiocraft.data.example import generate_example_dataset
    from audiocraft.models import MusicGen

    data = tmp_path / "example"
    generate_example_dataset(data, num_clips=6, min_duration=2.0, max_duration=3.0)
    overrides = [
        "solver=musicgen/debug",
        "device=cpu",
        "optim.epochs=1",
        "optim.updates_per_epoch=4",
        "dataset.valid.num_samples=4",
        "dataset.evaluate.num_samples=2",
        "evaluate.metrics.chroma_cosine=false",
        "generate.every=1000",
    ] + [f"datasource.{split}={data / split}" for split in ("train", "valid", "evaluate", "generate")]
    # The "pretrained" model: a debug-config LM exported as a release folder (what a finished run leaves).
    with initialize_dir_cfg(overrides) as cfg:
        torch.manual_seed(123)
        pretrained = builders.get_lm_model(cfg)
        checkpoint = tmp_path / "pretrained.th"
        torch.save({"xp.cfg": OmegaConf.to_yaml(cfg), "best_state": {"model": pretrained.state_dict()}}, checkpoint)
        export_lm(checkpoint, tmp_path / "pretrained" / "state_dict.bin")
    pretrained_state = pretrained.state_dict()

    caplog.set_level("INFO")
    cfg, solver = _dora_run(
        tmp_path / "dora",
        overrides
        + [
            f"continue_from=//pretrained/{tmp_path / 'pretrained'}",
            "lora.use=true",
            "lora.r=4",
            "lora.alpha=8",
            "optim.lr=1e-2",
        ],
    )
    trainable, total = lora_parameter_counts(solver.model)
    assert 0 < trainable < total / 10
    assert any(
        "LoRA (r=4, alpha=8, dropout=0) on 8 layers" in r.message and f"training {trainable} of {total}" in r.message
        for r in caplog.records
    )
    folder = Path(solver.folder)
    state = torch.load(folder / "checkpoint.th", map_location="cpu", weights_only=True)
    best = state["best_state"]["model"]
    for key, value in pretrained_state.items():  # the frozen base is the pretrained model, bit for bit
        assert torch.equal(best[_adapted_key(key, best)], value), key
    assert any(best[k].abs().sum() > 0 for k in best if ".lora_B." in k)

    merged = merge_lora_state_dict(best, cfg.lora)
    model = MusicGen.get_pretrained(str(folder / "exported"), device="cpu")  # a plain LMModel, loaded strictly
    lm_state = model.lm.state_dict()
    assert lm_state.keys() == pretrained_state.keys()
    assert all(torch.equal(lm_state[k], v) for k, v in merged.items())
    assert any(not torch.equal(lm_state[k], pretrained_state[k]) for k in lm_state)  # the fine-tune changed it
    assert not list(folder.glob(".lora_merged*"))  # the temporary merged checkpoint is gone
    model.set_generation_params(duration=0.4, use_sampling=False)
    assert torch.isfinite(model.generate(["a calm folk tune"])).all()


def test_non_custom_attention_loads_upstream_keys_and_merges():
    cfg = {**XP_CFG, "transformer_lm": {**XP_CFG["transformer_lm"], "custom": False}}
    torch.manual_seed(0)
    pretrained = builders.get_lm_model(OmegaConf.create(cfg))
    # upstream's layout of nn.MultiheadAttention weights: one level up (`self_attn.out_proj.weight`, no `mha.`)
    upstream_state = {k.replace(".mha.", "."): v for k, v in pretrained.state_dict().items()}
    lm = apply_lora(builders.get_lm_model(OmegaConf.create(cfg)), LORA)
    assert any(n.endswith("self_attn.mha.out_proj.lora_A.default.weight") for n, _ in lm.named_parameters())
    lm.load_state_dict(upstream_state, strict=True)
    _train(lm, steps=2)
    codes, attrs = _batch()
    plain = builders.get_lm_model(OmegaConf.create(cfg))
    plain.load_state_dict(merge_lora_state_dict(lm.state_dict(), LORA), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(
            plain.eval().compute_predictions(codes, attrs).logits,
            lm.compute_predictions(codes, attrs).logits,
            equal_nan=True,
            rtol=1e-5,
            atol=1e-5,
        )
    base = lm.state_dict()
    assert all(torch.equal(base[_adapted_key(k, base)], v) for k, v in pretrained.state_dict().items())
