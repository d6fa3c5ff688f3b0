"""MusicGenSolver / AudioGenSolver: the training pieces on their own (fast), then the shipped solver=musicgen/debug
and solver=audiogen/debug configs run inside a Dora XP (no `dora` CLI) with a short budget on a small synthetic
example dataset: stages, metrics, samples with their descriptions, the code cache, the export that
MusicGen / AudioGen.get_pretrained load, and the upstream defects the solver does not copy.
"""

import json
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from dora import XP
from dora.conf import DoraConfig
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from audiocraft.data.audio_dataset import AudioMeta
from audiocraft.data.example import generate_example_dataset
from audiocraft.data.music_dataset import MusicInfo
from audiocraft.models import builders as model_builders
from audiocraft.solvers import _lm_training as lmt
from audiocraft.solvers.builders import get_solver

CONFIG_DIR = Path(__file__).resolve().parents[4] / "config"


def _compose(overrides: list[str]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # upstream's configs need Hydra's version_base 1.1 behaviour
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.1"):
            return compose("config", overrides=overrides)


# ---- fast: the training pieces -------------------------------------------------------------------------
def test_cross_entropy_per_codebook_ignores_masked_steps():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 5, 7)
    targets = torch.randint(0, 7, (2, 3, 5))
    mask = torch.rand(2, 3, 5) > 0.3
    mask[:, :, 0] = True
    poisoned = logits.masked_fill(~mask[..., None], float("nan"))  # the LM gives NaN where the mask is False
    ce, per_q = lmt.compute_cross_entropy(poisoned, targets, mask)
    expected = []
    for k in range(3):
        m = mask[:, k]
        log_probs = torch.log_softmax(logits[:, k][m], dim=-1)
        expected.append(-log_probs.gather(1, targets[:, k][m][:, None]).mean())
    assert torch.allclose(torch.stack(per_q), torch.stack(expected), atol=1e-6)
    assert torch.allclose(ce, torch.stack(expected).mean(), atol=1e-6)
    with pytest.raises(ValueError, match="do not agree"):
        lmt.compute_cross_entropy(logits, targets[:, :2], mask)


def test_padding_mask_puts_special_token_on_padded_steps():
    tokens = torch.zeros(2, 4, 10, dtype=torch.long)
    infos = [
        type("I", (), {"n_frames": 16000, "sample_rate": 16000})(),
        type("I", (), {"n_frames": 6400, "sample_rate": 16000})(),
    ]
    out, mask = lmt.padding_mask_from_infos(tokens, infos, frame_rate=10, special_token=99)
    assert mask[0].all() and (out[0] == 0).all()
    assert mask[1, :, :4].all() and not mask[1, :, 4:].any() and (out[1, :, 4:] == 99).all()
    assert (tokens == 0).all()  # the input is left untouched


def test_lm_that_does_not_fit_the_compression_model_names_both_values():
    compression = model_builders.get_debug_compression_model(sample_rate=16000)  # 4 codebooks of 400
    cfg = OmegaConf.create({"transformer_lm": {"n_q": 8, "card": 1024}, "compression_model_checkpoint": "x.th"})
    with pytest.raises(ValueError) as err:
        lmt.check_lm_fits_compression(cfg, compression)
    message = str(err.value)
    assert "transformer_lm.n_q=8" in message and "gives 4 codebooks" in message
    assert "transformer_lm.card=1024" in message and "400 codes" in message
    lmt.check_lm_fits_compression(OmegaConf.create({"transformer_lm": {"n_q": 4, "card": 400}}), compression)


def test_null_compression_checkpoint_builds_the_debug_model_at_the_config_rate():
    cfg = OmegaConf.create({"compression_model_checkpoint": None, "sample_rate": 16000, "channels": 1})
    model = lmt.load_compression_for_lm(cfg, "cpu")
    assert model.sample_rate == 16000 and model.num_codebooks == 4 and model.frame_rate == 25
    assert not any(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="sample_rate=44100"):
        lmt.load_compression_for_lm(
            OmegaConf.create({"compression_model_checkpoint": None, "sample_rate": 44100, "channels": 1}), "cpu"
        )


def test_dropout_generators_state_restores_the_same_draws():
    cfg = _compose(["solver=musicgen/debug", "device=cpu"])
    model = model_builders.get_lm_model(cfg)
    source = lmt.DropoutRNGState(model)
    model.cfg_dropout.draw()
    state = {k: v.clone() for k, v in source.state_dict().items()}
    before = [model.cfg_dropout.draw(), model.att_dropout.draw()]
    source.load_state_dict(state)
    assert [model.cfg_dropout.draw(), model.att_dropout.draw()] == before


