"""Generator of the bundled example dataset: synthetic music clips with text metadata.

Part of ``audiocraft-data``. ``python -m audiocraft.data.example OUT_DIR`` renders a few dozen short
clips (melody, chords, bass and drums in a random genre, key, tempo and lead timbre, see
:mod:`audiocraft.data._synth`), writes each as a 16-bit WAV with a JSON sidecar (the MusicDataset
metadata: title, artist, key, bpm, genre, moods, keywords, description, instrument), and writes one
manifest per split: ``OUT_DIR/{train,valid,evaluate,generate}/data.jsonl``. Audio paths in the
manifests are relative to the manifest's folder, so the dataset folder can be moved. The output
depends only on the seed (and the options); nothing is downloaded.
"""

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import _synth
from ._manifest import AudioMeta, save_audio_meta
from .audio import audio_write

__all__ = ["generate_example_dataset", "SPLITS", "main"]

SPLITS = ("train", "valid", "evaluate", "generate")
"""The splits of the example dataset, one manifest folder each."""
_ADJ = [
    "Neon",
    "Silver",
    "Quiet",
    "Electric",
    "Golden",
    "Midnight",
    "Paper",
    "Velvet",
    "Crystal",
    "Distant",
    "Little",
    "Broken",
    "Endless",
    "Hidden",
    "Summer",
    "Winter",
]
_NOUN = [
    "Horizon",
    "Garden",
    "Signal",
    "River",
    "Circuit",
    "Lantern",
    "Harbor",
    "Echo",
    "Orbit",
    "Meadow",
    "Engine",
    "Window",
    "Tide",
    "Canyon",
    "Postcard",
    "Skyline",
]
_ARTISTS = [
    "The Sine Waves",
    "Oscillator Club",
    "Lo-Fi Laboratory",
    "Karplus & Strong",
    "The Wavetables",
    "Nyquist Five",
    "Phase Locked",
    "Envelope Society",
]


def _article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" and not word.lower().startswith(("eu", "uni")) else "a"


def _describe(song: _synth.Song, instrument_phrase: str, rng: np.random.Generator) -> str:
    mood = song.mood[0]
    noun = str(rng.choice(["track", "piece", "tune", "song"]))
    text = f"{_article(mood)} {mood} {song.genre.name} {noun} in {song.key} at {song.bpm} bpm with "
    drums = {
        "four_on_floor": "a four-on-the-floor beat",
        "backbeat": "a steady backbeat",
        "swing": "a swinging ride cymbal",
        "boom_bap": "a boom-bap drum groove",
        "light": "a light shaker",
        "fast": "fast drums",
        "none": "",
    }[song.genre.drums]
    chords = _synth.INSTRUMENT_NAMES[song.genre.chords][1][0] if song.genre.chords != song.lead else ""
    parts = [instrument_phrase] + ([p for p in (chords, drums) if p] if rng.random() < 0.8 else [])
    return text + (parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1])


def _split_sizes(num_clips: int) -> dict[str, int]:
    held_out = max(1, round(num_clips * 0.09))
    sizes = {"train": num_clips - 3 * held_out, "valid": held_out, "evaluate": held_out, "generate": held_out}
    if sizes["train"] < 1:
        raise ValueError(f"num_clips must be at least 4 (one per split), got {num_clips}")
    return sizes


