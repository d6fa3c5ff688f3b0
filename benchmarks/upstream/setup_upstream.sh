#!/usr/bin/env bash
# Build .venvs/upstream-1.3: upstream AudioCraft 1.3.0 (from PyPI) for the comparisons in benchmarks/upstream/.
#
#   bash benchmarks/upstream/setup_upstream.sh        (idempotent; about a minute the first time, needs PyPI)
#
# Nothing of upstream is committed to this repository: its sdist is fetched from PyPI into the venv only.
# - torch is NOT installed again: like every environment of the project, the venv sees the shared torch in
#   .venvs/torch through a .pth file (scripts/link_torch.py). Versions come from requirements/constraints.txt.
# - `pip install --no-deps audiocraft==1.3.0` (PyPI has only the sdist), then only the dependencies that upstream's
#   data code and compression training import: upstream pins torch==2.1.0, av==11.0.0, xformers<0.0.23, spacy,
#   librosa, demucs, gradio, torchvision, torchtext..., none of which these code paths need.
# - `import audiocraft` (upstream's __init__ imports data, modules and models) reaches three modules that only
#   optional features use: xformers (memory-efficient attention), spacy (a text tokenizer) and librosa (the chroma
#   extractor). They get import stand-ins in $VENV/shims (on sys.path through a .pth), whose every use raises.
#   transformers (imported at module level by upstream's conditioners and encodec modules), num2words and
#   torchmetrics are the real packages from PyPI.
# - Upstream's Hydra configs are not in the installed package (train.py looks for them in site-packages/config,
#   i.e. `../config` next to the package): they are copied there from the same sdist.
# - torchaudio 2.11's load/save need torchcodec, but upstream 1.3 reads audio with PyAV (wav, mp3) and soundfile
#   (flac, ogg) and never calls torchaudio.load; torchcodec is not installed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${UPSTREAM_VENV:-$ROOT/.venvs/upstream-1.3}"
TORCH_DIR="$ROOT/.venvs/torch"
CONSTRAINTS="$ROOT/requirements/constraints.txt"
UPSTREAM="audiocraft==1.3.0"
export PIP_CONSTRAINT="$CONSTRAINTS"
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf '\033[1m[upstream]\033[0m %s\n' "$*" >&2; }
pin() { grep -E "^$1==" "$CONSTRAINTS" | head -n1; }

if [ ! -d "$TORCH_DIR/torch" ]; then
  echo "setup_upstream: no shared torch in $TORCH_DIR; run ./dev.sh setup first" >&2; exit 1
fi
STAMP="$(cat "$CONSTRAINTS" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)"
if [ -f "$VENV/.upstream-stamp" ] && [ "$(cat "$VENV/.upstream-stamp")" = "$STAMP" ]; then
  log "up to date: $VENV"; exit 0
fi

PY="${PYTHON:-python3.11}"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" "$ROOT/scripts/link_torch.py" "$TORCH_DIR"
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

log "installing upstream's runtime dependencies (torch comes from $TORCH_DIR)"
# Pinned by constraints.txt: numpy, torchaudio, av, soundfile, einops, flashy, hydra-core, julius, omegaconf,
# dora-search, tqdm, treetable, huggingface_hub. Not in constraints (benchmark venv only): pinned here.
"$VENV/bin/python" -m pip install -q \
  numpy "$(pin torchaudio)" av soundfile einops flashy hydra-core julius omegaconf dora-search tqdm treetable \
  huggingface_hub hydra-colorlog==1.2.0 num2words==0.5.14 torchmetrics==1.9.0 transformers==5.24.0

log "installing $UPSTREAM from PyPI without its dependencies"
"$VENV/bin/python" -m pip install -q --no-deps "$UPSTREAM"

log "copying upstream's config/ from its sdist to $SITE/config"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"$VENV/bin/python" -m pip download -q --no-deps --no-binary :all: "$UPSTREAM" -d "$TMP"
tar -xzf "$TMP"/audiocraft-1.3.0.tar.gz -C "$TMP" audiocraft-1.3.0/config
rm -rf "$SITE/config"
cp -r "$TMP/audiocraft-1.3.0/config" "$SITE/config"

log "writing import stand-ins for xformers, spacy, librosa in $VENV/shims"
rm -rf "$VENV/shims"
mkdir -p "$VENV/shims/xformers" "$VENV/shims/spacy" "$VENV/shims/librosa"
cat > "$VENV/shims/xformers/__init__.py" <<'EOF'
"""Benchmark-venv stand-in: xformers is not installed (upstream imports it at module level)."""
EOF
cat > "$VENV/shims/xformers/ops.py" <<'EOF'
"""Benchmark-venv stand-in: every attribute fails, so upstream's memory-efficient attention stays off."""


def __getattr__(name):
    raise AttributeError(f"xformers.ops.{name}: xformers is not installed in this benchmark venv")
EOF
cat > "$VENV/shims/spacy/__init__.py" <<'EOF'
"""Benchmark-venv stand-in: spaCy is not installed; only upstream's spaCy text tokenizer would use it."""


def load(name, *args, **kwargs):
    raise ImportError(f"spacy.load({name!r}): spaCy is not installed in this benchmark venv")


def __getattr__(name):
    raise AttributeError(f"spacy.{name}: spaCy is not installed in this benchmark venv")
EOF
cat > "$VENV/shims/librosa/__init__.py" <<'EOF'
"""Benchmark-venv stand-in: librosa is not installed (upstream imports librosa.filters at module level)."""
EOF
cat > "$VENV/shims/librosa/filters.py" <<'EOF'
"""Benchmark-venv stand-in: every attribute fails (upstream uses it only in its chroma extractor)."""


def __getattr__(name):
    raise AttributeError(f"librosa.filters.{name}: librosa is not installed in this benchmark venv")
EOF
echo "$VENV/shims" > "$SITE/_upstream_bench_shims.pth"

log "checking the upstream install"
(cd "$TMP" && USER="${USER:-bench}" AUDIOCRAFT_DORA_DIR="$TMP/xps" "$VENV/bin/python" -W ignore - <<'EOF'
import audiocraft, torch
import audiocraft.train
from audiocraft.data.audio_dataset import AudioDataset
from audiocraft.solvers.compression import CompressionSolver
assert audiocraft.__version__ == "1.3.0", audiocraft.__version__
assert "site-packages" in audiocraft.__file__, audiocraft.__file__
print(f"upstream audiocraft {audiocraft.__version__} at {audiocraft.__file__}, torch {torch.__version__} at {torch.__file__}")
EOF
)
echo "$STAMP" > "$VENV/.upstream-stamp"
log "done: run the comparisons with $VENV/bin/python benchmarks/upstream/bench_*.py (see docs/BENCHMARKS.md)"
