"""Deadlock detection: a watchdog thread that kills a training loop that stopped making progress.

It dumps every thread's stack and kills the process when no progress is reported for ``timeout`` seconds.

Part of audiocraft-core (training layer). Enabled with ``deadlock.use=true``; the solver calls
``update(stage)`` at each step of its loop.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
import time
import traceback
import typing as tp

logger = logging.getLogger(__name__)


class DeadlockDetect:
    """Watchdog for training loops.

    Args:
        use: whether the watchdog runs.
        timeout: seconds without `update` after which the process is killed.
        on_timeout: callable replacing the default action (stack dump + SIGKILL), used in tests.
    """

    def __init__(self, use: bool = False, timeout: float = 120.0, on_timeout: tp.Callable[[], None] | None = None):
        self.use = use
        self.timeout = timeout
        self.on_timeout = on_timeout
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None

    def update(self, stage: str) -> None:
        """Report progress, which restarts the timeout.

        Args:
            stage: name of the step reached (logged if the watchdog fires).
        """
        if self.use:
            self._queue.put(stage)

    def __enter__(self) -> DeadlockDetect:
        if self.use:
            self._thread = threading.Thread(target=self._detector_thread, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: tp.Any, exc_val: tp.Any, exc_tb: tp.Any) -> None:
        if self.use:
            self._queue.put(None)
            assert self._thread is not None
            self._thread.join()

    def _detector_thread(self) -> None:
        last = "start"
        while True:
            try:
                stage = self._queue.get(timeout=self.timeout)
            except queue.Empty:
                break
            if stage is None:
                return
            last = stage
        logger.error("Deadlock detected: no progress for %.0f s (last stage: %s)", self.timeout, last)
        if self.on_timeout is not None:
            self.on_timeout()
            return
        for th in threading.enumerate():  # pragma: no cover - kills the process
            print(th, file=sys.stderr)
            traceback.print_stack(sys._current_frames()[th.ident], file=sys.stderr)  # type: ignore[index]
            print(file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        time.sleep(1)
        os.kill(os.getpid(), signal.SIGKILL)
