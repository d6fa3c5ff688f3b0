"""The package README's inference example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_readme_example_runs() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README has no python example"
    example = blocks[0]
    assert len([line for line in example.splitlines() if line.strip() and not line.startswith("#")]) <= 10
    out = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("torch.Size([1, 4, 25]) torch.Size([1, 1, 32000]) 25 400")
