"""What each part of a MusicGenSolver / AudioGenSolver train step does, on the shipped solver=musicgen/debug
(xsmall LM over the 4 x 400 codes of the debug compression model) with 0.4 s segments, one or a few steps at a time.

Each test fails on a seeded defect of the step (see docs/DEVELOPMENT.md, "Mutation testing"): clipping skipped,
no accumulation, the grad scaler or autocast not applied, the cross-entropy reading padded or pattern-invalid
steps, dropouts not applied or not drawn from their seeded generators, the compression model trained, cached
codes read differently from computed ones, the EMA or the best state not what evaluate / export use.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from step_probes import OptimizerProbe, changed, grad_by_name, in_stage, snapshot, solver_in_xp  # noqa: E402

from audiocraft.data.example import generate_example_dataset  # noqa: E402
from audiocraft.solvers import _lm_training, musicgen  # noqa: E402
from audiocraft.solvers.audiogen import AudioGenSolver  # noqa: E402
from audiocraft.solvers.musicgen import MusicGenSolver  # noqa: E402
from audiocraft.utils.cache import CachedBatchLoader  # noqa: E402

FRAMES = 10  # 0.4 s at 25 frames/s


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("example")
    generate_example_dataset(root, num_clips=4, min_duration=1.0, max_duration=1.5)
    return root


def _overrides(data: Path, extra: tuple[str, ...] = (), solver: str = "musicgen/debug") -> list[str]:
    return (
        [
            f"solver={solver}",
            "device=cpu",
            "dataset.segment_duration=0.4",
            "dataset.batch_size=4",
            "dataset.num_workers=0",
            "dataset.train.num_samples=8",
            "dataset.valid.num_samples=4",
            "dataset.evaluate.num_samples=4",
            "dataset.generate.num_samples=2",
            "evaluate.metrics.chroma_cosine=false",
            "optim.max_norm=0",
        ]
        + [f"datasource.{split}={data / split}" for split in ("train", "valid", "evaluate", "generate")]
        + list(extra)
    )


def _batch(solver: MusicGenSolver) -> tuple[torch.Tensor, list]:
    """The first train batch (audio ``[4, 1, 12800]`` and infos), a fresh copy each call."""
    audio, infos = next(iter(solver.dataloaders["train"]))
    return audio.clone(), copy.deepcopy(infos)


def _step(solver: MusicGenSolver, batch, stage: str = "train", idx: int = 0) -> dict:
    with in_stage(solver, stage):
        return solver.run_step(idx, batch, {})


class _CrossEntropyRecorder:
    """Stand-in for `compute_cross_entropy` in the solver's module: records its inputs, computes the real value."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        monkeypatch.setattr(musicgen, "compute_cross_entropy", self)

    def __call__(self, logits, targets, mask):
        self.calls.append((logits, targets, mask))
        return _lm_training.compute_cross_entropy(logits, targets, mask)


# ---- the optimizer steps the LM only; the compression model stays frozen -------------------------------------
@pytest.mark.parametrize(
    "klass, solver",
    [(MusicGenSolver, "musicgen/debug"), (AudioGenSolver, "audiogen/debug")],
    ids=["musicgen", "audiogen"],
)
def test_optimizer_steps_every_lm_parameter_and_never_the_compression_model(tmp_path, data, klass, solver):
    extra = ("classifier_free_guidance.training_dropout=0",)  # a nullified batch does not train the conditioner
    extra += ("sample_rate=16000", "compression_model_checkpoint=null") if klass is AudioGenSolver else ()
    with solver_in_xp(klass, _overrides(data, extra, solver), tmp_path) as solver:
        probe = OptimizerProbe(solver.optimizer)
        assert probe.owns_exactly(solver.model)
        compression_ids = {id(p) for p in solver.compression_model.parameters()}
        assert not compression_ids & {id(p) for p in probe.owned}
        lm_before, codec_before = snapshot(solver.model), copy.deepcopy(solver.compression_model.state_dict())
        _step(solver, _batch(solver))
        assert probe.calls == 1
        moved = changed(lm_before, solver.model)
        # Every LM parameter moves, the conditioners' own ones included (LUT embedding, output projection):
        # upstream computes the condition tensors under no_grad, so they never train there (fixed here).
        conditioner = {name for name in moved if name.startswith("condition_provider.")}
        assert conditioner, sorted(moved)
        assert all(moved.values()), [n for n, m in moved.items() if not m]
        grads = grad_by_name(probe, solver.model)
        assert all(grads[name] is not None and grads[name].abs().sum() > 0 for name in moved), [
            n for n in moved if grads[n] is None or grads[n].abs().sum() == 0
        ]
        assert all(not p.requires_grad and p.grad is None for p in solver.compression_model.parameters())
        assert not any(id(p) in compression_ids for p in solver.optimizer.state)  # no optimizer state either
        for key, value in solver.compression_model.state_dict().items():
            assert torch.equal(value, codec_before[key]), key


