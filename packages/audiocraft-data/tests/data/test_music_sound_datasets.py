"""Tests for InfoAudioDataset, MusicDataset (attributes, augmentations) and SoundDataset."""

import json
import random
import zipfile

import pytest
import torch

from audiocraft.data.audio import audio_write
from audiocraft.data.audio_dataset import AudioMeta, save_audio_meta
from audiocraft.data.conditions import ConditioningAttributes, WavCondition
from audiocraft.data.info_audio_dataset import AudioInfo, InfoAudioDataset, get_keyword_list
from audiocraft.data.music_dataset import MusicDataset, MusicInfo, augment_music_info_description, get_musical_key
from audiocraft.data.sound_dataset import SoundDataset, mix_samples

SIDECAR = {
    "title": "Neon Garden",
    "artist": "The Sine Waves",
    "key": "A minor",
    "bpm": "128",
    "genre": "Electronic",
    "moods": ["Upbeat", "energetic"],
    "keywords": "synth, dance",
    "instrument": "Synth Lead",
    "name": "clip",
    "description": "an upbeat electronic track in A minor at 128 bpm with a bright synth lead.",
}


@pytest.fixture
def music(tmp_path, tone):
    metas = []
    for i in range(3):
        path = audio_write(tmp_path / f"clip{i}", tone(1.5, 16000), 16000)
        side = dict(SIDECAR, name=f"clip{i}")
        if i == 2:
            side.pop("keywords")
        path.with_suffix(".json").write_text(json.dumps(side))
        metas.append(AudioMeta(str(path), 1.5, 16000))
    save_audio_meta(tmp_path / "data.jsonl", metas)
    return tmp_path


def test_info_dataset_returns_audio_info(music):
    ds = InfoAudioDataset.from_meta(
        music, segment_duration=0.5, sample_rate=16000, channels=1, num_samples=2, return_info=True
    )
    wav, info = ds[0]
    assert isinstance(info, AudioInfo) and info.to_condition_attributes() == ConditioningAttributes()
    plain = InfoAudioDataset.from_meta(music, segment_duration=0.5, sample_rate=16000, channels=1, num_samples=2)
    assert torch.equal(plain[0], wav)


def test_music_dataset_attributes(music):
    ds = MusicDataset.from_meta(music, segment_duration=0.5, sample_rate=16000, channels=1, num_samples=4)
    wav, info = ds[1]
    assert isinstance(info, MusicInfo) and wav.shape == (1, 8000)
    assert info.key == "a minor" and info.bpm == 128.0 and info.genre == "electronic"
    assert info.moods == ["upbeat", "energetic"] and info.instrument == "synth lead"
    attrs = info.to_condition_attributes()
    assert attrs.text["description"] == SIDECAR["description"]
    assert attrs.text["moods"] == "upbeat energetic" and attrs.text["genre"] == "electronic"
    assert "meta" not in attrs.text and "seek_time" not in attrs.text
    self_wav = attrs.wav["self_wav"]
    assert isinstance(self_wav, WavCondition) and torch.equal(self_wav.wav[0], wav)
    assert self_wav.path == [info.meta.path] and self_wav.length.tolist() == [info.n_frames]
    batch, infos = ds.collater([ds[i] for i in range(4)])
    assert batch.shape == (4, 1, 8000) and all(isinstance(i, MusicInfo) for i in infos)


def test_music_dataset_joint_embed(music):
    ds = MusicDataset.from_meta(
        music,
        segment_duration=0.5,
        sample_rate=16000,
        channels=1,
        num_samples=2,
        joint_embed_attributes=["description"],
    )
    _, info = ds[0]
    joint = info.to_condition_attributes().joint_embed["description"]
    assert joint.text == [info.description] and joint.wav.shape == (1, 1, 8000)


def test_required_fields(tmp_path, music):
    side = music / "clip0.json"
    data = json.loads(side.read_text())
    data.pop("genre")
    side.write_text(json.dumps(data))
    meta = [AudioMeta(str(music / "clip0.wav"), 1.5, 16000)]
    with pytest.raises(KeyError, match="clip0.wav.*genre"):
        MusicDataset(meta, segment_duration=0.5, num_samples=1)[0]
    _, info = MusicDataset(meta, segment_duration=0.5, num_samples=1, info_fields_required=False)[0]
    assert info.genre is None and info.title == "Neon Garden"
    side.write_text("{broken")
    with pytest.raises(ValueError, match="clip0.json"):
        MusicDataset(meta, segment_duration=0.5, num_samples=1)[0]


