#!/usr/bin/env python3
"""Same-run speed comparison of edgewasm and llama.cpp (the peer).

Runs `edgewasm bench` and `llama-bench` interleaved on the same model file,
ROUNDS times each, and prints tokens/s (mean ± stddev over rounds) and the
ratio edgewasm / llama.cpp for every (threads, test) pair, one table per model
(the ratio is the mean of the per-round ratios, with their range; for decode,
also the ceiling the memory bandwidth sets, from `edgewasm bench --bandwidth`,
and how much of it each tool reached), then the
peak RSS of each tool running the same pp + tg test once with 1 thread (from
wait4's ru_maxrss). With --guest CHAT.wasm, also the decode speed of that
guest (as it sees it) against native `edgewasm generate --chat` on the same
prompt and the first model, alternating, 1 thread, and the share of the
guest's decode time spent in the host engine.

  bench-compare.py EDGEWASM LLAMA_BENCH MODEL... [--threads 1,2] [-p 128] [-n 64] [-d 0,4096] [--rounds 3] [--reps 3]
                   [--quantize q8_0,q4_0] [--guest target/guests/chat.wasm] [--ik-bench IK_LLAMA_BENCH]

--ik-bench adds ik_llama.cpp (its llama-bench, scripts/build-ik-llama.sh) as a
second peer, run in each round with and without `-rtr 1` (run-time repacking
of the weights), the better of the two counting; the table then also gives
the ratio to the best peer, the faster of llama.cpp and ik_llama.cpp in that
round. Its llama-bench has no depth option: the rows at a depth D > 0 come
from its llama-sweep-bench (next to its llama-bench, or --ik-sweep), which
fills the context a ubatch of P tokens at a time and, at D, measures tgN
then ppP exactly as llama-bench's `-d D` does (D must be a multiple of P).

--quantize TYPES also benches the first MODEL requantized to each type, made
with `edgewasm quantize` (llama-quantize's rules, byte-identical output) next
to it as BASE-TYPE.gguf (models/smollm2-135m-instruct-q8_0.gguf from
models/smollm2-135m-instruct-q4_1.gguf) when that file is missing.
"""
import argparse, json, os, re, statistics, subprocess, sys, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("edgewasm"); ap.add_argument("llama_bench"); ap.add_argument("model", nargs="+")
ap.add_argument("--threads", default="1,2"); ap.add_argument("-p", default="128"); ap.add_argument("-n", default="64")
ap.add_argument("-d", default="0", help="context depths, comma-separated (llama-bench -d; ik_llama.cpp's llama-sweep-bench past 0)")
ap.add_argument("--rounds", type=int, default=3); ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--guest", help="chat.wasm: also compare a guest's decode speed with native edgewasm")
ap.add_argument("--quantize", default="", help="comma-separated `edgewasm quantize` types to make from the first model and bench too")
ap.add_argument("--ik-bench", help="ik_llama.cpp's llama-bench: a second peer (best of default and -rtr 1)")
ap.add_argument("--ik-sweep", help="ik_llama.cpp's llama-sweep-bench, for the depths past 0 (default: next to --ik-bench)")
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


