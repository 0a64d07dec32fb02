#!/usr/bin/env python3
"""Same-run speed comparison of edgewasm and llama.cpp (the peer).

Runs `edgewasm bench` and `llama-bench` interleaved on the same model file,
ROUNDS times each, and prints tokens/s (mean ± stddev over rounds) and the
ratio edgewasm / llama.cpp for every (threads, test) pair, one table per model.

  bench-compare.py EDGEWASM LLAMA_BENCH MODEL... [--threads 1,2] [-p 128] [-n 64] [--rounds 3] [--reps 3]
                   [--quantize q8_0,q4_0]

--quantize TYPES also benches the first MODEL requantized to each type, made
with `edgewasm quantize` (llama-quantize's rules, byte-identical output) next
to it as BASE-TYPE.gguf (models/smollm2-135m-instruct-q8_0.gguf from
models/smollm2-135m-instruct-q4_1.gguf) when that file is missing.
"""
import argparse, json, os, statistics, subprocess, sys

ap = argparse.ArgumentParser()
ap.add_argument("edgewasm"); ap.add_argument("llama_bench"); ap.add_argument("model", nargs="+")
ap.add_argument("--threads", default="1,2"); ap.add_argument("-p", default="128"); ap.add_argument("-n", default="64")
ap.add_argument("--rounds", type=int, default=3); ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--quantize", default="", help="comma-separated `edgewasm quantize` types to make from the first model and bench too")
a = ap.parse_args()


def quantized(src, ty):
    stem = os.path.basename(src).removesuffix(".gguf")
    out = os.path.join(os.path.dirname(src), f"{stem.rsplit('-', 1)[0]}-{ty.lower()}.gguf")
    if not os.path.exists(out):
        print(f"making {out} with edgewasm quantize --type {ty}", file=sys.stderr)
        subprocess.run([a.edgewasm, "quantize", "-q", "--type", ty, src, out], check=True, stdout=sys.stderr)
    return out


def ms(v):
    return statistics.mean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)


def bench(model):
    ours, peer = {}, {}
    for r in range(a.rounds):
        out = subprocess.run([a.edgewasm, "bench", "-m", model, "-t", a.threads, "-p", a.p, "-n", a.n, "-r", str(a.reps), "--json"],
                             capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            j = json.loads(line)
            ours.setdefault((j["threads"], j["test"]), []).append(j["tokens_per_s_mean"])
            meta = j
        out = subprocess.run([a.llama_bench, "-m", model, "-t", a.threads, "-p", a.p, "-n", a.n, "-r", str(a.reps), "-o", "jsonl"],
                             capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if not line.startswith("{"):
                continue
            j = json.loads(line)
            test = f"pp{j['n_prompt']}" if j["n_gen"] == 0 else f"tg{j['n_gen']}"
            peer.setdefault((j["n_threads"], test), []).append(j["avg_ts"])
            peer_build = j.get("build_commit", "?")
        print(f"{model}: round {r + 1}/{a.rounds} done", file=sys.stderr)

    print(f"model: {model}")
    print(f"edgewasm {meta['commit']} ({meta['kernel_path']}), llama.cpp {peer_build}; cpu features: {meta['cpu_features']}")
    print(f"{a.rounds} interleaved rounds, each the mean of {a.reps} repetitions after a warm-up\n")
    print("| threads | test | edgewasm t/s | llama.cpp t/s | ratio |")
    print("| ---: | --- | ---: | ---: | ---: |")
    for key in sorted(ours, key=lambda k: (k[0], k[1][:2] != "pp", k[1])):
        if key not in peer:
            continue
        (om, osd), (pm, psd) = ms(ours[key]), ms(peer[key])
        print(f"| {key[0]} | {key[1]} | {om:.1f} ± {osd:.1f} | {pm:.1f} ± {psd:.1f} | {om / pm:.2f} |")
    print()


models = a.model + [quantized(a.model[0], ty) for ty in a.quantize.split(",") if ty]
for m in models:
    bench(m)
