"""Make the shared torch install visible to the current interpreter's environment.

torch (a CUDA build, ~5 GB) is installed once, with `pip install --target .venvs/torch`, by dev.sh. Every
environment of the project (the development venv and each hatch test environment) gets a `.pth` file pointing at
that folder, so pip sees torch as installed and never installs a second copy. The folder is appended to sys.path
after the environment's own site-packages, so a package installed in the environment always wins.

Usage: python scripts/link_torch.py [TORCH_DIR]   (default: <repo>/.venvs/torch)
"""

from __future__ import annotations

import pathlib
import sys
import sysconfig

PTH_NAME = "_audiocraft_shared_torch.pth"


def main() -> int:
    repo = pathlib.Path(__file__).resolve().parent.parent
    torch_dir = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else repo / ".venvs" / "torch").resolve()
    if not (torch_dir / "torch").is_dir():
        print(f"link_torch: no torch install in {torch_dir}; run ./dev.sh setup first", file=sys.stderr)
        return 1
    if sys.prefix == sys.base_prefix:
        print("link_torch: refusing to modify a non-virtual (system) environment", file=sys.stderr)
        return 1
    site = pathlib.Path(sysconfig.get_paths()["purelib"])
    (site / PTH_NAME).write_text(f"{torch_dir}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
