"""Importing the inference API never pulls the training stack or optional heavy dependencies."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = (
    "hydra",
    "dora",
    "flashy",
    "transformers",
    "huggingface_hub",
    "safetensors",
    "dac",
    "audiocraft.solvers",
    "audiocraft.utils",
    "audiocraft.train",
)


def test_inference_imports_stay_light() -> None:
    code = (
        "import sys\n"
        "import audiocraft.models, audiocraft.modules, audiocraft.quantization\n"
        "from audiocraft.models import CompressionModel, EncodecModel, builders, loaders, export\n"
        "from audiocraft.modules import SEANetEncoder, StreamableConv1d\n"
        "from audiocraft.models.encodec import EncodecModel\n"
        "model = builders.get_debug_compression_model(sample_rate=16000)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r} or m in {FORBIDDEN!r})\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_lazy_names_resolve() -> None:
    import audiocraft.models as models
    import audiocraft.modules as modules

    assert models.EncodecModel.__name__ == "EncodecModel"
    assert modules.SEANetDecoder.__name__ == "SEANetDecoder"
    for name in models.__all__:
        assert getattr(models, name) is not None
    for name in modules.__all__:
        assert getattr(modules, name) is not None
    try:
        models.NotAThing  # noqa: B018
    except AttributeError as exc:
        assert "NotAThing" in str(exc)
    else:
        raise AssertionError("unknown names must raise AttributeError")
