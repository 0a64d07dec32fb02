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
FEATURES_FILE = "_features.json"

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

# Feature probes (tests/data/templates/_features.json): small templates
# exercising what chat templates use, each rendered on the last
# conversation with add_generation_prompt on, bos `<s>`, eos `</s>`.
FEATURES = {
    "print_bool_none": "{{ true }}|{{ false }}|{{ none }}|{{ tools }}|{{ add_generation_prompt }}",
    "print_list_dict": "{{ [1, 'a', none, true, 1.5] }}|{{ {'b': 1, 'a': 'x'} }}|{{ messages[0] }}",
    "print_quotes": "{{ [\"it's\", 'say \"hi\"', 'a\\nb', 'é'] }}",
    "print_tuple": "{{ (1, 2) }}|{{ ('a',) }}",
    "print_numbers": "{{ 3 / 2 }}|{{ 4 / 2 }}|{{ 7 // 2 }}|{{ 7 % 3 }}|{{ 2 ** 10 }}|{{ 0.1 + 0.2 }}|{{ 1e20 }}|{{ 1.0 }}|{{ -0.0 }}|{{ 1e-5 }}",
    "string_filter": "{{ true | string }}|{{ none | string }}|{{ [1, 'a'] | string }}|{{ 1.5 | string }}",
    "concat_tilde": "{{ 'x' ~ 1 ~ 1.5 }}|{{ 'x' ~ true }}|{{ 'x' ~ none }}",
    "tojson_basic": "{{ {'b': 1, 'a': [1.5, 'é', none, true, false]} | tojson }}",
    "tojson_messages": "{{ messages | tojson }}",
    "tojson_indent": "{{ {'b': {'c': [1, 2], 'd': {}}, 'a': [], 'e': 'x'} | tojson(indent=2) }}",
    "tojson_indent4_nested": "{{ messages[:2] | tojson(indent=4) }}",
    "tojson_separators": "{{ {'a': [1, 2], 'b': 'c'} | tojson(separators=(',', ':')) }}",
    "tojson_sort_keys": "{{ {'b': 1, 'a': {'d': 1, 'c': 2}} | tojson(sort_keys=true) }}",
    "tojson_ensure_ascii": "{{ 'é ü 中 😀' | tojson(ensure_ascii=true) }}|{{ 'é 😀' | tojson }}",
    "tojson_escapes": "{{ 'q\"b\\s/n\nt\tc\x01 <script>&\x7f' | tojson }}",
    "tojson_floats": "{{ [1.0, 0.5, 1e20, 1e16, 1e15, 1e-5, 0.0001, 3.14159, -2.5, 100.0] | tojson }}",
    "tojson_scalars": "{{ 1 | tojson }}|{{ 'a' | tojson }}|{{ none | tojson }}|{{ true | tojson }}",
    "tojson_undefined": "{{ nothing | tojson }}",
    "tojson_int_keys": "{{ {1: 'a', 2: 'b'} | tojson }}",
    "dict_order": "{% set d = {'z': 1, 'a': 2, 'm': 3} %}{% for k, v in d.items() %}{{ k }}={{ v }} {% endfor %}|{{ d.keys() | list }}|{% for k in d %}{{ k }}{% endfor %}",
    "message_items": "{% for k, v in messages[0].items() %}{{ k }}:{{ v }};{% endfor %}",
    "dictsort": "{% for k, v in {'b': 1, 'A': 2, 'a': 3} | dictsort %}{{ k }}{{ v }} {% endfor %}",
    "sort_unique": "{{ ['b', 'A', 'a', 'B'] | sort | join(',') }}|{{ ['b', 'A', 'a', 'B'] | unique | join(',') }}|{{ [3, 1, 2] | sort(reverse=true) | join }}",
    "sort_attribute": "{{ messages | sort(attribute='role') | map(attribute='role') | join(',') }}",
    "selectattr": "{{ messages | selectattr('role', 'equalto', 'user') | list | length }}|{{ messages | rejectattr('role', 'eq', 'user') | map(attribute='content') | join('/') }}|{{ messages | selectattr('role', 'in', ['system', 'assistant']) | list | length }}",
    "map_filters": "{{ ['a', 'b'] | map('upper') | join }}|{{ [1, 2] | map('string') | join('+') }}|{{ messages | map(attribute='nothing', default='?') | join }}",
    "select_reject": "{{ [0, 1, 2, 3] | select('odd') | list }}|{{ [0, 1, 2, 3] | reject('even') | join }}|{{ ['', 'a'] | select | list }}",
    "first_last_length": "{{ messages | first }}|{{ (messages | last).role }}|{{ messages | length }}|{{ 'abc' | length }}|{{ {'a': 1} | length }}|{{ messages | count }}",
    "min_max_sum": "{{ [3, 1, 2] | min }}|{{ [3, 1, 2] | max }}|{{ [1, 2, 3] | sum }}|{{ ['b', 'a'] | min }}",
    "int_float_round": "{{ '42' | int }}|{{ '3.7' | int }}|{{ 'x' | int }}|{{ 3.7 | int }}|{{ '2.5' | float }}|{{ 2.567 | round(2) }}|{{ 2.5 | round }}|{{ 7 | float }}|{{ -3 | abs }}",
    "default_filter": "{{ nothing | default('d') }}|{{ none | default('d') }}|{{ '' | default('d', true) }}|{{ '' | d('e', boolean=true) }}",
    "trim_filters": "[{{ '  a b \n' | trim }}]|[{{ 'xxaxx' | trim('x') }}]|{{ 'hello world' | title }}|{{ 'hello World' | capitalize }}|{{ 'AbC' | lower }}{{ 'AbC' | upper }}",
    "replace_filter": "{{ 'a-b-c' | replace('-', '+') }}|{{ 'a-b-c' | replace('-', '+', 1) }}|{{ 'a\nb' | replace('\n', '\\n') }}",
    "join_filter": "{{ [1, 2, 3] | join(', ') }}|{{ messages | join(',', attribute='role') }}|{{ 'abc' | join('-') }}",
    "list_filter": "{{ 'abc' | list }}|{{ {'a': 1, 'b': 2} | list }}|{{ messages | map(attribute='role') | list }}",
    "items_filter": "{% for k, v in {'b': 1, 'a': 2} | items %}{{ k }}{{ v }}{% endfor %}",
    "indent_filter": "[{{ 'a\nb\n\nc\n' | indent(2) }}]|[{{ 'a\nb' | indent(4, true) }}]|[{{ 'a\n\nb' | indent(2, blank=true) }}]|[{{ 'x\ny' | indent(first=true) }}]",
    "wordcount_truncate": "{{ 'a b  c' | wordcount }}|{{ 'hello world foo bar' | truncate(9) }}|{{ 'abc' | center(7) }}|",
    "format_filter": "{{ '%s-%d-%.2f' | format('a', 3, 1.5) }}|{{ '%s' | format(messages[0].role) }}",
    "percent_operator": "{{ '%s' % 'x' }}|{{ '%s and %s' % ('a', 'b') }}",
    "batch_slice": "{{ [1, 2, 3, 4, 5] | batch(2) | list }}|{{ [1, 2, 3, 4, 5] | slice(2) | list }}",
    "reverse": "{{ [1, 2, 3] | reverse | list }}|{{ 'abc' | reverse }}|{{ messages | reverse | map(attribute='role') | join(',') }}",
    "escape_safe": "{{ '<a>&' | e }}|{{ '<a>' | safe }}|{{ '<b>' }}|{{ '<a>' | escape | length }}",
    "str_methods": "{{ '  x y  '.strip() }}|{{ 'xxyxx'.strip('x') }}|{{ '  a'.lstrip() }}|{{ 'a  '.rstrip() }}|{{ 'a,b,c'.split(',') }}|{{ 'a b  c'.split() }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}",
    "str_methods2": "{{ 'abc'.startswith('ab') }}|{{ 'abc'.endswith(('x', 'c')) }}|{{ 'abc'.upper() }}|{{ 'ABC'.lower() }}|{{ 'a b'.title() }}|{{ 'abc'.replace('b', 'B') }}|{{ 'abcb'.find('b') }}|{{ 'abcb'.count('b') }}|{{ 'abc'.capitalize() }}",
    "str_methods3": "{{ '-'.join(['a', 'b']) }}|{{ 'a\nb\r\nc'.splitlines() }}|{{ '{} and {}'.format('x', 'y') }}|{{ '{name}!'.format(name='n') }}|{{ 'abc'.isalpha() }}|{{ '12'.isdigit() }}|{{ ' '.isspace() }}|{{ 'abc'.index('c') }}",
    "str_slicing": "{{ 'abcdef'[1:3] }}|{{ 'abcdef'[::-1] }}|{{ 'abcdef'[-2:] }}|{{ 'abcdef'[0] }}|{{ 'abcdef'[-1] }}|[{{ 'abc'[10] }}]|{{ [1, 2, 3][1:] }}|{{ [1, 2, 3][::2] }}",
    "in_operator": "{{ 'b' in 'abc' }}|{{ 2 in [1, 2] }}|{{ 'a' in {'a': 1} }}|{{ 'x' not in 'abc' }}|{{ 'role' in messages[0] }}",
    "dict_methods": "{{ messages[0].get('role') }}|{{ messages[0].get('nothing', 'dflt') }}|[{{ messages[0].get('nothing') }}]|{{ messages[0].keys() | list }}|{{ messages[0].values() | list }}",
    "list_methods": "{{ [1, 2, 1].count(1) }}|{{ [1, 2, 3].index(2) }}",
    "list_append_sandbox": "{% set l = [] %}{{ l.append(1) }}{{ l }}",
    "dict_update_sandbox": "{% set d = {} %}{{ d.update({'a': 1}) }}{{ d }}",
    "pop_sandbox": "{% set l = [1, 2] %}{{ l.pop() }}",
    "namespace": "{% set ns = namespace(a=1, items=[], s='') %}{% for m in messages %}{% set ns.a = ns.a + 1 %}{% set ns.items = ns.items + [m.role] %}{% set ns.s = ns.s ~ m.role[0] %}{% endfor %}{{ ns.a }}|{{ ns.items }}|{{ ns.s }}",
    "set_scoping": "{% set x = 1 %}{% for m in messages %}{% set x = x + 1 %}{% endfor %}{{ x }}|{% if true %}{% set y = 2 %}{% endif %}{{ y }}",
    "set_block": "{% set block %}a {{ messages | length }} b{% endset %}[{{ block }}]|{% set u | upper %}x{% endset %}{{ u }}",
    "set_tuple": "{% set a, b = 1, 2 %}{{ a }}{{ b }}|{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }}{% endfor %}",
    "loop_vars": "{% for m in messages %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem.role if loop.previtem }}{{ loop.nextitem.role if loop.nextitem }}{{ loop.cycle('x', 'y') }};{% endfor %}",
    "loop_controls": "{% for i in range(10) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}",
    "loop_filter_else": "{% for m in messages if m.role == 'user' %}{{ loop.index }}/{{ loop.length }} {% endfor %}|{% for x in [] %}x{% else %}empty{% endfor %}",
    "loop_recursive": "{% for item in [{'n': 'a', 'c': [{'n': 'b', 'c': []}]}] recursive %}{{ item.n }}({{ loop(item.c) }}){% endfor %}",
    "range_fn": "{{ range(3) | list }}|{{ range(1, 10, 3) | list }}|{{ range(5, 0, -2) | list }}",
    "macros": "{% macro f(a, b='d', c=none) %}[{{ a }}{{ b }}{{ c }}]{% endmacro %}{{ f(1) }}{{ f(1, 2) }}{{ f(1, c=3) }}{{ f.name }}",
    "macro_caller": "{% macro w() %}<{{ caller() }}>{% endmacro %}{% call w() %}in{% endcall %}",
    "macro_varargs": "{% macro f() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ f(1, 2, k=3) }}",
    "filter_block": "{% filter upper %}abc{{ messages[0].role }}{% endfilter %}",
    "raw_block": "{% raw %}{{ not rendered }}{% endraw %}",
    "with_block": "{% with a = 1 %}{{ a }}{% endwith %}[{{ a }}]",
    "round_filter": "{{ 2.5 | round }}|{{ 3.5 | round }}|{{ 0.125 | round(2) }}|{{ 2.675 | round(2) }}|{{ 3 | round }}|{{ 2.1 | round(0, 'ceil') }}|{{ 2.9 | round(method='floor') }}|{{ 1234.5 | round(-2) }}",
    "tests_types": "{{ 'a' is string }}{{ 1 is number }}{{ 1.5 is number }}{{ true is number }}{{ true is boolean }}{{ none is none }}{{ messages is sequence }}{{ 'a' is sequence }}{{ {} is sequence }}{{ {} is mapping }}{{ 'a' is mapping }}{{ 1 is integer }}{{ 1.0 is float }}{{ 1 is float }}{{ range is callable }}",
    "tests_iterable": "{{ 'a' is iterable }}{{ {} is iterable }}{{ [] is iterable }}{{ none is iterable }}{{ nothing is iterable }}{{ 1 is iterable }}{{ tools is iterable }}",
    "tests_defined": "{{ nothing is defined }}{{ nothing is undefined }}{{ none is defined }}{{ tools is defined }}{{ tools is none }}{{ documents is none }}{{ messages[0].nothing is defined }}{{ messages[9] is defined }}",
    "tests_values": "{{ 3 is odd }}{{ 4 is even }}{{ 9 is divisibleby 3 }}{{ true is true }}{{ 1 is true }}{{ false is false }}{{ 0 is false }}{{ 'a' is lower }}{{ 'A' is upper }}{{ 1 is eq 1 }}{{ 2 is gt 1 }}{{ 'a' is in 'abc' }}{{ none is sameas none }}",
    "truthiness": "{{ 'y' if [] else 'n' }}{{ 'y' if {} else 'n' }}{{ 'y' if '' else 'n' }}{{ 'y' if '0' else 'n' }}{{ 'y' if 0.0 else 'n' }}{{ 'y' if none else 'n' }}{{ 'y' if nothing else 'n' }}{{ 'y' if messages else 'n' }}",
    "inline_if": "[{{ 'a' if false }}]|{{ 'a' if true else 'b' }}|{{ (1 if true else 2) + 1 }}",
    "comparisons": "{{ 1 < 2 < 3 }}|{{ 'a' < 'b' }}|{{ 1 == 1.0 }}|{{ none == none }}|{{ [1] == [1] }}|{{ 'a' != 'b' }}|{{ not true }}|{{ true and 'x' }}|{{ false or 'y' }}|{{ nothing or 'z' }}",
    "plus_mixed": "{{ 'a' + 1 }}",
    "tilde_containers": "{{ 'x' ~ [1, 'a'] }}|{{ '' ~ messages[0] }}|{{ 'x' ~ 1e20 }}",
    "divide_by_zero": "{{ 1 / 0 }}",
    "dict_literal_methods": "{% set d = {'a': 1} %}{{ d.get('a') }}{{ d.get('b', 2) }}{{ d | length }}{{ d.items() | list | length }}{% for k, v in d.items() %}{{ k }}{{ v }}{% endfor %}",
    "items_tuples": "{{ {'a': 1}.items() | list }}",
    "arithmetic": "{{ 'ab' * 3 }}|{{ [1] + [2] }}|{{ 'a' + 'b' }}|{{ 10 - 3 * 2 }}|{{ -(3) }}|{{ 2 * 1.5 }}|{{ 1 + true }}",
    "string_literals": "{{ 'a\\tb' }}|{{ \"x\\ny\" }}|{{ '\\u00e9\\x41' }}|{{ 'it\\'s' }}|{{ \"a\" 'b' }}",
    "attr_vs_item": "{{ messages[0]['role'] }}{{ messages[0].role }}{{ messages[-1].content }}|[{{ messages[0].nothing }}]|{{ {'items': 1}['items'] }}",
    "undefined_ops": "[{{ nothing }}]|{{ nothing | length }}|{{ nothing | list }}|{% for x in nothing %}x{% endfor %}|{{ nothing ~ 'a' }}",
    "undefined_attr": "{{ nothing.attr }}",
    "none_attr": "{{ tools.attr }}",
    "none_length": "{{ tools | length }}",
    "none_iteration": "{% for t in tools %}x{% endfor %}",
    "none_literal_iteration": "{% for x in none %}x{% endfor %}",
    "none_tools": "{{ tools | tojson }}|{{ tools ~ 'x' }}|{{ 'y' if tools else 'n' }}|{{ tools | default('d') }}|{{ tools | default('d', true) }}|{{ tools is not none }}|{{ tools is callable }}|{{ tools | string }}|{{ tools or [] }}|{{ tools is mapping }}|[{{ tools.x }}]|{{ {'t': tools} }}",
    "none_tools_select": "{{ tools | selectattr('x') | list }}|{{ tools | rejectattr('x', 'equalto', 1) | list }}|{{ tools | map(attribute='x') | list }}|{{ none | select | list }}|{{ 0 | reject | list }}|{{ nothing | map('upper') | list }}",
    "none_tools_sort": "{{ tools | sort }}",
    "raise_in_macro": "{% macro f() %}{{ raise_exception('from macro') }}{% endmacro %}{{ f() }}",
    "raise_plain": "before{{ raise_exception('Only user and assistant roles are supported!') }}",
    "strftime": "{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%B %d, %Y') }}|{{ strftime_now('%A %a %j %I %p %y %e %%') }}",
    "unknown_filter": "{{ 'x' | from_json }}",
    "unknown_function": "{{ nosuchfunc(1) }}",
    "minijinja_split_filter": "{{ 'a,b' | split(',') | list }}",
    "minijinja_lines_filter": "{{ 'a\\nb' | lines | list }}",
    "minijinja_startingwith_test": "{{ 'ab' is startingwith 'a' }}",
    "lipsum_cycler_joiner": "{% set j = joiner(', ') %}{% for x in [1, 2] %}{{ j() }}{{ x }}{% endfor %}",
    "tokens": "{{ bos_token }}|{{ eos_token }}|{{ bos_token + messages[0].content + eos_token }}",
    "ws_trim_blocks": "{% for m in messages %}\n{{ m.role }}\n{% endfor %}\nend\n",
    "ws_lstrip_blocks": "  {% if true %}\n  a\n  {% endif %}\n    {%+ if true %}b{% endif %}\n\t{% if true %}c\n\t{%- endif %}",
    "ws_comments": "a\n  {# comment #}\nb\n{#- c -#}\n  c {# x #}  d\n",
    "ws_expressions": "a\n  {{ 'x' }}\nb\n  {{- 'y' -}}\n  c",
    "ws_trailing_newline": "a\n",
    "ws_raw_lstrip": "x\n  {% raw %}\n  {{ y }}\n  {% endraw %}\nz",
    "nested_data": "{% set d = {'a': {'b': [{'c': 'deep'}]}} %}{{ d.a.b[0].c }}|{{ d['a']['b'][0]['c'] }}|{{ d.a.b | length }}",
    "content_checks": "{% for m in messages %}{% if m.content is string %}S{% elif m.content is iterable %}I{% endif %}{% endfor %}",
}


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


