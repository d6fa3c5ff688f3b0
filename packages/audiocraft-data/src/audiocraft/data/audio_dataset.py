"""``AudioDataset``: fixed-length segments (or whole files) sampled from a manifest, and the manifest builder CLI.

Part of ``audiocraft-data``. Sampling is a pure function of ``(shuffle_seed, epoch, index)``: the file
and the seek position of item ``index`` never depend on global RNG state or on the dataloader worker,
so a resumed run reads exactly the segments an uninterrupted run would have read. Segments are read
by seeking (see :func:`audiocraft.data.audio.audio_read`), then resampled and channel-converted.

Build a manifest: ``python -m audiocraft.data.audio_dataset ROOT OUT.jsonl.gz [--relative] [--complete]
[--workers N]`` (absolute paths unless ``--relative``; unreadable files are listed; exit status 1 when none is
readable).
"""

import argparse
import copy
import logging
import math
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ._frames import seconds_to_frames
from ._manifest import (
    DEFAULT_EXTS,
    AudioMeta,
    BaseInfo,
    ManifestError,
    SegmentInfo,
    _get_audio_meta,
    find_audio_files,
    load_audio_meta,
    save_audio_meta,
    scan_audio_files,
)
from .audio import audio_read
from .audio_utils import convert_audio
from .zip import ZipArchiveCache

logger = logging.getLogger(__name__)

__all__ = [
    "AudioDataset",
    "AudioMeta",
    "SegmentInfo",
    "BaseInfo",
    "ManifestError",
    "DEFAULT_EXTS",
    "load_audio_meta",
    "save_audio_meta",
    "find_audio_files",
    "scan_audio_files",
    "main",
]
_ = _get_audio_meta  # re-exported for upstream compatibility


def _seed_for(*values: int) -> int:
    """A 63-bit seed mixing ``values`` (order matters, no collisions between nearby tuples)."""
    return int(np.random.SeedSequence([v & 0xFFFFFFFFFFFFFFFF for v in values]).generate_state(1, np.uint64)[0] >> 1)


def _check_finite(wav: torch.Tensor, path: str, seek_time: float) -> None:
    """Refuse audio holding NaN/Inf samples (float WAVs can): it would make the training loss non-finite."""
    if not bool(wav.isfinite().all()):
        bad = int((~wav.isfinite()).sum())
        raise ValueError(
            f"{path} holds {bad} NaN or infinite sample(s) in the segment at {seek_time:.3f} s "
            "(fix or remove the file and rebuild the manifest)"
        )


