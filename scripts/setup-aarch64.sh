#!/usr/bin/env bash
# Installs what cross-building and emulating aarch64 needs, each step only
# when missing:
#   - Debian: gcc-aarch64-linux-gnu (linker), libc6-dev-arm64-cross (sysroot
#     in /usr/aarch64-linux-gnu), qemu-user (qemu-aarch64);
#   - rustup: the aarch64-unknown-linux-gnu standard library.
set -euo pipefail
need=()
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/include/stdio.h ] || need+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
if ((${#need[@]})); then
    echo "setup-aarch64: apt-get install ${need[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
    echo "setup-aarch64: rustup target add aarch64-unknown-linux-gnu"
    rustup target add aarch64-unknown-linux-gnu
fi
