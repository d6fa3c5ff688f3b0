"""Chroma: the torch-only extractor equals upstream's (librosa filters) on the fixture; ChromaStemConditioner modes."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiocraft.conditioners import ChromaExtractor, ChromaStemConditioner, WavCondition, nullify_wav


@pytest.mark.parametrize("radix2_exp", [12, 14])
@pytest.mark.parametrize("argmax", [False, True])
def test_extractor_equals_upstream(fixtures: Path, radix2_exp: int, argmax: bool) -> None:
    wav, sr = sf.read(fixtures / "chroma" / "input.wav", dtype="float32")
    expected = np.load(fixtures / "chroma" / f"chroma_radix{radix2_exp}_argmax{int(argmax)}.npy")
    with torch.no_grad():
        chroma = ChromaExtractor(sample_rate=sr, n_chroma=12, radix2_exp=radix2_exp, argmax=argmax)(
            torch.from_numpy(wav)[None, None]
        )
    assert chroma.shape == expected.shape
    np.testing.assert_allclose(chroma.numpy(), expected, rtol=0, atol=1e-5)


def test_state_dict_keys_are_upstreams() -> None:
    # upstream's extractor holds a torchaudio Spectrogram (`spec`, persistent `window` buffer): musicgen-melody
    # checkpoints carry `condition_provider.conditioners.self_wav.chroma.spec.window`
    cond = ChromaStemConditioner(
        output_dim=8, sample_rate=32000, n_chroma=12, radix2_exp=14, duration=1.0, demucs_model=None
    )
    assert sorted(cond.state_dict()) == ["chroma.spec.window", "output_proj.bias", "output_proj.weight"]
    state = {k: v.clone() for k, v in cond.state_dict().items()}
    assert state["chroma.spec.window"].shape == (2**14,)
    torch.testing.assert_close(state["chroma.spec.window"], torch.hann_window(2**14))
    cond.load_state_dict(state, strict=True)


def test_extractor_finds_the_chords(fixtures: Path) -> None:
    wav, sr = sf.read(fixtures / "chroma" / "input.wav", dtype="float32")
    chroma = ChromaExtractor(sample_rate=sr)(torch.from_numpy(wav)[None])[0]
    c_major = chroma[10:40].mean(0).topk(3).indices.sort().values.tolist()
    a_major = chroma[60:95].mean(0).topk(3).indices.sort().values.tolist()
    assert c_major == [0, 4, 7] and a_major == [1, 4, 9]  # C E G; A C# E


def _tone(freq: float, seconds: float, sr: int = 16000) -> torch.Tensor:
    t = torch.arange(int(seconds * sr)) / sr
    return torch.sin(2 * torch.pi * freq * t)[None, None]


def _condition(wav: torch.Tensor, sr: int = 16000, path: str | None = None, seek: float | None = None) -> WavCondition:
    return WavCondition(wav, torch.tensor([wav.shape[-1]]), [sr], [path], [seek])


def test_without_separation_repeats_to_the_training_length() -> None:
    cond = ChromaStemConditioner(
        output_dim=8, sample_rate=16000, n_chroma=12, radix2_exp=10, duration=2.0, demucs_model=None
    )
    assert cond.chroma_len == 2 * 16000 // 256 + 1
    short = _tone(440.0, 0.5)
    chroma = cond._get_wav_embedding(cond.tokenize(_condition(short)))
    direct = cond.chroma(short)
    assert chroma.shape == (1, cond.chroma_len, 12)
    torch.testing.assert_close(chroma[:, : direct.shape[1]], direct)
    torch.testing.assert_close(chroma[:, direct.shape[1] : 2 * direct.shape[1]], direct)  # periodic repetition
    embeds, mask = cond(cond.tokenize(_condition(short)))
    assert embeds.shape == (1, cond.chroma_len, 8) and bool(mask.all())  # no masking when lengths are matched
    assert chroma[0, 5].argmax().item() == 9  # A
    null = nullify_wav(_condition(short))
    assert cond(cond.tokenize(null))[0].shape == (1, cond.chroma_len, 8)


def test_masking_without_length_matching() -> None:
    cond = ChromaStemConditioner(
        output_dim=4,
        sample_rate=16000,
        n_chroma=12,
        radix2_exp=10,
        duration=2.0,
        match_len_on_eval=False,
        demucs_model=None,
    )
    wav = torch.cat([_tone(440.0, 1.0), _tone(262.0, 1.0)], dim=0)
    x = WavCondition(wav, torch.tensor([16000, 8000]), [16000, 16000], [None, None], [None, None])
    embeds, mask = cond(cond.tokenize(x))
    assert embeds.shape == (2, 63, 4)
    assert mask.sum(1).tolist() == [63, 32]  # ceil(8000 / 256) frames of the second item
    with pytest.raises(ValueError, match="one sample rate"):
        cond(WavCondition(wav, torch.tensor([16000, 8000]), [16000, 32000], [None, None], [None, None]))


def test_eval_wavs_replace_the_batch_in_eval_mode() -> None:
    cond = ChromaStemConditioner(
        output_dim=4, sample_rate=16000, n_chroma=12, radix2_exp=10, duration=1.0, demucs_model=None
    )
    reference = _tone(330.0, 1.0)
    cond.reset_eval_wavs(reference)
    assert cond.has_eval_wavs()
    batch = _condition(torch.cat([_tone(440.0, 1.0)] * 3))
    batch = WavCondition(batch.wav, torch.full((3,), 16000), [16000] * 3, [None] * 3, [None] * 3)
    evaluated = cond.eval()._get_wav_embedding(batch)
    torch.testing.assert_close(evaluated, cond.chroma(reference).repeat(3, 1, 1))
    trained = cond.train()._get_wav_embedding(batch)
    assert trained[0, 10].argmax().item() == 9


def test_cache_stores_whole_file_chroma_and_cuts_segments(tmp_path: Path) -> None:
    sr = 16000
    full = torch.cat([_tone(262.0, 2.0), _tone(440.0, 2.0)], dim=-1)[0]
    sf.write(tmp_path / "song.wav", full[0].numpy(), sr)
    cond = ChromaStemConditioner(
        output_dim=4,
        sample_rate=sr,
        n_chroma=12,
        radix2_exp=10,
        duration=1.0,
        match_len_on_eval=False,
        cache_path=tmp_path / "cache",
        demucs_model=None,
    )
    segment = full[None, :, 2 * sr : 3 * sr]
    x = cond.tokenize(_condition(segment, path=str(tmp_path / "song.wav"), seek=2.0))
    assert len(list((tmp_path / "cache" / "wav").glob("*.pt"))) == 1
    cached = cond._get_wav_embedding(x)
    whole = cond.chroma(full[None])[0]
    start = int(sr / 256 * 2.0)
    torch.testing.assert_close(cached[0], whole[start : start + int(sr / 256)], atol=1e-4, rtol=0)
    assert cached[0, 5].argmax().item() == 9  # the A of the second half
    with pytest.raises(ValueError, match="seek_time"):
        cond._get_wav_embedding(_condition(segment, path=str(tmp_path / "song.wav"), seek=None))


def _save_demucs_folder(folder: Path) -> None:
    """A randomly initialised demucs model (demucs' unit-test HDemucs) in demucs' Hugging Face layout."""
    import json

    from demucs.pretrained import demucs_unittest
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = demucs_unittest()
    args, kwargs = model._init_args_kwargs
    folder.mkdir(parents=True)
    save_file(
        model.state_dict(),
        folder / "abcd1234.safetensors",
        metadata={"klass": "demucs.hdemucs.HDemucs", "args": json.dumps(list(args)), "kwargs": json.dumps(kwargs)},
    )
    (folder / "tiny.yaml").write_text("models: ['abcd1234']\n")


def test_demucs_stems_from_a_local_folder_and_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("demucs")
    import huggingface_hub.constants
    from demucs.apply import apply_model
    from demucs.audio import convert_audio

    _save_demucs_folder(tmp_path / "tiny_demucs")
    cond = ChromaStemConditioner(
        output_dim=4,
        sample_rate=16000,
        n_chroma=12,
        radix2_exp=10,
        duration=1.0,
        match_len_on_eval=False,
        demucs_model=str(tmp_path / "tiny_demucs"),
    )
    assert "demucs" not in dict(cond.named_modules()) and not any("demucs" in k for k in cond.state_dict())
    wav = _tone(440.0, 1.0) + 0.1 * torch.randn(1, 1, 16000, generator=torch.Generator().manual_seed(1))
    random.seed(0)  # demucs' apply_model shifts the input by a random offset (shifts=1, as upstream calls it)
    chroma = cond._get_wav_embedding(cond.tokenize(_condition(wav)))
    demucs = cond.demucs
    random.seed(0)
    stems = apply_model(demucs, convert_audio(wav, 16000, demucs.samplerate, demucs.audio_channels), device="cpu")
    mix = convert_audio(
        stems[:, [demucs.sources.index("vocals"), demucs.sources.index("other")]].sum(1), demucs.samplerate, 16000, 1
    )
    torch.testing.assert_close(chroma, cond.chroma(mix), rtol=0, atol=1e-6)
    # a demucs name resolves through the local Hugging Face cache only
    snapshot = tmp_path / "hub" / "models--someone--HTDemucs-tiny" / "snapshots" / ("1" * 40)
    _save_demucs_folder(snapshot)
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("1" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    (snapshot / "tiny.yaml").rename(snapshot / "htdemucs_tiny.yaml")
    by_name = ChromaStemConditioner(
        output_dim=4, sample_rate=16000, n_chroma=12, radix2_exp=10, duration=1.0, demucs_model="someone/htdemucs_tiny"
    )
    assert by_name.demucs.sources == demucs.sources
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        ChromaStemConditioner(output_dim=4, sample_rate=16000, n_chroma=12, radix2_exp=10, duration=1.0)
    with pytest.raises(FileNotFoundError, match="no_such_dir"):
        ChromaStemConditioner(
            output_dim=4,
            sample_rate=16000,
            n_chroma=12,
            radix2_exp=10,
            duration=1.0,
            demucs_model=str(tmp_path / "no_such_dir"),
        )


def test_eval_wavs_from_a_manifest(tmp_path: Path) -> None:
    from audiocraft.data.audio_dataset import find_audio_files, save_audio_meta

    for i, freq in enumerate([262.0, 440.0]):
        sf.write(tmp_path / f"tone{i}.wav", _tone(freq, 1.5)[0, 0].numpy(), 16000)
    save_audio_meta(tmp_path / "data.jsonl", find_audio_files(tmp_path, minimal=False))
    cond = ChromaStemConditioner(
        output_dim=4,
        sample_rate=16000,
        n_chroma=12,
        radix2_exp=10,
        duration=1.0,
        eval_wavs=str(tmp_path),
        n_eval_wavs=2,
        demucs_model=None,
    )
    assert cond.eval_wavs is not None and cond.eval_wavs.shape == (2, 1, 16000)
    batch = WavCondition(torch.zeros(3, 1, 16000), torch.full((3,), 16000), [16000] * 3, [None] * 3, [None] * 3)
    chroma = cond.eval()._get_wav_embedding(batch)
    assert chroma.shape == (3, cond.chroma_len, 12)
    assert set(chroma[:, 10].argmax(-1).tolist()) <= {0, 9} and torch.count_nonzero(chroma) > 0  # C or A
    with pytest.raises(ValueError, match=f"eval_wavs {tmp_path}"):
        ChromaStemConditioner(
            output_dim=4,
            sample_rate=16000,
            n_chroma=12,
            radix2_exp=10,
            duration=5.0,
            eval_wavs=str(tmp_path),
            n_eval_wavs=2,
            demucs_model=None,
        )
