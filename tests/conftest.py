"""pytest setup for the repository-level tests: make tests/repo_helpers.py importable (importlib import mode)."""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
