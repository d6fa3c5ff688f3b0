"""Public surface, lazy exports and the import layer of audiocraft.metrics (each check in a fresh interpreter)."""

import subprocess
import sys

import pytest

import audiocraft.metrics as metrics

MODULES = [
    "_audio",
    "_base",
    "builders",
    "chroma",
    "chroma_cosinesim",
    "clap_consistency",
    "embeddings",
    "fad",
    "fad_stats",
    "kld",
    "pesq",
    "rvm",
    "sisnr",
    "spectral",
    "testing",
    "visqol",
]
FORBIDDEN = [
    "hydra",
    "dora",
    "flashy",
    "omegaconf",
    "audiocraft.models",
    "audiocraft.solvers",
    "audiocraft.losses",
    "audiocraft.conditioners",
    "laion_clap",
    "hear21passt",
    "transformers",
    "pesq",
]


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_public_name_resolves() -> None:
    for name in metrics.__all__:
        assert getattr(metrics, name) is not None
    with pytest.raises(AttributeError, match="NoSuchMetric"):
        metrics.NoSuchMetric  # noqa: B018


def test_package_import_is_lazy() -> None:
    out = _run(
        "import sys, audiocraft.metrics; print(sorted(m for m in ('torch', 'torchaudio', 'scipy') if m in sys.modules))"
    )
    assert out.strip() == "[]"


def test_modules_import_no_upper_layer_and_no_optional_dependency() -> None:
    code = (
        "import importlib, sys\n"
        f"for m in {MODULES!r}: importlib.import_module('audiocraft.metrics.' + m)\n"
        f"print([m for m in {FORBIDDEN!r} if m in sys.modules])"
    )
    assert _run(code).strip() == "[]"
