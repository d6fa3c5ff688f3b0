"""Paths to files inside zip archives (``archive.zip:inner/path.wav``) and a per-owner archive cache.

Part of ``audiocraft-data``. A manifest entry may point into a zip archive with the upstream
AudioCraft notation ``<zip path>:<member path>``. Unlike upstream, there is no module-level
``lru_cache`` that gets rebound: callers that read many members (e.g. a dataset) own a
:class:`ZipArchiveCache`, which also reopens its archives after a ``fork`` (dataloader workers never
share a file offset with their parent).
"""

import os
import re
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import IO

__all__ = ["PathInZip", "ZipArchiveCache", "is_zip_path", "open_file_in_zip"]

_ZIP_PATH = re.compile(r"^(?P<zip>.+?\.zip):(?P<member>.+)$", re.IGNORECASE)


def is_zip_path(path: "str | os.PathLike[str] | PathInZip") -> bool:
    """Whether ``path`` uses the ``archive.zip:member`` notation."""
    return isinstance(path, PathInZip) or bool(_ZIP_PATH.match(str(path)))


class PathInZip:
    """A file inside a zip archive, written ``<zip_path>:<file_path>``.

    Args:
        path (str): the combined path, e.g. ``/data/clips.zip:clips/a.wav``.

    Raises:
        ValueError: if ``path`` is not of that form.
    """

    INFO_PATH_SEP = ":"

    def __init__(self, path: str) -> None:
        match = _ZIP_PATH.match(str(path))
        if match is None:
            raise ValueError(f"{path!r} is not a path inside a zip archive (expected 'archive.zip:inner/path')")
        self.zip_path = match.group("zip")
        self.file_path = match.group("member")

    @classmethod
    def from_paths(cls, zip_path: str, file_path: str) -> "PathInZip":
        """Build from the archive path and the member path."""
        return cls(str(zip_path) + cls.INFO_PATH_SEP + str(file_path))

    def __str__(self) -> str:
        return self.zip_path + self.INFO_PATH_SEP + self.file_path

    def __repr__(self) -> str:
        return f"PathInZip({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PathInZip) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    @property
    def suffix(self) -> str:
        """Extension of the member, e.g. ``.wav``."""
        return Path(self.file_path).suffix


class ZipArchiveCache:
    """Keeps up to ``max_size`` zip archives open, least recently used evicted first.

    The cache is tied to the process that filled it: after a fork, the child reopens archives
    instead of sharing the parent's file handles.

    Args:
        max_size (int): number of archives kept open.
    """

    def __init__(self, max_size: int = 32) -> None:
        self.max_size = max_size
        self._archives: OrderedDict[str, zipfile.ZipFile] = OrderedDict()
        self._pid = os.getpid()

    def get(self, zip_path: str) -> zipfile.ZipFile:
        """Return the open archive ``zip_path``, opening it if needed."""
        if self._pid != os.getpid():  # forked: drop handles inherited from the parent without closing them
            self._archives = OrderedDict()
            self._pid = os.getpid()
        archive = self._archives.get(zip_path)
        if archive is None:
            archive = zipfile.ZipFile(zip_path, "r")
            self._archives[zip_path] = archive
            while len(self._archives) > self.max_size:
                _, old = self._archives.popitem(last=False)
                old.close()
        else:
            self._archives.move_to_end(zip_path)
        return archive

    def clear(self) -> None:
        """Close every archive."""
        for archive in self._archives.values():
            archive.close()
        self._archives.clear()

    def __getstate__(self) -> dict:
        return {"max_size": self.max_size}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["max_size"])  # type: ignore[misc]


def open_file_in_zip(
    path_in_zip: "PathInZip | str", mode: str = "r", cache: ZipArchiveCache | None = None
) -> IO[bytes]:
    """Open a member of a zip archive for binary reading.

    Args:
        path_in_zip (PathInZip or str): the member, as ``PathInZip`` or ``archive.zip:member``.
        mode (str): only ``'r'`` is supported.
        cache (ZipArchiveCache, optional): archive cache to use; without one, the archive is opened for
            this call only (and closed when the returned file is closed).

    Returns:
        IO[bytes]: a seekable binary file object.

    Raises:
        FileNotFoundError: naming the archive or the member when either is missing.
    """
    if mode != "r":
        raise ValueError(f"open_file_in_zip only reads (mode 'r'), got mode {mode!r}")
    pz = path_in_zip if isinstance(path_in_zip, PathInZip) else PathInZip(path_in_zip)
    if not os.path.isfile(pz.zip_path):
        raise FileNotFoundError(f"zip archive not found: {pz.zip_path} (for {pz})")
    archive = cache.get(pz.zip_path) if cache is not None else zipfile.ZipFile(pz.zip_path, "r")
    try:
        member = archive.open(pz.file_path, "r")
    except KeyError:
        if cache is None:
            archive.close()
        raise FileNotFoundError(f"no member {pz.file_path!r} in zip archive {pz.zip_path}") from None
    if cache is None:
        # the member keeps the archive alive; close the archive together with the member
        close_member = member.close

        def _close() -> None:
            close_member()
            archive.close()

        member.close = _close  # type: ignore[method-assign]
    return member
