"""OpenAI's own Python client (PyPI `openai`) against `edgewasm serve` with
the openai-server guest. Run by tests/tests/openai_client.rs, which starts
the server with `--max-ctx 512 --env API_KEY=sesame`.

Usage: python3 openai_client.py BASE_URL
"""

import json
import sys

import openai

base = sys.argv[1]
client = openai.OpenAI(base_url=base + "/v1", api_key="sesame", max_retries=0)

models = [m.id for m in client.models.list()]
assert models == ["default"], models

msgs = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France? Answer in one sentence."},
]

# Chat, whole and streamed: the same text at temperature 0.
whole = client.chat.completions.create(model="default", messages=msgs, temperature=0, max_tokens=40)
text = whole.choices[0].message.content
assert "Paris" in text, text
assert whole.choices[0].finish_reason in ("stop", "length"), whole.choices[0].finish_reason
parts, usage = [], None
stream = client.chat.completions.create(
    model="default", messages=msgs, temperature=0, max_tokens=40, stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    if chunk.usage:
        usage = chunk.usage
    for c in chunk.choices:
        if c.delta.content:
            parts.append(c.delta.content)
assert "".join(parts) == text, ("".join(parts), text)
assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens, (usage, whole.usage)

# A second turn: the history goes back in.
turn2 = client.chat.completions.create(
    model="default",
    messages=msgs + [{"role": "assistant", "content": text}, {"role": "user", "content": "And of Italy?"}],
    temperature=0, max_tokens=30,
)
assert turn2.usage.prompt_tokens > whole.usage.prompt_tokens

# Completions.
comp = client.completions.create(model="default", prompt="The capital of France is", max_tokens=8, temperature=0)
assert comp.usage.completion_tokens == 8, comp.usage
assert comp.choices[0].text, comp

# Embeddings: the client asks for base64 and decodes it.
emb = client.embeddings.create(model="default", input=["edge devices", "small models"])
assert len(emb.data) == 2 and len(emb.data[0].embedding) == 576, len(emb.data[0].embedding)
norm = sum(x * x for x in emb.data[1].embedding) ** 0.5
assert abs(norm - 1.0) < 1e-3, norm

# Structured output.
schema = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}
js = client.chat.completions.create(
    model="default",
    messages=[{"role": "user", "content": "Name the capital of France as JSON."}],
    temperature=0, max_tokens=60,
    response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema, "strict": True}},
)
obj = json.loads(js.choices[0].message.content)
assert set(obj) == {"city", "country"}, obj

# Errors as the client raises them.
try:
    client.chat.completions.create(model="gpt-4o", messages=msgs)
    raise AssertionError("an unknown model was accepted")
except openai.NotFoundError as e:
    assert e.status_code == 404 and e.code == "model_not_found", (e.status_code, e.code)
try:
    client.chat.completions.create(model="default", messages=[{"role": "user", "content": "edge " * 600}])
    raise AssertionError("a prompt over the context was accepted")
except openai.BadRequestError as e:
    assert e.status_code == 400 and e.code == "context_length_exceeded", (e.status_code, e.code)
try:
    openai.OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0).models.list()
    raise AssertionError("a wrong key was accepted")
except openai.AuthenticationError as e:
    assert e.status_code == 401, e.status_code

print("ok", json.dumps({"chat": text, "completion": comp.choices[0].text, "json": obj}))
