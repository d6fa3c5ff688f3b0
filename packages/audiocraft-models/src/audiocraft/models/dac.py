"""Descript's DAC codec as a CompressionModel, built on ``transformers.DacModel`` (layer: audiocraft-models, models).

Extra ``[dac]`` (transformers, imported only when a model is built). Upstream AudioCraft wraps descript's own ``dac``
package; that package needs ``descript-audiotools``, which pins ``protobuf<3.20`` and cannot be installed with this
project's pins. We deliberately build the same network from ``transformers.DacModel`` instead, and load descript's
original weight files into it: :func:`convert_descript_state_dict` maps descript's state-dict layout (weight-normed
convolutions inside ``nn.Sequential`` blocks) to transformers' module names, folding each weight norm into a plain
weight exactly as descript's forward computes it, so codes and audio match the original model (tested against a
fixture made with descript-audio-codec 1.0.0).

Inference only, and nothing is downloaded: ``DAC("44khz")`` reads the file that descript's package downloads
(``~/.cache/descript/dac/weights_44khz_8kbps_0.0.1.pth``, likewise for 24 and 16 kHz), else the Hugging Face cache
(``descript/dac_44khz``, offline); ``weights_path=`` takes a descript weights file or a local transformers folder.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch

from ..quantization import QuantizedResult
from ..quantization.vq import check_codes
from .encodec import CompressionModel

__all__ = [
    "DAC",
    "convert_descript_state_dict",
    "dac_config_from_descript",
    "descript_weights_path",
    "load_descript_dac",
]

# (model_type) -> tag of descript's latest 8 kbps release (descript's `dac.utils.__MODEL_LATEST_TAGS__`).
DESCRIPT_TAGS = MappingProxyType({"44khz": "0.0.1", "24khz": "0.0.4", "16khz": "0.0.5"})
HUB_REPOS = MappingProxyType(
    {"44khz": "descript/dac_44khz", "24khz": "descript/dac_24khz", "16khz": "descript/dac_16khz"}
)


def _transformers() -> Any:
    try:
        return importlib.import_module("transformers")
    except ImportError as exc:
        raise ImportError("the DAC model needs `transformers`: pip install 'audiocraft-models[dac]'") from exc


def descript_weights_path(model_type: str) -> Path:
    """Where descript's ``dac.utils.download`` stores the weights of ``model_type`` (44khz, 24khz or 16khz)."""
    if model_type not in DESCRIPT_TAGS:
        raise ValueError(f"DAC model_type={model_type!r}; expected one of {sorted(DESCRIPT_TAGS)}")
    return Path.home() / ".cache" / "descript" / "dac" / f"weights_{model_type}_8kbps_{DESCRIPT_TAGS[model_type]}.pth"


def dac_config_from_descript(kwargs: dict[str, Any], source: str = "the DAC weights") -> Any:
    """``transformers.DacConfig`` of descript's constructor arguments (``metadata["kwargs"]`` of a weights file).

    Raises:
        ValueError: for an architecture transformers' DacModel cannot express (naming the key and ``source``).
    """
    enc_rates = list(kwargs.get("encoder_rates", [2, 4, 8, 8]))
    dec_rates = list(kwargs.get("decoder_rates", [8, 8, 4, 2]))
    encoder_dim = int(kwargs.get("encoder_dim", 64))
    latent_dim = kwargs.get("latent_dim")
    codebook_dim = kwargs.get("codebook_dim", 8)
    if dec_rates != enc_rates[::-1]:
        raise ValueError(f"{source}: decoder_rates={dec_rates} must be encoder_rates={enc_rates} reversed")
    if latent_dim is not None and int(latent_dim) != encoder_dim * 2 ** len(enc_rates):
        raise ValueError(
            f"{source}: latent_dim={latent_dim} must be encoder_dim * 2 ** len(encoder_rates) = "
            f"{encoder_dim * 2 ** len(enc_rates)}"
        )
    if not isinstance(codebook_dim, int):
        raise ValueError(f"{source}: codebook_dim={codebook_dim!r} must be one int (per-codebook sizes unsupported)")
    return _transformers().DacConfig(
        encoder_hidden_size=encoder_dim,
        downsampling_ratios=enc_rates,
        decoder_hidden_size=int(kwargs.get("decoder_dim", 1536)),
        n_codebooks=int(kwargs.get("n_codebooks", 9)),
        codebook_size=int(kwargs.get("codebook_size", 1024)),
        codebook_dim=codebook_dim,
        sampling_rate=int(kwargs.get("sample_rate", 44100)),
    )