def llama_bench(exe, model, extra=(), fmt="jsonl", depth=True):
    """{(threads, test): t/s} and the build commit of one llama-bench run
    (`fmt`: jsonl for llama.cpp, json, an array, for ik_llama.cpp's);
    `depth` False runs depth 0 only (ik_llama.cpp: its -d is not checked
    here yet)."""
    d = ["-d", a.d] if depth else []
    out = subprocess.run([exe, "-m", model, "-t", a.threads, "-p", a.p, "-n", a.n, "-r", str(a.reps), "-o", fmt, *d, *extra],
                         capture_output=True, text=True, check=True).stdout
    rows = json.loads(out) if fmt == "json" else [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    res, build = {}, "?"
    for j in rows:
        test = f"pp{j['n_prompt']}" if j["n_gen"] == 0 else f"tg{j['n_gen']}"
        if j.get("n_depth", 0):
            test += f" @ d{j['n_depth']}"
        res[(j["n_threads"], test)] = j["avg_ts"]
        build = j.get("build_commit", "?")
    return res, build


def ik_sweep(model, extra=()):
    """{(threads, test): t/s} of ik_llama.cpp at each depth D > 0 of -d, from
    its llama-sweep-bench: ubatch P, measured every D/P-th step, so the one
    measured step past 0 is at D (tgN from D, then ppP from D)."""
    sweep = a.ik_sweep or os.path.join(os.path.dirname(a.ik_bench), "llama-sweep-bench")
    p, n, res = int(a.p), int(a.n), {}
    for d in (int(x) for x in a.d.split(",") if int(x) > 0):
        if d % p:
            sys.exit(f"ik_llama.cpp at depth {d}: the depth must be a multiple of -p {p}")
        for t in a.threads.split(","):
            cmd = [os.path.abspath(sweep), "-m", os.path.abspath(model), "-t", t, "-c", str(d + max(p, n)), "-b", str(p), "-ub", str(p), "-n", str(n),
                   "--sweep-stride", str(d // p), "--output-format", "jsonl", *extra]
            # In a scratch folder: it writes llama.log where it runs.
            with tempfile.TemporaryDirectory() as scratch:
                proc = subprocess.run(cmd, capture_output=True, text=True, cwd=scratch)
            rows = [json.loads(l) for l in (proc.stdout + proc.stderr).splitlines() if l.startswith("{")]
            row = next((r for r in rows if r.get("n_kv") == d), None)
            if row is None:
                # It stops with an error once the context is full, after the
                # row wanted here; without that row the run failed.
                raise subprocess.CalledProcessError(proc.returncode, cmd, proc.stdout, proc.stderr)
            res[(int(t), f"pp{p} @ d{d}")] = row["speed_pp"]
            res[(int(t), f"tg{n} @ d{d}")] = row["speed_tg"]
    return res


def bench(model):
    ours, peer, ik, ceiling = {}, {}, {}, {}
    ik_build, ik_error = None, None
    for r in range(a.rounds):
        out = subprocess.run([a.edgewasm, "bench", "-m", model, "-t", a.threads, "-p", a.p, "-n", a.n, "-r", str(a.reps),
                              "-d", a.d, "--json", "--bandwidth"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            j = json.loads(line)
            if j["test"] == "mem-read":
                ceiling.setdefault(j["threads"], []).append(j["tg_ceiling_tokens_per_s"])
                continue
            ours.setdefault((j["threads"], j["test"]), []).append(j["tokens_per_s_mean"])
            meta = j
        res, peer_build = llama_bench(a.llama_bench, model)
        for k, v in res.items():
            peer.setdefault(k, []).append(v)
        if a.ik_bench and ik_error is None:
            try:
                plain, ik_build = llama_bench(a.ik_bench, model, fmt="json", depth=False)
                rtr, _ = llama_bench(a.ik_bench, model, ("-rtr", "1"), fmt="json", depth=False)
                plain.update(ik_sweep(model))
                rtr.update(ik_sweep(model, ("-rtr",)))
            except subprocess.CalledProcessError as e:
                # An architecture ik_llama.cpp does not know (LFM2 at the
                # measured commit): the table goes on without it.
                lines = [l for l in (e.stderr or "").splitlines() if l.strip()]
                ik_error, ik_build = (lines[-1] if lines else f"exit status {e.returncode}"), None
                ik.clear()
            else:
                for k, v in plain.items():
                    ik.setdefault(k, []).append(max(v, rtr.get(k, 0.0)))
        print(f"{model}: round {r + 1}/{a.rounds} done", file=sys.stderr)

    print(f"model: {model}")
    ik_name = f", ik_llama.cpp {ik_build} (best of default and -rtr 1)" if ik_build else ""
    print(f"edgewasm {meta['commit']} ({meta['kernel_path']}), llama.cpp {peer_build}{ik_name}; cpu features: {meta['cpu_features']}")
    print(f"{a.rounds} interleaved rounds, each the mean of {a.reps} repetitions after a warm-up")
    if ik_error:
        print(f"ik_llama.cpp could not run this file: {ik_error}")
    print()
    ik_head, ik_rule = (" ik_llama.cpp t/s | ratio to best peer |", " ---: | ---: |") if ik_build else ("", "")
    print(f"| threads | test | edgewasm t/s | llama.cpp t/s | ratio |{ik_head} memory-bound ceiling: t/s, edgewasm %, llama.cpp % |")
    print(f"| ---: | --- | ---: | ---: | ---: |{ik_rule} --- |")
    for key in sorted(ours, key=lambda k: (k[0], k[1][:2] != "pp", k[1])):
        if key not in peer:
            continue
        (om, osd), (pm, psd) = ms(ours[key]), ms(peer[key])
        ratios = [o / p for o, p in zip(ours[key], peer[key])]
        spread = f" ({min(ratios):.2f}–{max(ratios):.2f})" if len(ratios) > 1 else ""
        bound = ""
        if key[1].startswith("tg") and key[0] in ceiling:
            c = statistics.mean(ceiling[key[0]])
            bound = f"{c:.0f}, {100 * om / c:.0f}%, {100 * pm / c:.0f}%"
        ik_cells = ""
        if ik_build and key in ik:
            im, isd = ms(ik[key])
            best = [o / max(p, i) for o, p, i in zip(ours[key], peer[key], ik[key])]
            bspread = f" ({min(best):.2f}–{max(best):.2f})" if len(best) > 1 else ""
            ik_cells = f" {im:.1f} ± {isd:.1f} | {statistics.mean(best):.2f}{bspread} |"
        print(f"| {key[0]} | {key[1]} | {om:.1f} ± {osd:.1f} | {pm:.1f} ± {psd:.1f} | {statistics.mean(ratios):.2f}{spread} |{ik_cells} {bound} |")
    one = ["-m", model, "-t", "1", "-p", a.p, "-n", a.n, "-r", "1"]
    rss_ours = peak_rss_mib([a.edgewasm, "bench"] + one)
    rss_peer = peak_rss_mib([a.llama_bench] + one)
    rss_ik = f", ik_llama.cpp {peak_rss_mib([a.ik_bench] + one):.1f} MiB" if ik_build else ""
    print(f"\nPeak RSS, one run of pp{a.p} + tg{a.n} with 1 thread: "
          f"edgewasm {rss_ours:.1f} MiB, llama.cpp {rss_peer:.1f} MiB (ratio {rss_ours / rss_peer:.2f}){rss_ik}\n")


def peak_rss_mib(cmd):
    """Peak resident set size of one run of `cmd`, in MiB."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return usage.ru_maxrss / 1024  # Linux reports KiB


def guest_vs_native(model):
    """Two measures of what running as a wasm guest costs in decode:
    in each guest run, the share of the guest-side decode time the host engine
    spent sampling and decoding (exact, immune to machine noise), and across
    alternating guest and native runs, the median ratio of their speeds
    (what the issue's target names; runs here vary by ±15%)."""
    prompt, n = "Why run small language models on edge devices?", "128"
    native_cmd = [a.edgewasm, "generate", "-m", model, "--chat", "-p", prompt, "--temp", "0", "-n", n, "-t", "1", "-v"]
    guest_cmd = [a.edgewasm, "run", "-t", "1", "--model", f"default={model}", a.guest, "-v", "--temp", "0", "--max-tokens", n, prompt]
    native, guest, engine_share = [], [], []
    for r in range(max(10, 3 * a.rounds) + 1):
        for cmd, pattern, into in ((native_cmd, r"generated: (\d+) tokens in ([\d.]+) ms", native),
                                   (guest_cmd, r"guest-side decode: (\d+) tokens in ([\d.]+) ms .*host engine ([\d.]+) ms", guest)):
            err = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
            m = re.search(pattern, err)
            if not m:
                sys.exit(f"no timing in the output of {' '.join(cmd)}:\n{err}")
            if r > 0:  # the first pair warms up (page cache, compiled guest)
                into.append(int(m.group(1)) / (float(m.group(2)) / 1e3))
                if into is guest:
                    engine_share.append(float(m.group(3)) / float(m.group(2)))
    ratios = [g / x for g, x in zip(guest, native)]
    (gm, gsd), (nm, nsd) = ms(guest), ms(native)
    print(f"Guest path ({model}): decode, {n} tokens, 1 thread, {len(ratios)} alternating pairs: guest {gm:.1f} ± {gsd:.1f} t/s, "
          f"native {nm:.1f} ± {nsd:.1f} t/s, guest/native median {statistics.median(ratios):.3f} "
          f"(mean {statistics.mean(ratios):.3f}, range {min(ratios):.3f}–{max(ratios):.3f})")
    print(f"  within each guest run, the host engine's share of the guest-side decode time: "
          f"{100 * statistics.mean(engine_share):.2f}% (range {100 * min(engine_share):.2f}–{100 * max(engine_share):.2f}%): "
          f"the guest boundary (calls, wasm, output) costs the rest")


models = a.model + [quantized(a.model[0], ty) for ty in a.quantize.split(",") if ty]
for m in models:
    bench(m)
if a.guest:
    guest_vs_native(a.model[0])