def render_features():
    probes = []
    name, messages = CONVERSATIONS[-1]
    bos, eos = DEFAULT_TOKENS
    for probe, source in FEATURES.items():
        case = {"name": probe, "source": source}
        try:
            case["expected"] = compile_template(source).render(
                messages=messages, tools=None, documents=None, add_generation_prompt=True,
                bos_token=bos, eos_token=eos,
            )
        except Raised as e:
            case["error"] = {"kind": "raise_exception", "message": str(e)}
        except Exception as e:  # noqa: BLE001
            case["error"] = {"kind": "other", "message": f"{type(e).__name__}: {e}"}
        probes.append(case)
    return {
        "jinja2": jinja2.__version__,
        "now": FIXED_NOW.isoformat(),
        "now_unix": calendar.timegm(FIXED_NOW.timetuple()),
        "bos_token": bos,
        "eos_token": eos,
        "messages": messages,
        "add_generation_prompt": True,
        "probes": probes,
    }


def regenerate(out, templates):
    out.mkdir(parents=True, exist_ok=True)
    names = sorted(p.stem for p in templates.glob("*.jinja"))
    if not names:
        sys.exit(f"template-reference: no templates in {templates}")
    (out / FEATURES_FILE).write_text(json.dumps(render_features(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"template-reference: {FEATURES_FILE}: {len(FEATURES)} probes")
    for stale in out.glob("*.json"):
        if stale.stem not in names and stale.name != FEATURES_FILE:
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
    names = names + [FEATURES_FILE[:-5]]
    old_names = sorted(p.stem for p in DATA.glob("*.json"))
    bad = sorted(set(old_names) ^ set(names))
    for name in names:
        if name in old_names and (DATA / f"{name}.json").read_bytes() != (new / f"{name}.json").read_bytes():
            bad.append(name)
    print(f"template-reference: {len(names) - len(bad)}/{len(names)} files equal")
    if bad:
        sys.exit(f"template-reference: regenerated outputs differ for {', '.join(bad)}")


if __name__ == "__main__":
    main()