def generate_example_dataset(
    out_dir: str | Path,
    seed: int = 0,
    num_clips: int = 44,
    sample_rate: int = 32000,
    min_duration: float = 4.0,
    max_duration: float = 8.0,
    progress: bool = False,
) -> dict[str, list[AudioMeta]]:
    """Render the example dataset into ``out_dir``.

    Args:
        out_dir (str or Path): output folder; gets one subfolder per split with WAVs, JSON sidecars and ``data.jsonl``.
        seed (int): the dataset is a pure function of the seed and the other arguments.
        num_clips (int): total number of clips (about 9 % each for valid, evaluate and generate, the rest for train).
        sample_rate (int): sample rate of the mono WAV files.
        min_duration (float): shortest clip, in seconds.
        max_duration (float): longest clip, in seconds.
        progress (bool): print one line per split on stderr.

    Returns:
        dict[str, list[AudioMeta]]: manifest entries per split, with absolute paths.
    """
    out = Path(out_dir)
    if not 0 < min_duration <= max_duration:
        raise ValueError(f"need 0 < min_duration <= max_duration, got {min_duration}, {max_duration}")
    sizes = _split_sizes(num_clips)
    result: dict[str, list[AudioMeta]] = {}
    clip = 0
    for split in SPLITS:
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        # Regenerating into the same folder with fewer clips must not leave the old clips behind (a later
        # `python -m audiocraft.data.audio_dataset` over the folder would index them): remove what we wrote before.
        for old in folder.glob(f"{split}_[0-9][0-9][0-9].*"):
            if old.suffix in (".wav", ".json"):
                old.unlink()
        metas, rel = [], []
        for _ in range(sizes[split]):
            rng = np.random.default_rng([seed, clip])
            song = _synth.choose_song(rng)
            duration = round(float(rng.uniform(min_duration, max_duration)), 1)
            wav = _synth.render_song(song, duration, sample_rate, rng)
            name = f"{split}_{clip:03d}"
            path = audio_write(folder / name, torch.from_numpy(wav).float()[None], sample_rate, strategy="peak")
            short, phrases = _synth.INSTRUMENT_NAMES[song.lead]
            phrase = phrases[int(rng.integers(len(phrases)))]
            info = {
                "title": f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}",
                "artist": _ARTISTS[int(rng.integers(len(_ARTISTS)))],
                "key": song.key,
                "bpm": song.bpm,
                "genre": song.genre.name,
                "moods": song.mood,
                "keywords": [str(k) for k in rng.choice(song.genre.keywords, size=2, replace=False)] + [short],
                "description": _describe(song, phrase, rng),
                "instrument": short,
                "name": name,
                "sample_rate": sample_rate,
                "duration": duration,
                "seed": seed,
            }
            path.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
            metas.append(AudioMeta(str(path.absolute()), duration, sample_rate, amplitude=0.9))
            rel.append(AudioMeta(path.name, duration, sample_rate, amplitude=0.9))
            clip += 1
        save_audio_meta(folder / "data.jsonl", rel)
        result[split] = metas
        if progress:
            print(f"{split}: {len(metas)} clips in {folder}", file=sys.stderr)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m audiocraft.data.example``."""
    parser = argparse.ArgumentParser(
        prog="python -m audiocraft.data.example",
        description="Synthesise the example music dataset (WAV + JSON sidecars + train/valid/evaluate/generate "
        "manifests). Deterministic for a seed; takes a few seconds.",
    )
    parser.add_argument("out_dir", help="output folder, e.g. egs/example")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--num-clips", type=int, default=44, help="total number of clips (default: 44)")
    parser.add_argument("--sample-rate", type=int, default=32000, help="sample rate in Hz (default: 32000)")
    parser.add_argument("--min-duration", type=float, default=4.0, help="shortest clip in seconds (default: 4)")
    parser.add_argument("--max-duration", type=float, default=8.0, help="longest clip in seconds (default: 8)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # small tensors: threads only add overhead
    start = time.time()
    try:
        result = generate_example_dataset(
            args.out_dir,
            args.seed,
            args.num_clips,
            args.sample_rate,
            args.min_duration,
            args.max_duration,
            progress=True,
        )
    except ValueError as exc:
        parser.error(str(exc))
    total = sum(m.duration for metas in result.values() for m in metas)
    print(
        f"wrote {sum(len(v) for v in result.values())} clips ({total:.0f} s of audio) to {args.out_dir} "
        f"in {time.time() - start:.1f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
