"""PesqMetric without its extra: the error names the extra to install."""

import sys

import pytest

from audiocraft.metrics import PesqMetric


def test_missing_pesq_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pesq", None)  # makes `import pesq` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'audiocraft-metrics\[pesq\]'"):
        PesqMetric(sample_rate=16000)
