"""Command line and function to compute FAD reference statistics for a set of audio files, once.

Part of `audiocraft.metrics` (layer: metrics; reads audio with `audiocraft.data`). The statistics file it writes
is what `FrechetAudioDistanceMetric(reference_stats=...)` and the config key `metrics.fad.reference_stats` take,
so that evaluations do not embed the reference set again:

    python -m audiocraft.metrics.fad_stats REFERENCE OUT.pt --model vggish --model-path vggish-10086976.pth

REFERENCE is a folder (scanned recursively for audio files) or a JSON-lines manifest (`.jsonl` / `.jsonl.gz`).
"""

import argparse
import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from ._audio import convert_audio, model_attr
from .fad import EmbeddingStats

logger = logging.getLogger(__name__)


def compute_embedding_stats(
    files: Iterable[str | Path],
    embedding_model: Callable[[torch.Tensor], torch.Tensor],
    sample_rate: int | None = None,
    channels: int | None = None,
    segment: float | None = None,
) -> EmbeddingStats:
    """Embeds every file and returns the statistics of all embeddings.

    Args:
        files: Audio files (any format `audiocraft.data.audio.audio_read` reads).
        embedding_model: Module or callable mapping `[1, C, T]` audio to `[1, D]` or `[1, F, D]`.
        sample_rate: Rate the model expects (default: `embedding_model.sample_rate`).
        channels: Channels the model expects (default: `embedding_model.channels`, else 1).
        segment: Embed each file in pieces of this many seconds (None: whole files).

    Returns:
        The statistics (count, sum, sum of outer products) of all embeddings.
    """
    from audiocraft.data.audio import audio_read

    rate = sample_rate or model_attr(embedding_model, "sample_rate")
    if rate is None:
        raise ValueError("compute_embedding_stats needs the embedding model's sample_rate")
    n_channels = int(channels or model_attr(embedding_model, "channels", 1))
    stats: EmbeddingStats | None = None
    n_files = 0
    for path in files:
        wav, file_rate = audio_read(path)
        wav = convert_audio(wav[None], file_rate, int(rate), n_channels)
        pieces = [wav] if segment is None else list(torch.split(wav, int(segment * rate), dim=-1))
        for piece in pieces:
            with torch.no_grad():
                emb = embedding_model(piece)
            emb = emb.reshape(-1, emb.shape[-1])
            stats = stats or EmbeddingStats(emb.shape[-1])
            stats.add(emb)
        n_files += 1
    if stats is None:
        raise ValueError("no audio file to embed")
    logger.info("embedded %d files into %d embeddings of dimension %d", n_files, int(stats.count), stats.dim)
    return stats


def _list_files(source: Path) -> list[str]:
    from audiocraft.data import find_audio_files, load_audio_meta

    if not source.exists():
        raise FileNotFoundError(f"reference audio not found: {source}")
    if source.is_dir():
        metas = find_audio_files(source)
    elif source.name.endswith((".jsonl", ".jsonl.gz")):
        metas = load_audio_meta(source)
    else:
        return [str(source)]
    return [m.path for m in metas]


def _embedder(args: argparse.Namespace) -> Any:
    from .builders import _FAD_EMBEDDERS

    if args.model == "vggish":
        return _FAD_EMBEDDERS["vggish"](model_path=args.model_path, pca_params_path=args.pca_params)
    if args.model == "passt":
        return _FAD_EMBEDDERS["passt"](weights_path=args.model_path, pretrained_length=args.pretrained_length)
    return _FAD_EMBEDDERS["clap"](model_path=args.model_path, model_arch=args.model_arch)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of `python -m audiocraft.metrics.fad_stats`."""
    parser = argparse.ArgumentParser(prog="python -m audiocraft.metrics.fad_stats", description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="folder of audio files, JSON-lines manifest, or one audio file")
    parser.add_argument("out", type=Path, help="statistics file to write (.pt)")
    parser.add_argument("--model", choices=["vggish", "passt", "clap"], default="vggish")
    parser.add_argument("--model-path", required=True, help="local weights of the embedding model")
    parser.add_argument("--pca-params", default=None, help="VGGish PCA parameters file (optional)")
    parser.add_argument("--pretrained-length", type=float, default=None, help="PaSST variant: 10, 20 or 30 s")
    parser.add_argument("--model-arch", default="HTSAT-base", help="CLAP audio encoder")
    parser.add_argument("--segment", type=float, default=None, help="embed files in pieces of this many seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    files = _list_files(args.source)
    stats = compute_embedding_stats(files, _embedder(args), segment=args.segment)
    stats.save(args.out)
    print(f"wrote {args.out}: {int(stats.count)} embeddings of dimension {stats.dim} from {len(files)} files")


if __name__ == "__main__":
    main()
