"""What each part of a CompressionSolver train step does, on a tiny EnCodec with one small MS-STFT discriminator
(solver=compression/debug with an adversary added), one or a few steps at a time, in seconds.

Each test fails on a seeded defect of `CompressionSolver.run_step` (see docs/DEVELOPMENT.md, "Mutation testing"):
discriminators never trained, trained on the wrong steps, gradient clipping skipped, an adversarial (or any other)
loss detached from the generator, a weight not applied, the EMA or the best state not what evaluate/export use.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from step_probes import OptimizerProbe, changed, grad_by_name, in_stage, snapshot, solver_in_xp  # noqa: E402

from audiocraft.data.example import generate_example_dataset  # noqa: E402
from audiocraft.solvers.compression import CompressionSolver  # noqa: E402

SEGMENT = 4000  # 0.25 s at 16 kHz
ALL_LOSSES = ("adv", "feat", "l1", "mel", "msspec", "sisnr")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("example")
    generate_example_dataset(root, num_clips=4, sample_rate=16000, min_duration=1.0, max_duration=1.5)
    return root


def _overrides(data: Path, weights: dict[str, float] | None = None, extra: tuple[str, ...] = ()) -> list[str]:
    weights = {"adv": 4.0, "feat": 4.0, "l1": 0.1, "msspec": 2.0, "mel": 0.0, "sisnr": 0.0, **(weights or {})}
    return (
        [
            "solver=compression/debug",
            "device=cpu",
            "dataset.segment_duration=0.25",
            "dataset.batch_size=2",
            "dataset.num_workers=0",
            "dataset.train.num_samples=4",
            "dataset.valid.num_samples=2",
            "dataset.evaluate.num_samples=2",
            "dataset.evaluate.batch_size=2",
            "dataset.generate.num_samples=1",
            "dataset.generate.segment_duration=0.25",
            "adversarial.adversaries=[msstftd]",
            "adversarial.every=1",
            "msstftd.filters=4",
            "msstftd.n_ffts=[128,64]",
            "msstftd.hop_lengths=[32,16]",
            "msstftd.win_lengths=[128,64]",
            "balancer.balance_grads=true",
            "balancer.per_batch_item=true",
            "balancer.ema_decay=0.999",
            "optim.max_norm=0",
            "logging.log_updates=1",
        ]
        + [f"losses.{name}={value}" for name, value in weights.items()]
        + [f"datasource.{split}={data / split}" for split in ("train", "valid", "evaluate", "generate")]
        + list(extra)
    )


def _batch(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return 0.1 * torch.randn(2, 1, SEGMENT, generator=gen)


def _train_step(solver: CompressionSolver, idx: int = 0, seed: int = 0) -> dict:
    torch.manual_seed(100 + seed)  # quantizer initialisation draws from torch's generator
    with in_stage(solver, "train"):
        return solver.run_step(idx, _batch(seed), {})


def _capture_output_grad(solver: CompressionSolver) -> list[torch.Tensor]:
    """Record the gradients computed for the model's output ``y_pred``: the balancer's partial gradients, then
    (last) the one it back-propagates through the model."""
    grads: list[torch.Tensor] = []

    def hook(module, inputs, output):
        if output.x.requires_grad:
            output.x.register_hook(lambda g: grads.append(g.detach().clone()))

    solver.model.register_forward_hook(hook)
    return grads


# ---- every optimizer steps what it owns, when it should ---------------------------------------------------
def test_generator_and_discriminator_optimizers_step_their_own_parameters(tmp_path, data):
    with solver_in_xp(CompressionSolver, _overrides(data), tmp_path) as solver:
        adversary = solver.adv_losses["msstftd"]
        gen_probe, disc_probe = OptimizerProbe(solver.optimizer), OptimizerProbe(adversary.optimizer)
        assert gen_probe.owns_exactly(solver.model) and disc_probe.owns_exactly(adversary.adversary)
        gen_before, disc_before = snapshot(solver.model), snapshot(adversary.adversary)
        metrics = _train_step(solver)
        assert gen_probe.calls == 1 and disc_probe.calls == 1
        gen_changed, disc_changed = changed(gen_before, solver.model), changed(disc_before, adversary.adversary)
        assert all(gen_changed.values()), [name for name, moved in gen_changed.items() if not moved]
        assert all(disc_changed.values()), [name for name, moved in disc_changed.items() if not moved]
        assert metrics["d_msstftd"] > 0
        # The returned metrics hold no graph (they are averaged over the epoch: a graph would be kept alive).
        assert not any(v.requires_grad for v in metrics.values() if isinstance(v, torch.Tensor))
        # The discriminator update saw only discriminator gradients: the generator's step has its own.
        assert all(g is not None and g.abs().sum() > 0 for g in disc_probe.grads[0])


def test_discriminators_train_only_on_the_steps_of_adversarial_every(tmp_path, data):
    with solver_in_xp(CompressionSolver, _overrides(data, extra=("adversarial.every=3",)), tmp_path) as solver:
        adversary = solver.adv_losses["msstftd"]
        gen_probe, disc_probe = OptimizerProbe(solver.optimizer), OptimizerProbe(adversary.optimizer)
        solver.rng = torch.Generator().manual_seed(1235)  # what run_epoch sets for epoch 1
        draws = torch.Generator().manual_seed(1235)
        expected = [torch.rand(1, generator=draws).item() <= 1 / 3 for _ in range(6)]
        assert any(expected) and not all(expected)  # the seed gives both kinds of steps
        trained = []
        for idx in range(6):
            calls, disc_before = disc_probe.calls, snapshot(adversary.adversary)
            metrics = _train_step(solver, idx, seed=idx)
            trained.append(disc_probe.calls == calls + 1)
            assert any(changed(disc_before, adversary.adversary).values()) == trained[-1]
            assert ("d_loss" in metrics) == trained[-1]
        assert trained == expected
        assert gen_probe.calls == 6  # the generator steps every time


# ---- each weighted loss reaches the model; a zero weight changes nothing -------------------------------------
@pytest.mark.parametrize("balance", [True, False], ids=["balanced", "plain"])
@pytest.mark.parametrize("loss", ["adv", "feat", "l1", "msspec", "mel", "sisnr"])
def test_each_weighted_loss_alone_trains_the_whole_generator(tmp_path, data, loss, balance):
    weights = {name: (1.0 if name == loss else 0.0) for name in ALL_LOSSES}
    overrides = _overrides(data, weights, (f"balancer.balance_grads={str(balance).lower()}",))
    with solver_in_xp(CompressionSolver, overrides, tmp_path) as solver:
        probe = OptimizerProbe(solver.optimizer)
        output_grads = _capture_output_grad(solver)
        _train_step(solver)
        output_grad = output_grads[-1]
        assert output_grad.abs().sum() > 0
        if balance:  # a lone balanced loss gets a gradient of norm total_norm (per item, first step: no history)
            per_item = output_grad.flatten(1).norm(dim=1).mean()
            assert per_item == pytest.approx(solver.cfg.balancer.total_norm, rel=1e-4)
        grads = grad_by_name(probe, solver.model)
        missing = [name for name, g in grads.items() if g is None or g.abs().sum() == 0]
        assert not missing, f"loss {loss} does not reach {missing}"


def test_plain_weights_scale_the_gradient_and_balanced_ones_do_not(tmp_path, data):
    def output_grad(weight: float, balance: bool) -> torch.Tensor:
        weights = {name: 0.0 for name in ALL_LOSSES} | {"l1": weight}
        overrides = _overrides(data, weights, (f"balancer.balance_grads={str(balance).lower()}",))
        with solver_in_xp(CompressionSolver, overrides, tmp_path / f"{weight}_{balance}") as solver:
            grads = _capture_output_grad(solver)
            _train_step(solver)
            return grads[-1]

    torch.testing.assert_close(output_grad(3.0, False), 3.0 * output_grad(1.0, False))
    torch.testing.assert_close(output_grad(3.0, True), output_grad(1.0, True))


def test_balanced_gradient_is_the_weighted_mix_of_the_normalised_loss_gradients(tmp_path, data):
    """With two losses, y_pred receives sum_i w_i / sum(w) * g_i / ||g_i|| (first step): each loss with its share."""
    weights = {name: 0.0 for name in ALL_LOSSES} | {"l1": 1.0, "adv": 3.0}

    def run(w: dict[str, float]) -> torch.Tensor:
        with solver_in_xp(CompressionSolver, _overrides(data, w), tmp_path / str(sorted(w.items()))) as solver:
            grads = _capture_output_grad(solver)
            _train_step(solver)
            return grads[-1]

    mixed = run(weights)
    l1_alone = run(weights | {"adv": 0.0})
    adv_alone = run(weights | {"l1": 0.0})
    torch.testing.assert_close(mixed, 0.25 * l1_alone + 0.75 * adv_alone, rtol=1e-4, atol=1e-7)


def test_zero_weight_losses_change_nothing(tmp_path, data):
    def step_grads(extra: tuple[str, ...], weights: dict[str, float]) -> tuple[list, dict[str, torch.Tensor]]:
        with solver_in_xp(CompressionSolver, _overrides(data, weights, extra), tmp_path / str(len(extra))) as solver:
            probe = OptimizerProbe(solver.optimizer)
            metrics = _train_step(solver)
            return probe.grads[0], {k: v for k, v in metrics.items() if k in ("mel", "sisnr", "l1")}

    base = {"adv": 1.0, "feat": 1.0, "l1": 1.0, "msspec": 1.0}
    with_info, info_metrics = step_grads((), base | {"mel": 0.0, "sisnr": 0.0})
    without, _ = step_grads(("~losses.mel", "~losses.sisnr"), base)
    assert {"mel", "sisnr"} <= set(info_metrics)  # computed for information
    for a, b in zip(with_info, without):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_quantizer_penalty_trains_the_same_on_steps_without_diagnostics(tmp_path, data):
    """The penalty gets its own backward on diagnostic steps (to log ``ratio1``) and rides in the balancer's pass
    otherwise: the gradients are the same either way."""

    def step(idx: int) -> tuple[list, dict]:
        overrides = _overrides(data, extra=("logging.log_updates=2",))
        with solver_in_xp(CompressionSolver, overrides, tmp_path / str(idx)) as solver:
            solver.cfg.adversarial.every = 1e9  # no discriminator update: same adversary for both steps
            _train_step(solver, 0)  # quantizer initialised on this batch: a zero penalty on it
            probe = OptimizerProbe(solver.optimizer)
            metrics = _train_step(solver, idx, seed=1)
            return probe.grads[0], metrics

    measured, measured_metrics = step(2)
    plain, plain_metrics = step(3)
    assert measured_metrics["penalty"] > 0 and {"ratio1", "ratio2", "mel"} <= set(measured_metrics)
    assert not {"ratio1", "ratio2", "mel"} & set(plain_metrics)  # diagnostics only every log_updates steps
    for a, b in zip(measured, plain):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


# ---- clipping ---------------------------------------------------------------------------------------------
def test_gradient_clipping_holds_the_norm_at_max_norm(tmp_path, data):
    def norm_at_step(max_norm: float) -> float:
        overrides = _overrides(data, extra=(f"optim.max_norm={max_norm}",))
        with solver_in_xp(CompressionSolver, overrides, tmp_path / str(max_norm)) as solver:
            probe = OptimizerProbe(solver.optimizer)
            _train_step(solver)
            return probe.total_norm()

    unclipped = norm_at_step(0)
    assert unclipped > 0.01
    assert norm_at_step(0.01) == pytest.approx(0.01, rel=1e-4)
    assert norm_at_step(unclipped * 10) == pytest.approx(unclipped, rel=1e-5)  # under the bound: untouched


def test_gradient_accumulation_is_refused_with_the_reason(tmp_path, data):
    with pytest.raises(ValueError, match="grad_accum_steps must be 1 for the compression solver"):
        with solver_in_xp(CompressionSolver, _overrides(data, extra=("optim.grad_accum_steps=2",)), tmp_path):
            pass


# ---- EMA, best state, evaluate and export ----------------------------------------------------------------
def test_ema_follows_the_live_weights_and_is_what_evaluate_and_export_use(tmp_path, data):
    overrides = _overrides(
        data,
        extra=(
            "optim.epochs=1",
            "optim.updates_per_epoch=2",
            "optim.ema.use=true",
            "optim.ema.updates=1",
            "optim.ema.decay=0.9",
            "optim.ema.device=cpu",
            "evaluate.metrics.sisnr=true",
        ),
    )
    with solver_in_xp(CompressionSolver, overrides, tmp_path) as solver:
        live: list[dict[str, torch.Tensor]] = []
        seen_by: dict[str, dict[str, torch.Tensor]] = {}
        run_step, evaluate = solver.run_step, solver.evaluate

        def recording_step(idx, batch, metrics):
            out = run_step(idx, batch, metrics)
            if solver.is_training:
                live.append(snapshot(solver.model))
            return out

        def recording_evaluate():
            seen_by["evaluate"] = snapshot(solver.model)
            return evaluate()

        solver.run_step, solver.evaluate = recording_step, recording_evaluate
        solver.run()
        assert len(live) == 2
        # Bias-corrected EMA: count_1 = 1 (weight 1), count_2 = 1 + decay (weight 1 / (1 + decay)).
        w = 1 / (1 + 0.9)
        ema = solver.ema.state_dict()["state"]["model"]
        best = solver.best_state.state_dict()["model"]
        for name in live[1]:
            expected = (1 - w) * live[0][name] + w * live[1][name]
            torch.testing.assert_close(ema[name], expected)
            torch.testing.assert_close(best[name], expected)  # valid ran with the EMA: it is the best state
            torch.testing.assert_close(seen_by["evaluate"][name], expected)
        assert any(not torch.equal(best[name], live[1][name]) for name in live[1])  # not the live weights
        torch.testing.assert_close(snapshot(solver.model), live[1])  # live weights back after the swaps

        from audiocraft.models import CompressionModel

        exported = CompressionModel.get_pretrained(str(solver.export_path), device="cpu").state_dict()
        for name, value in best.items():
            torch.testing.assert_close(exported[name], value)
