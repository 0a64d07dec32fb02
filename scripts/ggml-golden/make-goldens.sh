#!/usr/bin/env bash
# Regenerates host/kernels/tests/data/ from ggml's own C code.
#
#   scripts/ggml-golden/make-goldens.sh [OUT_DIR]
#
# llama.cpp comes from the llama-cpp-python sdist on PyPI (it vendors
# llama.cpp under vendor/llama.cpp). `pip download` of an sdist prepares its
# metadata, which builds its build backend's dependencies from source and can
# take many minutes; set LLAMA_CPP_SDIST=/path/to/llama_cpp_python-X.tar.gz to
# reuse a tarball you already have. Nothing from llama.cpp is committed: only
# golden.c / stubs.c (ours) and the generated data.
#
# Needs: python3 + pip, gcc, tar. Plain `gcc -O2` for x86_64 (SSE2 only, no
# -march): no FMA contraction, so float results are those of the C source.
set -euo pipefail

VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$HERE/../../host/kernels/tests/data}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if [ -n "${LLAMA_CPP_SDIST:-}" ]; then
    cp "$LLAMA_CPP_SDIST" "$WORK/"
else
    python3 -m pip download --no-deps --no-binary :all: \
        "llama-cpp-python==$VERSION" -d "$WORK"
fi
tar -xzf "$WORK"/llama_cpp_python-*.tar.gz -C "$WORK"
G="$(echo "$WORK"/llama_cpp_python-*/vendor/llama.cpp/ggml)"

gcc -O2 -std=gnu11 -I"$G/include" -I"$G/src" -I"$G/src/ggml-cpu" \
    "$HERE/golden.c" "$HERE/stubs.c" \
    "$G/src/ggml-quants.c" "$G/src/ggml-cpu/quants.c" \
    -o "$WORK/golden" -lm

mkdir -p "$OUT"
"$WORK/golden" "$OUT"
echo "goldens written to $OUT (llama-cpp-python $VERSION)"
ls -l "$OUT"