def test_attribute_dropout_args_are_options_not_an_attribute_group():
    """Upstream defect: `attribute_dropout.args.active_on_eval` was parsed as one more condition kind."""
    cfg = _compose(
        [
            "solver=musicgen/debug",
            "device=cpu",
            "+attribute_dropout.args.active_on_eval=true",
            "+attribute_dropout.text.description=1.0",
        ]
    )
    model = model_builders.get_lm_model(cfg).eval()
    assert model.att_dropout.active_on_eval and "args" not in model.att_dropout.p
    info = MusicInfo(
        meta=AudioMeta("a.wav", 1.0, 16000),
        seek_time=0.0,
        n_frames=16000,
        total_frames=16000,
        sample_rate=16000,
        channels=1,
        description="calm piano",
    )
    (attributes,) = model.att_dropout([info.to_condition_attributes()])
    assert attributes.text["description"] is None  # dropped in eval mode too


def test_cache_items_round_trip_through_a_weights_only_file(tmp_path):
    info = MusicInfo(
        meta=AudioMeta("x/a.wav", 3.5, 32000, amplitude=0.5),
        seek_time=1.25,
        n_frames=64000,
        total_frames=64000,
        sample_rate=32000,
        channels=1,
        title="T",
        bpm=120.0,
        genre="jazz",
        moods=["calm", "warm"],
        description="a calm jazz tune",
    )
    torch.save([lmt.info_to_plain(info)], tmp_path / "item.pt")
    (plain,) = torch.load(tmp_path / "item.pt", weights_only=True)
    tokens = torch.arange(8).view(4, 2)
    back = lmt.info_from_plain(MusicInfo, plain, tokens)
    assert back.meta == info.meta and back.seek_time == 1.25 and back.description == info.description
    assert back.moods == ["calm", "warm"] and back.audio_tokens is tokens
    assert back.to_condition_attributes().text == info.to_condition_attributes().text


# ---- slow: the debug configs inside a Dora XP ------------------------------------------------------------
@pytest.fixture(scope="module")
def example_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("example")
    generate_example_dataset(root, num_clips=8, min_duration=2.0, max_duration=3.0)
    return root


def _overrides(solver: str, data: Path, extra: list[str] = ()) -> list[str]:
    return (
        [
            f"solver={solver}",
            "device=cpu",
            "optim.epochs=2",
            "optim.updates_per_epoch=6",
            "dataset.valid.num_samples=8",
            "dataset.evaluate.num_samples=4",
        ]
        + [f"datasource.{split}={data / split}" for split in ("train", "valid", "evaluate", "generate")]
        + list(extra)
    )


def _run(dora_dir: Path, overrides: list[str]):
    cfg = _compose(overrides)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(1)
    xp = XP(dora=DoraConfig(dir=dora_dir, exclude=[]), cfg=cfg, argv=overrides, delta=[("argv", overrides)])
    xp.folder.mkdir(parents=True, exist_ok=True)
    with xp.enter():
        solver = get_solver(cfg)
        solver.run()
    return solver


@pytest.fixture(scope="module")
def musicgen_run(tmp_path_factory, example_data):
    return _run(tmp_path_factory.mktemp("dora"), _overrides("musicgen/debug", example_data))


@pytest.mark.slow
def test_musicgen_debug_trains_generates_and_exports(musicgen_run):
    solver = musicgen_run
    folder = Path(solver.folder)
    history = json.loads((folder / "history.json").read_text())
    assert len(history) == 2 and set(history[-1]) == {"train", "valid", "evaluate", "generate"}
    train = history[0]["train"]
    assert {"ce", "ppl", "lr", "grad_norm"} | {f"{m}_q{k}" for m in ("ce", "ppl") for k in range(1, 5)} <= set(train)
    assert train["ppl"] >= np.exp(train["ce"]) * (1 - 1e-6)  # mean of exp(ce) over the steps >= exp(mean ce)
    assert history[-1]["valid"]["ce"] < 0.7 * train["ce"] < 0.7 * np.log(400)  # learns
    assert {"ce", "ppl", "chroma_cosine"} <= set(history[-1]["evaluate"])
    assert history[-1]["generate"]["rtf"] > 0

    state = torch.load(folder / "checkpoint.th", map_location="cpu", weights_only=True)
    assert {"model", "optimizer", "compression_model", "dropout_rng", "best_state"} <= set(state)
    assert state["best_state"]["model"]["emb.0.weight"].dtype == torch.float32  # no fp16 best state on CPU

    samples = sorted((folder / "samples" / "2").glob("*.json"))
    metas = [json.loads(p.read_text()) for p in samples]
    assert len(metas) == 4 and sum(1 for m in metas if m["prompt"]) == 2  # 2 unprompted + 2 prompted
    assert all(m["conditioning"]["description"] and m["generation_args"]["use_sampling"] is False for m in metas)
    assert all(Path(m["path"]).is_file() and m["duration"] == pytest.approx(2.0) for m in metas)
    # named after their generate clip, which the sidecar names with the checkpoint (XP, epoch)
    assert all(Path(m["source"]["path"]).is_file() and m["checkpoint"]["epoch"] == 2 for m in metas)
    assert all(m["id"].startswith(Path(m["source"]["path"]).stem + "_") for m in metas)
    assert len({m["id"] for m in metas}) == 4  # prompted and unprompted samples of one clip differ

    from audiocraft.models import MusicGen

    model = MusicGen.get_pretrained(str(folder / "exported"), device="cpu")
    assert model.sample_rate == 32000 and model.lm.n_q == 4
    lm_state = model.lm.state_dict()
    assert all(torch.equal(lm_state[k], v) for k, v in state["best_state"]["model"].items())
    model.set_generation_params(duration=0.4, use_sampling=False)  # 10 frames of 1280 samples
    wav = model.generate(["a calm folk tune"])
    assert wav.shape == (1, 1, 12800) and torch.isfinite(wav).all()


