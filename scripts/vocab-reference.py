#!/usr/bin/env python3
"""Rebuilds tests/data/vocab/NAME.jsonl, llama.cpp's (the peer's) tokenizer
outputs on its vocab-only test files, and checks them against the
committed copy.

    python3 scripts/vocab-reference.py           # regenerate into target/vocab-reference, compare
    python3 scripts/vocab-reference.py --write   # regenerate into tests/data/vocab (a new peer version)

For each vocab in VOCABS, the peer's models/ggml-vocab-NAME.gguf is
tokenized by scripts/peer/vocab-oracle.cpp (built against the peer's
libllama) on the vocab's own models/ggml-vocab-NAME.gguf.inp cases (or
llama-bpe's, for the vocabs that ship none) followed by
tests/data/vocab/extra.inp (special tokens, whitespace, marks, numbers...).
Each line: the text, its ids with and without special handling, and both
decodings. host/tokenizer/tests/reference.rs compares the tokenizer with
these and with the peer's .inp/.out files.
"""
import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "vocab"
# Every vocab file of the peer's models/ folder (host/tokenizer/tests/reference.rs
# has the same list).
VOCABS = [
    "llama-bpe", "qwen2", "qwen35", "deepseek-llm", "deepseek-coder", "falcon", "mpt", "starcoder",
    "refact", "gpt-neox", "gpt-2", "command-r", "phi-3", "llama-spm", "baichuan", "aquila",
    "gemma-4", "bert-bge", "nomic-bert-moe",
]
SEP = "\n__ggml_vocab_test__\n"


def peer_dir():
    version = os.environ.get("PEER_VERSION", "0.3.36")
    default = Path.home() / ".cache" / "edgewasm" / f"llama.cpp-{version}"
    return Path(os.environ.get("PEER_DIR") or default)


def build_oracle(peer):
    """scripts/peer/vocab-oracle.cpp over the peer's libllama, built (when
    stale) by scripts/build-peer.sh."""
    subprocess.run(["bash", str(ROOT / "scripts" / "build-peer.sh")], check=True, stdout=subprocess.DEVNULL)
    return peer / "build" / "bin" / "vocab-oracle"


def inputs(models, name):
    """The case texts of one vocab, in the .inp format."""
    own = models / f"ggml-vocab-{name}.gguf.inp"
    base = own if own.exists() else models / "ggml-vocab-llama-bpe.gguf.inp"
    text = base.read_text(encoding="utf-8")
    if not text.endswith(SEP):
        text += SEP
    return text + (DATA / "extra.inp").read_text(encoding="utf-8")


def regenerate(out, peer):
    models = peer / "src" / "vendor" / "llama.cpp" / "models"
    oracle = build_oracle(peer)
    out.mkdir(parents=True, exist_ok=True)
    for name in VOCABS:
        gguf = models / f"ggml-vocab-{name}.gguf"
        r = subprocess.run([str(oracle), str(gguf)], input=inputs(models, name).encode(), capture_output=True, check=True)
        (out / f"{name}.jsonl").write_bytes(r.stdout)
        n = r.stdout.count(b"\n")
        print(f"vocab-reference: {name}: {n} cases")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="overwrite tests/data/vocab")
    args = ap.parse_args()
    peer = peer_dir()
    if args.write:
        regenerate(DATA, peer)
        return
    new = ROOT / "target" / "vocab-reference"
    regenerate(new, peer)
    bad = []
    for name in VOCABS:
        old = (DATA / f"{name}.jsonl").read_bytes().splitlines()
        cur = (new / f"{name}.jsonl").read_bytes().splitlines()
        diff = sum(a != b for a, b in zip(old, cur)) + abs(len(old) - len(cur))
        print(f"vocab-reference: {name}: {len(old) - diff}/{len(old)} cases equal")
        if diff:
            bad.append(name)
    if bad:
        sys.exit(f"vocab-reference: regenerated outputs differ for {', '.join(bad)}")


if __name__ == "__main__":
    main()
