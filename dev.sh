#!/usr/bin/env bash
# Developer entry point for the monorepo. Needs only Python 3.11 and pip; everything else is installed here.
#
#   ./dev.sh main        set up, then train the debug compression model on the bundled example data
#   ./dev.sh test        set up, then run every package's tests (each in its own environment) and the repo tests
#   ./dev.sh setup       create/refresh .venv (idempotent; seconds when nothing changed)
#   ./dev.sh lint        ruff over the sources          ./dev.sh types   mypy over the sources
#   ./dev.sh build       build wheels and sdists of the six distributions into dist/
#
# Layout: torch (a ~5 GB CUDA build that also runs on CPU) is installed once in .venvs/torch; the development venv
# (.venv) and every hatch test environment (.venvs/hatch) see it without installing it again. Exact versions come
# from requirements/constraints.txt (PIP_CONSTRAINT). See docs/DEVELOPMENT.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
TORCH_DIR="$ROOT/.venvs/torch"
CONSTRAINTS="$ROOT/requirements/constraints.txt"
export PIP_CONSTRAINT="$CONSTRAINTS"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export HATCH_DATA_DIR="$ROOT/.venvs/hatch"
export DORA_PACKAGE=audiocraft
PACKAGES=(audiocraft-data audiocraft-conditioners audiocraft-models audiocraft-metrics audiocraft-core audiocraft)

log() { printf '\033[1m[dev]\033[0m %s\n' "$*" >&2; }

find_python() {
  for cand in "${PYTHON:-}" python3.11 python3 python; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$cand"; return 0
    fi
  done
  echo "dev.sh: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; return 1
}

pin() { grep -E "^$1==" "$CONSTRAINTS" | head -n1; }

setup_stamp() {
  cat "$CONSTRAINTS" "$ROOT/dev.sh" packages/*/pyproject.toml | sha256sum | cut -d' ' -f1
}

setup() {
  local stamp; stamp="$(setup_stamp)"
  if [ -f "$VENV/.setup-stamp" ] && [ "$(cat "$VENV/.setup-stamp")" = "$stamp" ] && [ -f "$TORCH_DIR/.stamp" ]; then
    log "environment up to date ($VENV)"; return 0
  fi
  local py; py="$(find_python)"
  local torch_pin; torch_pin="$(pin torch)"
  if [ ! -f "$TORCH_DIR/.stamp" ] || [ "$(cat "$TORCH_DIR/.stamp")" != "$torch_pin" ]; then
    log "installing the shared $torch_pin into $TORCH_DIR (once; about a minute)"
    rm -rf "$TORCH_DIR"
    "$py" -m pip install -q --target "$TORCH_DIR" "$torch_pin"
    echo "$torch_pin" > "$TORCH_DIR/.stamp"
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$py" -m venv "$VENV"
  fi
  "$VENV/bin/python" scripts/link_torch.py "$TORCH_DIR"
  log "installing the six packages (editable) and the development tools"
  local editables=()
  for p in "${PACKAGES[@]}"; do editables+=(-e "packages/$p"); done
  "$VENV/bin/python" -m pip install -q "${editables[@]}" \
    -e "packages/audiocraft-models[safetensors,hub]" -e "packages/audiocraft-core[tensorboard]" \
    -r requirements/dev.txt
  # `dora` finds the training package through DORA_PACKAGE; this .pth sets it for every process of the venv.
  "$VENV/bin/python" - <<'PY'
import pathlib, sysconfig
pathlib.Path(sysconfig.get_paths()["purelib"], "audiocraft_dora.pth").write_text(
    "import os; os.environ.setdefault('DORA_PACKAGE', 'audiocraft')\n")
PY
  echo "$stamp" > "$VENV/.setup-stamp"
  log "setup done: activate with 'source .venv/bin/activate'"
}

example_data() {
  if [ ! -f egs/example/train/data.jsonl ]; then
    log "generating the example dataset in egs/example"
    "$VENV/bin/python" -m audiocraft.data.example egs/example
  fi
}

cmd_main() {
  setup
  example_data
  export AUDIOCRAFT_DORA_DIR="${AUDIOCRAFT_DORA_DIR:-$ROOT/outputs}"
  log "training solver=compression/debug (XP folders under $AUDIOCRAFT_DORA_DIR)"
  "$VENV/bin/dora" run solver=compression/debug device=cpu "$@"
}

cmd_test() {
  setup
  local failed=()
  for pkg in data conditioners models metrics core meta; do
    log "package tests: $pkg (isolated environment)"
    "$VENV/bin/hatch" run "pkg.$pkg:test" "$@" || failed+=("$pkg")
  done
  log "lint (ruff)"
  "$VENV/bin/ruff" check packages tests scripts benchmarks grids || failed+=("lint")
  log "repository tests (cross-package, in .venv)"
  "$VENV/bin/python" -m pytest tests "$@" || failed+=("repository")
  if [ ${#failed[@]} -gt 0 ]; then
    log "FAILED: ${failed[*]}"; return 1
  fi
  log "all test suites passed"
}

case "${1:-}" in
  setup) setup ;;
  main) shift; cmd_main "$@" ;;
  test) shift; cmd_test "$@" ;;
  lint) shift; setup; "$VENV/bin/hatch" run lint:check "$@" ;;
  types) shift; setup; "$VENV/bin/hatch" run types:check "$@" ;;
  build) shift; setup; for p in "${PACKAGES[@]}"; do "$VENV/bin/python" -m build -q -o dist "packages/$p"; done ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
