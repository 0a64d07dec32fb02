"""python-conformance.wasm: one completion, three ways (the same program as
guest-components/rust/conformance, in Python; componentize-py).

  python-conformance.wasm [--mode text|stream|tokens] [--max-tokens N] [--temp T]
      [--model NAME] PROMPT...

text:   wasi:nn text mode (inputs `prompt` + `config` JSON, output `text`)
stream: edgewasm:llm session.complete, chunks printed as they come
tokens: wasi:nn token mode with our own greedy loop (tokenize/detokenize
        through edgewasm:llm's model; stops after N tokens or at an
        end-of-generation token; --temp must be 0)

Prints the generated text and a newline; on error, the error on stderr and
a non-zero exit.
"""

import json
import struct
import sys
from array import array

from wit_world import exports
from componentize_py_types import Err
from wit_world.imports import edgewasm_llm_types as types
from wit_world.imports import environment, graph, llm
from wit_world.imports.tensor import Tensor, TensorType

USAGE = "usage: python-conformance.wasm [--mode text|stream|tokens] [--max-tokens N] [--temp T] [--model NAME] PROMPT..."

# edgewasm:llm's `error` variant, case by case (WIT names).
LLM_ERRORS = {
    types.Error_NotFound: "not-found",
    types.Error_InvalidArgument: "invalid-argument",
    types.Error_LimitExceeded: "limit-exceeded",
    types.Error_Timeout: "timeout",
    types.Error_Runtime: "runtime",
}


class Fail(Exception):
    """Ends the run: the message goes to stderr, the exit status is 1."""


def nn_call(what, f):
    """A wasi:nn call; failures arrive as `Err` with the `error` resource in `.value`."""
    try:
        return f()
    except Err as e:
        err = e.value
        code = err.code().name.lower().replace("_", "-")
        raise Fail(f"{what}: wasi-nn error {code}: {err.data()}") from None


def llm_call(what, f):
    """An edgewasm:llm call; failures arrive as `Err` with the `error` variant in `.value`."""
    try:
        return f()
    except Err as e:
        err = e.value
        name = LLM_ERRORS.get(type(err), type(err).__name__)
        detail = getattr(err, "value", None)
        raise Fail(f"{what}: edgewasm:llm error {name}" + (f": {detail}" if detail is not None else "")) from None


def parse_args():
    args = environment.get_arguments()[1:]
    a = {"mode": "text", "max_tokens": 16, "temp": 0.0, "model": "default"}
    words = []
    i = 0
    while i < len(args):
        arg = args[i]

        def value():
            if i + 1 >= len(args):
                raise Fail(f"{arg} needs a value\n{USAGE}")
            return args[i + 1]

        if arg == "--mode":
            a["mode"] = value()
            if a["mode"] not in ("text", "stream", "tokens"):
                raise Fail(f"unknown mode `{a['mode']}`")
            i += 1
        elif arg == "--max-tokens":
            v = value()
            if not v.isdigit():
                raise Fail(USAGE)
            a["max_tokens"] = int(v)
            i += 1
        elif arg == "--temp":
            try:
                a["temp"] = float(value())
            except ValueError:
                raise Fail(USAGE) from None
            i += 1
        elif arg == "--model":
            a["model"] = value()
            i += 1
        elif arg == "--":
            words.extend(args[i + 1 :])
            break
        elif arg.startswith("--"):
            raise Fail(f"unknown flag {arg}")
        else:
            words.append(arg)
        i += 1
    if not words:
        raise Fail(USAGE)
    a["prompt"] = " ".join(words)
    return a


def write(text):
    sys.stdout.write(text)
    sys.stdout.flush()


def u8_tensor(data: bytes) -> Tensor:
    return Tensor([len(data)], TensorType.U8, data)


def text_mode(a):
    g = nn_call(f"load-by-name `{a['model']}`", lambda: graph.load_by_name(a["model"]))
    ctx = nn_call("init-execution-context", g.init_execution_context)
    # JSON numbers: an integral temperature as an integer, like the other guests.
    temp = int(a["temp"]) if a["temp"].is_integer() else a["temp"]
    config = json.dumps({"n-predict": a["max_tokens"], "temp": temp})
    outputs = nn_call(
        "compute",
        lambda: ctx.compute([("prompt", u8_tensor(a["prompt"].encode())), ("config", u8_tensor(config.encode()))]),
    )
    for name, t in outputs:
        if name == "text":
            return t.data().decode("utf-8", errors="replace")
    raise Fail("compute returned no `text` output")


def stream_mode(a):
    model = llm_call(f"model.open `{a['model']}`", lambda: llm.Model.open(a["model"]))
    session = llm_call("session.create", lambda: llm.Session.create(model, None))
    sampling = types.Sampling(
        max_tokens=a["max_tokens"],
        temperature=a["temp"],
        top_k=None,
        top_p=None,
        min_p=None,
        repeat_penalty=None,
        seed=None,
        stop=[],
    )
    generation = llm_call("session.complete", lambda: session.complete(a["prompt"], sampling))
    try:
        while (chunk := llm_call("generation.next", generation.next)) is not None:
            write(chunk)
    finally:
        write("\n")


def tokens_mode(a):
    if a["temp"] != 0:
        raise Fail("--mode tokens decodes greedily only (use --temp 0)")
    model = llm_call(f"model.open `{a['model']}`", lambda: llm.Model.open(a["model"]))
    # As text mode and session.complete do: BOS added, special tokens parsed.
    prompt = model.tokenize(a["prompt"], True, True)
    g = nn_call(f"load-by-name `{a['model']}`", lambda: graph.load_by_name(a["model"]))
    ctx = nn_call("init-execution-context", g.init_execution_context)
    generated = []
    feed = prompt
    while len(generated) < a["max_tokens"]:
        data = struct.pack(f"<{len(feed)}i", *feed)
        inp = Tensor([len(feed)], TensorType.I32, data)
        outputs = nn_call("compute", lambda: ctx.compute([("tokens", inp)]))
        logits = next((t for name, t in outputs if name == "logits"), None)
        if logits is None:
            raise Fail("compute returned no `logits` output")
        row = array("f")
        row.frombytes(logits.data())  # f32, little-endian like wasm itself
        # Greedy: the first maximum (ties go to the lowest id), as the engine does.
        best = row.index(max(row))
        if model.is_eog(best):
            break
        generated.append(best)
        feed = [best]
    return model.detokenize(generated, False)


def main():
    a = parse_args()
    if a["mode"] == "stream":
        stream_mode(a)
    elif a["mode"] == "text":
        write(text_mode(a) + "\n")
    else:
        write(tokens_mode(a) + "\n")


class Run(exports.Run):
    """wasi:cli/run: returning is success; raising Err(None) exits with status 1."""

    def run(self) -> None:
        try:
            main()
        except Fail as e:
            sys.stderr.write(f"conformance: {e}\n")
            sys.stderr.flush()
            raise Err(None) from None
