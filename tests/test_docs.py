"""Docs as tests: the runnable shell and Python blocks of the documentation run here, so an example cannot drift.

Marking convention (docs/DEVELOPMENT.md, "Docs as tests"): an HTML comment on the line before a fenced block,

    <!-- doctest: run -->                      run the block (bash -euo pipefail, or python)
    <!-- doctest: run sub="OLD=>NEW" -->        run it with OLD replaced by NEW ({exported}: the shared debug export,
                                               {sig}, {xp}: its signature and folder; {mg_exported}, {mg_sig},
                                               {mg_xp}: those of the shared debug MusicGen, {mg_tiny}: its
                                               overrides); several: "A=>B;C=>D"
    <!-- doctest: run continues -->            a Python block that continues the page's previous Python block
    <!-- doctest: skip reason="needs a GPU" --> never run; the reason is shown by the page
    <!-- doctest: file path="x/y.yaml" -->     write the block into the working copy (a config a later block uses)

Every ``bash``/``sh``/``python`` block of every page (README.md, docs/*.md, packages/*/README.md) must carry a
marker, so a new example is either run or says why not. The blocks of one page run in order, in one temporary
working copy (the example dataset, the configs), with ``AUDIOCRAFT_DORA_DIR`` pointing at one session-wide Dora
folder where the debug compression XP was trained once: a page's ``dora run solver=compression/debug`` then resumes
that finished XP instead of training again. The debug MusicGen XP (``solver=musicgen/debug {mg_tiny}``: one short
epoch) is trained there too, once, for the pages that name one of its ``{mg_*}`` values.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import pytest
from repo_helpers import REPO

MARKER = re.compile(r"^<!--\s*doctest:\s*(?P<kind>run|skip|file)(?P<args>.*?)-->\s*$")
ARG = re.compile(r'(\w+)="([^"]*)"')
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)")
EXECUTABLE = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python"}
# The debug MusicGen of the pages ({mg_tiny}): one epoch of 4 updates, small valid/evaluate splits, no chroma
# metric (it generates audio); it still evaluates, generates samples and exports (about 20 s).
MG_TINY = (
    "optim.epochs=1 optim.updates_per_epoch=4 dataset.valid.num_samples=8 dataset.evaluate.num_samples=4 "
    "evaluate.metrics.chroma_cosine=false"
)
BLOCK_TIMEOUT = 1800  # generous: on 2 cores shared with other jobs the debug training takes 10 min instead of 1


@dataclasses.dataclass
class Block:
    page: str
    line: int
    lang: str
    text: str
    kind: str | None  # run, skip, file or None (unmarked)
    args: dict[str, str]
    flags: set[str]


def parse_blocks(page: str) -> list[Block]:
    """The fenced blocks of ``page`` with the marker on the line before each (if any)."""
    lines = (REPO / page).read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        prev = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(prev.strip())
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        raw = marker.group("args") if marker else ""
        blocks.append(
            Block(
                page,
                i + 1,
                fence.group("lang"),
                "\n".join(lines[i + 1 : end]) + "\n",
                marker.group("kind") if marker else None,
                dict(ARG.findall(raw)),
                set(ARG.sub("", raw).split()),
            )
        )
        i = end + 1
    return blocks


def _all_pages() -> list[str]:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted(REPO.glob("packages/*/README.md"))]
    return [str(p.relative_to(REPO)) for p in pages]


@pytest.mark.parametrize("page", _all_pages())
def test_every_block_is_marked(page: str) -> None:
    for block in parse_blocks(page):
        where = f"{page}:{block.line}"
        if block.lang in EXECUTABLE:
            assert block.kind is not None, f"{where}: mark the {block.lang} block with <!-- doctest: run/skip -->"
        if block.kind == "skip":
            assert block.args.get("reason"), f'{where}: a skipped block says why (reason="...")'
        if block.kind == "file":
            assert block.args.get("path"), f"{where}: a file block names its path"


def test_marker_parser_reads_kinds_and_arguments(tmp_path: Path) -> None:
    marker = MARKER.match('<!-- doctest: skip reason="needs a GPU" -->')
    assert marker and marker.group("kind") == "skip"
    assert ARG.findall(marker.group("args")) == [("reason", "needs a GPU")]
    assert MARKER.match("<!-- doctest: maybe -->") is None
    page = tmp_path / "page.md"
    page.write_text(
        'text\n\n<!-- doctest: run continues sub="a=>b" -->\n```python\nprint(1)\n```\n\n```bash\nls\n```\n'
    )
    first, second = parse_blocks(str(page))
    assert (first.kind, first.lang, first.text, first.flags, first.args) == (
        "run",
        "python",
        "print(1)\n",
        {"continues"},
        {"sub": "a=>b"},
    )
    assert (second.kind, second.lang, second.line) == (None, "bash", 8)


@pytest.fixture(scope="session")
def debug_xp(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One trained and exported compression/debug XP shared by every page (about a minute on 2 idle cores)."""
    root = tmp_path_factory.mktemp("docs_dora")
    work = _working_copy(tmp_path_factory.mktemp("docs_debug_xp"))
    env = _env(root)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dora"), "run", "solver=compression/debug"],
        cwd=work,
        env=env,
        timeout=BLOCK_TIMEOUT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"the shared debug XP failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    exported = sorted(root.glob("xps/*/exported/compression_state_dict.bin"))
    assert len(exported) == 1, exported
    return {
        "dora_dir": str(root),
        "exported": str(exported[0]),
        "xp": str(exported[0].parent.parent),
        "sig": exported[0].parent.parent.name,
    }


@pytest.fixture(scope="session")
def debug_musicgen(debug_xp: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One short debug MusicGen XP, trained and exported in the shared Dora folder (about 20 s on 2 idle cores)."""
    work = _working_copy(tmp_path_factory.mktemp("docs_debug_musicgen"))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dora"), "run", "solver=musicgen/debug", *MG_TINY.split()],
        cwd=work,
        env=_env(debug_xp["dora_dir"]),
        timeout=BLOCK_TIMEOUT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"the shared debug MusicGen failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    (summary,) = [line for line in proc.stderr.splitlines() if "Run summary: XP " in line]
    sig = re.search(r"Run summary: XP (\w+) ", summary).group(1)  # type: ignore[union-attr]
    xp = Path(debug_xp["dora_dir"]) / "xps" / sig
    assert f"exported model: {xp / 'exported'} | samples: {xp / 'samples' / '1'}" in summary, summary
    assert (xp / "exported" / "state_dict.bin").is_file()
    return {"mg_sig": sig, "mg_xp": str(xp), "mg_exported": str(xp / "exported"), "mg_tiny": MG_TINY}


@lru_cache(maxsize=1)
def _example_data() -> Path:
    """The example dataset the pages use: the checkout's ``egs/example`` when ``./dev.sh main`` made it, else one
    generated once per test session with the command the docs give (a fresh clone running only the tests has none)."""
    if (REPO / "egs/example/train/data.jsonl").exists():
        return REPO / "egs/example"
    out = Path(tempfile.mkdtemp(prefix="docs_egs_")) / "example"
    subprocess.run(
        [sys.executable, "-m", "audiocraft.data.example", str(out)],
        check=True,
        capture_output=True,
        timeout=BLOCK_TIMEOUT,
    )
    return out


def _working_copy(dest: Path) -> Path:
    shutil.copytree(_example_data(), dest / "egs/example")
    shutil.copytree(REPO / "config", dest / "config")
    return dest


def _env(dora_dir: Path | str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AUDIOCRAFT_DORA_DIR=str(dora_dir),
        DORA_PACKAGE="audiocraft",
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def _runnable_pages() -> list[str]:
    """Every page with a block to run."""
    return [p for p in _all_pages() if any(b.kind in ("run", "file") for b in parse_blocks(p))]


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(3 * BLOCK_TIMEOUT)
@pytest.mark.parametrize("page", _runnable_pages())
def test_page_runs(page: str, debug_xp: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest) -> None:
    blocks = [b for b in parse_blocks(page) if b.kind in ("run", "file")]
    values = dict(debug_xp)
    if any("{mg_" in b.args.get("sub", "") for b in blocks):
        values.update(request.getfixturevalue("debug_musicgen"))
    work = _working_copy(tmp_path)
    env = _env(debug_xp["dora_dir"])
    previous_python = ""
    for block in blocks:
        text = block.text
        for sub in filter(None, block.args.get("sub", "").split(";")):
            assert sub.count("=>") == 1, f'{page}:{block.line}: sub="OLD=>NEW;..." expected, got {sub!r}'
            old, new = sub.split("=>")
            assert old in text, f"{page}:{block.line}: sub={old!r} not in the block"
            text = text.replace(old, new.format(**values))
        if block.lang == "python":
            text = previous_python + text if "continues" in block.flags else text
            previous_python = text
        if block.kind == "file":
            target = work / block.args["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            continue
        bash = EXECUTABLE[block.lang] == "bash"
        cmd = ["bash", "-euo", "pipefail", "-c", text] if bash else [sys.executable, "-c", text]
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
        assert proc.returncode == 0, (
            f"{page}:{block.line} ({block.lang}) failed with {proc.returncode}:\n"
            f"{text}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-5000:]}"
        )
