"""Split a folder of audio files into train / valid / evaluate / generate manifests (part of ``audiocraft-data``).

``python -m audiocraft.data.split ROOT OUT_DIR`` scans ``ROOT`` like the manifest builder
(``python -m audiocraft.data.audio_dataset``) and writes ``OUT_DIR/{train,valid,evaluate,generate}/data.jsonl``,
the layout every ``dset`` config and ``datasource.*`` override expects. The split is by file (the segments of one
file never land in two splits) and deterministic: files are ranked by a hash of their path relative to ``ROOT`` and
of ``--seed``, so the same folder always gives the same split, on any machine and wherever the folder is mounted.
Not in upstream AudioCraft, which leaves splitting to the user.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from ._manifest import DEFAULT_EXTS, AudioMeta, save_audio_meta, scan_audio_files

__all__ = ["HELD_OUT", "split_by_file", "split_folder", "main"]

HELD_OUT = ("valid", "evaluate", "generate")
"""The held-out splits, in the order they are drawn; the rest of the files is ``train``."""


def _rank_key(relative: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{relative}".encode()).hexdigest()


def split_by_file(
    metas: Sequence[AudioMeta], root: str | Path, fractions: dict[str, float], seed: int = 0
) -> dict[str, list[AudioMeta]]:
    """Assign each file to one split.

    Args:
        metas (list[AudioMeta]): the files (as scanned under ``root``).
        root (str or Path): the scanned folder; ranks use paths relative to it.
        fractions (dict[str, float]): share of the files for each of ``valid``, ``evaluate``, ``generate``; each
            held-out split gets at least one file, the rest goes to ``train``.
        seed (int): another seed gives another (equally deterministic) split.

    Returns:
        dict[str, list[AudioMeta]]: ``train`` and the held-out splits, each sorted by path.

    Raises:
        ValueError: a fraction outside [0, 1), or fewer files than splits.
    """
    for name, frac in fractions.items():
        if name not in HELD_OUT:
            raise ValueError(f"unknown split {name!r}: expected one of {', '.join(HELD_OUT)}")
        if not 0 <= frac < 1:
            raise ValueError(f"--{name} must be a fraction in [0, 1), got {frac}")
    counts = {name: max(1, math.floor(fractions.get(name, 0.0) * len(metas) + 0.5)) for name in HELD_OUT}
    if sum(counts.values()) >= len(metas):
        raise ValueError(
            f"{len(metas)} audio files under {root}: need at least {sum(counts.values()) + 1} "
            f"(one for train and {counts} held out)"
        )
    base = Path(root).resolve()

    def relative(meta: AudioMeta) -> str:
        path = Path(meta.path)
        return (path.resolve().relative_to(base) if path.is_absolute() else path).as_posix()

    ranked = sorted(metas, key=lambda m: _rank_key(relative(m), seed))
    out: dict[str, list[AudioMeta]] = {}
    start = 0
    for name in HELD_OUT:
        out[name] = sorted(ranked[start : start + counts[name]], key=lambda m: m.path)
        start += counts[name]
    out["train"] = sorted(ranked[start:], key=lambda m: m.path)
    return out


def split_folder(
    root: str | Path,
    out_dir: str | Path,
    fractions: dict[str, float],
    seed: int = 0,
    exts: Sequence[str] = DEFAULT_EXTS,
    workers: int = 0,
) -> dict[str, list[AudioMeta]]:
    """Scan ``root`` and write one ``data.jsonl`` per split under ``out_dir`` (absolute paths).

    Returns:
        dict[str, list[AudioMeta]]: the entries of each split.

    Raises:
        ValueError: as :func:`split_by_file`, or no readable audio file under ``root``.
    """
    if not Path(root).is_dir():
        raise FileNotFoundError(f"not a folder: {root}")
    metas, failures = scan_audio_files(root, exts=exts, resolve=True, workers=workers)
    for path, error in failures:
        print(f"skipped unreadable file {path}: {error}", file=sys.stderr)
    if not metas:
        raise ValueError(f"no readable audio file ({' '.join(exts)}) under {root}")
    splits = split_by_file(metas, root, fractions, seed)
    for name, entries in splits.items():
        save_audio_meta(Path(out_dir) / name / "data.jsonl", entries)
    return splits


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m audiocraft.data.split``."""
    parser = argparse.ArgumentParser(
        prog="python -m audiocraft.data.split",
        description="Split a folder of audio files by file into OUT_DIR/{train,valid,evaluate,generate}/data.jsonl.",
    )
    parser.add_argument("root", help="folder of audio files (scanned recursively)")
    parser.add_argument("out_dir", help="where the four split folders go, e.g. egs/mine")
    for name, default in (("valid", 0.1), ("evaluate", 0.1), ("generate", 0.05)):
        parser.add_argument(
            f"--{name}",
            type=float,
            default=default,
            help=f"share of the files for {name} (at least one file; default: {default})",
        )
    parser.add_argument("--seed", type=int, default=0, help="another seed gives another split (default: 0)")
    parser.add_argument("--exts", nargs="+", default=list(DEFAULT_EXTS), help="extensions to keep")
    parser.add_argument("--workers", type=int, default=4, help="threads reading headers (default: 4)")
    args = parser.parse_args(argv)
    try:
        splits = split_folder(
            args.root, args.out_dir, {n: getattr(args, n) for n in HELD_OUT}, args.seed, args.exts, args.workers
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for name in ("train", *HELD_OUT):
        hours = sum(m.duration for m in splits[name]) / 3600
        print(f"{name}: {len(splits[name])} files, {hours:.2f} h -> {Path(args.out_dir) / name / 'data.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
