"""``audiocraft-generate``: text to music (MusicGen) or sound (AudioGen) from the command line.

Examples::

    audiocraft-generate --model facebook/musicgen-small "calm piano" "lo-fi beat" --duration 8 --seed 0 -o out/
    audiocraft-generate --model ./my_export --prompts-file prompts.txt --duration 12 --batch-size 2
    audiocraft-generate --model facebook/musicgen-melody "jazz" --melody tune.wav -o out/

Each description gives one audio file ``<output>/<index>_<slug>.<format>``; ``<output>/generation.json`` records
the model, every generation parameter, the seed of each batch and the file of each description, so that the same
command (same model, seed and batch size) writes the same audio again. A prompt file holds one description per
line (blank lines and lines starting with ``#`` are skipped). Batch ``i`` is sampled with seed ``seed + i``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser", "read_prompts"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``audiocraft-generate``."""
    parser = argparse.ArgumentParser(
        prog="audiocraft-generate",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("descriptions", nargs="*", help="text descriptions, one audio file each")
    parser.add_argument(
        "--model",
        "-m",
        default="facebook/musicgen-small",
        help="'debug', a folder with state_dict.bin + compression_state_dict.bin, //pretrained/NAME, "
        "or a hub repo id (read from the local cache when HF_HUB_OFFLINE=1)",
    )
    parser.add_argument(
        "--kind",
        choices=["auto", "musicgen", "audiogen"],
        default="auto",
        help="model class (auto: audiogen if the model name contains 'audiogen')",
    )
    parser.add_argument("--prompts-file", "-f", type=Path, help="file with one description per line")
    parser.add_argument("--output-dir", "-o", type=Path, default=Path("generated"))
    parser.add_argument(
        "--duration",
        "-d",
        type=float,
        default=None,
        help="seconds of audio (default: the model's, 15 s for MusicGen, 5 s for AudioGen)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the sampler (batch i uses seed + i)")
    parser.add_argument("--batch-size", type=int, default=4, help="descriptions generated together")
    parser.add_argument("--greedy", action="store_true", help="argmax decoding instead of sampling")
    parser.add_argument("--top-k", type=int, default=250)
    parser.add_argument("--top-p", type=float, default=0.0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--cfg-coef", type=float, default=3.0)
    parser.add_argument("--two-step-cfg", action="store_true")
    parser.add_argument(
        "--extend-stride", type=float, default=None, help="seconds added by each window past the model's max duration"
    )
    parser.add_argument("--melody", type=Path, help="audio file whose melody every sample follows (melody models)")
    parser.add_argument("--device", default=None, help="cpu, cuda... (default: cuda if available)")
    parser.add_argument("--format", default="wav", choices=["wav", "flac", "mp3", "ogg"])
    parser.add_argument(
        "--strategy",
        default="loudness",
        choices=["loudness", "peak", "clip", "rms", "none"],
        help="normalisation of the written audio (audiocraft.data.audio.audio_write)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def read_prompts(path: Path) -> list[str]:
    """Descriptions of a prompt file: one per line, blank lines and ``#`` comments skipped.

    Raises:
        FileNotFoundError: naming the file.
    """
    if not path.is_file():
        raise FileNotFoundError(f"prompt file {path} does not exist")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _slug(text: str, limit: int = 40) -> str:
    slug = re.sub(r"[^a-zA-Z0-9]+", "_", text.lower()).strip("_")
    return slug[:limit].rstrip("_") or "audio"


def main(argv: list[str] | None = None) -> int:
    """Run ``audiocraft-generate``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    descriptions = list(args.descriptions)
    if args.prompts_file is not None:
        descriptions += read_prompts(args.prompts_file)
    if not descriptions:
        parser.error("give descriptions or --prompts-file")
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")

    import torch

    from audiocraft.data.audio import audio_read, audio_write

    from ..audiogen import AudioGen
    from ..musicgen import MusicGen
    from ._progress import ProgressBar

    kind = args.kind
    if kind == "auto":
        kind = "audiogen" if "audiogen" in str(args.model).lower() else "musicgen"
    model_class = AudioGen if kind == "audiogen" else MusicGen
    model = model_class.get_pretrained(args.model, device=args.device)
    params: dict[str, Any] = dict(
        use_sampling=not args.greedy,
        top_k=args.top_k,
        top_p=args.top_p,
        temperature=args.temperature,
        cfg_coef=args.cfg_coef,
        two_step_cfg=args.two_step_cfg,
        duration=model.duration if args.duration is None else args.duration,
    )
    params["extend_stride"] = model.extend_stride if args.extend_stride is None else args.extend_stride
    model.set_generation_params(**params)
    melody = None
    if args.melody is not None:
        if not isinstance(model, MusicGen):
            parser.error("--melody needs a MusicGen melody model")
        melody, melody_rate = audio_read(args.melody)

    args.output_dir.mkdir(parents=True, exist_ok=True)
    files: list[dict[str, Any]] = []
    batches = [descriptions[i : i + args.batch_size] for i in range(0, len(descriptions), args.batch_size)]
    for index, batch in enumerate(batches):
        seed = None if args.seed is None else args.seed + index
        bar = None
        if not args.no_progress:
            bar = ProgressBar(f"batch {index + 1}/{len(batches)}")
            model.set_custom_progress_callback(bar)
        with torch.no_grad():
            if melody is not None:
                assert isinstance(model, MusicGen)
                audio = model.generate_with_chroma(
                    batch, [melody] * len(batch), melody_rate, progress=bar is not None, seed=seed
                )
            else:
                audio = model.generate(batch, progress=bar is not None, seed=seed)
        if bar is not None:
            bar.close()
        assert isinstance(audio, torch.Tensor)
        for offset, (description, wav) in enumerate(zip(batch, audio)):
            number = index * args.batch_size + offset
            stem = args.output_dir / f"{number:03d}_{_slug(description)}"
            path = audio_write(
                stem,
                wav.cpu(),
                model.sample_rate,
                format=args.format,
                strategy=args.strategy,
                loudness_compressor=args.strategy == "loudness",
            )
            files.append({"description": description, "file": path.name, "batch": index, "seed": seed})
            print(path)
    record = {
        "model": str(args.model),
        "kind": kind,
        "sample_rate": model.sample_rate,
        "channels": model.audio_channels,
        "generation_params": params,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "melody": None if args.melody is None else str(args.melody),
        "format": args.format,
        "strategy": args.strategy,
        "files": files,
    }
    (args.output_dir / "generation.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
