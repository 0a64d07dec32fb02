#!/usr/bin/env bash
# Installs what the fuzz targets in fuzz/ need: cargo-fuzz (pinned), only if
# it is missing or a different version. libFuzzer itself is built from source
# by the libfuzzer-sys crate (needs a C++ compiler: Debian's g++ is enough).
#
# The machine's toolchain is stable Rust. cargo-fuzz passes nightly-only
# flags to rustc (-Zsanitizer=address, -Cpasses=sancov-module, ...), so the
# fuzz recipes run it with RUSTC_BOOTSTRAP=1, which lets a stable rustc accept
# -Z flags. That is safe here because it only affects the fuzz workspace's own
# build ($CARGO_TARGET_DIR/fuzz), never the shipped binaries, and no nightly toolchain
# can be fetched on these machines.
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2

have=$(cargo fuzz --version 2>/dev/null || true)
if [[ "$have" == "cargo-fuzz $CARGO_FUZZ_VERSION"* ]]; then
    exit 0
fi
echo "installing cargo-fuzz $CARGO_FUZZ_VERSION (found: ${have:-none})" >&2
nice -n 10 cargo install --locked "cargo-fuzz@$CARGO_FUZZ_VERSION"
