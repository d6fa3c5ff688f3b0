"""The README's MusicGen example runs as written against a MusicGen-layout folder exported by the release export."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import soundfile as sf
import torch

from audiocraft.models.export import export_encodec, export_lm

README = Path(__file__).parents[2] / "README.md"
TINY = Path(__file__).parent.parent / "fixtures" / "upstream" / "musicgen_tiny"


def _export_folder(folder: Path, tmp: Path) -> None:
    """state_dict.bin + compression_state_dict.bin through export_lm / export_encodec, from training checkpoints
    holding the weights and configs of upstream's musicgen_tiny fixture."""
    for name, export in (("state_dict.bin", export_lm), ("compression_state_dict.bin", export_encodec)):
        pkg = torch.load(TINY / name, weights_only=True)
        training = tmp / f"{name}.checkpoint.th"
        torch.save({"xp.cfg": pkg["xp.cfg"], "best_state": {"model": pkg["best_state"]}, "epoch": 3}, training)
        export(training, folder / name)


def test_readme_musicgen_example_runs(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(block for block in blocks if "MusicGen" in block)
    assert len([line for line in example.splitlines() if line.strip() and not line.startswith("#")]) <= 10
    _export_folder(tmp_path / "my_musicgen", tmp_path)
    out = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "torch.Size([2, 1, 32000]) 16000"
    for index in range(2):
        audio, rate = sf.read(tmp_path / f"sample_{index}.wav")
        assert rate == 16000 and audio.shape == (32000,) and abs(audio).max() > 0