def _fold_weight_norm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Replace each ``weight_g``/``weight_v`` pair (or parametrization pair) by the weight it stands for."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for g_suffix, v_suffix in (
            ("weight_g", "weight_v"),
            ("parametrizations.weight.original0", "parametrizations.weight.original1"),
        ):
            if key.endswith(v_suffix):
                break
            if key.endswith(g_suffix):
                prefix = key[: -len(g_suffix)]
                # What torch.nn.utils.weight_norm computes before each forward (dim=0, descript's setting).
                out[prefix + "weight"] = torch._weight_norm(state[prefix + v_suffix], value, 0)
                break
        else:
            out[key] = value
    return out


# descript's nn.Sequential indices -> transformers' module names: inside a residual unit, and inside one encoder or
# decoder block (the ``res_unit`` entries are residual units themselves).
_RESIDUAL = MappingProxyType({"0": "snake1", "1": "conv1", "2": "snake2", "3": "conv2"})
_ENCODER_BLOCK = MappingProxyType({"0": "res_unit1", "1": "res_unit2", "2": "res_unit3", "3": "snake1", "4": "conv1"})
_DECODER_BLOCK = MappingProxyType({"0": "snake1", "1": "conv_t1", "2": "res_unit1", "3": "res_unit2", "4": "res_unit3"})


def _sequential_child(rest: str, names: MappingProxyType) -> tuple[str, str]:
    match = re.fullmatch(r"block\.(\d)\.(.+)", rest)
    if not match or match[1] not in names:
        raise KeyError(rest)
    return names[match[1]], match[2]


def _codec_key(index: int, rest: str, n_blocks: int, block_names: MappingProxyType) -> str:
    """Transformers' key (below ``encoder.``/``decoder.``) of descript's ``<index>.<rest>`` in the top Sequential."""
    ends = {0: "conv1", n_blocks + 1: "snake1", n_blocks + 2: "conv2"}
    if index in ends:
        return f"{ends[index]}.{rest}"
    if not 1 <= index <= n_blocks:
        raise KeyError(rest)
    name, sub = _sequential_child(rest, block_names)
    if name.startswith("res_unit"):
        inner, param = _sequential_child(sub, _RESIDUAL)
        sub = f"{inner}.{param}"
    return f"block.{index - 1}.{name}.{sub}"


