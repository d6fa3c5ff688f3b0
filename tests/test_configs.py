"""Every solver config composes with Hydra, and each of its sections binds to the builder that owns it.

This is the schema check of STYLE.md: a config key that no builder accepts (a typo, a key upstream removed) fails
here, at test time, instead of hours into a run.
"""

from __future__ import annotations

import pathlib

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from repo_helpers import REPO

CONFIG_DIR = REPO / "config"
# `default.yaml` files are bases that other solver configs extend (upstream's layout), not solvers to select.
SOLVERS = sorted(
    str(p.relative_to(CONFIG_DIR / "solver").with_suffix(""))
    for p in (CONFIG_DIR / "solver").rglob("*.yaml")
    if p.name != "default.yaml"
)


def _compose(*overrides: str):
    # `device=auto` is resolved by audiocraft.train before any builder runs; builders get a concrete device.
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.1"):
        return compose("config", overrides=["device=cpu", *overrides])


def test_solver_configs_found() -> None:
    assert "compression/debug" in SOLVERS
    assert "compression/encodec_base_24khz" in SOLVERS


@pytest.mark.parametrize("solver", SOLVERS)
def test_solver_config_composes_and_resolves(solver: str) -> None:
    cfg = _compose(f"solver={solver}")
    # Interpolations resolve; `???` (a value the user must give, e.g. a dataset) is allowed to stay missing.
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    assert cfg.solver, f"{solver}: no solver name"


@pytest.mark.parametrize("solver", [s for s in SOLVERS if s.startswith("compression/")])
def test_compression_sections_bind_to_their_builders(solver: str) -> None:
    from audiocraft.adversarial.builders import get_adversary
    from audiocraft.losses.builders import get_balancer, get_loss
    from audiocraft.models.builders import get_compression_model

    cfg = _compose(f"solver={solver}")
    model = get_compression_model(cfg)
    assert model.sample_rate == cfg.sample_rate and model.channels == cfg.channels
    for name in cfg.losses:
        if name in {"adv", "feat"}:
            continue
        get_loss(name, cfg)
    get_balancer({k: v for k, v in cfg.losses.items() if k not in {"adv", "feat"}}, cfg.balancer)
    for name in cfg.adversarial.adversaries:
        get_adversary(name, cfg)


def test_unknown_key_in_a_section_is_named() -> None:
    from audiocraft.losses.builders import get_loss

    cfg = _compose("solver=compression/debug", "+mel.n_fftt=512")
    with pytest.raises(ValueError, match="n_fftt"):
        get_loss("mel", cfg)


def test_compression_model_rejects_unknown_seanet_key() -> None:
    from audiocraft.models.builders import get_compression_model

    cfg = _compose("solver=compression/debug", "+seanet.n_filterz=3")
    with pytest.raises((ValueError, TypeError), match="n_filterz"):
        get_compression_model(cfg)


def test_config_dir_is_the_packaged_one() -> None:
    import audiocraft.train

    assert pathlib.Path(audiocraft.train.main.full_config_path).resolve() == CONFIG_DIR.resolve()


def test_stage_only_flags_do_not_change_the_signature() -> None:
    """`dora run -f SIG execute_only=evaluate execute_inplace=true` must address the trained XP, not a new one."""
    import audiocraft.train

    base = audiocraft.train.main.get_xp(["solver=compression/debug"]).sig
    flagged = audiocraft.train.main.get_xp(
        ["solver=compression/debug", "execute_only=evaluate", "execute_inplace=true"]
    ).sig
    assert base == flagged
    assert audiocraft.train.main.get_xp(["solver=compression/debug", "optim.lr=0.1"]).sig != base


def test_device_does_not_change_the_signature() -> None:
    """`./dev.sh main` adds `device=cpu`: it must resume the XP of a plain `dora run solver=...`, not start another.

    Keys that interpolate `${device}` (e.g. `optim.ema.device`) resolve before dora computes the delta, so each must
    be in `dora.exclude` too.
    """
    import audiocraft.train

    for solver in SOLVERS:
        base = audiocraft.train.main.get_xp([f"solver={solver}"]).sig
        for device in ("cpu", "cuda"):
            assert audiocraft.train.main.get_xp([f"solver={solver}", f"device={device}"]).sig == base, (solver, device)
