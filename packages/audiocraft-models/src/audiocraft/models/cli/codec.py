"""``audiocraft-codec``: audio file -> codes file -> audio file with a compression model (EnCodec, DAC...).

Examples::

    audiocraft-codec encode song.wav song.codes.npz --model facebook/musicgen-small
    audiocraft-codec decode song.codes.npz song_decoded.wav

``--model`` is anything ``CompressionModel.get_pretrained`` takes (an exported file or folder, ``//pretrained/NAME``,
a hub repo id, ``debug_compression_model``); ``decode`` uses the model recorded in the codes file unless one is
given. Inputs of any sample rate and channel count are converted to the model's. Long inputs are processed in
chunks of ``--chunk-seconds`` (whole frames): a causal model (its ``causal`` is true) streams, so the codes are
those of one pass over the whole file; other models encode and decode each chunk on its own.

Codes file format (version 1): a NumPy ``.npz`` archive (``numpy.savez_compressed``) of plain arrays, read back
with ``numpy.load(path, allow_pickle=False)``:

============== ======================= =============================================================
key            dtype / shape            content
============== ======================= =============================================================
codes          uint16 or int32 [K, F]   the codes (uint16 when the cardinality fits)
format_version int64 []                 1
sample_rate    int64 []                 the model's sample rate
channels       int64 []                 the model's channels
frame_rate     float64 []               code frames per second
cardinality    int64 []                 values of each code
num_samples    int64 []                 samples of the input (at the model's rate): decode trims to it
chunk_frames   int64 []                 frames per chunk (0: one pass / streamed)
model          str (unicode) []         the ``--model`` given to ``encode``
scales         float32 [n_chunks, ...]  only for models that renormalise: the scale of each chunk
============== ======================= =============================================================
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "build_parser", "encode_file", "decode_file", "read_codes", "CODES_FORMAT_VERSION"]

CODES_FORMAT_VERSION = 1
"""Version of the codes file format written by ``encode`` (``decode`` refuses another)."""
_REQUIRED = (
    "codes",
    "format_version",
    "sample_rate",
    "channels",
    "frame_rate",
    "cardinality",
    "num_samples",
    "chunk_frames",
    "model",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``audiocraft-codec``."""
    parser = argparse.ArgumentParser(
        prog="audiocraft-codec",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    enc = sub.add_parser("encode", help="audio file -> codes file (.npz)")
    enc.add_argument("input", type=Path)
    enc.add_argument("output", type=Path)
    enc.add_argument("--model", "-m", default="facebook/musicgen-small")
    enc.add_argument("--chunk-seconds", type=float, default=30.0, help="chunk length for long inputs")
    enc.add_argument("--device", default="cpu")
    dec = sub.add_parser("decode", help="codes file -> audio file")
    dec.add_argument("input", type=Path)
    dec.add_argument("output", type=Path)
    dec.add_argument("--model", "-m", default=None, help="default: the model recorded in the codes file")
    dec.add_argument("--device", default="cpu")
    return parser


def _load_model(name: str, device: str) -> Any:
    from ..encodec import CompressionModel

    return CompressionModel.get_pretrained(name, device=device)


def _hop(model: Any) -> int:
    return int(round(model.sample_rate / model.frame_rate))


def encode_file(
    input_path: Path,
    output_path: Path,
    model_name: str,
    chunk_seconds: float = 30.0,
    device: str = "cpu",
    model: Any = None,
) -> Path:
    """Encode an audio file to a codes file (see the module docstring for the format).

    Args:
        input_path: audio file (any format ``audiocraft.data.audio.audio_read`` reads).
        output_path: the ``.npz`` file written.
        model_name: compression model source, recorded in the file.
        chunk_seconds: chunk length (rounded down to whole frames, at least one frame).
        device: device of the model.
        model: an already loaded model (else ``model_name`` is loaded).
    """
    import torch

    from audiocraft.data.audio import audio_read
    from audiocraft.data.audio_utils import convert_audio

    if chunk_seconds <= 0:
        raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds}")
    model = _load_model(model_name, device) if model is None else model
    wav, rate = audio_read(input_path)
    wav = convert_audio(wav[None], rate, model.sample_rate, model.channels).to(device)
    hop = _hop(model)
    chunk = max(1, int(chunk_seconds * model.frame_rate)) * hop
    streaming = bool(getattr(model, "causal", False)) and hasattr(model, "streaming")
    codes, scales = [], []
    with torch.no_grad():
        if streaming:
            with model.streaming():
                for start in range(0, wav.shape[-1], chunk):
                    codes.append(model.encode(wav[..., start : start + chunk])[0])
                tail = model.flush_encode()
                if tail is not None:
                    codes.append(tail)
        else:
            for start in range(0, wav.shape[-1], chunk):
                frames, scale = model.encode(wav[..., start : start + chunk])
                codes.append(frames)
                if scale is not None:
                    scales.append(scale[0].float().cpu().numpy())
    all_codes = torch.cat(codes, dim=-1)[0].cpu().numpy()
    dtype = np.uint16 if model.cardinality <= 2**16 else np.int32
    arrays: dict[str, Any] = dict(
        codes=all_codes.astype(dtype),
        format_version=np.int64(CODES_FORMAT_VERSION),
        sample_rate=np.int64(model.sample_rate),
        channels=np.int64(model.channels),
        frame_rate=np.float64(model.frame_rate),
        cardinality=np.int64(model.cardinality),
        num_samples=np.int64(wav.shape[-1]),
        chunk_frames=np.int64(0 if streaming else chunk // hop),
        model=np.str_(model_name),
    )
    if scales:
        arrays["scales"] = np.stack(scales).astype(np.float32)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with open(output_path, "wb") as handle:  # a file object: numpy would append .npz to another suffix
        np.savez_compressed(handle, **arrays)
    return output_path


def read_codes(path: Path) -> dict[str, Any]:
    """Read a codes file (no pickle), checking its keys and version.

    Raises:
        ValueError: naming the file, when it is not a codes file of a known version.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            content = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise ValueError(f"{path} is not a codes file written by audiocraft-codec encode: {exc}") from exc
    missing = [key for key in _REQUIRED if key not in content]
    if missing:
        raise ValueError(f"{path} is not an audiocraft-codec codes file: missing {missing}")
    version = int(content["format_version"])
    if version != CODES_FORMAT_VERSION:
        raise ValueError(f"{path}: codes format version {version}, this audiocraft-codec reads {CODES_FORMAT_VERSION}")
    return content


def decode_file(
    input_path: Path, output_path: Path, model_name: str | None = None, device: str = "cpu", model: Any = None
) -> Path:
    """Decode a codes file to an audio file (format from the output's suffix; written without normalisation).

    Raises:
        ValueError: the model does not match the codes (sample rate, channels, codebooks, cardinality).
    """
    import torch

    from audiocraft.data.audio import audio_write

    content = read_codes(input_path)
    name = str(content["model"]) if model_name is None else model_name
    model = _load_model(name, device) if model is None else model
    for key, value in (
        ("sample_rate", model.sample_rate),
        ("channels", model.channels),
        ("cardinality", model.cardinality),
    ):
        if int(content[key]) != int(value):
            raise ValueError(f"{input_path} was encoded with {key}={int(content[key])}, model {name!r} has {value}")
    codes = torch.from_numpy(content["codes"].astype(np.int64))[None].to(device)
    if codes.shape[1] != model.num_codebooks:
        raise ValueError(f"{input_path} has {codes.shape[1]} codebooks, model {name!r} uses {model.num_codebooks}")
    chunk_frames = int(content["chunk_frames"])
    scales = content.get("scales")
    pieces = []
    with torch.no_grad():
        if chunk_frames == 0:
            if bool(getattr(model, "causal", False)) and hasattr(model, "streaming"):
                with model.streaming():
                    step = max(1, int(30 * model.frame_rate))
                    pieces = [model.decode(codes[..., s : s + step]) for s in range(0, codes.shape[-1], step)]
            else:
                pieces = [model.decode(codes)]
        else:
            for index, start in enumerate(range(0, codes.shape[-1], chunk_frames)):
                scale = None if scales is None else torch.from_numpy(scales[index])[None].to(device)
                pieces.append(model.decode(codes[..., start : start + chunk_frames], scale))
    audio = torch.cat(pieces, dim=-1)[0, :, : int(content["num_samples"])].cpu()
    fmt = output_path.suffix.lstrip(".").lower() or "wav"
    return audio_write(
        output_path, audio, model.sample_rate, format=fmt, strategy="clip", peak_clip_headroom_db=0, add_suffix=False
    )


def main(argv: list[str] | None = None) -> int:
    """Run ``audiocraft-codec``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "encode":
        path = encode_file(args.input, args.output, args.model, args.chunk_seconds, args.device)
    else:
        path = decode_file(args.input, args.output, args.model, args.device)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
