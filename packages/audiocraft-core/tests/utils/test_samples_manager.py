"""SampleManager writes generated audio per epoch, its metadata, and references beside it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import torch
from omegaconf import OmegaConf

from audiocraft.data.audio import audio_read
from audiocraft.utils.samples.manager import SampleManager


def _xp(folder: Path):
    cfg = OmegaConf.create(
        {
            "sample_rate": 8000,
            "generate": {"path": "samples", "audio": {"format": "wav", "strategy": "clip", "sample_rate": 8000}},
        }
    )
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
    sample = manager.add_sample(
        wav, epoch=1, index=0, conditions={"description": "soft piano"}, prompt_wav=torch.zeros(1, 100)
    )
    other = manager.add_sample(wav, epoch=1, index=1, conditions={"description": "drums"})
    assert sample.id != other.id
    assert sample.conditioning == {"description": "soft piano"}
    assert Path(sample.prompt.path).exists()
    assert manager.get_samples(epoch=1, exclude_prompted=True) == {other}
    assert manager.get_samples(epoch=1, exclude_unprompted=True) == {sample}


def test_samples_are_named_after_their_source_clip_with_clip_and_checkpoint_in_the_json(tmp_path):
    from audiocraft.data.audio import audio_write
    from audiocraft.data.audio_dataset import AudioDataset, AudioMeta

    clips = tmp_path / "clips"
    for name, freq in (("piano take", 220.0), ("drums", 440.0)):
        t = torch.arange(8000 * 2) / 8000
        audio_write(clips / name, (0.3 * torch.sin(2 * torch.pi * freq * t)).view(1, -1), 8000, format="wav")
    meta = [AudioMeta(str(clips / f"{n}.wav"), 2.0, 8000) for n in ("piano take", "drums")]
    dataset = AudioDataset(meta, segment_duration=0.5, sample_rate=8000, channels=1, shuffle=False, return_info=True)
    ref, infos = dataset.collater([dataset[0], dataset[1]])
    xp = _xp(tmp_path / "xp")
    xp.sig = "abc123de"
    xp.cfg.datasource = {"generate": "egs/mine/generate"}
    samples = SampleManager(xp, map_reference_to_sample_id=True).add_samples(
        ref * 0.9, epoch=2, ground_truth_wavs=ref, sources=infos
    )
    stems = {Path(i.meta.path).stem.replace(" ", "_"): i for i in infos}
    assert len(samples) == 2
    for sample in samples:
        stem = next(s for s in stems if sample.id.startswith(s + "_"))
        info = stems[stem]
        assert re.fullmatch(rf"{stem}_{round(1000 * info.seek_time)}ms_[0-9a-f]{{8}}", sample.id), sample.id
        assert Path(sample.path) == tmp_path / "xp" / "samples" / "2" / f"{sample.id}.wav"  # folder per epoch
        assert Path(sample.reference.path).stem == sample.id
        sidecar = json.loads((tmp_path / "xp" / "samples" / "2" / f"{sample.id}.json").read_text())
        assert sidecar["source"] == {
            "manifest": "egs/mine/generate",
            "path": info.meta.path,
            "offset": info.seek_time,
            "duration": info.n_frames / 8000,  # the real audio, without padding
        }
        assert sidecar["checkpoint"] == {"xp_sig": "abc123de", "xp_folder": str(tmp_path / "xp"), "epoch": 2}
    # a fresh manager reads the sidecars back, source and checkpoint included
    reloaded = {s.id: s for s in SampleManager(xp).get_samples(epoch=2)}
    assert {k: v.source for k, v in reloaded.items()} == {s.id: s.source for s in samples}
