"""Reinstall the repository's audiocraft distributions that the current environment holds.

Hatch installs sibling distributions from their folders (non-editable, as a user would get them) when it creates a
test environment, and does not notice later source changes. This script rebuilds and reinstalls exactly the
audiocraft distributions already present in the environment (no dependency changes), so each test run sees the
current sources while the environment still holds only what the distribution declares.
"""

from __future__ import annotations

import importlib.metadata as md
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent


def main() -> int:
    names = sorted(
        {
            d.metadata["Name"].lower()
            for d in md.distributions()
            if (d.metadata["Name"] or "").lower().startswith("audiocraft")
        }
    )
    folders = [REPO / "packages" / name for name in names if (REPO / "packages" / name / "pyproject.toml").exists()]
    if not folders:
        print("sync_local: no audiocraft distribution installed here", file=sys.stderr)
        return 1
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", *map(str, folders)]
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
