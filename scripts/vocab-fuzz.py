#!/usr/bin/env python3
"""Differential test of the tokenizer against llama.cpp (the peer) on random
inputs: for each vocab of the peer's models/ folder, random texts (mixed
scripts, Unicode whitespace and marks, the vocab's special tokens and
words, long single-alphabet runs) and random token-id lists go through
scripts/peer/vocab-oracle.cpp and host/tokenizer/examples/tokdump.rs, and
every output line must be equal (ids with and without special tokens, both
decodings).

    python3 scripts/vocab-fuzz.py [--cases 2000] [--seed 1] [VOCAB...]
    python3 scripts/vocab-fuzz.py --aliases [--cases 1000]

--aliases checks every supported `tokenizer.ggml.pre` name instead (the
names no vocab file uses included): gpt-2's vocab file is copied with each
name in turn (and gemma-4's, as a `gpt2` model, for the SentencePiece-style
ones), so the name's regexes and settings are compared with the peer's.

Builds the oracle (scripts/vocab-reference.py) and tokdump (cargo, release)
first. Exit status 1 on any difference; the first few are printed.
"""
import argparse
import json
import random
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import importlib

vr = importlib.import_module("vocab-reference")

ROOT = vr.ROOT
SEP = vr.SEP

POOL = list("abcxyzABCXYZ0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + [" "] * 8 + [
    "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x00", "\x7f", "\x85", "\xa0", "\u1680", "\u2000", "\u2028",
    "\u202f", "\u3000", "\u200b", "\u180e", "\ufeff", "\u2060", "\u0301", "\u0308", "\u093f", "\u0e31", "\u200d", "\ufe0f",
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D", "   ", "\n\n", "\r\n", " \n",
    "12345678", "____", "...", "--", "==", "\u017f",
] + list("éßÄΩжЖπλαβकखमहاسلامעבריתไทย一龥\u9fa6\u9fff\u3400가힣\ud7a4\ud7ffあアｱＡａ！：～‘’“”—…。、，«»¿¡§¶€£©±×∑〇Ⅻ²٣０🦙😀\u0378\ue000\U0010ffff\u0800\u4dff")
# Class and table boundaries (escaped: source normalization must not fold them).
EDGE = [chr(c) for c in [
    0x212A, 0x2126, 0x1F7D, 0x390, 0x38A, 0x3001, 0x3002, 0x3003, 0xFF01, 0xFF0F, 0xFF10, 0xFF1A, 0xFF5E, 0xFF5F, 0x2017,
    0x2018, 0x201F, 0x2020, 0x4E00, 0x9FA5, 0x9FA6, 0x7FF, 0x800, 0xABFF, 0xAC00, 0xD7A3, 0xD7FF, 0xE000, 0x1E900,
    0x1E943, 0x1E944, 0x2160, 0x3007, 0xB2, 0xBC, 0x2070, 0x1D400, 0x2C6, 0x2B0, 0x903, 0x20DD, 0xAD, 0x200E, 0x61C,
    0xFFFD, 0xFFFE, 0x1F1E6, 0x1F3FB, 0x10400, 0x10428, 0x130, 0x131, 0x1E9E, 0xDF, 0x1C5, 0x1F88, 0x2163, 0x24B6,
    0x2029, 0x205F, 0x2007, 0x1160, 0x115F, 0x3164]]
RUNS = ["ab", "a ", "  \n", "ĠĠ", "01", "ーア", "的是", "aeiou", "!?.", "éè", "\t ", "\u0301e", "ab'", "▁a"]


def gguf_meta(path):
    """The metadata of a GGUF file (no tensors needed: vocab files have none)."""
    types = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
    with open(path, "rb") as f:
        def rd(fmt):
            return struct.unpack("<" + fmt, f.read(struct.calcsize(fmt)))

        def rstr():
            (n,) = rd("Q")
            return f.read(n).decode("utf-8", "replace")

        def val(t):
            if t == 8:
                return rstr()
            if t == 9:
                (et,) = rd("I")
                (n,) = rd("Q")
                if et in types:
                    return list(struct.unpack("<%d%s" % (n, types[et]), f.read(n * struct.calcsize(types[et]))))
                return [val(et) for _ in range(n)]
            return rd(types[t])[0]

        f.read(4)
        rd("I")
        rd("Q")
        (nkv,) = rd("Q")
        meta = {}
        for _ in range(nkv):
            k = rstr()
            (t,) = rd("I")
            meta[k] = val(t)
    return meta


def byte_level_inverse():
    tbl, n = {}, 0
    printable = lambda b: 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b <= 0xFF
    for b in range(256):
        if printable(b):
            tbl[chr(b)] = b
    for b in range(256):
        if not printable(b):
            tbl[chr(256 + n)] = b
            n += 1
    return tbl


def vocab_words(meta, rng):
    toks = meta["tokenizer.ggml.tokens"]
    types = meta.get("tokenizer.ggml.token_type", [1] * len(toks))
    specials = [t for t, ty in zip(toks, types) if ty in (2, 3, 4) and t]
    inv = byte_level_inverse()
    words = []
    for i in rng.sample(range(len(toks)), min(400, len(toks))):
        w = toks[i]
        if types[i] != 1:
            continue
        if meta["tokenizer.ggml.model"] == "gpt2" and all(c in inv for c in w):
            words.append(bytes(inv[c] for c in w).decode("utf-8", "replace"))
        else:
            words.append(w.replace("\u2581", " "))
    return specials, words


def rand_cp(rng):
    while True:
        c = rng.choice([rng.randint(0x80, 0x7FF), rng.randint(0x800, 0xFFFF), rng.randint(0x10000, 0x10FFFF)])
        if not 0xD800 <= c <= 0xDFFF:
            return chr(c)


