#!/usr/bin/env bash
# Builds the peer, llama.cpp, from the source package of PyPI
# `llama-cpp-python` (which vendors it), for same-run comparisons:
# llama-bench, llama-perplexity, llama-tokenize, llama-quantize, llama-gguf-split,
# llama-embedding, llama-gbnf-validator.
# Output: $PEER_DIR/build/bin/ (printed last). Idempotent; serialized with flock.
set -euo pipefail
PEER_VERSION=${PEER_VERSION:-0.3.36}
PEER_DIR=${PEER_DIR:-$HOME/.cache/edgewasm/llama.cpp-$PEER_VERSION}
bin="$PEER_DIR/build/bin"
# One build at a time (test processes may call this in parallel).
mkdir -p "$(dirname "$PEER_DIR")"
exec 9>"$PEER_DIR.lock"
flock 9
targets=(llama-bench llama-perplexity llama-tokenize llama-quantize llama-gguf-split llama-embedding)
root=$(cd "$(dirname "$0")/.." && pwd)

# Our own tools over the peer's libllama (scripts/peer/*.cpp: teacher-forced
# logits, reference generations), rebuilt when their source is newer.
build_tools() {
  local src="$PEER_DIR/src/vendor/llama.cpp" cpp exe libs
  libs=$(cd "$bin" && ls libllama*.so libggml*.so | sed -E 's/^lib(.*)\.so$/-l\1/' | sort -u | tr '\n' ' ')
  for cpp in "$root"/scripts/peer/*.cpp; do
    exe="$bin/$(basename "$cpp" .cpp)"
    if [ ! -x "$exe" ] || [ "$exe" -ot "$cpp" ]; then
      # shellcheck disable=SC2086
      g++ -O2 -std=c++17 -I"$src/include" -I"$src/ggml/include" "$cpp" -o "$exe" -L"$bin" $libs -Wl,-rpath,"$bin"
    fi
  done
  # llama.cpp's own GBNF validator (its test program, over libllama's
  # grammar internals): the oracle for constrained generation.
  exe="$bin/llama-gbnf-validator"
  if [ ! -x "$exe" ]; then
    # shellcheck disable=SC2086
    g++ -O2 -std=c++17 -I"$src/include" -I"$src/ggml/include" -I"$src/src" "$src/tests/test-gbnf-validator.cpp" \
      -o "$exe" -L"$bin" $libs -Wl,-rpath,"$bin"
  fi
}

# Native build (-march=native) without AMX and without AVX512-FP16, so the
# reference is the same on every AVX-512 machine:
# * in VMs that report AMX but do not grant the tile state (Firecracker on
#   Sapphire Rapids), ggml's AMX matmul dies on its first `tilezero`
#   (SIGILL);
# * with AVX512-FP16, ggml's f16 vector ops (attention over the f16 KV
#   cache) accumulate in f16 (`_mm512_fmadd_ph`): Gemma 3's reference
#   generation then drifts past the bounds of tests/data/README.md from the
#   committed data (mean top-16 logit difference 0.259, measured).
# Explicit -mno-* flags win over -march=native whatever their order.
no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16 -mno-avx512fp16"
cmake_flags=(-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
  "-DCMAKE_C_FLAGS=$no_amx" "-DCMAKE_CXX_FLAGS=$no_amx")
# A build made with other flags (an older version of this script) is redone.
stamp="$PEER_DIR/build/edgewasm-cmake-flags"
missing=()
for t in "${targets[@]}"; do [ -x "$bin/$t" ] || missing+=("$t"); done
[ "$(cat "$stamp" 2>/dev/null)" = "${cmake_flags[*]}" ] || missing+=("(flags changed)")
if [ ${#missing[@]} -eq 0 ]; then
  build_tools
  echo "peer: llama.cpp from llama-cpp-python $PEER_VERSION already built in $bin"
  exit 0
fi
command -v cmake >/dev/null || { apt-get update -qq && apt-get install -y -qq cmake; }
mkdir -p "$PEER_DIR"
if [ ! -d "$PEER_DIR/src" ]; then
  tmp=$(mktemp -d)
  # --no-binary llama-cpp-python, not :all:: the latter also builds the build
  # backend (cmake) from source while preparing metadata, 30+ minutes.
  python3 -m pip download --quiet --no-deps --no-binary llama-cpp-python -d "$tmp" "llama-cpp-python==$PEER_VERSION"
  mkdir -p "$PEER_DIR/src"
  tar -xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$PEER_DIR/src" --strip-components=1
  rm -rf "$tmp"
fi
cmake -S "$PEER_DIR/src/vendor/llama.cpp" -B "$PEER_DIR/build" "${cmake_flags[@]}" >/dev/null
cmake --build "$PEER_DIR/build" --target "${targets[@]}" -j"${PEER_JOBS:-$(nproc)}"
# Our tools link the libraries just built: rebuild them too.
for cpp in "$root"/scripts/peer/*.cpp; do rm -f "$bin/$(basename "$cpp" .cpp)"; done
build_tools
printf '%s' "${cmake_flags[*]}" >"$stamp"
echo "peer: built in $bin"
