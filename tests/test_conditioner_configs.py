"""The config/conditioner groups compose with Hydra and every section binds to audiocraft.conditioners' builders."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from repo_helpers import REPO

from audiocraft.conditioners import AttributeDropout, ClassifierFreeGuidanceDropout
from audiocraft.conditioners.builders import check_conditioners, get_condition_fuser

GROUPS = sorted(p.stem for p in (REPO / "config" / "conditioner").glob("*.yaml"))


def test_upstream_groups_exist() -> None:
    assert {"text2music", "text2sound", "chroma2music", "clapemb2music", "none"} <= set(GROUPS)


@pytest.mark.parametrize("group", GROUPS)
def test_group_sections_bind(group: str) -> None:
    with initialize_config_dir(str(REPO / "config"), version_base="1.1"):
        cfg = compose(f"conditioner/{group}")
    section = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(section, dict)
    check_conditioners(section["conditioners"])
    fuser = get_condition_fuser(section["fuser"])
    for attribute in section["conditioners"] or {}:
        assert attribute in fuser.cond2fuse, f"{group}: conditioner {attribute!r} is fused nowhere"
    AttributeDropout(section["attribute_dropout"])
    ClassifierFreeGuidanceDropout(section["classifier_free_guidance"]["training_dropout"])
    assert section["classifier_free_guidance"]["inference_coef"] >= 1
