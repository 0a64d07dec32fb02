#!/usr/bin/env bash
# Builds llama.cpp's llama-server from the same peer sources as
# scripts/build-peer.sh (PyPI llama-cpp-python, which vendors llama.cpp), in
# its own build folder so the test suite's peer build is untouched. Only the
# serving benchmark (scripts/bench-serve.sh) needs it.
# Output: the path of llama-server (printed last). Idempotent.
set -euo pipefail
PEER_VERSION=${PEER_VERSION:-0.3.36}
PEER_DIR=${PEER_DIR:-$HOME/.cache/edgewasm/llama.cpp-$PEER_VERSION}
root=$(cd "$(dirname "$0")/.." && pwd)
# The sources (and the same compiler flags) come with the peer build.
bash "$root/scripts/build-peer.sh" >&2
exe="$PEER_DIR/build-server/bin/llama-server"
if [ ! -x "$exe" ]; then
  no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16 -mno-avx512fp16"
  cmake -S "$PEER_DIR/src/vendor/llama.cpp" -B "$PEER_DIR/build-server" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=ON "-DCMAKE_C_FLAGS=$no_amx" "-DCMAKE_CXX_FLAGS=$no_amx" >&2
  cmake --build "$PEER_DIR/build-server" --target llama-server -j"${PEER_JOBS:-$(nproc)}" >&2
fi
echo "$exe"
