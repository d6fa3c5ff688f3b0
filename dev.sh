#!/usr/bin/env bash
# Developer entry point for the monorepo. Needs only Python 3.11 and pip; everything else is installed here.
#
#   ./dev.sh main        set up, train the debug compression model on the bundled example data, then the debug
#                        MusicGen on its codes, and generate audio for a text prompt
#   ./dev.sh test        set up, then run every package's tests (each in its own environment), lint, types and the repo tests
#   ./dev.sh setup       create/refresh .venv (idempotent; seconds when nothing changed)
#   ./dev.sh lint        pre-commit run --all-files (ruff, ruff format --check, mypy, import layers, file hygiene)
#   ./dev.sh types       mypy over the sources (mypy.ini)
#   ./dev.sh build       build wheels and sdists of the six distributions into dist/
#   ./dev.sh docs        build the documentation site with mkdocs --strict (DOCS_SITE_DIR, default a temp folder)
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
  cat "$CONSTRAINTS" "$ROOT"/requirements/*.txt "$ROOT/dev.sh" packages/*/pyproject.toml | sha256sum | cut -d' ' -f1
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
    -e "packages/audiocraft-models[safetensors,hub]" -e "packages/audiocraft-core[tensorboard,lora]" \
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

xp_sig() {  # the Dora signature of a training command line (the same hash `dora run` uses)
  "$VENV/bin/python" -c 'import sys; from audiocraft.train import main; print(main.get_xp(sys.argv[1:]).sig)' "$@"
}

cmd_main() {
  setup
  example_data
  export AUDIOCRAFT_DORA_DIR="${AUDIOCRAFT_DORA_DIR:-$ROOT/outputs}"
  local comp=(solver=compression/debug device=cpu "$@")
  log "1/3 training ${comp[*]} (XP folders under $AUDIOCRAFT_DORA_DIR)"
  "$VENV/bin/dora" run "${comp[@]}"
  local csig; csig="$(xp_sig "${comp[@]}")"
  # The debug LM over the codes of that codec: 16 kHz, the 4 codebooks of 1024 entries the debug LM models.
  local lm=(solver=musicgen/debug device=cpu "compression_model_checkpoint=//sig/$csig"
            sample_rate=16000 compression_model_n_q=4 transformer_lm.card=1024)
  log "2/3 training ${lm[*]}"
  "$VENV/bin/dora" run "${lm[@]}"
  local lsig; lsig="$(xp_sig "${lm[@]}")"
  local model="$AUDIOCRAFT_DORA_DIR/xps/$lsig/exported" out="$AUDIOCRAFT_DORA_DIR/generated"
  log "3/3 generating audio for a text prompt with $model"
  # 4 s from a model trained on 2 s segments: generation slides its window by 1 s (extend_stride) past the first 2 s.
  "$VENV/bin/audiocraft-generate" --model "$model" --duration 4 --extend-stride 1 --seed 0 --output-dir "$out" \
    "calm piano melody with soft strings"
  log "done: codec $AUDIOCRAFT_DORA_DIR/xps/$csig/exported, MusicGen $model, audio and parameters in $out"
}

lint_check() {  # every hook of .pre-commit-config.yaml over the whole tree (a git checkout: the tracked files)
  # The hooks are `language: system`: they run the tools of .venv, put first on PATH. pre-commit's own state (a
  # small database, logs) goes to .venvs/pre-commit unless PRE_COMMIT_HOME says otherwise.
  PATH="$VENV/bin:$PATH" PRE_COMMIT_HOME="${PRE_COMMIT_HOME:-$ROOT/.venvs/pre-commit}" \
    "$VENV/bin/pre-commit" run --all-files --show-diff-on-failure "$@"
}

cmd_docs() {  # the site of mkdocs.yml, built as CI builds it (tests/test_docs_site.py); `mkdocs serve` to preview
  local out="${DOCS_SITE_DIR:-$(mktemp -d)/site}"
  NO_MKDOCS_2_WARNING=1 "$VENV/bin/mkdocs" build --strict --site-dir "$out" "$@"
  log "site built in $out (open $out/index.html, or serve it live with: .venv/bin/mkdocs serve)"
}

cmd_test() {
  setup
  local failed=()
  for pkg in data conditioners models metrics core meta; do
    log "package tests: $pkg (isolated environment)"
    "$VENV/bin/hatch" run "pkg.$pkg:test" "$@" || failed+=("$pkg")
  done
  log "extras: every extra of every package installed together with the pins, then the tests of the extras"
  "$VENV/bin/hatch" run extras:test "$@" || failed+=("extras")
  log "lint: pre-commit run --all-files (file hygiene, ruff, ruff format --check, mypy as ./dev.sh types, layers)"
  lint_check || failed+=("lint")
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
  lint) shift; setup; lint_check "$@" ;;
  types) shift; setup; "$VENV/bin/hatch" run types:check "$@" ;;
  docs) shift; setup; cmd_docs "$@" ;;
  build) shift; setup; for p in "${PACKAGES[@]}"; do "$VENV/bin/python" -m build -q -o dist "packages/$p"; done ;;
  *) sed -n '2,11p' "$0"; exit 2 ;;
esac
