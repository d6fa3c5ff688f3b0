"""A missing extra is an ImportError naming its pip install line; importing the package never needs one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from audiocraft.conditioners import (
    ChromaStemConditioner,
    CLAPEmbeddingConditioner,
    LUTConditioner,
    T5Conditioner,
    WhiteSpaceTokenizer,
)


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # `import name` now raises ImportError


def test_spacy(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "spacy", "num2words")
    with pytest.raises(ImportError, match=r"pip install 'audiocraft-conditioners\[spacy\]'"):
        WhiteSpaceTokenizer(10)
    with pytest.raises(ImportError, match=r"\[spacy\]"):
        LUTConditioner(10, 4, 4, tokenizer="whitespace")


def test_t5(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "transformers")
    with pytest.raises(ImportError, match=r"pip install 'audiocraft-conditioners\[t5\]'"):
        T5Conditioner("t5-base", output_dim=8, finetune=False, device="cpu")


def test_clap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _hide(monkeypatch, "transformers")
    with pytest.raises(ImportError, match=r"pip install 'audiocraft-conditioners\[clap\]'"):
        CLAPEmbeddingConditioner(
            dim=8,
            output_dim=8,
            device="cpu",
            attribute="description",
            quantize=False,
            n_q=1,
            bins=2,
            checkpoint=str(tmp_path),
            model_arch="HTSAT-base",
            enable_fusion=False,
            sample_rate=48000,
            max_audio_length=10,
            audio_stride=1,
            normalize=True,
            text_p=0.0,
        )


def test_demucs(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "demucs", "demucs.hf")
    with pytest.raises(ImportError, match=r"pip install 'audiocraft-conditioners\[demucs\]'"):
        ChromaStemConditioner(output_dim=4, sample_rate=16000, n_chroma=12, radix2_exp=10, duration=1.0)


def test_import_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, audiocraft.conditioners as c, audiocraft.conditioners.builders; "
        "[getattr(c, n) for n in c.__all__]; "
        "print(sorted(m for m in ('spacy', 'transformers', 'demucs', 'num2words') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
