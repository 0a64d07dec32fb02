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
these and with the peer's .inp/.out files. eog.jsonl lists each vocab's
end-of-generation tokens (scripts/peer/eog-oracle.cpp, llama.cpp's
`llama_vocab_is_eog`); host/llm/tests/eog.rs checks ours and that
generation stops at each.
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
# The project's models (models/, `just models`) whose end-of-generation
# tokens eog.jsonl also lists: Gemma 3's vocab has <end_of_turn>, which no
# vocab file of the peer has.
EOG_MODELS = ["smollm2-135m-instruct-q4_1", "gemma-3-270m-q4_k_m"]


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


def regenerate_eog(out, peer, models):
    """eog.jsonl: the end-of-generation tokens of each vocab
    (scripts/peer/eog-oracle.cpp, `llama_vocab_is_eog`)."""
    oracle = peer / "build" / "bin" / "eog-oracle"
    files = [models / f"ggml-vocab-{name}.gguf" for name in VOCABS]
    files += [ROOT / "models" / f"{name}.gguf" for name in EOG_MODELS]
    r = subprocess.run([str(oracle), *map(str, files)], capture_output=True, check=True)
    lines = r.stdout.decode().splitlines()
    names = VOCABS + EOG_MODELS
    assert len(lines) == len(names), r.stdout
    text = "".join(f'{{"vocab":"{name}",{line[1:]}\n' for name, line in zip(names, lines))
    (out / "eog.jsonl").write_text(text, encoding="utf-8")
    print(f"vocab-reference: eog.jsonl: {len(lines)} vocabs")


def regenerate(out, peer):
    models = peer / "src" / "vendor" / "llama.cpp" / "models"
    oracle = build_oracle(peer)
    out.mkdir(parents=True, exist_ok=True)
    regenerate_eog(out, peer, models)
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
    if (DATA / "eog.jsonl").read_bytes() != (new / "eog.jsonl").read_bytes():
        print("vocab-reference: eog.jsonl differs")
        bad.append("eog")
    if bad:
        sys.exit(f"vocab-reference: regenerated outputs differ for {', '.join(bad)}")


if __name__ == "__main__":
    main()
