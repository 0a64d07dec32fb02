#!/usr/bin/env python3
"""A bounded load test of an OpenAI-compatible chat endpoint on loopback.

N clients each send streaming chat completions back to back for D seconds
(a request started before the end runs to its end). Per request it records
the time to the first content token and the completion tokens (from
`stream_options.include_usage`). 429 answers are counted apart from
failures; any other non-200 answer, an error event, a stream without
`data: [DONE]` or a broken connection is a failure.

Works against `edgewasm serve target/guests/openai-server.wasm` and
llama.cpp's `llama-server` alike. Standard library only.

    python3 scripts/load-test.py http://127.0.0.1:8080 --clients 1,4,16 --seconds 60
"""

import argparse
import asyncio
import json
import statistics
import sys
import time


PROMPTS = [
    "Write three sentences about small computers.",
    "What is the capital of France? Answer in one sentence.",
    "Give me a short list of uses for a Raspberry Pi.",
    "Explain what a language model is to a child.",
    "Write a haiku about the sea.",
    "Why do edge devices run models offline?",
    "Name three planets and one fact about each.",
    "Summarise the benefits of walking every day.",
]


class Http:
    """A bare HTTP/1.1 client over asyncio streams: one connection per
    request, chunked or length-delimited bodies, read as they arrive."""

    def __init__(self, url):
        assert url.startswith("http://"), "http:// URLs only"
        hostport = url[len("http://"):].split("/")[0]
        host, _, port = hostport.partition(":")
        self.host, self.port = host, int(port or 80)

    async def post_stream(self, path, body, headers):
        reader, writer = await asyncio.open_connection(self.host, self.port)
        data = json.dumps(body).encode()
        head = [f"POST {path} HTTP/1.1", f"host: {self.host}:{self.port}", "connection: close",
                "content-type: application/json", f"content-length: {len(data)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        hdrs = {}
        while True:
            line = (await reader.readline()).decode().strip()
            if not line:
                break
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        return status, hdrs, reader, writer


async def body_chunks(reader, hdrs):
    """The body's bytes as they arrive."""
    if "chunked" in hdrs.get("transfer-encoding", ""):
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            yield await reader.readexactly(size)
            await reader.readline()
    elif "content-length" in hdrs:
        yield await reader.readexactly(int(hdrs["content-length"]))
    else:
        yield await reader.read()


async def one_request(http, model, prompt, max_tokens, seed, api_key):
    """One streamed chat completion: (status, ttft seconds or None, tokens, error)."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.8,
        "seed": seed,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    t0 = time.perf_counter()
    ttft, tokens, done = None, None, False
    writer = None
    try:
        status, hdrs, reader, writer = await http.post_stream("/v1/chat/completions", body, headers)
        if status != 200:
            text = b"".join([c async for c in body_chunks(reader, hdrs)])
            return status, None, 0, text[:200].decode(errors="replace")
        buf = b""
        async for chunk in body_chunks(reader, hdrs):
            buf += chunk
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                line = event.decode()
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    done = True
                    continue
                ev = json.loads(data)
                if "error" in ev:
                    return 200, ttft, 0, json.dumps(ev["error"])[:200]
                if ev.get("usage"):
                    tokens = ev["usage"]["completion_tokens"]
                for c in ev.get("choices", []):
                    if c.get("delta", {}).get("content") and ttft is None:
                        ttft = time.perf_counter() - t0
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as e:
        return 0, ttft, 0, f"{type(e).__name__}: {e}"
    finally:
        if writer is not None:
            writer.close()
    if not done:
        return 200, ttft, 0, "no [DONE]"
    if tokens is None:
        return 200, ttft, 0, "no usage chunk"
    return 200, ttft, tokens, None


async def run_level(url, model, clients, seconds, max_tokens, api_key):
    stats = {"ok": 0, "busy": 0, "failed": 0, "tokens": 0, "ttft": [], "errors": []}
    end = time.perf_counter() + seconds
    http = Http(url)

    async def worker(w):
        i = 0
        while time.perf_counter() < end:
            prompt = PROMPTS[(w + i) % len(PROMPTS)]
            status, ttft, tokens, err = await one_request(http, model, prompt, max_tokens, w * 1000 + i, api_key)
            i += 1
            if status == 429:
                stats["busy"] += 1
                await asyncio.sleep(0.2)
            elif err is None:
                stats["ok"] += 1
                stats["tokens"] += tokens
                if ttft is not None:
                    stats["ttft"].append(ttft)
            else:
                stats["failed"] += 1
                if len(stats["errors"]) < 5:
                    stats["errors"].append(f"{status}: {err}")

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(clients)))
    wall = time.perf_counter() - t0
    ttft = sorted(stats["ttft"])

    def pct(p):
        if not ttft:
            return None
        return ttft[min(len(ttft) - 1, int(round(p / 100 * (len(ttft) - 1))))]

    return {
        "clients": clients,
        "seconds": round(wall, 1),
        "requests_ok": stats["ok"],
        "requests_429": stats["busy"],
        "requests_failed": stats["failed"],
        "completion_tokens": stats["tokens"],
        "tokens_per_s": round(stats["tokens"] / wall, 1),
        "ttft_p50_ms": None if not ttft else round(statistics.median(ttft) * 1e3, 1),
        "ttft_p99_ms": None if not ttft else round(pct(99) * 1e3, 1),
        "errors": stats["errors"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", help="base URL, e.g. http://127.0.0.1:8080")
    ap.add_argument("--clients", default="1,4,16", help="comma-separated concurrency levels")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--model", default="default")
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--json", action="store_true", help="print one JSON object per level")
    a = ap.parse_args()
    rows = []
    for n in [int(x) for x in a.clients.split(",")]:
        r = asyncio.run(run_level(a.url.rstrip("/"), a.model, n, a.seconds, a.max_tokens, a.api_key))
        rows.append(r)
        if a.json:
            print(json.dumps(r), flush=True)
    if not a.json:
        print("| clients | requests ok | 429 | failed | completion tokens/s | TTFT p50 ms | TTFT p99 ms |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            print(f"| {r['clients']} | {r['requests_ok']} | {r['requests_429']} | {r['requests_failed']} | "
                  f"{r['tokens_per_s']} | {r['ttft_p50_ms']} | {r['ttft_p99_ms']} |")
        for r in rows:
            for e in r["errors"]:
                print(f"clients={r['clients']}: {e}", file=sys.stderr)
    sys.exit(1 if any(r["requests_failed"] for r in rows) else 0)


if __name__ == "__main__":
    main()
