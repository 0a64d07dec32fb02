#!/usr/bin/env bash
# Decode speed with and without a grammar, interleaved: `edgewasm generate
# -v`'s generated tokens/s for the same chat prompt and seed, unconstrained,
# under llama.cpp's json.gbnf and under a JSON Schema. The per-token time is
# what to compare (the texts, and so their lengths, differ).
#
#   bash scripts/bench-constrained.sh [ROUNDS]   (B=path/to/edgewasm, MODELS="a b")
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$root/target/release/edgewasm}
rounds=${1:-3}
grammars=${PEER_DIR:-$HOME/.cache/edgewasm/llama.cpp-0.3.36}/src/vendor/llama.cpp/grammars
schema='{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"colors":{"type":"array","items":{"type":"string"}}},"required":["name","age","colors"]}'
for model in ${MODELS:-smollm2-135m-instruct-q4_1 gemma-3-270m-q4_k_m}; do
  declare -A sum=() n=()
  for r in $(seq 1 "$rounds"); do
    for mode in none gbnf schema; do
      case $mode in
        none) extra=() ;;
        gbnf) extra=(--grammar-file "$grammars/json.gbnf") ;;
        schema) extra=(--json-schema "$schema") ;;
      esac
      line=$("$B" generate -m "$model" --chat -p "Describe a cat as a JSON object." -n 128 --temp 0.8 --seed "$r" -t 2 -v "${extra[@]}" 2>&1 >/dev/null | grep generated)
      tps=$(sed -E 's/.*generated: [0-9]+ tokens in [0-9.]+ ms \(([0-9.]+) t\/s\).*/\1/' <<<"$line")
      echo "$model round $r $mode: $tps t/s (${line##*generated: })"
      sum[$mode]=$(python3 -c "print(${sum[$mode]:-0} + $tps)")
      n[$mode]=$((${n[$mode]:-0} + 1))
    done
  done
  python3 - "$model" "${sum[none]}" "${sum[gbnf]}" "${sum[schema]}" "$rounds" <<'PY'
import sys
m, none, gbnf, schema, r = sys.argv[1], *map(float, sys.argv[2:5]), int(sys.argv[5])
print(f"{m}: unconstrained {none/r:.1f} t/s, json.gbnf {gbnf/r:.1f} t/s ({gbnf/none:.2f}x), schema {schema/r:.1f} t/s ({schema/none:.2f}x)")
PY
  unset sum n
done