# ---- clipping, accumulation, grad scaler, autocast ---------------------------------------------------------
def test_gradient_clipping_holds_the_norm_at_max_norm(tmp_path, data):
    def norm_at_step(max_norm: float) -> tuple[float, dict]:
        with solver_in_xp(
            MusicGenSolver, _overrides(data, (f"optim.max_norm={max_norm}",)), tmp_path / str(max_norm)
        ) as solver:
            probe = OptimizerProbe(solver.optimizer)
            metrics = _step(solver, _batch(solver))
            return probe.total_norm(), metrics

    unclipped, _ = norm_at_step(0)
    assert unclipped > 0.1
    clipped, metrics = norm_at_step(0.1)
    assert clipped == pytest.approx(0.1, rel=1e-4)
    assert float(metrics["grad_norm"]) == pytest.approx(unclipped, rel=1e-4)  # the norm before clipping is logged
    assert norm_at_step(unclipped * 10)[0] == pytest.approx(unclipped, rel=1e-5)


def test_gradient_accumulation_gives_the_gradient_of_the_whole_batch(tmp_path, data):
    no_dropout = ("classifier_free_guidance.training_dropout=0",)
    with solver_in_xp(MusicGenSolver, _overrides(data, no_dropout), tmp_path / "full") as solver:
        audio, infos = _batch(solver)
        full = OptimizerProbe(solver.optimizer)
        _step(solver, (audio, infos))
    accum = ("optim.grad_accum_steps=2", *no_dropout)
    with solver_in_xp(MusicGenSolver, _overrides(data, accum), tmp_path / "accum") as solver:
        probe = OptimizerProbe(solver.optimizer)
        before = snapshot(solver.model)
        _step(solver, (audio[:2], infos[:2]), idx=0)
        assert probe.calls == 0 and not any(changed(before, solver.model).values())  # no update mid-window
        _step(solver, (audio[2:], infos[2:]), idx=1)
        assert probe.calls == 1
    for whole, accumulated in zip(full.grads[0], probe.grads[0]):
        torch.testing.assert_close(accumulated, whole, rtol=1e-4, atol=1e-6)