@pytest.mark.slow
def test_generate_step_reads_remove_prompts(musicgen_run):
    """Upstream defect: `generate.lm.remove_prompts` was never read. Here the continuation alone comes back."""
    solver = musicgen_run
    batch = next(iter(solver.dataloaders["generate"]))
    solver.model.eval()
    full = solver.run_generate_step(batch, gen_duration=2.0, prompt_duration=0.5)
    cut = solver.run_generate_step(batch, gen_duration=2.0, prompt_duration=0.5, remove_prompt=True)
    frame = solver.compression_model.sample_rate // solver.compression_model.frame_rate
    prompt_len = full["prompt_tokens"].shape[-1]  # 0.5 s = 12.5 frames: 13 codes
    assert prompt_len == 13 and full["gen_tokens"].shape[-1] == 50 and cut["gen_tokens"].shape[-1] == 50 - 13
    assert torch.equal(full["gen_tokens"][..., 13:], cut["gen_tokens"])
    assert cut["gen_audio"].shape[-1] == 37 * frame
    with pytest.raises(ValueError, match="shorter"):
        solver.run_generate_step(batch, gen_duration=1.0, prompt_duration=1.0)


@pytest.mark.slow
def test_prompted_samples_only_still_report_rtf(tmp_path, example_data):
    """Upstream defect: with `generate.lm.unprompted_samples=false`, `rtf` was unbound (a NameError)."""
    solver = _run(
        tmp_path,
        _overrides(
            "musicgen/debug",
            example_data,
            [
                "optim.epochs=1",
                "optim.updates_per_epoch=2",
                "generate.lm.unprompted_samples=false",
                "evaluate.metrics.chroma_cosine=false",
                "generate.lm.remove_prompts=true",
            ],
        ),
    )
    history = json.loads((Path(solver.folder) / "history.json").read_text())
    assert history[-1]["generate"]["rtf"] > 0 and "rtf_unprompted" not in history[-1]["generate"]
    metas = [json.loads(p.read_text()) for p in (Path(solver.folder) / "samples" / "1").glob("*.json")]
    assert metas and all(m["prompt"] for m in metas)
    # 2 s = 50 codes, of which the 0.5 s prompt gives 13: 37 codes (1.48 s) are left
    assert all(m["duration"] == pytest.approx(1.48) and m["generation_args"]["remove_prompts"] for m in metas)


@pytest.mark.slow
def test_code_cache_written_then_read_trains_the_same(tmp_path, example_data):
    extra = [
        "optim.epochs=1",
        "optim.updates_per_epoch=3",
        "evaluate.metrics.chroma_cosine=false",
        f"cache.path={tmp_path / 'cache'}",
    ]
    written = _run(tmp_path / "a", _overrides("musicgen/debug", example_data, extra + ["cache.write=true"]))
    assert not (Path(written.folder) / "exported").exists()  # a cache-writing job does not export
    read = _run(tmp_path / "b", _overrides("musicgen/debug", example_data, extra))
    first = json.loads((Path(written.folder) / "history.json").read_text())[0]["train"]
    second = json.loads((Path(read.folder) / "history.json").read_text())[0]["train"]
    assert second["ce"] == pytest.approx(first["ce"], rel=1e-5)  # same codes, conditions and dropout draws
    assert (Path(read.folder) / "exported" / "state_dict.bin").is_file()