class AudioDataset:
    """Dataset of audio segments sampled from a list of ``AudioMeta``.

    With ``segment_duration`` set, item ``index`` is a segment of ``segment_duration`` seconds from a file
    drawn (by weight and/or duration) with an RNG seeded by ``(shuffle_seed, epoch, index)`` when
    ``shuffle`` is True, or by ``index`` alone when it is False. Without ``segment_duration``, item
    ``index`` is the whole ``index``-th file.

    Args:
        meta (list[AudioMeta]): the files.
        segment_duration (float, optional): segment length in seconds; None returns whole files.
        shuffle (bool): vary the segments with the epoch and ``shuffle_seed``.
        num_samples (int, optional): dataset length when sampling segments (default: number of files).
        sample_rate (int): output sample rate (audio is resampled).
        channels (int): output channels (audio is up/down-mixed).
        pad (bool): zero-pad short segments to ``segment_duration`` (and whole files to the longest in a batch).
        sample_on_duration (bool): draw files with probability proportional to their duration.
        sample_on_weight (bool): draw files with probability proportional to their ``weight``.
        min_segment_ratio (float): a segment holds at least this fraction of real audio (seek is bounded).
        max_read_retry (int): number of files tried before giving up on an item.
        return_info (bool): return ``(wav, SegmentInfo)`` instead of ``wav``.
        min_audio_duration (float, optional): drop shorter files.
        max_audio_duration (float, optional): drop longer files.
        shuffle_seed (int): seed of the sampling.
        load_wav (bool): read audio; if False, return silence of the right shape (only the info matters).
        permutation_on_files (bool): go through the files in a seeded permutation (each file once per pass)
            instead of drawing them independently; needs ``shuffle`` and no duration/weight sampling.
        path_mapper (callable, optional): applied to every path of ``meta`` (e.g. cluster-specific roots).
    """

    def __init__(
        self,
        meta: Sequence[AudioMeta],
        segment_duration: float | None = None,
        shuffle: bool = True,
        num_samples: int | None = 10_000,
        sample_rate: int = 48_000,
        channels: int = 2,
        pad: bool = True,
        sample_on_duration: bool = True,
        sample_on_weight: bool = True,
        min_segment_ratio: float = 0.5,
        max_read_retry: int = 10,
        return_info: bool = False,
        min_audio_duration: float | None = None,
        max_audio_duration: float | None = None,
        shuffle_seed: int = 0,
        load_wav: bool = True,
        permutation_on_files: bool = False,
        path_mapper: Callable[[str], str] | None = None,
    ):
        if len(meta) == 0:
            raise ValueError("AudioDataset got no audio files: the manifest is empty")
        if segment_duration is not None and segment_duration <= 0:
            raise ValueError(f"segment_duration must be > 0 or None, got {segment_duration}")
        if not 0 <= min_segment_ratio <= 1:
            raise ValueError(f"min_segment_ratio must be in [0, 1], got {min_segment_ratio}")
        if None not in (min_audio_duration, max_audio_duration) and min_audio_duration > max_audio_duration:  # type: ignore
            raise ValueError(f"min_audio_duration {min_audio_duration} > max_audio_duration {max_audio_duration}")
        if max_read_retry < 1:
            raise ValueError(f"max_read_retry must be >= 1, got {max_read_retry}")
        if not load_wav and segment_duration is None:
            raise ValueError("load_wav=False needs a segment_duration")
        if permutation_on_files and (sample_on_duration or sample_on_weight or not shuffle):
            raise ValueError(
                "permutation_on_files needs shuffle=True, sample_on_duration=False and sample_on_weight=False"
            )
        if path_mapper is not None:
            meta = [copy.deepcopy(m) for m in meta]
            for m in meta:
                m.path = path_mapper(m.path)
                if m.info_path is not None:
                    m.info_path.zip_path = path_mapper(m.info_path.zip_path)
        self.segment_duration = segment_duration
        self.min_segment_ratio = min_segment_ratio
        self.min_audio_duration = min_audio_duration
        self.max_audio_duration = max_audio_duration
        self.meta: list[AudioMeta] = self._filter_duration(list(meta))
        if not self.meta:
            raise ValueError(
                f"every file was filtered out by min/max_audio_duration ({min_audio_duration}, {max_audio_duration})"
            )
        self.total_duration = sum(m.duration for m in self.meta)
        self.num_samples = len(self.meta) if segment_duration is None or num_samples is None else num_samples
        self.shuffle = shuffle
        self.sample_rate = sample_rate
        self.channels = channels
        self.pad = pad
        self.sample_on_weight = sample_on_weight
        self.sample_on_duration = sample_on_duration
        self.sampling_probabilities = self._get_sampling_probabilities()
        self.max_read_retry = max_read_retry
        self.return_info = return_info
        self.shuffle_seed = shuffle_seed
        self.current_epoch: int | None = None
        self.load_wav = load_wav
        self.permutation_on_files = permutation_on_files
        self.read_failures: Counter[str] = Counter()
        self._permutations: dict[int, torch.Tensor] = {}
        self._zip_cache = ZipArchiveCache()

    # -- sampling ---------------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose segments ``__getitem__`` returns (when ``shuffle`` is True)."""
        self.current_epoch = epoch

    def start_epoch(self, epoch: int) -> None:
        """Upstream name of :meth:`set_epoch`."""
        self.set_epoch(epoch)

    def __len__(self) -> int:
        return self.num_samples

    def _get_sampling_probabilities(self, normalized: bool = True) -> torch.Tensor:
        scores = []
        for m in self.meta:
            score = 1.0
            if self.sample_on_weight and m.weight is not None:
                if not (math.isfinite(m.weight) and m.weight >= 0):
                    raise ValueError(f"weight of {m.path} must be a finite number >= 0, got {m.weight!r}")
                score *= m.weight
            if self.sample_on_duration:
                if not (math.isfinite(m.duration) and m.duration > 0):
                    raise ValueError(f"duration of {m.path} must be a finite number > 0, got {m.duration!r}")
                score *= m.duration
            scores.append(score)
        probabilities = torch.tensor(scores, dtype=torch.float64)
        if (self.sample_on_weight or self.sample_on_duration) and not probabilities.sum() > 0:
            raise ValueError(
                f"every one of the {len(self.meta)} files has sampling weight 0 (first: "
                f"{self.meta[0].path}): nothing can be drawn; give some files a weight > 0 or set "
                "sample_on_weight=false"
            )
        if normalized:
            probabilities /= probabilities.sum()
        return probabilities

    def _rng_for(self, index: int) -> torch.Generator:
        rng = torch.Generator()
        if self.shuffle:
            rng.manual_seed(_seed_for(self.shuffle_seed, self.current_epoch or 0, index))
        else:
            rng.manual_seed(_seed_for(index))
        return rng

    def item_seed(self, index: int, salt: int = 0) -> int:
        """Seed for any extra randomness of item ``index`` (e.g. text augmentation).

        A pure function of ``(shuffle_seed, epoch, index, salt)`` (or of ``(index, salt)`` without ``shuffle``).

        Args:
            index: the item index.
            salt: distinguishes several independent draws for the same item.

        Returns:
            A non-negative integer seed.
        """
        if self.shuffle:
            return _seed_for(self.shuffle_seed, self.current_epoch or 0, index, salt)
        return _seed_for(index, salt)

    def _get_file_permutation(self, permutation_index: int) -> torch.Tensor:
        perm = self._permutations.get(permutation_index)
        if perm is None:
            rng = torch.Generator()
            rng.manual_seed(_seed_for(self.shuffle_seed, permutation_index, len(self.meta)))
            perm = torch.randperm(len(self.meta), generator=rng)
            if len(self._permutations) >= 4:
                self._permutations.pop(next(iter(self._permutations)))
            self._permutations[permutation_index] = perm
        return perm

    def sample_file(self, index: int, rng: torch.Generator, retry: int = 0) -> AudioMeta:
        """Pick the file for item ``index`` (``retry`` > 0 draws another file after a read failure)."""
        if self.permutation_on_files and retry == 0:
            total_index = (self.current_epoch or 0) * len(self) + index
            perm = self._get_file_permutation(total_index // len(self.meta))
            return self.meta[int(perm[total_index % len(self.meta)])]
        if not self.sample_on_weight and not self.sample_on_duration:
            file_index = int(torch.randint(len(self.meta), (1,), generator=rng).item())
        else:
            file_index = int(torch.multinomial(self.sampling_probabilities, 1, generator=rng).item())
        return self.meta[file_index]

    # -- reading ----------------------------------------------------------------------------------
    def _read_segment(self, file_meta: AudioMeta, seek_time: float) -> tuple[torch.Tensor, SegmentInfo]:
        assert self.segment_duration is not None
        target_frames = seconds_to_frames(self.segment_duration, self.sample_rate)
        if not self.load_wav:
            out = torch.zeros(self.channels, target_frames)
            return out, SegmentInfo(file_meta, seek_time, target_frames, target_frames, self.sample_rate, self.channels)
        out, sr = audio_read(file_meta.path, seek_time, self.segment_duration, pad=False, zip_cache=self._zip_cache)
        expected = min(self.segment_duration, file_meta.duration - seek_time)
        if out.shape[-1] < int(expected * sr) - 1:
            raise RuntimeError(
                f"{file_meta.path} is shorter than its manifest entry says ({file_meta.duration:.3f} s):"
                f" read {out.shape[-1]} frames at {seek_time:.3f} s, expected {int(expected * sr)}"
            )
        _check_finite(out, file_meta.path, seek_time)
        out = convert_audio(out, sr, self.sample_rate, self.channels)
        n_frames = min(out.shape[-1], target_frames)
        out = out[..., :target_frames]
        if self.pad and out.shape[-1] < target_frames:
            out = F.pad(out, (0, target_frames - out.shape[-1]))
        info = SegmentInfo(
            file_meta,
            seek_time,
            n_frames=n_frames,
            total_frames=target_frames,
            sample_rate=self.sample_rate,
            channels=out.shape[0],
        )
        return out, info

    def _record_failure(self, path: str, exc: BaseException) -> None:
        if path not in self.read_failures:
            logger.warning("cannot read %s (will try other files; logged once per file): %r", path, exc)
        self.read_failures[path] += 1

    @property
    def num_read_failures(self) -> int:
        """Total number of failed reads in this process (worker processes count their own)."""
        return sum(self.read_failures.values())

    def __getitem__(self, index: int) -> torch.Tensor | tuple[torch.Tensor, SegmentInfo]:
        if self.segment_duration is None:
            file_meta = self.meta[index]
            out, sr = audio_read(file_meta.path, zip_cache=self._zip_cache)
            _check_finite(out, file_meta.path, 0.0)
            out = convert_audio(out, sr, self.sample_rate, self.channels)
            n_frames = out.shape[-1]
            info = SegmentInfo(
                file_meta,
                seek_time=0.0,
                n_frames=n_frames,
                total_frames=n_frames,
                sample_rate=self.sample_rate,
                channels=out.shape[0],
            )
        else:
            if not 0 <= index < len(self):
                raise IndexError(f"index {index} out of range for AudioDataset of length {len(self)}")
            rng = self._rng_for(index)
            for retry in range(self.max_read_retry):
                file_meta = self.sample_file(index, rng, retry)
                # vary the position even in files shorter than a segment, never producing empty segments
                max_seek = max(0.0, file_meta.duration - self.segment_duration * self.min_segment_ratio)
                seek_time = torch.rand(1, generator=rng).item() * max_seek
                try:
                    out, info = self._read_segment(file_meta, seek_time)
                except Exception as exc:
                    self._record_failure(file_meta.path, exc)
                    if retry == self.max_read_retry - 1:
                        raise RuntimeError(
                            f"AudioDataset item {index}: {self.max_read_retry} reads failed, last file "
                            f"{file_meta.path} ({self.num_read_failures} failed reads so far)"
                        ) from exc
                else:
                    break
        if self.return_info:
            return out, info
        return out

    def collater(self, samples: list[Any]) -> torch.Tensor | tuple[torch.Tensor, list[SegmentInfo]]:
        """Batch items: [C, T] tensors -> [B, C, T] (plus the list of ``SegmentInfo`` with ``return_info``).

        Whole files (``segment_duration=None``) are zero-padded to the longest one when ``pad`` is True.
        """
        if self.segment_duration is None and len(samples) > 1 and not self.pad:
            raise ValueError("batching whole files of different durations needs pad=True")
        wavs = [s[0] if self.return_info else s for s in samples]
        infos = [copy.deepcopy(s[1]) for s in samples] if self.return_info else []
        if self.segment_duration is None and self.pad:
            max_len = max(w.shape[-1] for w in wavs)
            wavs = [F.pad(w, (0, max_len - w.shape[-1])) for w in wavs]
            for info in infos:
                info.total_frames = max_len
        lengths = {w.shape[-1] for w in wavs}
        if len(lengths) > 1:
            raise ValueError(f"cannot batch segments of different lengths {sorted(lengths)}: use pad=True")
        wav = torch.stack(wavs)
        if self.return_info:
            return wav, infos
        return wav

    def _filter_duration(self, meta: list[AudioMeta]) -> list[AudioMeta]:
        kept = [
            m
            for m in meta
            if (self.min_audio_duration is None or m.duration >= self.min_audio_duration)
            and (self.max_audio_duration is None or m.duration <= self.max_audio_duration)
        ]
        if len(kept) < len(meta):
            logger.info(
                "removed %d of %d files outside the duration range [%s, %s]",
                len(meta) - len(kept),
                len(meta),
                self.min_audio_duration,
                self.max_audio_duration,
            )
        return kept

    # -- constructors -----------------------------------------------------------------------------
    @classmethod
    def from_meta(cls, root: str | os.PathLike[str], **kwargs: Any) -> "AudioDataset":
        """Build from a manifest file, or a folder holding ``data.jsonl`` or ``data.jsonl.gz``.

        ``path_mapper`` (if given) is applied before the paths are checked; ``check_paths=False`` skips the
        existence check of every file (faster for huge manifests on network file systems).
        """
        root = Path(root)
        if root.is_dir():
            for name in ("data.jsonl", "data.jsonl.gz"):
                if (root / name).exists():
                    root = root / name
                    break
            else:
                raise ValueError(f"no manifest in {root}: expected data.jsonl or data.jsonl.gz")
        meta = load_audio_meta(
            root, path_mapper=kwargs.pop("path_mapper", None), check_paths=kwargs.pop("check_paths", True)
        )
        return cls(meta, **kwargs)

    @classmethod
    def from_path(
        cls, root: str | os.PathLike[str], minimal_meta: bool = True, exts: Sequence[str] = DEFAULT_EXTS, **kwargs: Any
    ) -> "AudioDataset":
        """Build from a manifest file, or by scanning a folder for audio files."""
        root = Path(root)
        if root.is_file():
            meta = load_audio_meta(root, resolve=True)
        else:
            meta = find_audio_files(root, exts, minimal=minimal_meta, resolve=True)
        return cls(meta, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m audiocraft.data.audio_dataset``."""
    parser = argparse.ArgumentParser(
        prog="python -m audiocraft.data.audio_dataset",
        description="Scan a folder tree for audio files and write a JSON-lines manifest (gzipped if OUT ends in .gz). "
        "Unreadable files are listed at the end and left out of the manifest.",
    )
    parser.add_argument("root", help="folder to scan recursively")
    parser.add_argument("output_meta_file", help="manifest to write, e.g. egs/mydata/data.jsonl.gz")
    parser.add_argument(
        "--complete", action="store_true", help="also decode every file to record its peak amplitude (slower)"
    )
    parser.add_argument(
        "--resolve", action="store_true", help="store absolute paths (the default; kept for upstream compatibility)"
    )
    parser.add_argument(
        "--relative",
        action="store_true",
        help="store paths relative to the manifest's folder (resolved against that folder when the "
        "manifest is read, so the folder can move together with its audio)",
    )
    parser.add_argument("--workers", type=int, default=10, help="number of reader threads (default: 10)")
    parser.add_argument("--exts", nargs="+", default=DEFAULT_EXTS, help=f"extensions to keep (default: {DEFAULT_EXTS})")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    if not Path(args.root).is_dir():
        parser.error(f"ROOT is not a folder: {args.root}")
    if args.resolve and args.relative:
        parser.error("--resolve and --relative are exclusive")
    exts = [e if e.startswith(".") else "." + e for e in args.exts]
    # Paths are always absolute (upstream writes them as found, i.e. relative to the current folder unless
    # --resolve: such a manifest breaks when used from another folder); --relative makes them relative to
    # the manifest's folder, which load_audio_meta resolves against.
    metas, failures = scan_audio_files(
        args.root, exts, resolve=True, minimal=not args.complete, progress=not args.no_progress, workers=args.workers
    )
    if failures:
        print(f"{len(failures)} unreadable file(s) left out:", file=sys.stderr)
        for path, error in failures:
            print(f"  {path}: {error}", file=sys.stderr)
    if not metas:
        print(
            f"error: no readable audio file under {args.root} (extensions {' '.join(exts)}; {len(failures)} "
            f"unreadable): {args.output_meta_file} not written",
            file=sys.stderr,
        )
        return 1
    if args.relative:
        folder = Path(args.output_meta_file).absolute().parent
        for m in metas:
            m.path = os.path.relpath(m.path, folder)
    save_audio_meta(args.output_meta_file, metas)
    print(
        f"wrote {len(metas)} entries to {args.output_meta_file}"
        + (f" ({len(failures)} unreadable file(s) skipped)" if failures else ""),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