def convert_descript_state_dict(
    state: dict[str, torch.Tensor], n_blocks: int, source: str = "the DAC weights"
) -> dict[str, torch.Tensor]:
    """Map descript's ``dac.DAC`` state dict to ``transformers.DacModel`` keys, folding the weight norms.

    Args:
        state: descript's state dict (``encoder.block.*``, ``decoder.model.*``, ``quantizer.quantizers.*``).
        n_blocks: number of encoder (= decoder) strides.
        source: name of the file, for error messages.

    Raises:
        ValueError: naming the first key that is not part of descript's layout.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in _fold_weight_norm(state).items():
        match = re.fullmatch(r"(encoder\.block|decoder\.model)\.(\d+)\.(.+)", key)
        try:
            if key.startswith("quantizer.quantizers."):
                out[key] = value
            elif match and match[1] == "encoder.block":
                out["encoder." + _codec_key(int(match[2]), match[3], n_blocks, _ENCODER_BLOCK)] = value
            elif match:
                out["decoder." + _codec_key(int(match[2]), match[3], n_blocks, _DECODER_BLOCK)] = value
            else:
                raise KeyError(key)
        except (KeyError, ValueError):
            raise ValueError(f"{source}: unexpected key {key!r} for descript's DAC layout") from None
    return out


def load_descript_dac(path: str | Path) -> Any:
    """A ``transformers.DacModel`` holding descript's weights file ``path`` (``{"state_dict", "metadata"}``).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if it is not a descript weights file or does not fit the model (names the keys).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DAC weights not found: {path} (nothing is downloaded at run time)")
    try:
        pkg = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"could not read DAC weights {path}: {exc}") from exc
    if not isinstance(pkg, dict) or "state_dict" not in pkg or "kwargs" not in pkg.get("metadata", {}):
        raise ValueError(
            f"{path} is not a descript DAC weights file (expected keys 'state_dict' and 'metadata': {{'kwargs': ...}})"
        )
    config = dac_config_from_descript(pkg["metadata"]["kwargs"], str(path))
    model = _transformers().DacModel(config)
    state = convert_descript_state_dict(pkg["state_dict"], len(config.downsampling_ratios), str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit the DAC model: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    return model


def _load_default(model_type: str, cache_dir: str | Path | None) -> Any:
    descript_file = descript_weights_path(model_type)
    if descript_file.is_file():
        return load_descript_dac(descript_file)
    transformers = _transformers()
    # Resolve the cached snapshot ourselves: `from_pretrained(repo_id, local_files_only=True)` still opens a
    # connection (huggingface_hub fetches a registry for its user agent) unless HF_HUB_OFFLINE is set.
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(
        HUB_REPOS[model_type], "config.json", cache_dir=str(cache_dir) if cache_dir is not None else None
    )
    if not isinstance(config, str):
        raise FileNotFoundError(
            f"DAC {model_type} weights not found locally (nothing is downloaded at run time): put descript's "
            f"weights file at {descript_file}, or {HUB_REPOS[model_type]} in the Hugging Face cache, or pass "
            "weights_path="
        )
    return transformers.DacModel.from_pretrained(str(Path(config).parent), local_files_only=True)


class DAC(CompressionModel):
    """Descript Audio Codec, for encoding and decoding only (upstream's ``DAC`` wrapper, on transformers).

    As upstream, ``encode`` does not pad the input to a multiple of the hop length (descript's ``compress`` does).

    Args:
        model_type: ``44khz``, ``24khz`` or ``16khz``: which published model to find locally.
        model: an already built ``transformers.DacModel`` (then nothing is read).
        weights_path: a descript weights file (``weights_*.pth``) or a local transformers folder of a DacModel.
        cache_dir: Hugging Face cache folder to look in (default: the hub's own).
    """

    def __init__(
        self,
        model_type: str = "44khz",
        model: Any | None = None,
        weights_path: str | Path | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        super().__init__()
        if model is None and weights_path is not None:
            path = Path(weights_path)
            if path.is_dir():
                model = _transformers().DacModel.from_pretrained(str(path), local_files_only=True)
            else:
                model = load_descript_dac(path)
        elif model is None:
            if model_type not in DESCRIPT_TAGS:
                raise ValueError(f"DAC model_type={model_type!r}; expected one of {sorted(DESCRIPT_TAGS)}")
            model = _load_default(model_type, cache_dir)
        self.model = model
        self.n_quantizers = self.total_codebooks
        self.model.eval()

    def forward(self, x: torch.Tensor) -> QuantizedResult:
        """Not supported: DAC is wrapped for inference only."""
        raise NotImplementedError("training through the DAC wrapper is not supported")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Audio [B, 1, T] -> (codes [B, num_codebooks, T // hop], None)."""
        if x.dim() != 3 or x.shape[1] != 1:
            raise ValueError(f"DAC expects mono audio [B, 1, T], got shape {tuple(x.shape)}")
        codes = self.model.encode(x, n_quantizers=self.n_quantizers, return_dict=False)[2]
        return codes[:, : self.n_quantizers], None

    def decode(self, codes: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        """Codes [B, K, F] -> audio [B, 1, F * hop]."""
        if scale is not None:
            raise ValueError("DAC does not use a scale")
        return self.model.decoder(self.decode_latent(codes))

    def decode_latent(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, K, F] -> latent [B, D, F]."""
        check_codes(codes, self.cardinality, self.total_codebooks)
        return self.model.quantizer.from_codes(codes)[0]

    @property
    def channels(self) -> int:
        """Always 1."""
        return 1

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return self.model.config.sampling_rate / self.model.config.hop_length

    @property
    def sample_rate(self) -> int:
        """Audio sample rate."""
        return int(self.model.config.sampling_rate)

    @property
    def cardinality(self) -> int:
        """Codebook size."""
        return int(self.model.config.codebook_size)

    @property
    def num_codebooks(self) -> int:
        """Codebooks in use."""
        return self.n_quantizers

    @property
    def total_codebooks(self) -> int:
        """Codebooks available."""
        return int(self.model.config.n_codebooks)

    def set_num_codebooks(self, n: int) -> None:
        """Use the first ``n`` codebooks."""
        if not 1 <= n <= self.total_codebooks:
            raise ValueError(f"number of codebooks must be in [1, {self.total_codebooks}], got {n}")
        self.n_quantizers = n
