"""The shared reader of laion-CLAP checkpoints (layer: audiocraft-data, public; torch only).

Upstream AudioCraft runs the ``laion_clap`` package, which pins ``numpy<2`` and cannot be installed with this
project's pins; we deliberately run the same network through ``transformers.ClapModel`` instead. This module holds
what turns one of laion's own checkpoints (e.g. ``music_audioset_epoch_15_esc_90.14.pt``:
``{"state_dict": {"module.audio_branch...": ...}}``) into that model, without importing transformers: the caller
(the CLAP metric of audiocraft-metrics, the CLAP conditioner of audiocraft-conditioners, each behind its own
``[clap]`` extra) passes the imported ``transformers`` module to :class:`LaionClapEmbedder`.

- :func:`convert_laion_state_dict` maps laion's keys to transformers' module names and sets apart laion's audio front
  end (STFT kernels and mel filterbank stored in the checkpoint: transformers' ``ClapFeatureExtractor`` computes a
  slightly different spectrogram in numpy, so :class:`LaionAudioFrontEnd` computes laion's own from those tensors).
- What the state dict does not tell (hop size, HTS-AT window and head counts...) comes from
  :class:`ClapArchitecture`, looked up by laion's architecture name (``HTSAT-tiny``, ``HTSAT-base``, ``HTSAT-large``).
- :class:`LaionClapEmbedder` is the embedder both callers use: audio and text embeddings that match laion-clap 1.1.7
  within 1e-4 (tested in audiocraft-metrics on a tiny model made with it, and in audiocraft-conditioners).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import torch
from torch import nn

__all__ = [
    "CLAP_ARCHITECTURES",
    "ClapArchitecture",
    "LaionAudioFrontEnd",
    "LaionClapEmbedder",
    "clap_architecture",
    "clap_config_kwargs",
    "convert_laion_state_dict",
    "read_laion_checkpoint",
    "roberta_tokenizer",
]


@dataclass(frozen=True)
class ClapArchitecture:
    """Sizes of a LAION-CLAP model (HTS-AT audio encoder, RoBERTa text encoder) that its state dict does not hold.

    Defaults are laion-clap's ``HTSAT-tiny`` with the ``roberta`` text branch; mel bins, FFT size, text sizes and
    the joint embedding size are read from the checkpoint.
    """

    hop_size: int = 480
    max_samples: int = 480_000  # laion embeds 10 s: shorter audio is repeated then zero-padded, longer is cropped
    spec_size: int = 256
    patch_size: int = 4
    patch_stride: tuple[int, int] = (4, 4)
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    window_size: int = 8
    text_heads: int = 12
    text_layer_norm_eps: float = 1e-5


# laion-clap's `create_htsat_model` and model_configs/*.json (all with the roberta-base text branch).
CLAP_ARCHITECTURES = MappingProxyType(
    {
        "HTSAT-tiny": ClapArchitecture(),
        "HTSAT-base": ClapArchitecture(embed_dim=128, depths=(2, 2, 12, 2)),
        "HTSAT-large": ClapArchitecture(embed_dim=256, depths=(2, 2, 12, 2)),
    }
)
"""The laion-CLAP audio architectures by name (read-only mapping)."""
SAMPLE_RATE = 48000  # laion-clap's audio rate

_FRONT_END = MappingProxyType(
    {
        "conv_real": "audio_branch.spectrogram_extractor.stft.conv_real.weight",
        "conv_imag": "audio_branch.spectrogram_extractor.stft.conv_imag.weight",
        "melW": "audio_branch.logmel_extractor.melW",
    }
)
# Tensors laion keeps that the embedding never uses (training heads, buffers transformers recomputes).
_UNUSED = re.compile(
    r"(audio|text)_transform\.|audio_branch\.(tscam_conv|head)\.|.*\.attn_mask$"
    r"|text_branch\.embeddings\.position_ids$"
)
_DERIVED_BUFFERS = frozenset(["text_model.embeddings.position_ids", "text_model.embeddings.token_type_ids"])
_AUDIO_RENAMES = (
    ("attn.proj.", "attention.output.dense."),
    ("attn.", "attention.self."),
    ("mlp.fc1.", "intermediate.dense."),
    ("mlp.fc2.", "output.dense."),
    ("norm1.", "layernorm_before."),
    ("norm2.", "layernorm_after."),
    ("bn0.", "batch_norm."),
)


def clap_architecture(model_arch: str | ClapArchitecture) -> ClapArchitecture:
    """The :class:`ClapArchitecture` of laion's architecture name (or ``model_arch`` itself).

    Raises:
        ValueError: an unknown name, naming the known ones.
    """
    if isinstance(model_arch, ClapArchitecture):
        return model_arch
    if model_arch not in CLAP_ARCHITECTURES:
        raise ValueError(f"CLAP model_arch={model_arch!r}; expected one of {sorted(CLAP_ARCHITECTURES)}")
    return CLAP_ARCHITECTURES[model_arch]


def read_laion_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of a laion-clap checkpoint file (``{"state_dict": ...}`` or a bare state dict).

    Loaded with ``weights_only=True``, on CPU.

    Raises:
        FileNotFoundError: no such file (nothing is downloaded at run time).
        ValueError: the file does not load, or does not hold a state dict; naming the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"CLAP weights not found: {path} (nothing is downloaded at run time)")
    try:
        pkg = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"could not load CLAP weights from {path}: {exc}") from exc
    state = pkg.get("state_dict", pkg) if isinstance(pkg, dict) else pkg
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a laion-clap state dict")
    return state


def convert_laion_state_dict(
    state: dict[str, torch.Tensor],
    source: str = "the CLAP checkpoint",
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split a laion-clap state dict into ``transformers.ClapModel`` weights and laion's audio front end.

    Returns:
        ``(model_state, front_end)``: the first loads strictly into ``ClapModel``; the second holds the STFT kernels
        (``conv_real``, ``conv_imag``: ``[n_fft // 2 + 1, 1, n_fft]``) and the mel filterbank ``melW``.

    Raises:
        ValueError: naming ``source`` and the key, for a key outside laion's layout or a missing front-end tensor.
    """
    state = {k.removeprefix("module."): v for k, v in state.items()}
    missing = [k for k in _FRONT_END.values() if k not in state]
    if missing:
        raise ValueError(f"{source} is not a laion-clap HTS-AT checkpoint: missing {missing}")
    front_end = {name: state[key] for name, key in _FRONT_END.items()}
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key in _FRONT_END.values() or _UNUSED.match(key):
            continue
        if key.startswith("text_branch."):
            out["text_model." + key.removeprefix("text_branch.")] = value
        elif key.startswith("audio_branch."):
            new = key.removeprefix("audio_branch.")
            for old, repl in _AUDIO_RENAMES:
                new = new.replace(old, repl)
            if new.endswith(("attention.self.qkv.weight", "attention.self.qkv.bias")):
                for name, part in zip(("query", "key", "value"), value.chunk(3, dim=0)):
                    out["audio_model.audio_encoder." + new.replace("qkv", name)] = part
            else:
                out["audio_model.audio_encoder." + new] = value
        elif match := re.fullmatch(r"(text|audio)_projection\.([02])\.(weight|bias)", key):
            out[f"{match[1]}_projection.linear{1 if match[2] == '0' else 2}.{match[3]}"] = value
        elif key in ("logit_scale_a", "logit_scale_t"):
            out[key] = value
        else:
            raise ValueError(f"{source}: unexpected key {key!r} for laion-clap's layout")
    return out, front_end


