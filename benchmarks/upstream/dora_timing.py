"""Shared helpers of the training-speed comparisons with upstream AudioCraft 1.3.0 through real ``dora run`` commands.

Used by ``bench_compression_upstream.py`` (CompressionSolver) and ``bench_musicgen_train_upstream.py``
(MusicGenSolver). :func:`time_dora_run` starts ``<venv>/bin/dora run <overrides>`` with the given interpreter's
venv (upstream's or ours), reads the per-update progress lines that both code bases print (flashy's
``LogProgress``, one line per update when ``logging.log_updates`` equals the number of updates of the epoch) and
takes, at the arrival of the lines of updates ``first`` and ``last``:

- the wall time between them (updates/s: startup, model build, k-means init and warm-up are excluded);
- the CPU time (user + system) the run's process tree used between them, from ``/proc/<pid>/stat``;
- the tree's peak resident memory: the sum over the run's processes of their ``VmHWM`` (each process's peak RSS,
  what ``ru_maxrss`` reports) read just before the run is stopped;
- the machine's 1-minute load average at the start and at the end.

The run is stopped (SIGTERM) after the progress line of update ``last``, or when its train summary is printed
(``until_summary=True``, for runs that must finish their epoch, such as the one that writes a code cache).
Linux only (``/proc``).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPLITS = ("train", "valid", "evaluate", "generate")
_PROGRESS = re.compile(r"\bTrain \| (?:Epoch \d+ \| )?(\d+)/(\d+) \|")
_TICK = os.sysconf("SC_CLK_TCK")


def make_example(root: Path, ours_python: Path, repo: Path) -> Path:
    """Our example dataset in ``root``, plus manifests with absolute paths in ``root/abs/<split>/data.jsonl``.

    Upstream resolves a manifest's relative paths against the working directory, hence the absolute copies. The
    JSON sidecars of the clips (descriptions...) stay next to the audio files, where both code bases look.
    """
    if not (root / "train" / "data.jsonl").exists():
        subprocess.run(
            [str(ours_python), "-m", "audiocraft.data.example", str(root)],
            check=True,
            cwd=repo,
            stdout=subprocess.DEVNULL,
        )
    for split in SPLITS:
        lines = []
        for line in (root / split / "data.jsonl").read_text().splitlines():
            entry = json.loads(line)
            entry["path"] = str((root / split / entry["path"]).resolve())
            lines.append(json.dumps(entry))
        (root / "abs" / split).mkdir(parents=True, exist_ok=True)
        (root / "abs" / split / "data.jsonl").write_text("\n".join(lines) + "\n")
    return root / "abs"


def datasource_overrides(manifests: Path) -> list[str]:
    """The ``datasource.<split>=`` overrides pointing every split at ``manifests``."""
    return [f"datasource.{split}={manifests}/{split}" for split in SPLITS]


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo += _children(current)
    return pids


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (and the children they have reaped)."""
    total = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return total / _TICK


def tree_peak_rss_mib(pid: int) -> float:
    """Sum of the peak resident set sizes (``VmHWM``) of ``pid`` and its live descendants, in MiB."""
    total_kib = 0
    for p in _tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
        total_kib += int(match.group(1)) if match else 0
    return total_kib / 1024


def dora_env(threads: int) -> dict[str, str]:
    """Environment of a benchmarked ``dora run``: thread counts, unbuffered output, a fresh XP folder."""
    return dict(
        os.environ,
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        PYTHONWARNINGS="ignore",
        PYTHONUNBUFFERED="1",
        DORA_PACKAGE="audiocraft",
        USER=os.environ.get("USER", "bench"),  # upstream's dora.dir interpolates ${oc.env:USER}
        AUDIOCRAFT_DORA_DIR=tempfile.mkdtemp(prefix="bench_dora_"),
    )


def time_dora_run(
    python: Path,
    overrides: list[str],
    first: int,
    last: int,
    threads: int,
    until_summary: bool = False,
    extra_env: dict[str, str] | None = None,
) -> dict[str, float]:
    """Run ``dora run <overrides>`` with ``python``'s venv; figures between the progress lines ``first`` and ``last``.

    ``extra_env`` is added to the run's environment (:func:`dora_env`).

    Returns:
        ``ups`` (updates/s), ``cpu_per_update`` (CPU seconds of the process tree per update), ``peak_rss_mib``,
        ``load_start`` and ``load_end`` (1-minute load averages).

    Raises:
        RuntimeError: the run printed no progress line for ``first`` or ``last`` (with the tail of its output).
    """
    load_start = os.getloadavg()[0]
    cmd = [str(python.parent / "dora"), "run", *overrides]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**dora_env(threads), **(extra_env or {})},
        cwd=tempfile.gettempdir(),
    )
    arrivals: dict[int, tuple[float, float]] = {}
    tail: list[str] = []
    peak = 0.0
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            now = time.perf_counter()
            tail = (tail + [line])[-40:]
            match = _PROGRESS.search(line)
            if match:
                update = int(match.group(1))
                arrivals[update] = (now, tree_cpu_seconds(proc.pid))
                if update == last and not until_summary:
                    break
            if "Train Summary" in line:
                break
        peak = tree_peak_rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
    if first not in arrivals or last not in arrivals:
        raise RuntimeError(
            f"`{' '.join(cmd)}` printed no progress line for updates {first} and {last} "
            f"(exit code {proc.returncode}):\n" + "".join(tail)
        )
    wall = arrivals[last][0] - arrivals[first][0]
    cpu = arrivals[last][1] - arrivals[first][1]
    updates = last - first
    return {
        "ups": updates / wall,
        "cpu_per_update": cpu / updates,
        "peak_rss_mib": peak,
        "load_start": load_start,
        "load_end": os.getloadavg()[0],
    }


def implementations(
    ours: Path, upstream: Path, only: str | None, need_dora: bool = True
) -> list[tuple[str, Path]] | None:
    """The ``(name, interpreter)`` pairs to measure, upstream first (``--only`` keeps one), or None if one is missing.

    Args:
        ours: our environment's python.
        upstream: upstream AudioCraft 1.3.0's environment's python.
        only: ``"ours"``, ``"upstream"`` or None (both).
        need_dora: the benchmark runs ``dora`` from the interpreter's folder.

    Returns:
        The pairs, or None after printing which interpreter is missing and the setup command.
    """
    impls = [(name, python) for name, python in (("upstream", upstream), ("ours", ours)) if only in (None, name)]
    for _, python in impls + [("ours", ours)]:  # ours also makes the example data
        needed = python.parent / "dora" if need_dora else python
        if not needed.exists():
            print(f"missing {needed}; run: bash benchmarks/upstream/setup_upstream.sh", file=sys.stderr)
            return None
    return impls


def spread(values: list[float], fmt: str = "{:.3f}") -> str:
    """``median (min-max)`` of ``values``."""
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def paired_ratios(ours: list[float], upstream: list[float]) -> list[float]:
    """Per-pair ratios ours / upstream of rates measured in alternating runs (pair i = run i of each side)."""
    return [o / u for o, u in zip(ours, upstream)]
