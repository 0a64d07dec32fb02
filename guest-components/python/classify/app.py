"""python-classify.wasm: zero-shot text classification with a small local
model, scored through wasi:nn token mode (componentize-py, world
edgewasm:llm/command).

  python-classify.wasm [--labels a,b,c] [--file PATH] [--question Q]
      [--no-calibrate] [--model NAME] [--json] [TEXT...]

Every TEXT argument, and every non-empty line of --file PATH (lines starting
with `#` are comments), is one input. For each input the guest

1. builds a chat prompt (the model's chat template, through edgewasm:llm
   `model.apply-chat-template`): a user message with the question, the
   labels and the text, then the assistant's turn;
2. tokenizes it (`model.tokenize`, special tokens parsed) and every label
   (`model.tokenize(label, false, false)`);
3. runs the prompt through a wasi:nn execution context in token mode (input
   `tokens`, output `logits`, f32 over the whole vocabulary) and scores each
   label by teacher forcing: log P(label) = sum over its tokens t_k of
   log softmax(logits after prompt + t_1..t_{k-1})[t_k], feeding the label's
   tokens one by one and rewinding to the end of the prompt (input `n-past`)
   before the next label;
4. calibrates (unless --no-calibrate): a 135M model prefers whichever label
   comes first in the question whatever the text, so the scores of a
   content-free input (`N/A`) are subtracted from every input's scores
   ("contextual calibration", Zhao et al. 2021, "Calibrate Before Use");
5. turns the label scores into probabilities over the labels (a softmax of
   the calibrated summed log-probabilities) and prints them, most likely
   first.

Output per input: `#N TEXT`, then one line per label `  LABEL  P` (with
--json: one JSON object per input, `{"text", "labels": [{"label", "p",
"logprob"}], "coverage"}`: `logprob` is the model's uncalibrated log P(label),
`coverage` the model's total probability of all labels).

Errors (missing file, no input, a wasi:nn or edgewasm:llm failure) go to
stderr with exit status 1.
"""

import json
import math
import struct
import sys
from array import array

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import edgewasm_llm_types as types
from wit_world.imports import environment, graph, llm
from wit_world.imports.tensor import Tensor, TensorType

USAGE = (
    "usage: python-classify.wasm [--labels a,b,c] [--file PATH] [--question Q] "
    "[--no-calibrate] [--model NAME] [--json] [TEXT...]"
)
DEFAULT_LABELS = ["hardware", "software", "network", "other"]
DEFAULT_QUESTION = "Which category does this support ticket belong to?"
# The content-free input of contextual calibration.
CONTENT_FREE = "N/A"

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
    try:
        return f()
    except Err as e:
        err = e.value
        code = err.code().name.lower().replace("_", "-")
        raise Fail(f"{what}: wasi-nn error {code}: {err.data()}") from None


def llm_call(what, f):
    try:
        return f()
    except Err as e:
        err = e.value
        name = LLM_ERRORS.get(type(err), type(err).__name__)
        detail = getattr(err, "value", None)
        raise Fail(f"{what}: edgewasm:llm error {name}" + (f": {detail}" if detail is not None else "")) from None


def parse_args():
    args = environment.get_arguments()[1:]
    a = {"labels": DEFAULT_LABELS, "file": None, "question": DEFAULT_QUESTION, "model": "default", "json": False, "calibrate": True}
    texts = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--labels", "--file", "--question", "--model"):
            if i + 1 >= len(args):
                raise Fail(f"{arg} needs a value\n{USAGE}")
            value = args[i + 1]
            i += 2
            if arg == "--labels":
                labels = [l.strip() for l in value.split(",")]
                if len(labels) < 2 or any(not l for l in labels) or len(set(labels)) != len(labels):
                    raise Fail(f"--labels needs at least two distinct, non-empty labels separated by commas, got `{value}`")
                a["labels"] = labels
            else:
                a[arg[2:]] = value
            continue
        if arg == "--json":
            a["json"] = True
        elif arg == "--no-calibrate":
            a["calibrate"] = False
        elif arg in ("-h", "--help"):
            raise Fail(USAGE)
        elif arg == "--":
            texts.extend(args[i + 1 :])
            break
        elif arg.startswith("--"):
            raise Fail(f"unknown flag {arg}\n{USAGE}")
        else:
            texts.append(arg)
        i += 1
    if a["file"] is not None:
        texts.extend(read_inputs(a["file"]))
    texts = [t.strip() for t in texts if t.strip()]
    if not texts:
        raise Fail(f"nothing to classify: give texts as arguments or --file PATH\n{USAGE}")
    a["texts"] = texts
    return a


