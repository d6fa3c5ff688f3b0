"""MusicGen / AudioGen inference: upstream's golden fixtures through get_pretrained(folder).generate, output shapes
and lengths of every generation mode (long generation with upstream's window arithmetic), seeds, streamed audio
equal to one-shot audio, melody re-slicing, the sources of get_pretrained and its loading errors."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from audiocraft.conditioners import (
    ChromaStemConditioner,
    ConditionFuser,
    ConditioningAttributes,
    ConditioningProvider,
    JointEmbeddingConditioner,
    LUTConditioner,
    WavCondition,
)
from audiocraft.data.audio_utils import convert_audio
from audiocraft.models import AudioGen, MusicGen, builders
from audiocraft.models.encodec import EncodecModel, InterleaveStereoCompressionModel
from audiocraft.models.genmodel import AudioStreamer
from audiocraft.models.lm import LMModel
from audiocraft.models.loaders import CheckpointError
from audiocraft.modules.codebooks_patterns import DelayedPatternProvider
from audiocraft.modules.seanet import SEANetDecoder, SEANetEncoder
from audiocraft.quantization import ResidualVectorQuantizer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "upstream"
NAMES = ["musicgen_tiny", "musicgen_rope"]


def _meta(name: str) -> dict:
    return json.loads((FIXTURES / name / "meta.json").read_text())


def _descriptions(name: str) -> list[str]:
    return _meta(name)["descriptions"]


@pytest.fixture(scope="module")
def debug_mg() -> MusicGen:
    return MusicGen.get_pretrained("debug", device="cpu")


@pytest.fixture
def short_mg() -> MusicGen:
    """The debug MusicGen with a 1 s window, so that long generation is cheap."""
    mg = MusicGen.get_pretrained("debug", device="cpu")
    return MusicGen("debug", mg.compression_model, mg.lm, max_duration=1.0)


# --- upstream's fixtures


@pytest.mark.parametrize("name", NAMES)
def test_fixture_folder_gives_upstream_tokens_and_audio(name: str) -> None:
    meta = _meta(name)
    mg = MusicGen.get_pretrained(str(FIXTURES / name), device="cpu")
    assert mg.max_duration == 30 and mg.sample_rate == 16000 and mg.frame_rate == 50 and mg.audio_channels == 1
    mg.set_generation_params(**meta["generate"]["params"])
    audio, tokens = mg.generate(meta["descriptions"], return_tokens=True)
    expected = np.load(FIXTURES / name / "greedy.npy")
    expected_audio = np.load(FIXTURES / name / "greedy_audio.npy")
    assert tokens.dtype == torch.int64 and np.array_equal(tokens.numpy(), expected)
    assert audio.shape == expected_audio.shape == (2, 1, 8000)
    np.testing.assert_allclose(audio.numpy(), expected_audio, atol=1e-4, rtol=0)


def test_default_generation_params_are_upstreams(debug_mg: MusicGen) -> None:
    mg = MusicGen.get_pretrained("debug", device="cpu")
    assert mg.duration == 15 and mg.extend_stride == 18 and mg.max_duration == 30
    assert mg.generation_params == {
        "use_sampling": True,
        "temp": 1.0,
        "top_k": 250,
        "top_p": 0.0,
        "cfg_coef": 3.0,
        "two_step_cfg": False,
    }
    mg.set_generation_params()
    assert mg.duration == 30
    mg.set_generation_params(duration=0.2, cfg_coef_beta=5.0)
    assert mg.generation_params["cfg_coef_beta"] == 5.0
    ag = AudioGen.get_pretrained("debug", device="cpu")
    assert ag.duration == 5 and ag.extend_stride == 2 and ag.max_duration == 10 and ag.sample_rate == 16000
    short = MusicGen("debug", mg.compression_model, mg.lm, max_duration=0.4)  # upstream cannot build it (18 > 0.4)
    assert short.duration == 15 and short.extend_stride == 18
    short.set_generation_params(duration=0.5, extend_stride=0.4)
    with pytest.raises(ValueError, match=r"extend_stride \(0.4 s\) must be shorter than max_duration \(0.4 s\)"):
        short.generate(["x"])


def test_cfg_coef_beta_reaches_the_lm_through_generate(debug_mg: MusicGen, monkeypatch: pytest.MonkeyPatch) -> None:
    """set_generation_params(cfg_coef_beta=...) gives LMModel.generate's double CFG (upstream 1.4's MusicGen API):
    the same tokens as calling the LM directly with MusicGen's conditions (description + empty self_wav)."""
    mg = MusicGen("debug", debug_mg.compression_model, debug_mg.lm, max_duration=30)
    mg.set_generation_params(duration=0.3, use_sampling=False, cfg_coef=3.0, cfg_coef_beta=4.0)
    _, tokens = mg.generate(["calm piano", "fast drums"], return_tokens=True)
    attributes, _ = mg._prepare_tokens_and_attributes(["calm piano", "fast drums"], None)
    direct = mg.lm.generate(
        None, attributes, max_gen_len=tokens.shape[-1], use_sampling=False, cfg_coef=3.0, cfg_coef_beta=4.0
    )
    assert torch.equal(tokens, direct)
    plain = mg.lm.generate(None, attributes, max_gen_len=tokens.shape[-1], use_sampling=False, cfg_coef=3.0)
    assert not torch.equal(tokens, plain)
    seen: dict = {}
    generate = LMModel.generate

    @functools.wraps(generate)  # keeps the signature that BaseGenModel inspects
    def spy(self, *args, **kwargs):  # noqa: ANN001, ANN202
        seen.update(kwargs)
        return generate(self, *args, **kwargs)

    monkeypatch.setattr(LMModel, "generate", spy)
    mg.set_generation_params(duration=0.2)
    mg.generate(["x"])
    assert "cfg_coef_beta" not in seen  # None: plain guidance, the LM never sees the key
    mg.set_generation_params(duration=0.2, cfg_coef_beta=2.0)
    mg.generate_unconditional(1)
    assert seen["cfg_coef_beta"] == 2.0


