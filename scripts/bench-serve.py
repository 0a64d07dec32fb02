#!/usr/bin/env python3
"""Serving benchmark (issue 18): `edgewasm serve` with the openai-server guest
against llama.cpp's `llama-server` (built from the same peer sources by
scripts/build-llama-server.sh, `--parallel 16`, continuous batching), on
the same model file and prompts, with scripts/load-test.py at each
concurrency level. The two servers take turns per level (never at the same
time) and use the same thread count.

    python3 scripts/bench-serve.py EDGEWASM_BIN LLAMA_SERVER [--model FILE] [--clients 1,4,16] [--seconds 60]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, what, timeout=300):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit(f"{what} was not ready after {timeout} s")


def load(url, clients, seconds, max_tokens):
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "scripts/load-test.py"), url, "--clients", str(clients),
         "--seconds", str(seconds), "--max-tokens", str(max_tokens), "--json"],
        capture_output=True, text=True)
    if not out.stdout.strip():
        sys.exit(f"load test failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_server(cmd, url, what, clients, seconds, max_tokens):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(url, proc, what)
        return load(url, clients, seconds, max_tokens)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("edgewasm")
    ap.add_argument("llama_server")
    ap.add_argument("--model", default=os.path.join(ROOT, "models/smollm2-135m-instruct-q4_1.gguf"))
    ap.add_argument("--guest", default=os.path.join(ROOT, "target/guests/openai-server.wasm"))
    ap.add_argument("--clients", default="1,4,16")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--ctx-per-slot", type=int, default=1024)
    a = ap.parse_args()
    levels = [int(x) for x in a.clients.split(",")]
    slots = max(levels)
    rows = []
    for n in levels:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        ours = run_server(
            [a.edgewasm, "serve", "--addr", f"127.0.0.1:{port}", "--max-concurrency", str(slots), "--threads",
             str(a.threads), "--model", f"default={a.model}", a.guest],
            url, "edgewasm serve", n, a.seconds, a.max_tokens)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        peer = run_server(
            [a.llama_server, "-m", a.model, "--host", "127.0.0.1", "--port", str(port), "-t", str(a.threads),
             "-np", str(slots), "-c", str(slots * a.ctx_per_slot), "--no-webui"],
            url, "llama-server", n, a.seconds, a.max_tokens)
        rows.append((n, ours, peer))
        print(f"clients={n}: edgewasm {json.dumps(ours)}", file=sys.stderr)
        print(f"clients={n}: llama-server {json.dumps(peer)}", file=sys.stderr)
    print(f"model: {a.model}; {a.threads} threads; {a.seconds:.0f} s per level; max_tokens {a.max_tokens}; "
          f"llama-server -np {slots} -c {slots * a.ctx_per_slot}")
    print()
    print("| clients | edgewasm tokens/s | llama-server tokens/s | ratio | edgewasm TTFT p50 / p99 ms | "
          "llama-server TTFT p50 / p99 ms | requests ok (edgewasm / llama-server) | failed | 429 |")
    print("| ---: | ---: | ---: | ---: | --- | --- | --- | --- | --- |")
    for n, o, p in rows:
        ratio = o["tokens_per_s"] / p["tokens_per_s"] if p["tokens_per_s"] else float("nan")
        print(f"| {n} | {o['tokens_per_s']} | {p['tokens_per_s']} | {ratio:.2f} | {o['ttft_p50_ms']} / {o['ttft_p99_ms']} | "
              f"{p['ttft_p50_ms']} / {p['ttft_p99_ms']} | {o['requests_ok']} / {p['requests_ok']} | "
              f"{o['requests_failed']} / {p['requests_failed']} | {o['requests_429']} / {p['requests_429']} |")


if __name__ == "__main__":
    main()