def test_grad_scaler_scales_the_backward_and_unscales_before_clipping_and_step(tmp_path, data):
    """On CPU the solver builds no scaler (fp16 autocast is CUDA-only); a real CPU `torch.amp.GradScaler` is put in its
    place to drive the scaled path of `_backward_and_update`."""

    def run(scale: float | None) -> tuple[OptimizerProbe, dict, list[torch.Tensor]]:
        with solver_in_xp(MusicGenSolver, _overrides(data, ("optim.max_norm=0.1",)), tmp_path / str(scale)) as solver:
            assert solver.scaler is None
            if scale is not None:
                solver.scaler = torch.amp.GradScaler("cpu", init_scale=scale)
            probe = OptimizerProbe(solver.optimizer)
            raw: list[torch.Tensor] = []
            solver.model.out_norm.weight.register_hook(lambda g: raw.append(g.detach().clone()))
            metrics = _step(solver, _batch(solver))
            return probe, metrics, raw

    plain, plain_metrics, plain_raw = run(None)
    scaled, scaled_metrics, scaled_raw = run(2.0**10)
    torch.testing.assert_close(scaled_raw[0], plain_raw[0] * 2**10)  # backward of the scaled loss
    assert scaled.calls == 1 and scaled_metrics["grad_scale"] == 2.0**10  # stepped, scale kept (finite grads)
    assert scaled.total_norm() == pytest.approx(0.1, rel=1e-4)  # clipped after unscaling
    for a, b in zip(scaled.grads[0], plain.grads[0]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
    assert float(scaled_metrics["grad_norm"]) == pytest.approx(float(plain_metrics["grad_norm"]), rel=1e-4)


def test_autocast_runs_the_lm_in_bfloat16_when_configured(tmp_path, data, monkeypatch):
    """The solver turns ``autocast=true`` off on CPU (upstream's fp16 configs); set after building, the step's
    ``with self.autocast`` runs the LM under CPU bf16 autocast."""
    with solver_in_xp(
        MusicGenSolver, _overrides(data, ("autocast=true", "autocast_dtype=bfloat16")), tmp_path
    ) as solver:
        assert solver.cfg.autocast is False  # ignored on CPU, with a warning
        ce = _CrossEntropyRecorder(monkeypatch)
        batch = _batch(solver)
        _step(solver, batch)
        solver.cfg.autocast = True
        _step(solver, batch, idx=1)
    assert ce.calls[0][0].dtype == torch.float32 and ce.calls[1][0].dtype == torch.bfloat16


# ---- the cross-entropy mask --------------------------------------------------------------------------------
def test_cross_entropy_excludes_padded_and_pattern_invalid_steps(tmp_path, data, monkeypatch):
    extra = ("codebooks_pattern.modeling=delay", "tokens.padding_with_special_token=true")
    with solver_in_xp(MusicGenSolver, _overrides(data, extra), tmp_path) as solver:
        audio, infos = _batch(solver)
        infos[1].n_frames = infos[1].n_frames // 2  # item 1: real audio for 5 frames, then padding
        audio[1, :, infos[1].n_frames :] = 0
        ce = _CrossEntropyRecorder(monkeypatch)
        predictions = []
        compute = solver.model.compute_predictions
        monkeypatch.setattr(
            solver.model, "compute_predictions", lambda *a, **k: predictions.append(compute(*a, **k)) or predictions[-1]
        )
        metrics = _step(solver, (audio, infos))
    logits, targets, mask = ce.calls[0]
    pattern_mask = predictions[0].mask
    assert not pattern_mask.all()  # the delay pattern leaves steps without a prediction
    assert (targets[1, :, 5:] == solver.model.special_token_id).all()
    assert not mask[1, :, 5:].any() and mask[0].sum() == pattern_mask[0].sum()
    assert torch.equal(mask, pattern_mask & (targets != solver.model.special_token_id))
    # The loss is the mean over codebooks of the cross-entropy on exactly the masked-in steps.
    per_q = [
        torch.nn.functional.cross_entropy(logits[:, k][mask[:, k]].detach().float(), targets[:, k][mask[:, k]])
        for k in range(targets.shape[1])
    ]
    assert float(metrics["ce"]) == pytest.approx(float(torch.stack(per_q).mean()), rel=1e-5)


# ---- classifier-free-guidance and attribute dropout --------------------------------------------------------
def test_cfg_and_attribute_dropout_nullify_at_their_rates_from_their_seeded_generators(tmp_path, data, monkeypatch):
    extra = ("classifier_free_guidance.training_dropout=0.3", "+attribute_dropout.text.genre=0.5")
    steps = 60
    with solver_in_xp(MusicGenSolver, _overrides(data, extra), tmp_path) as solver:
        seen: list[list] = []
        tokenize = solver.model.condition_provider.tokenize
        monkeypatch.setattr(
            solver.model.condition_provider, "tokenize", lambda attrs: seen.append(attrs) or tokenize(attrs)
        )
        cfg_rng, att_rng = torch.Generator(), torch.Generator()
        cfg_rng.set_state(solver.model.cfg_dropout.get_rng_state())
        att_rng.set_state(solver.model.att_dropout.get_rng_state())
        batch = _batch(solver)
        assert all(info.genre and info.description for info in batch[1])
        with in_stage(solver, "train"):
            for _ in range(steps):
                solver._prepare_tokens_and_attributes(copy.deepcopy(batch))
        with in_stage(solver, "valid"):  # no dropout out of training
            solver._prepare_tokens_and_attributes(copy.deepcopy(batch))
    cfg_drop = [torch.rand(1, generator=cfg_rng).item() < 0.3 for _ in range(steps)]
    att_drop = [torch.rand(1, generator=att_rng).item() < 0.5 for _ in range(steps)]
    description_gone = [all(a.text["description"] is None for a in attrs) for attrs in seen[:steps]]
    genre_gone = [all(a.text["genre"] is None for a in attrs) for attrs in seen[:steps]]
    assert description_gone == cfg_drop  # whole-batch decisions, the generators' own draws
    assert genre_gone == [c or a for c, a in zip(cfg_drop, att_drop)]
    assert all(a.text["description"] is not None or d for attrs, d in zip(seen, description_gone) for a in attrs)
    assert 0.1 < sum(cfg_drop) / steps < 0.5 and 0.3 < sum(att_drop) / steps < 0.7  # at their rates
    assert all(a.text["description"] and a.text["genre"] for a in seen[-1])


# ---- cached codes and codes computed on the fly ------------------------------------------------------------
def test_cached_codes_give_the_same_loss_as_codes_computed_on_the_fly(tmp_path, data, monkeypatch):
    ce = _CrossEntropyRecorder(monkeypatch)
    cache = tmp_path / "cache"
    one_update = ("optim.updates_per_epoch=1",)  # the cache reader wants as many updates as an epoch has
    with solver_in_xp(
        MusicGenSolver, _overrides(data, (f"cache.path={cache}", "cache.write=true", *one_update)), tmp_path / "write"
    ) as solver:
        batch = _batch(solver)
        solver._cached_batch_writer.start_epoch(1)
        _step(solver, batch)  # computes the codes and writes them
    with solver_in_xp(
        MusicGenSolver, _overrides(data, (f"cache.path={cache}", *one_update)), tmp_path / "read"
    ) as solver:
        assert isinstance(solver.dataloaders["train"], CachedBatchLoader)
        solver.dataloaders["train"].start_epoch(1)
        (cached,) = list(solver.dataloaders["train"])
        _step(solver, cached)  # same initial weights and dropout state: the same loss
    (l_fly, t_fly, m_fly), (l_cached, t_cached, m_cached) = ce.calls
    assert torch.equal(t_fly, t_cached) and torch.equal(m_fly, m_cached)
    torch.testing.assert_close(l_cached, l_fly)


# ---- EMA, best state, evaluate, generate and export ------------------------------------------------------
def test_ema_is_what_valid_evaluate_generate_and_export_use(tmp_path, data):
    extra = (
        "optim.epochs=1",
        "optim.updates_per_epoch=2",
        "optim.ema.use=true",
        "optim.ema.updates=1",
        "optim.ema.decay=0.9",
        "optim.ema.device=cpu",
    )
    with solver_in_xp(MusicGenSolver, _overrides(data, extra), tmp_path) as solver:
        live: list[dict[str, torch.Tensor]] = []
        seen_by: dict[str, dict[str, torch.Tensor]] = {}
        run_step = solver.run_step

        def recording_step(idx, batch, metrics):
            out = run_step(idx, batch, metrics)
            if solver.is_training:
                live.append(snapshot(solver.model))
            elif solver.current_stage not in seen_by:
                seen_by[solver.current_stage] = snapshot(solver.model)
            return out

        def recording_generate():  # what the generate stage would sample with (generation itself is tested elsewhere)
            seen_by["generate"] = snapshot(solver.model)
            return {}

        solver.run_step, solver.generate = recording_step, recording_generate
        solver.run()
        assert len(live) == 2 and {"valid", "evaluate", "generate"} <= set(seen_by)
        w = 1 / (1 + 0.9)  # bias-corrected EMA after two updates
        best = solver.best_state.state_dict()["model"]
        for name in live[1]:
            expected = (1 - w) * live[0][name] + w * live[1][name]
            torch.testing.assert_close(solver.ema.state_dict()["state"]["model"][name], expected)
            for stage in ("valid", "evaluate", "generate"):
                torch.testing.assert_close(seen_by[stage][name], expected)
            torch.testing.assert_close(best[name], expected)
        assert any(not torch.equal(best[name], live[1][name]) for name in live[1])
        exported = torch.load(solver.export_folder / "state_dict.bin", map_location="cpu", weights_only=True)
        for name, value in best.items():
            torch.testing.assert_close(exported["best_state"][name], value)
