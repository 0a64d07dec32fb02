#!/usr/bin/env bash
# Builds ik_llama.cpp's llama-bench and llama-sweep-bench, the second peer of `bench-compare`
# (the fastest CPU engine; issue 23), from a checkout named by
# IK_LLAMA_SRC: its public repository, https://github.com/ikawrakow/ik_llama.cpp
# (measured at commit 8337e4cd3, 2026-08-15). Native build
# (-DGGML_NATIVE=ON) as its README recommends, with the same AMX/FP16
# exclusions as scripts/build-peer.sh. Output: the llama-bench path
# (printed last). Idempotent.
set -euo pipefail
src="${IK_LLAMA_SRC:?set IK_LLAMA_SRC to an ik_llama.cpp checkout}"
out="${IK_LLAMA_BUILD:-$HOME/.cache/edgewasm/ik_llama.cpp-build}"
bench="$out/bin/llama-bench"
if [ ! -x "$bench" ] || [ ! -x "$out/bin/llama-sweep-bench" ]; then
  command -v cmake >/dev/null || { apt-get update -qq && apt-get install -y -qq cmake; }
  no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16 -mno-avx512fp16"
  cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_CUDA=OFF \
    -DCMAKE_C_FLAGS="$no_amx" -DCMAKE_CXX_FLAGS="$no_amx" >/dev/null
  # llama-sweep-bench: its llama-bench has no -d (bench-compare's depth rows).
  cmake --build "$out" --target llama-bench llama-sweep-bench -j"${PEER_JOBS:-$(nproc)}" >&2
fi
echo "$bench"
