#!/usr/bin/env bash
# `edgewasm embed` against llama.cpp's `llama-embedding`, interleaved, on the
# same texts (one per line; default tests/data/corpus/embed-64.txt), model
# and thread count, mean pooling. Per run: wall time of the whole process
# (load included) and edgewasm's own compute time (its -v report); at the
# end the median wall times and their ratio.
#
#   bash scripts/bench-embed.sh [ROUNDS]   (B=edgewasm, L=llama-embedding, M=model, T=texts)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
B=${B:-$root/target/release/edgewasm}
L=${L:-${PEER_DIR:-$HOME/.cache/edgewasm/llama.cpp-0.3.36}/build/bin/llama-embedding}
M=${M:-$root/models/smollm2-135m-instruct-q4_1.gguf}
T=${T:-$root/tests/data/corpus/embed-64.txt}
rounds=${1:-6}
prompt=$(cat "$T")
ours=() theirs=()
now() { date +%s%N; }
for i in $(seq "$rounds"); do
  s=$(now)
  info=$("$B" embed -m "$M" --file "$T" --array -t 2 -v 2>&1 >/dev/null)
  e=$(now); ours+=($(( (e - s) / 1000000 )))
  s=$(now)
  "$L" -m "$M" -p "$prompt" --pooling mean --embd-output-format array -t 2 --no-warmup >/dev/null 2>&1
  e=$(now); theirs+=($(( (e - s) / 1000000 )))
  echo "round $i: edgewasm ${ours[-1]} ms wall ($info); llama-embedding ${theirs[-1]} ms wall"
done
python3 - "${ours[*]}" "${theirs[*]}" "$(wc -l <"$T")" <<'PY'
import statistics, sys
o = statistics.median(map(int, sys.argv[1].split())); t = statistics.median(map(int, sys.argv[2].split())); n = int(sys.argv[3])
print(f"median wall: edgewasm {o} ms ({n / o * 1e3:.1f} texts/s), llama-embedding {t} ms ({n / t * 1e3:.1f} texts/s): {t / o:.2f}x")
PY