@pytest.mark.slow
def test_audiogen_debug_with_compression_built_in_place_exports_for_audiogen(tmp_path, example_data):
    solver = _run(
        tmp_path, _overrides("audiogen/debug", example_data, ["optim.epochs=1", "evaluate.metrics.chroma_cosine=false"])
    )
    from audiocraft.data.sound_dataset import SoundDataset
    from audiocraft.solvers.audiogen import AudioGenSolver
    from audiocraft.utils.utils import get_dataset_from_loader

    assert isinstance(solver, AudioGenSolver)
    assert isinstance(get_dataset_from_loader(solver.dataloaders["train"]), SoundDataset)
    assert solver.cfg.compression_model_checkpoint is None and solver.compression_model.sample_rate == 16000

    from audiocraft.models import AudioGen

    model = AudioGen.get_pretrained(str(Path(solver.folder) / "exported"), device="cpu")
    codec = model.compression_model.state_dict()
    assert all(torch.equal(codec[k], v) for k, v in solver.compression_model.state_dict().items())
    model.set_generation_params(duration=0.4, use_sampling=False)
    assert model.generate(["rain on a roof"]).shape == (1, 1, 6400)


@pytest.mark.parametrize(
    "solver",
    [
        "musicgen/debug",
        "musicgen/musicgen_base_32khz",
        "musicgen/musicgen_melody_32khz",
        "audiogen/debug",
        "audiogen/audiogen_base_16khz",
    ],
)
def test_lm_solver_configs_dataset_keys_are_dataset_arguments(solver):
    """Every key of `dataset` (and its splits) is an argument of the dataset the solver builds, or of its loader."""
    from audiocraft.solvers import builders

    cfg = _compose([f"solver={solver}", "evaluation=objective_eval"])
    kind = builders.DatasetType.SOUND if solver.startswith("audiogen") else builders.DatasetType.MUSIC
    accepted = builders._dataset_arguments(builders._import(builders._DATASETS[kind])) | {"batch_size", "num_workers"}
    dataset = OmegaConf.to_container(cfg.dataset)
    for split in ("train", "valid", "evaluate", "generate"):
        assert set(dataset.pop(split) or {}) <= accepted, split
    assert set(dataset) <= accepted
    assert cfg.evaluate.metrics.fad and cfg.evaluate.metrics.kld and cfg.evaluate.metrics.text_consistency


def test_metric_turned_on_without_its_model_file_names_the_key():
    from types import SimpleNamespace

    from audiocraft.solvers._lm_generation import evaluate_audio_generation

    cfg = _compose(["solver=musicgen/debug", "device=cpu", "evaluate.metrics.kld=true"])
    solver = SimpleNamespace(cfg=cfg, device="cpu", environment=SimpleNamespace(resolve_reference_path=str))
    with pytest.raises(ValueError, match=r"evaluate.metrics.kld=true .* metrics.kld: .*weights_path"):
        evaluate_audio_generation(solver)
    cfg = _compose(["solver=musicgen/debug", "device=cpu", "evaluate.metrics.chroma_cosine=false"])
    assert evaluate_audio_generation(SimpleNamespace(cfg=cfg, device="cpu", environment=solver.environment)) == {}


def test_exported_folder_as_continue_from_is_read_as_a_release_package(tmp_path):
    assert lmt.exported_lm_as_pretrained(None) is None
    assert lmt.exported_lm_as_pretrained("//sig/abcdef12") is None
    (tmp_path / "state_dict.bin").write_bytes(b"")
    assert lmt.exported_lm_as_pretrained(tmp_path) == f"//pretrained/{tmp_path.resolve()}"
    assert lmt.exported_lm_as_pretrained(tmp_path / "state_dict.bin") == f"//pretrained/{tmp_path / 'state_dict.bin'}"
    (tmp_path / "checkpoint.th").write_bytes(b"")  # an XP folder: continue from its training checkpoint instead
    assert lmt.exported_lm_as_pretrained(tmp_path) is None


@pytest.mark.slow
def test_gradient_accumulation_reaches_the_same_update_as_the_full_batch(tmp_path, example_data):
    """2 accumulated micro-batches of 4 give the update of one batch of 8 (no dropout: same items, same loss)."""
    quiet = [
        "optim.epochs=1",
        "optim.updates_per_epoch=2",
        "classifier_free_guidance.training_dropout=0",
        "evaluate.metrics.base=false",
        "evaluate.metrics.chroma_cosine=false",
        "generate.lm.unprompted_samples=false",
        "generate.lm.prompted_samples=false",
    ]
    full = _run(tmp_path / "full", _overrides("musicgen/debug", example_data, quiet))
    accumulated = _run(
        tmp_path / "accum",
        _overrides("musicgen/debug", example_data, quiet + ["dataset.batch_size=4", "optim.grad_accum_steps=2"]),
    )
    for solver in (full, accumulated):  # two updates each (the accumulated run made 4 steps)
        assert all(int(state["step"]) == 2 for state in solver.optimizer.state_dict()["state"].values())
    a, b = full.model.state_dict(), accumulated.model.state_dict()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-5), name