def read_inputs(path):
    """One input per non-empty line; `#` starts a comment line."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise Fail(f"{path}: no such file (is its folder given to the guest with `edgewasm run --dir HOST::GUEST`?)") from None
    except UnicodeDecodeError as e:
        raise Fail(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise Fail(f"{path}: cannot read: {e.strerror or e}") from None
    return [l for l in lines if l.strip() and not l.lstrip().startswith("#")]


def build_prompt(model, question, labels, text):
    """The chat prompt ending at the start of the assistant's answer."""
    content = f"{question} Answer with one of: {', '.join(labels)}.\n\nText: {text}"
    msgs = [types.ChatMessage(role="user", content=content)]
    return llm_call("apply-chat-template", lambda: model.apply_chat_template(msgs, True))


def i32_tensor(values):
    return Tensor([len(values)], TensorType.I32, struct.pack(f"<{len(values)}i", *values))


def log_softmax_at(logits_bytes, token):
    """log softmax(logits)[token], logits being little-endian f32 over the vocabulary."""
    row = array("f")
    row.frombytes(logits_bytes)
    if sys.byteorder != "little":
        row.byteswap()
    if not 0 <= token < len(row):
        raise Fail(f"token {token} outside the {len(row)} logits")
    m = max(row)
    total = math.fsum(math.exp(v - m) for v in row)
    return row[token] - m - math.log(total)


class Scorer:
    """One wasi:nn execution context, reused for every input. Its KV cache
    persists across `compute` calls; `cached` mirrors the token ids it
    holds, so the prompt prefix an input shares with the previous one (the
    chat template and the question) is not evaluated again."""

    def __init__(self, model_name):
        g = nn_call(f"load-by-name `{model_name}`", lambda: graph.load_by_name(model_name))
        self.graph = g
        self.ctx = nn_call("init-execution-context", g.init_execution_context)
        self.cached = []

    def step(self, tokens, n_past):
        """Truncates the cache to `n_past` tokens, appends `tokens`, returns the last logits."""
        inputs = [("tokens", i32_tensor(tokens)), ("n-past", i32_tensor([n_past]))]
        outputs = nn_call("compute", lambda: self.ctx.compute(inputs))
        self.cached = self.cached[:n_past] + list(tokens)
        for name, t in outputs:
            if name == "logits":
                return t.data()
        raise Fail("compute returned no `logits` output")

    def label_logprobs(self, prompt_ids, label_ids):
        """Sum of log-probabilities of each label's tokens after the prompt."""
        common = 0
        while common < min(len(self.cached), len(prompt_ids)) and self.cached[common] == prompt_ids[common]:
            common += 1
        # At least one token goes in, to get the logits after the prompt.
        common = min(common, len(prompt_ids) - 1)
        after_prompt = self.step(prompt_ids[common:], common)
        scores = []
        for ids in label_ids:
            logits = after_prompt
            total = 0.0
            for k, tok in enumerate(ids):
                total += log_softmax_at(logits, tok)
                if k + 1 < len(ids):
                    # Teacher forcing: feed this token, read the next one's
                    # distribution (rewinding to the end of the prompt first).
                    logits = self.step([tok], len(prompt_ids) + k)
            scores.append(total)
        return scores


def classify(a):
    model = llm_call(f"model.open `{a['model']}`", lambda: llm.Model.open(a["model"]))
    labels = a["labels"]
    label_ids = [list(model.tokenize(l, False, False)) for l in labels]
    for l, ids in zip(labels, label_ids):
        if not ids:
            raise Fail(f"label `{l}` has no tokens")
    scorer = Scorer(a["model"])

    def score(text):
        prompt = build_prompt(model, a["question"], labels, text)
        return scorer.label_logprobs(list(model.tokenize(prompt, True, True)), label_ids)

    baseline = score(CONTENT_FREE) if a["calibrate"] else [0.0] * len(labels)
    for n, text in enumerate(a["texts"], 1):
        logprobs = score(text)
        calibrated = [lp - b for lp, b in zip(logprobs, baseline)]
        m = max(calibrated)
        weights = [math.exp(c - m) for c in calibrated]
        z = math.fsum(weights)
        ranked = sorted(zip(labels, [w / z for w in weights], logprobs), key=lambda r: -r[1])
        if a["json"]:
            coverage = math.fsum(math.exp(lp) for lp in logprobs)
            obj = {
                "text": text,
                "labels": [{"label": l, "p": p, "logprob": lp} for l, p, lp in ranked],
                "coverage": coverage,
            }
            print(json.dumps(obj, ensure_ascii=False))
        else:
            print(f"#{n} {text}")
            width = max(len(l) for l in labels)
            for l, p, _ in ranked:
                print(f"  {l:<{width}}  {p:.4f}")
        sys.stdout.flush()


class Run(exports.Run):
    """wasi:cli/run: returning is success; raising Err(None) exits with status 1."""

    def run(self) -> None:
        try:
            classify(parse_args())
        except Fail as e:
            sys.stderr.write(f"classify: {e}\n")
            sys.stderr.flush()
            raise Err(None) from None