def test_text_augmentation_upstream_semantics():
    info = MusicInfo.from_dict(
        dict(SIDECAR, meta=None, seek_time=0.0, n_frames=1, total_frames=1, sample_rate=1, channels=1)
    )
    merged = augment_music_info_description(
        info, merge_text_p=1.0, drop_desc_p=0.0, drop_other_p=1.0, rng=random.Random(0)
    )
    assert merged.description.startswith(SIDECAR["description"].rstrip("."))
    for part in [
        "key: a minor",
        "bpm: 128.0",
        "genre: electronic",
        "moods: upbeat, energetic",
        "instrument: synth lead",
        "keywords: synth, dance",
    ]:
        assert part in merged.description
    assert info.description == SIDECAR["description"]  # input untouched
    only_meta = augment_music_info_description(info, 1.0, drop_desc_p=1.0, drop_other_p=1.0, rng=random.Random(0))
    assert "bright synth lead" not in only_meta.description and "genre: electronic" in only_meta.description
    nothing = augment_music_info_description(info, 1.0, drop_desc_p=1.0, drop_other_p=0.0, rng=random.Random(0))
    assert nothing.description is None
    untouched = augment_music_info_description(info, 0.0, 1.0, 1.0, rng=random.Random(0))
    assert untouched.description == SIDECAR["description"]  # upstream strips and re-adds the final period


def test_augmentation_is_deterministic_per_item(music):
    kwargs = dict(
        segment_duration=0.5,
        sample_rate=16000,
        channels=1,
        num_samples=16,
        merge_text_p=0.5,
        drop_desc_p=0.5,
        drop_other_p=0.5,
    )
    a = MusicDataset.from_meta(music, **kwargs)
    b = MusicDataset.from_meta(music, **kwargs)
    random.seed(1)
    first = [a[i][1].description for i in range(16)]
    random.seed(2)
    assert [b[i][1].description for i in range(16)] == first
    assert len(set(first)) > 2  # the augmentation does vary across items


def test_keyword_helpers():
    assert get_keyword_list("Rock, Pop  jazz") == ["rock", "pop", "jazz"]
    assert get_keyword_list([]) is None
    assert get_musical_key("C, G") is None and get_musical_key(" Eb Major ") == "eb major"


@pytest.fixture
def sounds(tmp_path, tone):
    metas = []
    for i in range(4):
        path = audio_write(tmp_path / "audio" / f"s{i}", tone(1.0, 16000, freq=300.0 * (i + 1)), 16000)
        metas.append(AudioMeta(str(path), 1.0, 16000))
    (tmp_path / "audio" / "s0.json").write_text(json.dumps({"description": ["Dog barking", "a dog barks"]}))
    (tmp_path / "audio" / "s1.json").write_text(json.dumps({"description": "Rain on a roof"}))
    ext = tmp_path / "external"
    ext.mkdir()
    for i in (2, 3):
        (ext / f"s{i}.json").write_text(json.dumps({"description": f"sound {i}"}))
    return metas, ext


def test_sound_dataset_descriptions(sounds):
    metas, ext = sounds
    ds = SoundDataset(
        metas,
        segment_duration=0.5,
        sample_rate=16000,
        channels=1,
        num_samples=16,
        sample_on_duration=False,
        external_metadata_source=str(ext),
    )
    seen = {}
    for i in range(16):
        wav, info = ds[i]
        seen.setdefault(info.meta.path.rsplit("/", 1)[-1], set()).add(info.description)
        attrs = info.to_condition_attributes()
        assert set(attrs.text) == {"description"} and torch.equal(attrs.wav["self_wav"].wav[0], wav)
    assert seen["s1.wav"] == {"rain on a roof"} and seen["s2.wav"] == {"sound 2"}
    assert seen["s0.wav"] <= {"dog barking", "a dog barks"}
    no_ext = SoundDataset(metas[2:], segment_duration=0.5, num_samples=1)
    with pytest.raises(FileNotFoundError, match="s2.wav"):
        no_ext[0]


def test_sound_mixing(sounds):
    metas, ext = sounds
    ds = SoundDataset(
        metas,
        segment_duration=0.5,
        sample_rate=16000,
        channels=1,
        num_samples=8,
        external_metadata_source=str(ext),
        aug_p=1.0,
        mix_p=0.5,
    )
    samples = [ds[i] for i in range(8)]
    wav, infos = ds.collater(samples)
    assert wav.shape == (4, 1, 8000) and len(infos) == 4 and wav.abs().max() < 1
    wav2, infos2 = ds.collater(samples)
    assert torch.equal(wav, wav2) and [i.description for i in infos] == [i.description for i in infos2]
    kept, kept_infos = mix_samples(wav, infos, aug_p=0.0, mix_p=0.5, snr_low=0, snr_high=0, min_overlap=0.5)
    assert kept.shape == (2, 1, 8000)
    with pytest.raises(ValueError, match="mono"):
        SoundDataset(metas, segment_duration=0.5, channels=2, aug_p=1.0, mix_p=0.5)


def test_music_sidecar_in_zip(tmp_path, tone):
    path = audio_write(tmp_path / "z", tone(1.0, 16000), 16000)
    path.with_suffix(".json").write_text(json.dumps(SIDECAR))
    archive = tmp_path / "pack.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(path, "music/z.wav")
        zf.write(path.with_suffix(".json"), "music/z.json")
    ds = MusicDataset(
        [AudioMeta(f"{archive}:music/z.wav", 1.0, 16000)],
        segment_duration=0.5,
        num_samples=1,
        sample_rate=16000,
        channels=1,
    )
    assert ds[0][1].genre == "electronic"
