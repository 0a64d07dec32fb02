#!/usr/bin/env python3
"""Rebuilds tests/data/templates/NAME.json, every chat template of the
peer's llama.cpp (src/vendor/llama.cpp/models/templates/NAME.jinja)
rendered the way Hugging Face transformers renders it, and checks them
against the committed copy.

    python3 scripts/template-reference.py           # regenerate into target/template-reference, compare
    python3 scripts/template-reference.py --write   # regenerate into tests/data/templates

The environment is transformers' `_compile_jinja_template`
(transformers/utils/chat_template_utils.py): Python jinja2's
ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the
loopcontrols extension and transformers' `{% generation %}` extension,
its `tojson` filter (json.dumps, no HTML escaping, ensure_ascii=False,
indent/separators/sort_keys passed through), and the globals
`raise_exception` and `strftime_now`. The template sees what
`apply_chat_template` passes: `messages`, `tools=None`, `documents=None`,
`add_generation_prompt`, `bos_token` and `eos_token`.

`strftime_now` is fixed for the reference: it formats FIXED_NOW (a naive
datetime; transformers uses the local clock) so that the expected bytes do
not depend on the day. host/llm/tests/templates.rs gives our renderer the
same instant (`ChatTemplate::with_fixed_time`).

Each template is rendered on the CONVERSATIONS below, with
add_generation_prompt off and on. A case records the expected output, or
the error jinja2 raised (`raise_exception` or any other): the test then
expects our renderer to fail too. host/llm/tests/templates.rs compares
byte for byte.
"""
import argparse
import calendar
import hashlib
import json
import os
import sys
from datetime import datetime
from pathlib import Path

try:
    import jinja2
    import jinja2.ext
    import jinja2.nodes
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    sys.exit("template-reference: needs jinja2 (python3 -m pip install -r scripts/requirements.txt)")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "templates"

# The instant strftime_now() sees: 2025-03-09 14:05:09 (a Sunday).
FIXED_NOW = datetime(2025, 3, 9, 14, 5, 9)