def clap_config_kwargs(state: dict[str, torch.Tensor], arch: ClapArchitecture) -> dict[str, Any]:
    """Arguments of ``transformers.ClapConfig`` for a converted state dict (sizes from its shapes) and ``arch``."""
    text_layers = {int(m[1]) for k in state if (m := re.match(r"text_model\.encoder\.layer\.(\d+)\.", k))}
    projection_dim = state["audio_projection.linear1.weight"].shape[0]
    text = dict(
        vocab_size=state["text_model.embeddings.word_embeddings.weight"].shape[0],
        hidden_size=state["text_model.embeddings.word_embeddings.weight"].shape[1],
        num_hidden_layers=len(text_layers),
        num_attention_heads=arch.text_heads,
        intermediate_size=state["text_model.encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=state["text_model.embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=state["text_model.embeddings.token_type_embeddings.weight"].shape[0],
        layer_norm_eps=arch.text_layer_norm_eps,
        projection_dim=projection_dim,
    )
    audio = dict(
        num_mel_bins=state["audio_model.audio_encoder.batch_norm.weight"].shape[0],
        spec_size=arch.spec_size,
        patch_size=arch.patch_size,
        patch_stride=list(arch.patch_stride),
        patch_embeds_hidden_size=arch.embed_dim,
        depths=list(arch.depths),
        num_attention_heads=list(arch.num_heads),
        window_size=arch.window_size,
        hidden_size=arch.embed_dim * 2 ** (len(arch.depths) - 1),
        projection_dim=projection_dim,
        enable_fusion=False,
    )
    return dict(text_config=text, audio_config=audio, projection_dim=projection_dim)


def roberta_tokenizer(transformers: ModuleType, tokenizer_path: str | Path | None = None) -> Any:
    """laion-clap's RoBERTa tokenizer, from ``tokenizer_path`` or ``roberta-base`` in the local Hugging Face cache.

    Raises:
        FileNotFoundError: no ``vocab.json`` + ``merges.txt`` there (never downloaded).
    """
    if tokenizer_path is None:
        # Resolve the cached snapshot ourselves: `from_pretrained(repo_id, local_files_only=True)` still opens a
        # connection (huggingface_hub's user-agent registry) unless HF_HUB_OFFLINE is set.
        from huggingface_hub import try_to_load_from_cache  # installed with transformers

        for repo in ("roberta-base", "FacebookAI/roberta-base"):
            found = try_to_load_from_cache(repo, "vocab.json")
            if isinstance(found, str):
                tokenizer_path = Path(found).parent
                break
        else:
            raise FileNotFoundError(
                "RoBERTa tokenizer not found locally (roberta-base is not in the Hugging Face "
                "cache); pass tokenizer_path= to a folder with vocab.json and merges.txt"
            )
    folder = Path(tokenizer_path)
    if not all((folder / name).is_file() for name in ("vocab.json", "merges.txt")):
        raise FileNotFoundError(f"RoBERTa tokenizer not found in {folder} (expected vocab.json and merges.txt)")
    return transformers.RobertaTokenizer.from_pretrained(str(folder), local_files_only=True)


class LaionAudioFrontEnd(nn.Module):
    """laion's audio pipeline before HTS-AT (non-fusion), from the tensors stored in the checkpoint.

    Audio ``[B, T]`` at 48 kHz is made ``arch.max_samples`` long (repeated then zero-padded if shorter; if longer, a
    random crop as laion does, drawn from this module's own seeded generator), then turned into the log-mel
    spectrogram of torchlibrosa (centred reflect-padded STFT with the stored kernels, stored mel filterbank, dB).

    Args:
        front_end: ``conv_real``, ``conv_imag`` and ``melW`` of :func:`convert_laion_state_dict`.
        arch: Hop size and length.
        seed: Seed of the crop position.
    """

    stft_real: torch.Tensor
    stft_imag: torch.Tensor
    mel_filters: torch.Tensor

    def __init__(self, front_end: dict[str, torch.Tensor], arch: ClapArchitecture, seed: int = 0) -> None:
        super().__init__()
        self.hop_size = arch.hop_size
        self.max_samples = arch.max_samples
        self.register_buffer("stft_real", front_end["conv_real"], persistent=False)
        self.register_buffer("stft_imag", front_end["conv_imag"], persistent=False)
        self.register_buffer("mel_filters", front_end["melW"], persistent=False)
        self.generator = torch.Generator().manual_seed(seed)

    def fit_length(self, wav: torch.Tensor) -> torch.Tensor:
        """Laion's ``get_audio_features`` (non-fusion): ``[B, T]`` -> ``[B, max_samples]``."""
        size, length = self.max_samples, wav.shape[-1]
        if length > size:
            start = int(torch.randint(0, length - size + 1, (1,), generator=self.generator))
            return wav[:, start : start + size]
        if length < size:
            wav = wav.repeat(1, size // length)
            wav = nn.functional.pad(wav, (0, size - wav.shape[-1]))
        return wav

    def log_mel(self, wav: torch.Tensor) -> torch.Tensor:
        """Laion's front end (torchlibrosa): ``[B, T]`` -> ``[B, 1, frames, mel_bins]``."""
        n_fft = self.stft_real.shape[-1]
        x = nn.functional.pad(wav[:, None], (n_fft // 2, n_fft // 2), mode="reflect")
        real = nn.functional.conv1d(x, self.stft_real, stride=self.hop_size)[:, None].transpose(2, 3)
        imag = nn.functional.conv1d(x, self.stft_imag, stride=self.hop_size)[:, None].transpose(2, 3)
        mel = torch.matmul(real**2 + imag**2, self.mel_filters)
        return 10.0 * torch.log10(torch.clamp(mel, min=1e-10))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """HTS-AT input features ``[B, 1, frames, mel_bins]`` of 48 kHz mono audio ``[B, T]``."""
        return self.log_mel(self.fit_length(wav))


class LaionClapEmbedder(nn.Module):
    """LAION-CLAP audio and text embeddings from a laion checkpoint, on ``transformers.ClapModel``.

    The model's state dict is ``model.*`` (transformers' names); the front end's buffers are not saved.

    Args:
        transformers: The imported ``transformers`` module (the caller imports it, behind its own extra).
        model_path: laion-clap checkpoint (e.g. ``music_audioset_epoch_15_esc_90.14.pt``).
        model_arch: laion's audio architecture name (``HTSAT-tiny``, ``HTSAT-base``, ``HTSAT-large``) or a
            :class:`ClapArchitecture`.
        enable_fusion: Must be False: laion's fusion checkpoints are not supported.
        tokenizer_path: Local RoBERTa tokenizer folder; default: ``roberta-base`` from the local HF cache.
        seed: Seed of the crop position for audio longer than 10 s.

    Raises:
        ValueError: fusion, an unknown architecture, or weights that do not fit it (naming the file).
        FileNotFoundError: missing checkpoint or tokenizer.
    """

    sample_rate = SAMPLE_RATE
    enable_fusion = False  # laion's fusion checkpoints are refused

    def __init__(
        self,
        transformers: ModuleType,
        model_path: str | Path,
        model_arch: str | ClapArchitecture = "HTSAT-tiny",
        enable_fusion: bool = False,
        tokenizer_path: str | Path | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if enable_fusion:
            raise ValueError(
                "CLAP with enable_fusion=True (laion's fusion checkpoints) is not supported; use a "
                "non-fusion checkpoint such as music_audioset_epoch_15_esc_90.14.pt"
            )
        self.arch = clap_architecture(model_arch)
        path = Path(model_path)
        state, front_end = convert_laion_state_dict(read_laion_checkpoint(path), str(path))
        try:
            self.model = transformers.ClapModel(transformers.ClapConfig(**clap_config_kwargs(state, self.arch)))
            missing, unexpected = self.model.load_state_dict(state, strict=False)
        except (KeyError, ValueError, RuntimeError) as exc:  # sizes that contradict the architecture
            raise ValueError(f"{path} does not fit CLAP {self.arch}: {exc}") from exc
        missing = [k for k in missing if k not in _DERIVED_BUFFERS]  # constants the model builds itself
        if missing or unexpected:
            raise ValueError(
                f"{path} does not fit CLAP {self.arch}: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(unexpected)[:5]}"
            )
        self.model.eval()
        self.front_end = LaionAudioFrontEnd(front_end, self.arch, seed)
        self.embedding_dim = int(state["audio_projection.linear2.weight"].shape[0])
        self.tokenizer = roberta_tokenizer(transformers, tokenizer_path)

    def embed_audio(self, wav: torch.Tensor) -> torch.Tensor:
        """Audio embeddings ``[B, D]`` (unit norm) of 48 kHz mono audio ``[B, T]``."""
        return self.model.get_audio_features(input_features=self.front_end(wav)).pooler_output

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """Text embeddings ``[B, D]`` (unit norm); RoBERTa tokens padded to 77, as laion-clap's users do."""
        tokens = self.tokenizer(texts, padding="max_length", truncation=True, max_length=77, return_tensors="pt")
        device = self.front_end.mel_filters.device
        return self.model.get_text_features(
            input_ids=tokens["input_ids"].to(device), attention_mask=tokens["attention_mask"].to(device)
        ).pooler_output