def test_cfg_coef_beta_with_an_lm_without_double_cfg_names_it(
    debug_mg: MusicGen, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A custom LM whose generate has no cfg_coef_beta argument: a clear error instead of a silent plain CFG."""
    generate = LMModel.generate

    def plain_generate(self, prompt, conditions, **kwargs):  # noqa: ANN001, ANN202
        return generate(self, prompt, conditions, **kwargs)

    monkeypatch.setattr(LMModel, "generate", plain_generate)
    mg = MusicGen("debug", debug_mg.compression_model, debug_mg.lm, max_duration=30)
    mg.set_generation_params(duration=0.2, cfg_coef_beta=2.0)
    with pytest.raises(TypeError, match="LMModel.generate has no cfg_coef_beta argument"):
        mg.generate(["x"])
    mg.set_generation_params(duration=0.2)  # None: plain guidance works with that LM
    assert mg.generate(["x"]).shape[0] == 1


# --- shapes and lengths


def test_generate_and_unconditional_shapes(debug_mg: MusicGen) -> None:
    debug_mg.set_generation_params(duration=0.5)
    audio, tokens = debug_mg.generate(["calm piano", None], return_tokens=True, seed=1)
    assert tokens.shape == (2, 4, 12) and audio.shape == (2, 1, 12 * 1280)  # int(0.5 * 25) frames
    torch.testing.assert_close(debug_mg.generate_audio(tokens), audio, atol=1e-6, rtol=0)
    audio, tokens = debug_mg.generate_unconditional(3, return_tokens=True, seed=1)
    assert tokens.shape == (3, 4, 12) and audio.shape == (3, 1, 12 * 1280)


@pytest.mark.parametrize("with_descriptions", [False, True])
def test_continuation_keeps_the_prompt_codes(debug_mg: MusicGen, with_descriptions: bool) -> None:
    debug_mg.set_generation_params(duration=1.0)
    prompt = 0.1 * torch.randn(2, 1, 8000, generator=torch.Generator().manual_seed(0))  # 0.5 s at 16 kHz
    descriptions = ["a", "b"] if with_descriptions else None
    audio, tokens = debug_mg.generate_continuation(prompt, 16000, descriptions, return_tokens=True, seed=0)
    prompt_codes, _ = debug_mg.compression_model.encode(convert_audio(prompt, 16000, 32000, 1))
    assert prompt_codes.shape == (2, 4, 13)
    assert tokens.shape == (2, 4, 25) and audio.shape == (2, 1, 25 * 1280)
    assert torch.equal(tokens[..., :13], prompt_codes)
    with pytest.raises(ValueError, match="prompts"):
        debug_mg.generate_continuation(prompt, 16000, ["only one"])


def test_long_generation_follows_upstream_windows(short_mg: MusicGen) -> None:
    # duration 2.5 s, max_duration 1 s, extend_stride 0.6 s at 25 frames/s: total int(2.5 * 25) = 62 frames,
    # stride int(25 * 0.6) = 15 frames. Windows (upstream's loop): offset 0: 25 frames, no prompt; then prompted
    # with the last 25 - 15 = 10 frames: offset 15 (t 0.6 s), 25 frames; offset 30, 25 frames; offset 45
    # (t 1.8 s): min(2.5 - 1.8, 1) = 0.7 s -> int(17.5) = 17 frames; 25 + 15 + 15 + 7 = 62.
    short_mg.set_generation_params(duration=2.5, extend_stride=0.6)
    calls = []
    generate = short_mg.lm.generate

    def spy(prompt, conditions, **kwargs):
        calls.append((None if prompt is None else prompt.shape[-1], kwargs["max_gen_len"]))
        return generate(prompt, conditions, **kwargs)

    short_mg.lm.generate = spy  # type: ignore[method-assign]
    try:
        audio, tokens = short_mg.generate(["x"], return_tokens=True, seed=3)
    finally:
        del short_mg.lm.generate
    assert calls == [(None, 25), (10, 25), (10, 25), (10, 17)]
    assert tokens.shape == (1, 4, 62) and audio.shape == (1, 1, 62 * 1280)
    short_mg.set_generation_params(duration=1.0)
    first = short_mg.generate(["x"], return_tokens=True, seed=3)[1]
    assert torch.equal(tokens[..., :25], first)  # the first window is a plain generation with the same generator


def test_long_continuation_length(short_mg: MusicGen) -> None:
    short_mg.set_generation_params(duration=1.8, extend_stride=0.5)
    prompt = 0.1 * torch.randn(1, 1, 32000 // 5, generator=torch.Generator().manual_seed(1))  # 5 frames
    audio, tokens = short_mg.generate_continuation(prompt, 32000, return_tokens=True, seed=0)
    assert tokens.shape == (1, 4, 45) and audio.shape == (1, 1, 45 * 1280)
    prompt_codes, _ = short_mg.compression_model.encode(prompt)
    assert torch.equal(tokens[..., :5], prompt_codes)


# --- reproducibility


def test_same_seed_same_audio(debug_mg: MusicGen) -> None:
    debug_mg.set_generation_params(duration=0.6)
    a = debug_mg.generate(["rock", "jazz"], seed=42)
    b = debug_mg.generate(["rock", "jazz"], seed=42)
    c = debug_mg.generate(["rock", "jazz"], seed=43)
    assert torch.equal(a, b) and not torch.equal(a, c)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    first, second = debug_mg.generate_unconditional(2, generator=g1), debug_mg.generate_unconditional(2, generator=g2)
    assert torch.equal(first, second)
    with pytest.raises(ValueError, match="seed or generator"):
        debug_mg.generate(["x"], seed=1, generator=torch.Generator())


def test_seed_does_not_touch_the_global_rng(debug_mg: MusicGen) -> None:
    debug_mg.set_generation_params(duration=0.3)
    torch.manual_seed(0)
    debug_mg.generate(["x"], seed=9)
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(1), after)


# --- streaming output


def _streamed(model, method, *args, chunk_duration: float = 0.2, **kwargs) -> tuple[list[torch.Tensor], torch.Tensor]:
    chunks = list(model.stream(method, *args, chunk_duration=chunk_duration, **kwargs))
    return chunks, method(*args, **kwargs)


def test_stream_equals_one_shot_non_causal_codec(debug_mg: MusicGen) -> None:
    assert not debug_mg.compression_model.causal  # the re-decoding streamer
    debug_mg.set_generation_params(duration=1.0)
    chunks, audio = _streamed(debug_mg, debug_mg.generate, ["a", "b"], seed=0)
    assert len(chunks) >= 4 and all(c.shape[:2] == (2, 1) for c in chunks)
    torch.testing.assert_close(torch.cat(chunks, dim=-1), audio, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_stream_equals_one_shot_causal_codec(name: str) -> None:
    mg = MusicGen.get_pretrained(str(FIXTURES / name), device="cpu")
    assert mg.compression_model.causal  # EnCodec's streaming decoder
    mg.set_generation_params(**_meta(name)["generate"]["params"])
    received: list[torch.Tensor] = []
    mg.set_custom_audio_callback(received.append, chunk_duration=0.1)
    audio = mg.generate(_descriptions(name))
    mg.set_custom_audio_callback(None)
    assert [c.shape[-1] for c in received] == [1600] * 5
    torch.testing.assert_close(torch.cat(received, dim=-1), audio, atol=1e-5, rtol=0)
    np.testing.assert_allclose(
        torch.cat(received, dim=-1).numpy(), np.load(FIXTURES / name / "greedy_audio.npy"), atol=1e-4, rtol=0
    )


def test_stream_of_long_continuation(short_mg: MusicGen) -> None:
    short_mg.set_generation_params(duration=2.2, extend_stride=0.6)
    prompt = 0.1 * torch.randn(1, 1, 6400, generator=torch.Generator().manual_seed(2))
    chunks, audio = _streamed(
        short_mg, short_mg.generate_continuation, prompt, 32000, ["z"], seed=4, chunk_duration=0.3
    )
    torch.testing.assert_close(torch.cat(chunks, dim=-1), audio, atol=1e-5, rtol=0)


def test_stream_raises_the_generation_error(debug_mg: MusicGen) -> None:
    with pytest.raises(ValueError, match="seed or generator"):
        list(debug_mg.stream(debug_mg.generate, ["x"], seed=1, generator=torch.Generator()))
    assert debug_mg._audio_callback is None


def test_streamer_for_the_32khz_architecture() -> None:
    # encodec_musicgen_32khz (model/encodec/encodec_large_nq4_s640): non-causal SEANet, hop 640, 2 LSTM layers.
    torch.manual_seed(0)
    seanet = dict(
        dimension=128,
        n_filters=64,
        ratios=[8, 5, 4, 4],
        lstm=2,
        true_skip=True,
        pad_mode="constant",
        causal=False,
        norm="weight_norm",
    )
    quantizer = ResidualVectorQuantizer(dimension=128, bins=2048, n_q=4, kmeans_init=False)  # random codebooks
    model = EncodecModel(
        SEANetEncoder(**seanet), SEANetDecoder(**seanet), quantizer, frame_rate=50, sample_rate=32000, channels=1
    ).eval()
    codes = torch.randint(0, 2048, (1, 4, 30), generator=torch.Generator().manual_seed(0))
    received: list[torch.Tensor] = []
    streamer = AudioStreamer(model, chunk_frames=7, callback=received.append)
    for start in range(0, 30, 3):
        streamer.push(codes[..., start : start + 3])
    streamer.close()
    with torch.no_grad():
        audio = model.decode(codes)
    torch.testing.assert_close(torch.cat(received, dim=-1), audio, atol=1e-4, rtol=0)


# --- melody


def _melody_musicgen(max_duration: float = 1.0) -> MusicGen:
    torch.manual_seed(0)
    dim = 16
    provider = ConditioningProvider(
        {
            "description": LUTConditioner(n_bins=64, dim=dim, output_dim=dim, tokenizer="noop"),
            "self_wav": ChromaStemConditioner(
                output_dim=dim, sample_rate=32000, n_chroma=12, radix2_exp=10, duration=max_duration, demucs_model=None
            ),
        }
    )
    fuser = ConditionFuser({"cross": ["description"], "prepend": ["self_wav"], "sum": [], "input_interpolate": []})
    lm = LMModel(
        DelayedPatternProvider(n_q=4),
        provider,
        fuser,
        n_q=4,
        card=400,
        dim=dim,
        num_heads=4,
        num_layers=2,
        cross_attention=True,
        causal=True,
    ).eval()
    return MusicGen("melody-test", builders.get_debug_compression_model(), lm, max_duration=max_duration)


@pytest.mark.slow
def test_generate_with_chroma_shapes_and_effect() -> None:
    mg = _melody_musicgen()
    mg.set_generation_params(duration=0.8, use_sampling=False)
    t = torch.arange(16000) / 16000
    melody = torch.stack([torch.sin(2 * torch.pi * 440 * t), torch.sin(2 * torch.pi * 262 * t)])[:, None]
    audio, tokens = mg.generate_with_chroma(["a", "b"], melody, 16000, return_tokens=True)
    assert tokens.shape == (2, 4, 20) and audio.shape == (2, 1, 20 * 1280)
    audio2, tokens2 = mg.generate_with_chroma(["a", "b"], [melody[0], None], 16000, return_tokens=True)
    assert torch.equal(tokens[0], tokens2[0]) and not torch.equal(tokens[1], tokens2[1])
    with pytest.raises(ValueError, match="number of melody wavs"):
        mg.generate_with_chroma(["a"], melody, 16000)


def test_long_generation_reslices_the_melody() -> None:
    mg = _melody_musicgen(max_duration=1.0)
    reference = torch.randn(1, 1, 20000)
    attr = ConditioningAttributes(text={"description": "x"})
    attr.wav["self_wav"] = WavCondition(reference, torch.tensor([20000]), [32000], [None], [None])
    window = mg._window_attributes([attr], time_offset=0.6)[0]
    positions = (torch.arange(19200, 19200 + 32000)) % 20000  # int(0.6 * 32000) onwards, max_duration long
    assert torch.equal(window.wav["self_wav"].wav, reference[..., positions])
    assert window.wav["self_wav"].length.tolist() == [32000]
    assert attr.wav["self_wav"].wav is reference  # the original conditions are not modified


@pytest.mark.slow
def test_long_generation_with_chroma() -> None:
    mg = _melody_musicgen(max_duration=1.0)
    mg.set_generation_params(duration=1.6, extend_stride=0.6)
    audio = mg.generate_with_chroma(["x"], torch.randn(1, 20000), 32000, seed=0)
    assert audio.shape == (1, 1, 40 * 1280)


def test_generate_with_chroma_needs_a_melody_model(debug_mg: MusicGen) -> None:
    with pytest.raises(RuntimeError, match="melody"):
        debug_mg.generate_with_chroma(["x"], torch.zeros(1, 100), 32000)


# --- stereo


def test_stereo_musicgen_through_interleaving() -> None:
    mg = MusicGen.get_pretrained("debug", device="cpu")
    lm = mg.lm
    lm.cfg = OmegaConf.create(
        {
            "dataset": {"segment_duration": 2},
            "compression_model_n_q": 2,
            "interleave_stereo_codebooks": {"use": True, "per_timestep": False},
        }
    )
    try:
        stereo = MusicGen("stereo", builders.get_debug_compression_model(), lm)
    finally:
        del lm.cfg
    assert stereo.audio_channels == 2 and stereo.max_duration == 2
    assert stereo.compression_model.num_codebooks == 4 == lm.n_q
    stereo.set_generation_params(duration=0.4, extend_stride=1)
    audio, tokens = stereo.generate(["x"], return_tokens=True, seed=0)
    assert tokens.shape == (1, 4, 10) and audio.shape == (1, 2, 10 * 1280)
    mono = stereo.compression_model.model
    torch.testing.assert_close(audio[:, :1], mono.decode(tokens[:, 0::2]), atol=1e-6, rtol=0)
    torch.testing.assert_close(audio[:, 1:], mono.decode(tokens[:, 1::2]), atol=1e-6, rtol=0)
    chunks = list(stereo.stream(stereo.generate, ["x"], seed=0, chunk_duration=0.12))
    torch.testing.assert_close(torch.cat(chunks, dim=-1), audio, atol=1e-5, rtol=0)


def test_stereo_interleaved_per_timestep_streams() -> None:
    mono = builders.get_debug_compression_model()
    stereo = InterleaveStereoCompressionModel(mono, per_timestep=True)
    assert stereo.frame_rate == 50 and stereo.num_codebooks == 4 and stereo.channels == 2
    wav = 0.1 * torch.randn(1, 2, 12800, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        codes, scale = stereo.encode(wav)
        left, _ = mono.encode(wav[:, :1])
        right, _ = mono.encode(wav[:, 1:])
    assert scale is None and codes.shape == (1, 4, 20)
    assert torch.equal(codes[..., 0::2], left) and torch.equal(codes[..., 1::2], right)
    received: list[torch.Tensor] = []
    streamer = AudioStreamer(stereo, chunk_frames=3, callback=received.append)
    for start in range(0, 20, 3):  # odd pushes: the streamer decodes whole left/right pairs only
        streamer.push(codes[..., start : start + 3])
    streamer.close()
    with torch.no_grad():
        torch.testing.assert_close(torch.cat(received, dim=-1), stereo.decode(codes), atol=1e-5, rtol=0)


# --- audiogen


def test_audiogen_debug_generates() -> None:
    ag = AudioGen.get_pretrained("debug", device="cpu")
    ag.set_generation_params(duration=0.4)
    audio, tokens = ag.generate(["dog barking"], return_tokens=True, seed=0)
    assert tokens.shape == (1, 4, 10) and audio.shape == (1, 1, 10 * 640)
    assert torch.equal(audio, ag.generate(["dog barking"], seed=0))


# --- sources and errors of get_pretrained


def _hub_cache(root: Path, repo_id: str, source: Path) -> None:
    """A Hugging Face cache entry for ``repo_id`` holding the files of ``source`` (the layout hf_hub_download reads)."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for name in ("state_dict.bin", "compression_state_dict.bin"):
        shutil.copy(source / name, snapshot / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)


def test_hub_repo_from_the_offline_cache_and_deprecated_names(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("huggingface_hub")
    _hub_cache(tmp_path, "facebook/musicgen-small", FIXTURES / "musicgen_tiny")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("AUDIOCRAFT_CACHE_DIR", str(tmp_path))
    with pytest.warns(UserWarning, match="facebook/musicgen-small"):
        mg = MusicGen.get_pretrained("small", device="cpu")
    assert mg.name == "facebook/musicgen-small" and mg.lm.n_q == 4
    with pytest.raises(CheckpointError, match="facebook/musicgen-medium.*HF_HUB_OFFLINE"):
        MusicGen.get_pretrained("facebook/musicgen-medium", device="cpu")


def test_pretrained_prefix(tmp_path: Path, monkeypatch) -> None:
    shutil.copytree(FIXTURES / "musicgen_tiny", tmp_path / "mine")
    monkeypatch.setenv("AUDIOCRAFT_PRETRAINED_DIR", str(tmp_path))
    mg = MusicGen.get_pretrained("//pretrained/mine", device="cpu")
    assert mg.sample_rate == 16000


def test_folder_without_state_dict(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "musicgen_tiny" / "compression_state_dict.bin", tmp_path)
    with pytest.raises(CheckpointError, match=r"state_dict\.bin does not exist.*export_lm"):
        MusicGen.get_pretrained(str(tmp_path), device="cpu")


def test_checkpoint_of_another_architecture(tmp_path: Path) -> None:
    pkg = torch.load(FIXTURES / "musicgen_tiny" / "state_dict.bin", weights_only=True)
    cfg = OmegaConf.create(pkg["xp.cfg"])
    cfg.transformer_lm.num_layers = 3  # the weights are those of a 2-layer LM
    torch.save({**pkg, "xp.cfg": OmegaConf.to_yaml(cfg)}, tmp_path / "state_dict.bin")
    shutil.copy(FIXTURES / "musicgen_tiny" / "compression_state_dict.bin", tmp_path)
    with pytest.raises(CheckpointError, match=r"state_dict\.bin.*missing keys.*transformer\.layers\.2.*re-export"):
        MusicGen.get_pretrained(str(tmp_path), device="cpu")


def test_compression_checkpoint_as_language_model(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "musicgen_tiny" / "compression_state_dict.bin", tmp_path / "state_dict.bin")
    shutil.copy(FIXTURES / "musicgen_tiny" / "compression_state_dict.bin", tmp_path)
    with pytest.raises(CheckpointError, match="not a MusicGen language model"):
        MusicGen.get_pretrained(str(tmp_path), device="cpu")


def test_audiogen_refuses_melody_checkpoints(tmp_path: Path, monkeypatch) -> None:
    mg = _melody_musicgen()
    monkeypatch.setattr(
        "audiocraft.models.audiogen.load_pretrained_parts", lambda name, device, kind: (mg.compression_model, mg.lm)
    )
    with pytest.raises(ValueError, match="self_wav"):
        AudioGen.get_pretrained("anything", device="cpu")


def test_debug_models_need_no_network_and_no_extra() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mg = MusicGen.get_pretrained("debug", device="cpu")
    mg.set_generation_params(duration=0.2)
    assert mg.generate(["x"], seed=0).shape == (1, 1, 5 * 1280)


def test_text_encoder_not_available_offline(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    pkg = torch.load(FIXTURES / "musicgen_tiny" / "state_dict.bin", weights_only=True)
    cfg = OmegaConf.create(pkg["xp.cfg"])
    cfg.conditioners.description = {"model": "t5", "t5": {"name": "h7-absent/t5-nowhere", "finetune": False}}
    torch.save({**pkg, "xp.cfg": OmegaConf.to_yaml(cfg)}, tmp_path / "state_dict.bin")
    shutil.copy(FIXTURES / "musicgen_tiny" / "compression_state_dict.bin", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"h7-absent/t5-nowhere.*never downloaded.*hf download"):
        MusicGen.get_pretrained(str(tmp_path), device="cpu")


def test_debug_generation_imports_no_extra() -> None:
    code = (
        "import sys\n"
        "from audiocraft.models import AudioGen, MusicGen\n"
        "for cls in (MusicGen, AudioGen):\n"
        "    model = cls.get_pretrained('debug', device='cpu')\n"
        "    model.set_generation_params(duration=0.1)\n"
        "    model.generate(['x'], seed=0)\n"
        "heavy = ('transformers', 'huggingface_hub', 'demucs', 'spacy', 'laion_clap', 'hydra', 'dora', 'flashy')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


class _TextHashJointEmbedding(JointEmbeddingConditioner):
    """A joint-embedding conditioner whose text embedding is a fixed random vector per text (no CLAP download);
    it records the conditions it receives."""

    def __init__(self, dim: int, output_dim: int) -> None:
        super().__init__(dim=dim, output_dim=output_dim, device="cpu", attribute="description", quantize=False)
        self.table = torch.nn.Embedding(32, dim)
        self.seen: list[list[str | None]] = []

    def _get_embed(self, x):
        self.seen.append(list(x.text))
        ids = torch.tensor([0 if t is None else 1 + sum(t.encode()) % 31 for t in x.text])
        empty = torch.tensor([i for i, t in enumerate(x.text) if t is None], dtype=torch.long)
        return self.table(ids)[:, None], empty


def test_generate_fills_joint_embed_with_the_descriptions() -> None:
    """A CLAP-style MusicGen generates from text: the descriptions reach the joint-embedding conditioner (and
    their nullified copies for guidance). Upstream never fills `joint_embed` in generate: it cannot run."""
    torch.manual_seed(0)
    dim = 16
    joint = _TextHashJointEmbedding(dim=8, output_dim=dim)
    provider = ConditioningProvider({"description": joint})
    fuser = ConditionFuser({"cross": ["description"], "prepend": [], "sum": [], "input_interpolate": []})
    lm = LMModel(
        DelayedPatternProvider(n_q=4),
        provider,
        fuser,
        n_q=4,
        card=400,
        dim=dim,
        num_heads=4,
        num_layers=2,
        cross_attention=True,
        causal=True,
    ).eval()
    mg = MusicGen("clap-test", builders.get_debug_compression_model(), lm, max_duration=1.0)
    mg.set_generation_params(duration=0.2, use_sampling=False)
    tokens_a = mg.generate(["rock", "jazz"], return_tokens=True)[1]
    assert ["rock", "jazz", None, None] in joint.seen  # conditioned and nullified halves of one CFG batch
    tokens_b = mg.generate(["jazz", "rock"], return_tokens=True)[1]
    assert torch.equal(tokens_a[0], tokens_b[1]) and torch.equal(tokens_a[1], tokens_b[0])
    assert not torch.equal(tokens_a[0], tokens_a[1])  # the text changes the output
