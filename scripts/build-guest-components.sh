#!/usr/bin/env bash
# Builds the C, JavaScript and Python guest components into target/guests/
# (`just guests` runs it after the Rust guests; so does the conformance
# test). Installs the toolchains first (scripts/setup-guest-toolchains.sh).
#
#   scripts/build-guest-components.sh [c] [js] [python]    (default: all three)
#   scripts/build-guest-components.sh c/sensor-log js/assistant ...   (single guests)
#
# Guests: the conformance guest in each language and the apps
# (c/sensor-log, js/assistant, python/classify; see guest-components/README.md).
#
# A component is rebuilt only when its inputs (its sources, wit/, the
# lockfile, the committed C bindings, the tool versions, this script)
# change: the build is cached by a hash of all of them in
# ~/.cache/edgewasm/guest-builds ($EDGEWASM_GUEST_BUILD_CACHE). Neither
# componentize-js nor componentize-py builds byte-identical components, and
# `edgewasm run`'s compile cache is keyed by the component's bytes, so an
# unneeded rebuild would cost the next run (and every fresh CI checkout) the
# 10-15 s compile of a 12-18 MB component on top of the build itself.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

bash scripts/setup-guest-toolchains.sh
eval "$(bash scripts/setup-guest-toolchains.sh --print-env)"

out=target/guests
mkdir -p "$out"
langs=("$@")
((${#langs[@]})) || langs=(c js python)

build_cache="${EDGEWASM_GUEST_BUILD_CACHE:-$HOME/.cache/edgewasm/guest-builds}"
tools_id="$(clang-19 --version | head -n1); $("$WASM_TOOLS" --version); $("$COMPONENTIZE_PY" --version); $WASI_ADAPTER; node $(node --version)"

# inputs_key PATH...: a hash of the files under PATH... (names and contents),
# the tool versions and this script. Markdown files (the apps' READMEs) are
# not build inputs: editing one must not cost a rebuild and a recompile.
inputs_key() {
    {
        find "$@" scripts/build-guest-components.sh -type f -not -path '*/__pycache__/*' -not -path '*/node_modules/*' -not -name '*.md' | LC_ALL=C sort |
            while IFS= read -r f; do printf '%s %s\n' "$(sha256sum <"$f" | cut -c1-64)" "$f"; done
        echo "$tools_id"
    } | sha256sum | cut -c1-16
}

# from_cache KIND DEST KEY: DEST from a previous build with the same inputs, if any.
from_cache() {
    local entry="$build_cache/$1-$3.wasm"
    [ -s "$entry" ] || return 1
    cmp -s "$entry" "$2" || { cp "$entry" "$2.tmp" && mv "$2.tmp" "$2"; }
}

# to_cache KIND DEST KEY: remembers DEST as the build of these inputs (one entry per guest).
to_cache() {
    mkdir -p "$build_cache"
    rm -f "$build_cache/$1"-*.wasm
    cp "$2" "$build_cache/$1-$3.wasm.tmp" && mv "$build_cache/$1-$3.wasm.tmp" "$build_cache/$1-$3.wasm"
}

# world every C/JS/Python guest targets: wasi:cli/command + wasi:nn + edgewasm:llm
world=edgewasm:llm/command

build_c() {
    local name=$1 dir=guest-components/c/$1 work=guest-components/c/target
    local dest="$out/c-$name.wasm" key
    key=$(inputs_key "$dir" guest-components/c/gen guest-components/c/component_type.c wit "$WASI_ADAPTER")
    from_cache "c-$name" "$dest" "$key" && return 0
    echo "guests: C $name -> $dest (clang-19 + wasi-libc; wasm-tools component embed + new with the reactor adapter)"
    mkdir -p "$work"
    # -mexec-model=reactor: the component exports wasi:cli/run itself
    # (exports_wasi_cli_run_run), there is no main(). The bindings in gen/
    # were made with --no-object-file, so `component embed` adds the world's
    # type information from wit/ here (component_type.c stands in for the
    # object file).
    clang-19 --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror \
        -I guest-components/c/gen \
        "$dir"/*.c guest-components/c/gen/command.c guest-components/c/component_type.c \
        -o "$work/$name.core.wasm"
    "$WASM_TOOLS" component embed wit --world "$world" "$work/$name.core.wasm" -o "$work/$name.embedded.wasm"
    "$WASM_TOOLS" component new "$work/$name.embedded.wasm" \
        --adapt "wasi_snapshot_preview1=$WASI_ADAPTER" -o "$work/$name.wasm"
    "$WASM_TOOLS" validate "$work/$name.wasm"
    mv "$work/$name.wasm" "$dest"
    to_cache "c-$name" "$dest" "$key"
}

build_js() {
    local name=$1 dir=guest-components/js/$1
    local dest="$out/js-$name.wasm" key
    key=$(inputs_key "$dir" wit guest-components/js/package-lock.json)
    from_cache "js-$name" "$dest" "$key" && return 0
    echo "guests: JavaScript $name -> $dest (componentize-js, world $world, http disabled)"
    # -d http fetch-event: otherwise the component imports wasi:http, which
    # edgewasm does not provide.
    guest-components/js/node_modules/.bin/componentize-js "$dir/$name.js" \
        --wit wit -n "$world" -d http fetch-event -o "$dest.tmp"
    mv "$dest.tmp" "$dest"
    to_cache "js-$name" "$dest" "$key"
}

build_python() {
    local name=$1 dir=guest-components/python/$1
    local dest="$out/python-$name.wasm" key
    key=$(inputs_key "$dir" wit)
    from_cache "python-$name" "$dest" "$key" && return 0
    echo "guests: Python $name -> $dest (componentize-py $("$COMPONENTIZE_PY" --version | awk '{print $2}'), world $world)"
    "$COMPONENTIZE_PY" -d wit -w "$world" componentize -p "$dir" app -o "$dest.tmp"
    mv "$dest.tmp" "$dest"
    to_cache "python-$name" "$dest" "$key"
}

# Every guest is a folder: guest-components/c/NAME/*.c -> c-NAME.wasm,
# guest-components/js/NAME/NAME.js -> js-NAME.wasm,
# guest-components/python/NAME/app.py -> python-NAME.wasm.
build_one() {
    case "$1" in
        c) build_c "$2" ;;
        js) build_js "$2" ;;
        python) build_python "$2" ;;
    esac
}

# is_guest LANG DIR: whether DIR is a guest folder of LANG.
is_guest() {
    case "$1" in
        c) case "${2##*/}" in gen | adapter | target) return 1 ;; esac
            compgen -G "$2/*.c" >/dev/null ;;
        js) [ -f "$2/${2##*/}.js" ] ;;
        python) [ -f "$2/app.py" ] ;;
        *) return 1 ;;
    esac
}

for arg in "${langs[@]}"; do
    case "$arg" in
        c | js | python)
            for d in guest-components/"$arg"/*/; do
                d=${d%/}
                if is_guest "$arg" "$d"; then build_one "$arg" "${d##*/}"; fi
            done
            ;;
        */*)
            lang=${arg%%/*} name=${arg#*/}
            if ! is_guest "$lang" "guest-components/$lang/$name"; then
                echo "build-guest-components: no guest guest-components/$arg (c/NAME/*.c, js/NAME/NAME.js, python/NAME/app.py)" >&2
                exit 2
            fi
            build_one "$lang" "$name"
            ;;
        *) echo "build-guest-components: unknown language $arg (c, js, python, or LANG/NAME)" >&2; exit 2 ;;
    esac
done
