"""Import-layer check: every module of a distribution imports, and nothing above it gets imported.

This is the executable form of the dependency rule in DESIGN.md ("dependencies flow one way"). For a given
distribution it walks the `audiocraft.*` subpackages that the distribution owns, imports each module in a fresh
interpreter, and fails if any module of a package *above* it in the stack (or hydra / dora / flashy, for the
inference-side packages) shows up in `sys.modules`. Run inside an environment that holds only the distribution and
its declared dependencies, it also proves that the distribution works alone: an undeclared import is an ImportError.

Usage: python scripts/check_layers.py [audiocraft-models audiocraft-data ...]   (no name: all six distributions)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

# Subpackages (or modules) each distribution owns, from DESIGN.md.
OWNED: dict[str, list[str]] = {
    "audiocraft-data": ["audiocraft.data"],
    "audiocraft-conditioners": ["audiocraft.conditioners"],
    "audiocraft-models": ["audiocraft.models", "audiocraft.modules", "audiocraft.quantization"],
    "audiocraft-metrics": ["audiocraft.metrics"],
    "audiocraft-core": [
        "audiocraft.solvers",
        "audiocraft.optim",
        "audiocraft.losses",
        "audiocraft.adversarial",
        "audiocraft.utils",
        "audiocraft.environment",
    ],
    "audiocraft": ["audiocraft.train", "audiocraft.grids", "audiocraft.export_cli"],
}
# What each distribution may import among the audiocraft distributions (itself included).
ALLOWED: dict[str, set[str]] = {
    "audiocraft-data": {"audiocraft-data"},
    "audiocraft-conditioners": {"audiocraft-conditioners", "audiocraft-data"},
    "audiocraft-models": {"audiocraft-models", "audiocraft-conditioners", "audiocraft-data"},
    "audiocraft-metrics": {"audiocraft-metrics", "audiocraft-data"},
    "audiocraft-core": {
        "audiocraft-core",
        "audiocraft-models",
        "audiocraft-conditioners",
        "audiocraft-metrics",
        "audiocraft-data",
    },
    "audiocraft": set(OWNED),
}
# Third-party training-stack modules that inference-side packages must never load.
TRAINING_STACK = ["hydra", "dora", "flashy", "submitit"]
INFERENCE_SIDE = {"audiocraft-data", "audiocraft-conditioners", "audiocraft-models", "audiocraft-metrics"}


def forbidden_prefixes(dist: str) -> list[str]:
    """Module prefixes that must not appear in `sys.modules` after importing `dist`."""
    prefixes = [mod for other, mods in OWNED.items() if other not in ALLOWED[dist] for mod in mods]
    if dist in INFERENCE_SIDE:
        prefixes += TRAINING_STACK
    return prefixes


_PROBE = r"""
import importlib, json, pkgutil, sys
roots, forbidden = json.loads(sys.argv[1]), json.loads(sys.argv[2])
errors, seen = [], []
def visit(name):
    try:
        mod = importlib.import_module(name)
    except Exception as exc:  # report every failing module, keep going
        errors.append(f"{name}: import failed: {type(exc).__name__}: {exc}")
        return
    seen.append(name)
    for info in pkgutil.iter_modules(getattr(mod, "__path__", None) or []):
        visit(f"{name}.{info.name}")
for root in roots:
    visit(root)
for name in sorted(sys.modules):
    for prefix in forbidden:
        if name == prefix or name.startswith(prefix + "."):
            errors.append(f"forbidden module loaded: {name}")
print(json.dumps({"errors": errors, "modules": seen}))
"""


def check(roots: list[str], forbidden: list[str], python: str = sys.executable) -> tuple[list[str], list[str]]:
    """Import every module under `roots` in a fresh interpreter; return (errors, imported modules)."""
    proc = subprocess.run(
        [python, "-c", _PROBE, json.dumps(roots), json.dumps(forbidden)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        return [f"probe crashed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"], []
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["errors"], result["modules"]


def check_distribution(dist: str, python: str = sys.executable) -> tuple[list[str], list[str]]:
    """Check one audiocraft distribution against the layer rules."""
    if dist not in OWNED:
        raise SystemExit(f"unknown distribution {dist!r}; expected one of {sorted(OWNED)}")
    return check(OWNED[dist], forbidden_prefixes(dist), python)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dists", nargs="*", help="distribution names, e.g. audiocraft-models (default: all)")
    args = parser.parse_args()
    failed = False
    for dist in args.dists or list(OWNED):
        errors, modules = check_distribution(dist)
        status = "FAIL" if errors else "ok"
        print(f"[{status}] {dist}: {len(modules)} modules imported")
        for err in errors:
            print(f"    {err}")
        failed |= bool(errors) or not modules
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
