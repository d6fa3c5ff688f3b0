"""SampleManager writes generated audio per epoch, its metadata, and references beside it."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch
from omegaconf import OmegaConf

from audiocraft.data.audio import audio_read
from audiocraft.utils.samples.manager import SampleManager


def _xp(folder: Path):
    cfg = OmegaConf.create({"sample_rate": 8000, "generate": {"path": "samples", "audio": {
        "format": "wav", "strategy": "clip", "sample_rate": 8000}}})
    return SimpleNamespace(folder=folder, cfg=cfg)


def test_add_samples_writes_audio_metadata_and_references(tmp_path):
    torch.manual_seed(0)
    ref = 0.5 * torch.rand(2, 1, 800) - 0.25
    est = ref + 0.01 * torch.randn_like(ref)
    manager = SampleManager(_xp(tmp_path), map_reference_to_sample_id=True)
    samples = manager.add_samples(est, epoch=3, ground_truth_wavs=ref, generation_args={"temp": 1.0})
    assert len(samples) == 2
    for sample, wav_ref, wav_est in zip(samples, ref, est):
        assert Path(sample.path).parent == tmp_path / "samples" / "3"
        audio, sr = audio_read(sample.path)
        assert sr == 8000 and audio.shape == (1, 800)
        assert torch.allclose(audio, wav_est, atol=1e-3)
        reference_audio, _ = audio_read(sample.reference.path)
        assert Path(sample.reference.path).parent == tmp_path / "samples" / "reference"
        assert torch.allclose(reference_audio, wav_ref, atol=1e-3)
        meta = json.loads((tmp_path / "samples" / "3" / f"{sample.id}.json").read_text())
        assert meta["epoch"] == 3 and meta["generation_args"] == {"temp": 1.0}
        assert abs(meta["duration"] - 0.1) < 1e-9
    # the same references give the same ids at the next epoch, and a new manager lists everything
    again = manager.add_samples(est, epoch=4, ground_truth_wavs=ref)
    assert [s.id for s in again] == [s.id for s in samples]
    reloaded = SampleManager(_xp(tmp_path))
    assert reloaded.latest_epoch == 4
    assert {s.id for s in reloaded.get_samples(epoch=3)} == {s.id for s in samples}
    assert len(reloaded.get_samples()) == 2
    assert len(list((tmp_path / "samples" / "reference").glob("*.wav"))) == 2


def test_conditions_and_prompts_are_recorded(tmp_path):
    manager = SampleManager(_xp(tmp_path))
    wav = torch.zeros(1, 400)
    sample = manager.add_sample(wav, epoch=1, index=0, conditions={"description": "soft piano"},
                                prompt_wav=torch.zeros(1, 100))
    other = manager.add_sample(wav, epoch=1, index=1, conditions={"description": "drums"})
    assert sample.id != other.id
    assert sample.conditioning == {"description": "soft piano"}
    assert Path(sample.prompt.path).exists()
    assert manager.get_samples(epoch=1, exclude_prompted=True) == {other}
    assert manager.get_samples(epoch=1, exclude_unprompted=True) == {sample}
