"""Manifest records (``AudioMeta``, ``SegmentInfo``) and JSON-lines manifest load/save/scan.

Part of ``audiocraft-data``; re-exported by :mod:`audiocraft.data.audio_dataset`, where upstream
AudioCraft users import them from. A manifest is a text file (optionally gzipped) holding one JSON
object per line with the ``AudioMeta`` fields. Relative ``path`` values are resolved against the
manifest's directory first, then against the current directory (upstream's convention), so a
dataset folder holding its manifest and its audio can be moved around. Malformed lines raise an
error naming the manifest, the line number and the key at fault.
"""

import gzip
import json
import logging
import math
import os
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import soundfile

from .audio import AudioFileError, audio_info, audio_read
from .zip import PathInZip, is_zip_path

logger = logging.getLogger(__name__)

DEFAULT_EXTS = [".wav", ".mp3", ".flac", ".ogg", ".m4a"]
"""Audio file extensions a folder scan collects by default."""


class ManifestError(ValueError):
    """A manifest line that is not valid JSON or does not describe an ``AudioMeta``."""


@dataclass(order=True)
class BaseInfo:
    """Dataclass base with dict conversion that ignores unknown keys."""

    @classmethod
    def _dict2fields(cls, dictionary: dict) -> dict:
        return {f.name: dictionary[f.name] for f in fields(cls) if f.name in dictionary}

    @classmethod
    def from_dict(cls, dictionary: dict) -> Any:
        """Build from a dict, ignoring keys that are not fields."""
        return cls(**cls._dict2fields(dictionary))

    def to_dict(self) -> dict:
        """Shallow dict of the fields (nested dataclasses are kept as objects)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(order=True)
class AudioMeta(BaseInfo):
    """One manifest entry.

    Attributes:
        path (str): audio file, or ``archive.zip:member``.
        duration (float): duration in seconds.
        sample_rate (int): sample rate of the file.
        amplitude (float, optional): peak absolute amplitude (filled by the builder's ``--complete``).
        weight (float, optional): sampling weight (used with ``sample_on_weight``).
        info_path (PathInZip, optional): where the JSON sidecar lives when it is not next to the audio.
    """

    path: str
    duration: float
    sample_rate: int
    amplitude: float | None = None
    weight: float | None = None
    info_path: PathInZip | None = None

    @classmethod
    def from_dict(cls, dictionary: dict) -> "AudioMeta":
        base = cls._dict2fields(dictionary)
        if base.get("info_path") is not None:
            base["info_path"] = PathInZip(base["info_path"])
        return cls(**base)

    def to_dict(self) -> dict:
        d = super().to_dict()
        if d["info_path"] is not None:
            d["info_path"] = str(d["info_path"])
        return d


@dataclass(order=True)
class SegmentInfo(BaseInfo):
    """Where a dataset item comes from, and its shape once converted.

    Attributes:
        meta (AudioMeta): the file.
        seek_time (float): start of the segment in the file, in seconds.
        n_frames (int): number of real (non padded) frames, at the dataset sample rate.
        total_frames (int): number of frames, padding included.
        sample_rate (int): dataset sample rate.
        channels (int): number of channels.
    """

    meta: AudioMeta
    seek_time: float
    n_frames: int
    total_frames: int
    sample_rate: int
    channels: int


_REQUIRED: dict[str, tuple[type, ...]] = {"path": (str,), "duration": (int, float), "sample_rate": (int,)}
_OPTIONAL: dict[str, tuple[type, ...]] = {"amplitude": (int, float), "weight": (int, float), "info_path": (str,)}


_GZIP_MAGIC = b"\x1f\x8b"


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def _open_text(path: Path, mode: str, gz: bool | None = None) -> Any:
    if path.name.lower().endswith(".gz") if gz is None else gz:
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def _resolve_path(path: str, base: Path) -> str | None:
    """Absolute version of ``path`` (relative to ``base``, then to the cwd) if it exists, else None."""
    target = PathInZip(path).zip_path if is_zip_path(path) else path
    candidates = [Path(target)] if os.path.isabs(target) else [base / target, Path(target).absolute()]
    for cand in candidates:
        if cand.exists():
            resolved = os.path.normpath(cand)
            return f"{resolved}:{PathInZip(path).file_path}" if is_zip_path(path) else resolved
    return None


def _parse_line(line: str, manifest: Path, lineno: int) -> AudioMeta:
    where = f"{manifest}, line {lineno}"
    try:
        obj = json.loads(line, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: invalid JSON ({exc.msg})") from None
    except ValueError as exc:  # NaN / Infinity / -Infinity
        raise ManifestError(f"{where}: invalid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for key, types in _REQUIRED.items():
        if key not in obj:
            raise ManifestError(f"{where}: missing key {key!r}")
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise ManifestError(f"{where}: key {key!r} has wrong type {type(value).__name__} ({value!r})")
    for key, types in _OPTIONAL.items():
        value = obj.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
            raise ManifestError(f"{where}: key {key!r} has wrong type {type(value).__name__} ({value!r})")
    for key in ("duration", "amplitude", "weight"):  # 1e999 parses as inf
        if isinstance(obj.get(key), float) and not math.isfinite(obj[key]):
            raise ManifestError(f"{where}: key {key!r} must be finite, got {obj[key]!r}")
    for key in ("duration", "sample_rate"):
        if not obj[key] > 0:
            raise ManifestError(
                f"{where}: key {key!r} must be > 0, got {obj[key]!r} (rebuild the manifest with "
                "`python -m audiocraft.data.audio_dataset`, which skips empty files)"
            )
    if obj.get("weight") is not None and obj["weight"] < 0:
        raise ManifestError(f"{where}: key 'weight' must be >= 0, got {obj['weight']!r}")
    if obj.get("info_path") is not None and not is_zip_path(obj["info_path"]):
        raise ManifestError(f"{where}: key 'info_path' must be 'archive.zip:member', got {obj['info_path']!r}")
    return AudioMeta.from_dict(obj)


def _example_dataset_hint(manifest: Path) -> str:
    """Hint on making the bundled example dataset when ``manifest`` is one of its splits (``.../egs/example/...``).

    The example dataset is generated by `audiocraft.data.example`, not shipped, so a fresh checkout does not have
    it yet.

    Args:
        manifest: path of the manifest that is missing.

    Returns:
        The hint to append to the error message, or an empty string for other manifests.
    """
    parts = manifest.parts
    for i in range(len(parts) - 1):
        if parts[i : i + 2] == ("egs", "example"):
            root = Path(*parts[: i + 2])
            return (
                f" (the example dataset is generated, not shipped: make it with "
                f"`python -m audiocraft.data.example {root}`, or run `./dev.sh main` in the repository)"
            )
    return ""


def load_audio_meta(
    path: str | os.PathLike[str],
    resolve: bool = True,
    fast: bool = True,
    path_mapper: Callable[[str], str] | None = None,
    check_paths: bool = True,
) -> list[AudioMeta]:
    """Load a JSON-lines manifest (``.jsonl`` or ``.jsonl.gz``).

    Args:
        path (str or Path): manifest file.
        resolve (bool): make relative audio paths absolute (manifest directory first, then cwd).
        fast (bool): kept for upstream compatibility (no effect).
        path_mapper (callable, optional): applied to every audio path (and ``info_path`` archive) before
            it is resolved, e.g. to map a dataset root from one cluster to another.
        check_paths (bool): raise if an audio file (or zip archive) does not exist.

    Returns:
        list[AudioMeta]: the entries, in file order.

    Raises:
        FileNotFoundError: if the manifest does not exist.
        ManifestError: naming the manifest, the line number and the key for any bad line.
    """
    manifest = Path(path)
    if not manifest.is_file():
        raise FileNotFoundError(f"manifest not found: {manifest}{_example_dataset_hint(manifest)}")
    base = manifest.parent.absolute()
    metas: list[AudioMeta] = []
    with open(manifest, "rb") as raw:
        magic = raw.read(2)
    gz = manifest.name.lower().endswith(".gz")
    if gz and magic and magic != _GZIP_MAGIC:
        raise ManifestError(
            f"{manifest}: not a gzip file although its name ends in .gz (it starts with {magic!r}): "
            "rename it without .gz if it is plain JSON lines, or gzip it"
        )
    if not gz and magic == _GZIP_MAGIC:
        raise ManifestError(
            f"{manifest}: gzip-compressed although its name does not end in .gz: rename it to "
            f"{manifest.name}.gz or decompress it"
        )
    lineno = 0
    with gzip.open(manifest, "rb") if gz else open(manifest, "rb") as fp:
        while True:
            try:
                raw_line = fp.readline()
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise ManifestError(
                    f"{manifest}, line {lineno + 1}: corrupt or truncated gzip data "
                    f"({type(exc).__name__}: {exc}); rebuild or re-copy the manifest"
                ) from None
            if not raw_line:
                break
            lineno += 1
            try:
                line = raw_line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ManifestError(
                    f"{manifest}, line {lineno}: not UTF-8 text ({exc.reason} at byte {exc.start} "
                    "of the line); re-encode the manifest as UTF-8, e.g. `iconv -f latin1 -t utf-8`"
                ) from None
            if not line.strip():
                continue
            meta = _parse_line(line, manifest, lineno)
            if path_mapper is not None:
                meta.path = path_mapper(meta.path)
                if meta.info_path is not None:
                    meta.info_path.zip_path = path_mapper(meta.info_path.zip_path)
            if resolve or check_paths:
                resolved = _resolve_path(meta.path, base)
                if resolved is None and check_paths:
                    raise ManifestError(f"{manifest}, line {lineno}: key 'path': file does not exist: {meta.path}")
                if resolve and resolved is not None:
                    meta.path = resolved
                if resolve and meta.info_path is not None:
                    archive = _resolve_path(meta.info_path.zip_path, base)
                    if archive is not None:
                        meta.info_path.zip_path = archive
            metas.append(meta)
    return metas


def save_audio_meta(path: str | os.PathLike[str], meta: Sequence[AudioMeta]) -> None:
    """Write a manifest (gzipped if ``path`` ends with ``.gz``), atomically.

    Args:
        path (str or Path): output manifest path; parent directories are created.
        meta (list[AudioMeta]): entries to write, one JSON object per line.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        with _open_text(tmp, "w", gz=out.name.lower().endswith(".gz")) as fp:
            for m in meta:
                try:
                    fp.write(json.dumps(m.to_dict(), allow_nan=False) + "\n")
                except ValueError:
                    raise ManifestError(
                        f"cannot write {out}: the entry of {m.path} holds a NaN or infinite value "
                        f"({m.to_dict()}), which is not JSON"
                    ) from None
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def _get_audio_meta(file_path: str, minimal: bool = True) -> AudioMeta:
    """Read one file's ``AudioMeta`` (``minimal=False`` also decodes it to measure the amplitude)."""
    info = audio_info(file_path)
    if info.frames == 0 or info.duration <= 0:
        raise AudioFileError(f"{file_path} holds no audio (0 frames)")
    amplitude: float | None = None
    if not minimal or _is_float_pcm(file_path):
        # Float PCM is the one format that can hold NaN/Inf samples: decode it even for a minimal manifest.
        wav, _ = audio_read(file_path)
        bad = int((~wav.isfinite()).sum())
        if bad:
            raise AudioFileError(f"{file_path} holds {bad} NaN or infinite sample(s)")
        if not minimal:
            amplitude = float(wav.abs().max().item()) if wav.numel() else 0.0
    return AudioMeta(file_path, info.duration, info.sample_rate, amplitude)


def _is_float_pcm(file_path: str) -> bool:
    """Whether ``file_path`` (not in a zip) is stored as float samples (WAV/AIFF/CAF ``FLOAT``/``DOUBLE``)."""
    if is_zip_path(file_path):
        return False
    try:
        return soundfile.info(file_path).subtype in ("FLOAT", "DOUBLE")
    except (RuntimeError, OSError):
        return False


def scan_audio_files(
    root: str | os.PathLike[str],
    exts: Sequence[str] = DEFAULT_EXTS,
    resolve: bool = True,
    minimal: bool = True,
    progress: bool = False,
    workers: int = 0,
) -> tuple[list[AudioMeta], list[tuple[str, str]]]:
    """Find audio files under ``root`` and read their metadata, in parallel threads.

    Args:
        root (str or Path): folder to scan recursively.
        exts (list[str]): file extensions to keep (case-insensitive, with the dot).
        resolve (bool): store absolute paths.
        minimal (bool): skip the amplitude (which needs a full decode).
        progress (bool): show a tqdm progress bar on stderr.
        workers (int): number of threads (0 reads in the calling thread).

    Returns:
        tuple: the metadata of every readable file (sorted by path), and ``(path, error)`` for the others.
    """
    from tqdm import tqdm

    wanted = {e.lower() for e in exts}
    files: list[str] = []
    for dirpath, _, names in os.walk(root, followlinks=True):
        for name in names:
            if Path(name).suffix.lower() in wanted:
                full = os.path.join(dirpath, name)
                files.append(os.path.realpath(full) if resolve else full)
    files.sort()

    def _one(file_path: str) -> AudioMeta | tuple[str, str]:
        try:
            return _get_audio_meta(file_path, minimal)
        except Exception as exc:  # report and go on: one bad file must not abort the scan
            return file_path, f"{type(exc).__name__}: {exc}"

    bar = tqdm(total=len(files), disable=not progress, unit="file", desc="scanning")
    results: list[AudioMeta | tuple[str, str]] = []
    if workers > 0:
        with ThreadPoolExecutor(workers) as pool:
            for result in pool.map(_one, files):
                results.append(result)
                bar.update()
    else:
        for file_path in files:
            results.append(_one(file_path))
            bar.update()
    bar.close()
    metas = [r for r in results if isinstance(r, AudioMeta)]
    failures = [r for r in results if not isinstance(r, AudioMeta)]
    return metas, failures


def find_audio_files(
    path: str | os.PathLike[str],
    exts: Sequence[str] = DEFAULT_EXTS,
    resolve: bool = True,
    minimal: bool = True,
    progress: bool = False,
    workers: int = 0,
) -> list[AudioMeta]:
    """Upstream-compatible scan: like :func:`scan_audio_files`, logging unreadable files instead of returning them."""
    metas, failures = scan_audio_files(path, exts, resolve, minimal, progress, workers)
    for file_path, error in failures:
        logger.warning("skipping unreadable audio file %s: %s", file_path, error)
    return metas