# The conversations every template renders, each with add_generation_prompt
# off and on.
CONVERSATIONS = [
    ("system_user", [
        {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
        {"role": "user", "content": "What is the capital of France?"},
    ]),
    ("multi_turn", [
        {"role": "user", "content": "Hi there!"},
        {"role": "assistant", "content": "Hello! How can I help you today?"},
        {"role": "user", "content": "Tell me a joke about cats, in one line — s'il vous plaît."},
    ]),
    ("system_multi_turn", [
        {"role": "system", "content": "You are a pirate. Stay in character."},
        {"role": "user", "content": "Where is the treasure?"},
        {"role": "assistant", "content": " Arr, buried on the island!\n"},
        {"role": "user", "content": "  Which island?  "},
    ]),
]

# bos_token/eos_token per template, from the model's tokenizer_config.json
# where the family is known (first matching name prefix wins); `<s>`/`</s>`
# otherwise.
TOKENS = [
    ("meta-llama-", "<|begin_of_text|>", "<|eot_id|>"),
    ("NousResearch-Hermes-2-Pro-Llama-3", "<|begin_of_text|>", "<|im_end|>"),
    ("NousResearch-Hermes-3-Llama-3.1", "<|begin_of_text|>", "<|im_end|>"),
    ("fireworks-ai-llama-3", "<|begin_of_text|>", "<|eot_id|>"),
    ("meetkai-functionary", "<|begin_of_text|>", "<|eot_id|>"),
    ("deepseek-ai-DeepSeek-R1-Distill-Llama", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    ("deepseek-ai-", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    ("llama-cpp-deepseek", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
    ("Qwen", "", "<|im_end|>"),
    ("HuggingFaceTB-SmolLM3", "", "<|im_end|>"),
    ("MiMo", "", "<|im_end|>"),
    ("google-gemma-2", "<bos>", "<end_of_turn>"),
    ("google-gemma-4", "<bos>", "<turn|>"),
    ("microsoft-Phi-3", "<s>", "<|endoftext|>"),
    ("ibm-granite", "<|end_of_text|>", "<|end_of_text|>"),
    ("CohereForAI", "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>"),
    ("Cohere2", "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>"),
    ("GLM", "", "<|endoftext|>"),
    ("openai-gpt-oss", "<|startoftext|>", "<|return|>"),
    ("LFM", "<|startoftext|>", "<|im_end|>"),
    ("Kimi", "[BOS]", "[EOS]"),
    ("moonshotai-Kimi", "[BOS]", "[EOS]"),
    ("MiniMax", "]~!b[", "[e~["),
    ("ByteDance-Seed", "<seed:bos>", "<seed:eos>"),
]
DEFAULT_TOKENS = ("<s>", "</s>")


def peer_dir():
    version = os.environ.get("PEER_VERSION", "0.3.36")
    default = Path.home() / ".cache" / "edgewasm" / f"llama.cpp-{version}"
    return Path(os.environ.get("PEER_DIR") or default)


def tokens_for(name):
    for prefix, bos, eos in TOKENS:
        if name.startswith(prefix):
            return bos, eos
    return DEFAULT_TOKENS


class Raised(jinja2.exceptions.TemplateError):
    """What raise_exception raises (transformers raises a plain TemplateError)."""


class AssistantTracker(jinja2.ext.Extension):
    """transformers' `{% generation %}...{% endgeneration %}` tag. Outside
    `return_assistant_tokens_mask` it renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_generation_support"), [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _generation_support(self, context, caller):
        return caller()


def compile_template(source):
    """transformers' _compile_jinja_template, with strftime_now fixed."""

    def raise_exception(message):
        raise Raised(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return FIXED_NOW.strftime(format)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


def render_cases(source, bos, eos):
    try:
        template = compile_template(source)
        compile_error = None
    except Exception as e:  # noqa: BLE001 - any jinja2 failure is the expectation
        template = None
        compile_error = {"kind": "syntax", "message": f"{type(e).__name__}: {e}"}
    cases = []
    for name, messages in CONVERSATIONS:
        for gen in (False, True):
            case = {"name": name, "add_generation_prompt": gen, "messages": messages}
            if compile_error:
                case["error"] = compile_error
            else:
                try:
                    case["expected"] = template.render(
                        messages=messages, tools=None, documents=None, add_generation_prompt=gen,
                        bos_token=bos, eos_token=eos,
                    )
                except Raised as e:
                    case["error"] = {"kind": "raise_exception", "message": str(e)}
                except Exception as e:  # noqa: BLE001
                    case["error"] = {"kind": "other", "message": f"{type(e).__name__}: {e}"}
            cases.append(case)
    return cases


def regenerate(out, templates):
    out.mkdir(parents=True, exist_ok=True)
    names = sorted(p.stem for p in templates.glob("*.jinja"))
    if not names:
        sys.exit(f"template-reference: no templates in {templates}")
    for stale in out.glob("*.json"):
        if stale.stem not in names:
            stale.unlink()
    for name in names:
        source = (templates / f"{name}.jinja").read_text(encoding="utf-8")
        bos, eos = tokens_for(name)
        doc = {
            "template": f"models/templates/{name}.jinja",
            "source_sha256": hashlib.sha256(source.encode()).hexdigest(),
            "jinja2": jinja2.__version__,
            "now": FIXED_NOW.isoformat(),
            "now_unix": calendar.timegm(FIXED_NOW.timetuple()),
            "bos_token": bos,
            "eos_token": eos,
            "source": source,
            "cases": render_cases(source, bos, eos),
        }
        (out / f"{name}.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        errors = sum("error" in c for c in doc["cases"])
        print(f"template-reference: {name}: {len(doc['cases'])} cases, {errors} raise")
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help="overwrite tests/data/templates")
    args = ap.parse_args()
    templates = peer_dir() / "src" / "vendor" / "llama.cpp" / "models" / "templates"
    if args.write:
        regenerate(DATA, templates)
        return
    new = ROOT / "target" / "template-reference"
    names = regenerate(new, templates)
    old_names = sorted(p.stem for p in DATA.glob("*.json"))
    bad = sorted(set(old_names) ^ set(names))
    for name in names:
        if name in old_names and (DATA / f"{name}.json").read_bytes() != (new / f"{name}.json").read_bytes():
            bad.append(name)
    print(f"template-reference: {len(names) - len(bad)}/{len(names)} templates equal")
    if bad:
        sys.exit(f"template-reference: regenerated outputs differ for {', '.join(bad)}")


if __name__ == "__main__":
    main()