def text_case(rng, specials, words):
    if rng.random() < 0.1:
        alpha = rng.choice(RUNS) + rng.choice(RUNS)
        return "".join(rng.choice(alpha) for _ in range(rng.randint(1, 600)))
    parts = []
    for _ in range(rng.randint(0, 24)):
        r = rng.random()
        if r < 0.08 and specials:
            parts.append(rng.choice(specials))
        elif r < 0.25 and words:
            parts.append(rng.choice(words))
        elif r < 0.35:
            parts.append(rng.choice(EDGE))
        elif r < 0.42:
            parts.append(rand_cp(rng))
        else:
            parts.append(rng.choice(POOL))
    return "".join(parts).replace("__ggml_vocab_test__", "_")


def set_keys(src, dst, changes):
    """Copies tensor-less GGUF `src` to `dst` with string metadata `changes`."""
    data = open(src, "rb").read()
    pos = 24
    (n_tensors, n_kv) = struct.unpack_from("<QQ", data, 8)
    assert n_tensors == 0, "vocab files have no tensors"
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def skip(t):
        nonlocal pos
        if t == 8:
            pos += 8 + struct.unpack_from("<Q", data, pos)[0]
        elif t == 9:
            et, n = struct.unpack_from("<IQ", data, pos)
            pos += 12
            if et in sizes:
                pos += n * sizes[et]
            else:
                for _ in range(n):
                    skip(et)
        else:
            pos += sizes[t]

    def kv(k, v):
        kb, vb = k.encode(), v.encode()
        return struct.pack("<Q", len(kb)) + kb + struct.pack("<IQ", 8, len(vb)) + vb

    out, seen = [], set()
    for _ in range(n_kv):
        start = pos
        klen = struct.unpack_from("<Q", data, pos)[0]
        key = data[pos + 8:pos + 8 + klen].decode()
        pos += 8 + klen
        (t,) = struct.unpack_from("<I", data, pos)
        pos += 4
        skip(t)
        if key in changes:
            seen.add(key)
            out.append(kv(key, changes[key]))
        else:
            out.append(data[start:pos])
    out += [kv(k, v) for k, v in changes.items() if k not in seen]
    open(dst, "wb").write(data[:8] + struct.pack("<QQ", 0, len(out)) + b"".join(out))


def run(cmd, data):
    r = subprocess.run(cmd, input=data, capture_output=True)
    if r.returncode:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{r.stderr.decode(errors='replace')[-2000:]}")
    # Not splitlines(): texts hold U+2028, U+0085...
    return [json.loads(line) for line in r.stdout.decode().split("\n") if line]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--aliases", action="store_true", help="every supported pre-tokenizer name on gpt-2's vocab")
    ap.add_argument("vocabs", nargs="*", default=vr.VOCABS)
    args = ap.parse_args()
    peer = vr.peer_dir()
    oracle = vr.build_oracle(peer)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "edgewasm-tokenizer", "--example", "tokdump"], check=True, cwd=ROOT)
    cargo_meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--no-deps"], check=True, capture_output=True, cwd=ROOT)
    target = Path(json.loads(cargo_meta.stdout)["target_directory"])
    dump = target / "release" / "examples" / "tokdump"
    models = peer / "src" / "vendor" / "llama.cpp" / "models"
    jobs = [(name, models / f"ggml-vocab-{name}.gguf") for name in args.vocabs]
    if args.aliases:
        tmp = Path(tempfile.mkdtemp(prefix="vocab-fuzz-"))
        names = subprocess.run([str(dump), "--list-pre"], check=True, capture_output=True, text=True).stdout.split()
        jobs = []
        for pre in names:
            dst = tmp / f"gpt-2-{pre}.gguf"
            set_keys(models / "ggml-vocab-gpt-2.gguf", dst, {"tokenizer.ggml.pre": pre})
            jobs.append((f"gpt-2 vocab, pre {pre}", dst))
        for pre in ["gemma4", "granite-embed-multi-311m", "sarvam-moe"]:
            dst = tmp / f"gemma-4-{pre}.gguf"
            set_keys(models / "ggml-vocab-gemma-4.gguf", dst, {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": pre})
            jobs.append((f"gemma-4 vocab as gpt2, pre {pre}", dst))
    failed = False
    for name, gguf in jobs:
        rng = random.Random(args.seed)
        meta = gguf_meta(gguf)
        specials, words = vocab_words(meta, rng)
        texts = [text_case(rng, specials, words) for _ in range(args.cases)]
        data = (SEP.join(texts) + SEP).encode()
        n_tok = len(meta["tokenizer.ggml.tokens"])
        odd = [i for i, t in enumerate(meta.get("tokenizer.ggml.token_type", [])) if t != 1]
        id_lists = "".join(" ".join(str(rng.choice(odd) if odd and rng.random() < 0.3 else rng.randrange(n_tok)) for _ in range(rng.randint(0, 12))) + "\n"
                           for _ in range(args.cases)).encode()
        for what, extra, inp in [("encode", [], data), ("decode", ["--decode"], id_lists)]:
            a = run([str(oracle), str(gguf), *extra], inp)
            b = run([str(dump), str(gguf), *extra], inp)
            bad = [(x, y) for x, y in zip(a, b) if x != y] + [(None, None)] * abs(len(a) - len(b))
            print(f"vocab-fuzz: {name} {what}: {len(a) - len(bad)}/{len(a)} equal")
            for x, y in bad[:3]:
                print(f"  peer {json.dumps(x, ensure_ascii=False)[:400]}\n  ours {json.dumps(y, ensure_ascii=False)[:400]}")
            failed |= bool(bad)
    if args.aliases:
        shutil.rmtree(tmp)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
