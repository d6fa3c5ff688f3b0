"""Write and validate the JSON sidecars that ``MusicDataset`` / ``SoundDataset`` read, from a table of captions.

Part of ``audiocraft-data`` (upstream AudioCraft has no such tool: its users write the sidecars by hand).
``audiocraft-metadata TABLE --root ROOT`` (or ``python -m audiocraft.data.metadata``) reads a CSV / TSV or JSON-lines
table with one row per audio file (a column naming the file, relative to ``ROOT`` or absolute, and the metadata
fields), type-checks every field, and writes ``song.json`` next to ``song.wav``. Music sidecars get every
``MusicInfo`` field (``null`` when the table has none; ``name`` defaults to the file's stem) so that
``MusicDataset(info_fields_required=True)`` accepts them. An existing sidecar is never replaced without
``--overwrite``; files are written atomically. The report lists table rows whose audio file does not exist and
audio files (under ``ROOT``, or in ``--manifest``) left without metadata. ``--check`` writes nothing: it
validates the sidecars of a manifest's (or folder's) files with the same rules.
"""

import argparse
import csv
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._manifest import DEFAULT_EXTS, AudioMeta, load_audio_meta
from .atomic import atomic_write
from .info_audio_dataset import info_json_path, load_info_json
from .zip import is_zip_path

__all__ = [
    "FIELDS",
    "MetadataError",
    "MetadataReport",
    "check_sidecars",
    "main",
    "normalize_record",
    "read_table",
    "write_sidecars",
]

AUDIO_COLUMNS = ("path", "audio", "file", "filename", "audio_path")


class MetadataError(ValueError):
    """A metadata value (or table) is invalid; the message names the file, row and field."""


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        raise MetadataError(f"expected a string, got {type(value).__name__} {value!r}")
    return value.strip() or None


def _number(value: Any) -> float | None:
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = float(value)
        except ValueError:
            raise MetadataError(f"expected a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetadataError(f"expected a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise MetadataError(f"expected a positive number, got {value!r}")
    return float(value)


def _keywords(value: Any) -> list[str] | None:
    # Strings are split on commas only: "hip hop, lo-fi" -> ["hip hop", "lo-fi"] (kept as written in a list).
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list):
        raise MetadataError(f"expected a list of strings or a comma-separated string, got {type(value).__name__}")
    bad = [v for v in items if not isinstance(v, str)]
    if bad:
        raise MetadataError(f"expected strings in the list, got {bad[0]!r}")
    kept = [v.strip() for v in items if v.strip()]
    return kept or None


def _key(value: Any) -> str | None:
    key = _text(value)
    if key is not None and "," in key:
        raise MetadataError(f"one musical key expected, got {key!r} (MusicDataset drops keys with a comma)")
    return key


def _descriptions(value: Any) -> str | list[str] | None:
    if isinstance(value, list):  # SoundDataset draws one of several descriptions per item
        return _keywords(value)
    return _text(value)


# The sidecar schema of each dataset kind: field -> checker (None for a missing value, error for a bad one).
FIELDS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "music": {
        "title": _text,
        "artist": _text,
        "key": _key,
        "bpm": _number,
        "genre": _text,
        "moods": _keywords,
        "keywords": _keywords,
        "description": _text,
        "name": _text,
        "instrument": _text,
    },
    "sound": {"description": _descriptions},
}
"""The sidecar schema of each dataset kind: field name to checker (None for a missing value, an error for a bad one)."""
# Fields a dataset with ``info_fields_required=True`` needs in each sidecar.
_REQUIRED = {"music": set(FIELDS["music"]) - {"keywords"}, "sound": {"description"}}


