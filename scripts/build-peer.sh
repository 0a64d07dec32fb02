#!/usr/bin/env bash
# Builds the peer, llama.cpp, from the source package of PyPI
# `llama-cpp-python` (which vendors it), for same-run comparisons:
# llama-bench, llama-perplexity, llama-tokenize, llama-quantize, llama-eval-callback.
# Output: $PEER_DIR/build/bin/. Idempotent.
set -euo pipefail
PEER_VERSION=${PEER_VERSION:-0.3.36}
PEER_DIR=${PEER_DIR:-$HOME/.cache/edgewasm/llama.cpp-$PEER_VERSION}
bin="$PEER_DIR/build/bin"
targets=(llama-bench llama-perplexity llama-tokenize llama-quantize)
if [ -x "$bin/llama-bench" ] && [ -x "$bin/llama-perplexity" ]; then
  echo "peer: llama.cpp from llama-cpp-python $PEER_VERSION already built in $bin"
  exit 0
fi
command -v cmake >/dev/null || { apt-get update -qq && apt-get install -y -qq cmake; }
mkdir -p "$PEER_DIR"
if [ ! -d "$PEER_DIR/src" ]; then
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --no-binary :all: -d "$tmp" "llama-cpp-python==$PEER_VERSION"
  mkdir -p "$PEER_DIR/src"
  tar -xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$PEER_DIR/src" --strip-components=1
  rm -rf "$tmp"
fi
cmake -S "$PEER_DIR/src/vendor/llama.cpp" -B "$PEER_DIR/build" -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF >/dev/null
cmake --build "$PEER_DIR/build" --target "${targets[@]}" -j"${PEER_JOBS:-$(nproc)}"
echo "peer: built in $bin"
