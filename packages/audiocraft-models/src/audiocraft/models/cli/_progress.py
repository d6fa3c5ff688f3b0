"""A text progress bar on stderr (no dependency), shared by the command lines."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """Redraws ``label [#####.....] done/total  elapsed`` on one line of ``stream``.

    Args:
        label: text before the bar.
        stream: where to draw (default stderr).
        width: characters of the bar.
    """

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.start = time.perf_counter()
        self._last = ""

    def __call__(self, done: int, total: int) -> None:
        """Draw the bar at ``done`` out of ``total`` (the signature of a progress callback)."""
        total = max(total, 1)
        done = min(max(done, 0), total)
        filled = self.width * done // total
        line = (
            f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} "
            f"{time.perf_counter() - self.start:6.1f}s"
        )
        if line != self._last:
            self.stream.write(line)
            self.stream.flush()
            self._last = line

    def close(self) -> None:
        """End the line of the bar."""
        if self._last:
            self.stream.write("\n")
            self.stream.flush()
