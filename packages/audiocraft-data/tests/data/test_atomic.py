"""audiocraft.data.atomic: the one atomic writer (models.export, the conditioners' cache, audio and sidecars use it)."""

import os
import re
from pathlib import Path

import pytest
import torch

from audiocraft.data import audio_write
from audiocraft.data.atomic import atomic_torch_save, atomic_write


def test_umask_check_hook_and_temporary_name(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "state.th"
    old = os.umask(0o027)
    try:
        atomic_torch_save({"a": torch.ones(2)}, path)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o640  # 0o666 minus the umask, not mkstemp's 0600
    seen: list[Path] = []

    def refuse(tmp: Path) -> None:
        seen.append(tmp)
        assert torch.equal(torch.load(tmp, weights_only=True)["a"], torch.zeros(2))  # complete before the rename
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        atomic_write(path, lambda tmp: torch.save({"a": torch.zeros(2)}, tmp), refuse)
    # the pattern audiocraft-core's checkpointer uses to recognise leftovers
    assert re.fullmatch(r"\.state\.th\.[0-9a-f]{12}\.tmp\.th", seen[0].name) and seen[0].parent == path.parent
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.th"]


def test_an_interrupted_writer_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("old")

    def killed(tmp: Path) -> None:
        tmp.write_text("partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, killed)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_every_writer_goes_through_it() -> None:
    from audiocraft.data import audio, metadata

    assert audio.atomic_write is atomic_write and metadata.atomic_write is atomic_write


def test_audio_write_is_atomic_and_keeps_make_parent_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wav = 0.5 * torch.sin(torch.arange(1600) / 10)[None]
    out = audio_write(tmp_path / "a" / "tone", wav, 16000)
    assert out == tmp_path / "a" / "tone.wav" and sorted(p.name for p in out.parent.iterdir()) == ["tone.wav"]
    with pytest.raises(RuntimeError, match=r"folder .*missing does not exist \(make_parent_dir=False\)"):
        audio_write(tmp_path / "missing" / "tone", wav, 16000, make_parent_dir=False)
    assert not (tmp_path / "missing").exists()
    import soundfile

    def disk_full(file, *args, **kwargs) -> None:
        Path(file).write_bytes(b"RIFF")  # part of a header
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(soundfile, "write", disk_full)
    with pytest.raises(RuntimeError, match=r"could not write .*tone\.wav \(wav, 16000 Hz, 1 channels\): .*No space"):
        audio_write(tmp_path / "a" / "tone", 0 * wav, 16000)
    assert sorted(p.name for p in out.parent.iterdir()) == ["tone.wav"]  # the old file, no temporary file
    assert soundfile.info(str(out)).frames == 1600