@dataclass
class MetadataReport:
    """What a run did and found.

    Attributes:
        written: sidecars written.
        kept: sidecars that already existed and were left as they were (no ``--overwrite``).
        checked: sidecars validated without error (``--check``).
        missing_audio: table rows (``"table line N: path"``) or manifest entries whose audio file does not exist.
        without_metadata: audio files that have no sidecar.
        errors: invalid rows, fields and sidecars, each naming its file, row and field.
    """

    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    checked: list[Path] = field(default_factory=list)
    missing_audio: list[str] = field(default_factory=list)
    without_metadata: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No error, no row without audio and no audio without metadata."""
        return not (self.errors or self.missing_audio or self.without_metadata)

    def summary(self) -> str:
        """Human-readable report, problems listed one per line."""
        if self.written or self.kept or not self.checked:
            lines = [
                f"{len(self.written)} sidecar(s) written, {len(self.kept)} kept (they exist; --overwrite replaces them)"
            ]
        else:
            lines = [f"{len(self.checked)} sidecar(s) checked"]
        for title, items in (
            ("error(s)", self.errors),
            ("table row(s) whose audio file does not exist", self.missing_audio),
            ("audio file(s) without metadata", self.without_metadata),
        ):
            if items:
                lines.append(f"{len(items)} {title}:")
                lines.extend(f"  {item}" for item in items)
        return "\n".join(lines)


def read_table(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, record)`` for each row of a ``.csv`` / ``.tsv`` (header row) or ``.jsonl`` table.

    Raises:
        MetadataError: naming the table and line for unreadable rows.
    """
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with open(path, encoding="utf-8") as fp:
            for lineno, line in enumerate(fp, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise MetadataError(f"{path} line {lineno}: invalid JSON ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise MetadataError(f"{path} line {lineno}: expected a JSON object, got {type(record).__name__}")
                yield lineno, record
    elif path.suffix.lower() in (".csv", ".tsv"):
        with open(path, encoding="utf-8-sig", newline="") as fp:
            reader = csv.DictReader(fp, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            for record in reader:
                if None in record:
                    raise MetadataError(f"{path} line {reader.line_num}: more cells than header columns")
                yield reader.line_num, {k: v for k, v in record.items() if v is not None}
    else:
        raise MetadataError(f"{path}: unknown table format {path.suffix!r} (use .csv, .tsv or .jsonl)")


def normalize_record(
    record: dict[str, Any], kind: str = "music", where: str = "", keep_extra: bool = False
) -> dict[str, Any]:
    """Type-check and normalise the metadata fields of one record (the audio column already removed).

    Args:
        record: field -> value, e.g. one table row or one sidecar.
        kind: ``'music'`` or ``'sound'``.
        where: prefix of error messages (file and line).
        keep_extra: keep fields outside the schema as they are instead of rejecting them.

    Raises:
        MetadataError: naming ``where`` and the field.
    """
    schema = FIELDS[kind]
    out: dict[str, Any] = {}
    for name, value in record.items():
        if name not in schema:
            if not keep_extra:
                raise MetadataError(
                    f"{where}: field {name!r} is not a {kind} metadata field ({', '.join(schema)}); "
                    "rename it, or pass --keep-extra to keep it as is"
                )
            out[name] = value
            continue
        try:
            out[name] = None if value is None else schema[name](value)
        except MetadataError as exc:
            raise MetadataError(f"{where}: field {name!r}: {exc}") from None
    return out


def _write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(path, write)


def _audio_files(root: Path | None, manifest: Path | None, exts: Sequence[str]) -> list[AudioMeta]:
    if manifest is not None:
        return load_audio_meta(manifest, resolve=True, check_paths=False)
    if root is None:
        return []
    wanted = {e.lower() for e in exts}
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in wanted and p.is_file())
    return [AudioMeta(str(p.absolute()), 0.0, 0) for p in files]


def write_sidecars(
    table: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    kind: str = "music",
    audio_column: str | None = None,
    overwrite: bool = False,
    keep_extra: bool = False,
    manifest: str | os.PathLike[str] | None = None,
    exts: Sequence[str] = DEFAULT_EXTS,
    dry_run: bool = False,
) -> MetadataReport:
    """Write one JSON sidecar per table row (see the module docstring).

    Args:
        table: ``.csv`` / ``.tsv`` / ``.jsonl`` table of captions.
        root: folder that relative audio paths start from (default: the table's folder); scanned for audio
            files left without metadata when no manifest is given.
        kind: ``'music'`` (MusicDataset fields) or ``'sound'`` (SoundDataset: ``description``).
        audio_column: column naming the audio file (default: the first of ``path, audio, file, filename,
            audio_path`` that the table has).
        overwrite: replace existing sidecars.
        keep_extra: keep columns outside the schema (default: an error naming the column).
        manifest: the files to report on (instead of scanning ``root``).
        exts: audio extensions scanned under ``root``.
        dry_run: validate and report, write nothing.
    """
    if kind not in FIELDS:
        raise ValueError(f"unknown metadata kind {kind!r}; valid kinds: {sorted(FIELDS)}")
    table = Path(table)
    base = Path(root) if root is not None else table.parent
    report = MetadataReport()
    rows: dict[Path, int] = {}
    records = list(read_table(table))  # a malformed table fails before anything is written
    for lineno, record in records:
        where = f"{table} line {lineno}"
        column = audio_column or next((c for c in AUDIO_COLUMNS if c in record), None)
        if column is None or not str(record.get(column) or "").strip():
            report.errors.append(
                f"{where}: no audio file (column {column or ' / '.join(AUDIO_COLUMNS)!r} "
                f"missing or empty; set the column with --audio-column)"
            )
            continue
        audio = Path(str(record[column]).strip())
        audio = (audio if audio.is_absolute() else base / audio).absolute()
        if audio in rows:
            report.errors.append(f"{where}: {audio} already described at line {rows[audio]}")
            continue
        rows[audio] = lineno
        if not audio.is_file():
            report.missing_audio.append(f"{where}: {audio}")
            continue
        try:
            data = normalize_record({k: v for k, v in record.items() if k != column}, kind, where, keep_extra)
        except MetadataError as exc:
            report.errors.append(str(exc))
            continue
        if kind == "music":
            data = {name: data.get(name) for name in FIELDS["music"]} | data
            data["name"] = data["name"] or audio.stem
        sidecar = audio.with_suffix(".json")
        if sidecar.exists() and not overwrite:
            report.kept.append(sidecar)
            continue
        if not dry_run:
            _write_text(sidecar, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        report.written.append(sidecar)
    for meta in _audio_files(Path(root) if root is not None else None, Path(manifest) if manifest else None, exts):
        audio = Path(meta.path)
        if not Path(info_json_path(meta)).exists() and not (dry_run and audio.absolute() in rows):
            report.without_metadata.append(audio)
    return report


def check_sidecars(
    manifest: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    kind: str = "music",
    require_fields: bool = True,
    keep_extra: bool = True,
    exts: Sequence[str] = DEFAULT_EXTS,
) -> MetadataReport:
    """Validate the sidecars of a manifest's files (or of the audio files under ``root``); write nothing.

    Args:
        manifest: JSON-lines manifest (sidecars found as the datasets find them, ``info_path`` and zips included).
        root: folder scanned for audio files when there is no manifest.
        kind: ``'music'`` or ``'sound'``.
        require_fields: every field a dataset with ``info_fields_required=True`` needs must be present.
        keep_extra: accept fields outside the schema (the datasets ignore them).
        exts: audio extensions scanned under ``root``.
    """
    if kind not in FIELDS:
        raise ValueError(f"unknown metadata kind {kind!r}; valid kinds: {sorted(FIELDS)}")
    if manifest is None and root is None:
        raise ValueError("check_sidecars needs a manifest or a root folder")
    report = MetadataReport()
    for meta in _audio_files(Path(root) if root is not None else None, Path(manifest) if manifest else None, exts):
        if not is_zip_path(meta.path) and not Path(meta.path).is_file():
            report.missing_audio.append(f"{manifest}: {meta.path}")
        sidecar = info_json_path(meta)
        try:
            data = load_info_json(sidecar)
        except ValueError as exc:
            report.errors.append(str(exc))
            continue
        if data is None:
            report.without_metadata.append(Path(meta.path))
            continue
        try:
            normalize_record(data, kind, f"metadata file {sidecar}", keep_extra)
        except MetadataError as exc:
            report.errors.append(str(exc))
            continue
        missing = sorted(_REQUIRED[kind] - set(data)) if require_fields else []
        if missing:
            report.errors.append(
                f"metadata file {sidecar}: missing field(s) {missing} (needed with dataset.info_fields_required=true)"
            )
            continue
        report.checked.append(Path(sidecar))
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``audiocraft-metadata`` / ``python -m audiocraft.data.metadata``; 1 when problems are found."""
    parser = argparse.ArgumentParser(
        prog="audiocraft-metadata",
        description="Write the JSON sidecars (song.wav -> song.json) that MusicDataset / SoundDataset read, from a "
        "CSV/TSV/JSONL table of captions; or, with --check, validate existing sidecars. Reports table "
        "rows whose audio file does not exist and audio files without metadata; exits 1 on any problem.",
    )
    parser.add_argument("table", nargs="?", help="captions table (.csv, .tsv or .jsonl), one row per audio file")
    parser.add_argument(
        "--root",
        help="folder relative audio paths start from (default: the table's folder); "
        "scanned for audio files without metadata when there is no --manifest",
    )
    parser.add_argument("--manifest", help="JSON-lines manifest of the dataset: the files to report on / to check")
    parser.add_argument(
        "--kind",
        choices=sorted(FIELDS),
        default="music",
        help="music: MusicDataset fields; sound: SoundDataset description (default: music)",
    )
    parser.add_argument("--audio-column", help=f"column naming the audio file (default: first of {AUDIO_COLUMNS})")
    parser.add_argument("--overwrite", action="store_true", help="replace existing sidecars")
    parser.add_argument("--keep-extra", action="store_true", help="keep columns that are not metadata fields")
    parser.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    parser.add_argument("--check", action="store_true", help="only validate the sidecars of --manifest (or --root)")
    parser.add_argument(
        "--no-require-fields",
        action="store_true",
        help="with --check: accept sidecars without every field (info_fields_required=false)",
    )
    args = parser.parse_args(argv)
    try:
        if args.check:
            if args.table or not (args.manifest or args.root):
                parser.error("--check takes --manifest (or --root) and no table")
            report = check_sidecars(args.manifest, args.root, args.kind, not args.no_require_fields)
        else:
            if not args.table:
                parser.error("a captions table is required (or --check)")
            report = write_sidecars(
                args.table,
                args.root,
                args.kind,
                args.audio_column,
                args.overwrite,
                args.keep_extra,
                args.manifest,
                dry_run=args.dry_run,
            )
    except (ValueError, OSError) as exc:  # a bad table or manifest: the message names the file and line
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.summary(), file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
