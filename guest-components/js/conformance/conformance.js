// js-conformance.wasm: one completion, three ways (the same program as
// guest-components/rust/conformance, in JavaScript; componentize-js).
//
//   js-conformance.wasm [--mode text|stream|tokens] [--max-tokens N] [--temp T]
//       [--model NAME] PROMPT...
//
// text:   wasi:nn text mode (inputs `prompt` + `config` JSON, output `text`)
// stream: edgewasm:llm session.complete, chunks printed as they come
// tokens: wasi:nn token mode with our own greedy loop (tokenize/detokenize
//         through edgewasm:llm's model; stops after N tokens or at an
//         end-of-generation token; --temp must be 0)
//
// Prints the generated text and a newline; on error, the error on stderr
// and a non-zero exit.

import { getArguments } from 'wasi:cli/environment@0.2.12';
import { getStdout } from 'wasi:cli/stdout@0.2.12';
import { getStderr } from 'wasi:cli/stderr@0.2.12';
import { exit } from 'wasi:cli/exit@0.2.12';
import { loadByName } from 'wasi:nn/graph@0.2.0-rc-2024-10-28';
import { Tensor } from 'wasi:nn/tensor@0.2.0-rc-2024-10-28';
import { Model, Session } from 'edgewasm:llm/llm@0.1.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// stdout/stderr straight through wasi:cli streams, flushed at every write.
// (Taken at run time: the component is pre-initialized by wizer, so no WASI
// resource may be created at the top level.)
function write(text) {
  const bytes = encoder.encode(text);
  const stdout = getStdout();
  // blocking-write-and-flush takes at most 4096 bytes per call.
  for (let i = 0; i < bytes.length; i += 4096) {
    stdout.blockingWriteAndFlush(bytes.subarray(i, i + 4096));
  }
}
function eprint(text) {
  const bytes = encoder.encode(text + '\n');
  const stderr = getStderr();
  for (let i = 0; i < bytes.length; i += 4096) {
    stderr.blockingWriteAndFlush(bytes.subarray(i, i + 4096));
  }
}

class Exit extends Error {}

function die(message) {
  eprint(`conformance: ${message}`);
  throw new Exit(message);
}

function usage() {
  die('usage: js-conformance.wasm [--mode text|stream|tokens] [--max-tokens N] [--temp T] [--model NAME] PROMPT...');
}

// A failed wasi:nn call throws with the `error` resource in `payload`.
function nnCall(what, f) {
  try {
    return f();
  } catch (e) {
    if (e instanceof Exit) throw e;
    const err = e && e.payload;
    if (err && typeof err.code === 'function') {
      die(`${what}: wasi-nn error ${err.code()}: ${err.data()}`);
    }
    die(`${what}: ${e}`);
  }
}

// A failed edgewasm:llm call throws with the `error` variant in `payload`.
function llmCall(what, f) {
  try {
    return f();
  } catch (e) {
    if (e instanceof Exit) throw e;
    const err = e && e.payload;
    if (err && typeof err.tag === 'string') {
      die(`${what}: edgewasm:llm error ${err.tag}${err.val !== undefined ? ': ' + err.val : ''}`);
    }
    die(`${what}: ${e}`);
  }
}

function parseArgs() {
  const a = { mode: 'text', maxTokens: 16, temp: 0, model: 'default', prompt: '' };
  const args = getArguments().slice(1);
  const words = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = () => {
      if (i + 1 >= args.length) die(`${arg} needs a value`);
      return args[++i];
    };
    if (arg === '--mode') {
      a.mode = value();
      if (!['text', 'stream', 'tokens'].includes(a.mode)) die(`unknown mode \`${a.mode}\``);
    } else if (arg === '--max-tokens') {
      const v = value();
      if (!/^[0-9]+$/.test(v)) usage();
      a.maxTokens = Number(v);
    } else if (arg === '--temp') {
      const v = Number(value());
      if (!Number.isFinite(v)) usage();
      a.temp = v;
    } else if (arg === '--model') {
      a.model = value();
    } else if (arg === '--') {
      words.push(...args.slice(i + 1));
      break;
    } else if (arg.startsWith('--')) {
      die(`unknown flag ${arg}`);
    } else {
      words.push(arg);
    }
  }
  if (words.length === 0) usage();
  a.prompt = words.join(' ');
  return a;
}

function u8Tensor(bytes) {
  return new Tensor(new Uint32Array([bytes.length]), 'U8', bytes);
}

function textMode(a) {
  const graph = nnCall(`load-by-name \`${a.model}\``, () => loadByName(a.model));
  const ctx = nnCall('init-execution-context', () => graph.initExecutionContext());
  const config = JSON.stringify({ 'n-predict': a.maxTokens, temp: a.temp });
  const outputs = nnCall('compute', () =>
    ctx.compute([
      ['prompt', u8Tensor(encoder.encode(a.prompt))],
      ['config', u8Tensor(encoder.encode(config))],
    ]),
  );
  const text = outputs.find(([name]) => name === 'text');
  if (!text) die('compute returned no `text` output');
  return decoder.decode(text[1].data());
}

function streamMode(a) {
  const model = llmCall(`model.open \`${a.model}\``, () => Model.open(a.model));
  const session = llmCall('session.create', () => Session.create(model, undefined));
  const sampling = { maxTokens: a.maxTokens, temperature: a.temp, stop: [] };
  const generation = llmCall('session.complete', () => session.complete(a.prompt, sampling));
  for (;;) {
    let chunk;
    try {
      chunk = llmCall('generation.next', () => generation.next());
    } catch (e) {
      write('\n');
      throw e;
    }
    if (chunk === undefined) break;
    write(chunk);
  }
  write('\n');
}

function tokensMode(a) {
  if (a.temp !== 0) die('--mode tokens decodes greedily only (use --temp 0)');
  const model = llmCall(`model.open \`${a.model}\``, () => Model.open(a.model));
  // As text mode and session.complete do: BOS added, special tokens parsed.
  const prompt = model.tokenize(a.prompt, true, true);
  const graph = nnCall(`load-by-name \`${a.model}\``, () => loadByName(a.model));
  const ctx = nnCall('init-execution-context', () => graph.initExecutionContext());
  const generated = [];
  let feed = Int32Array.from(prompt);
  while (generated.length < a.maxTokens) {
    const input = new Tensor(new Uint32Array([feed.length]), 'I32', new Uint8Array(feed.buffer, feed.byteOffset, feed.byteLength));
    const outputs = nnCall('compute', () => ctx.compute([['tokens', input]]));
    const logits = outputs.find(([name]) => name === 'logits');
    if (!logits) die('compute returned no `logits` output');
    const bytes = logits[1].data();
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // Greedy: the first maximum (ties go to the lowest id), as the engine does.
    let best = 0;
    let bestV = -Infinity;
    for (let i = 0, n = bytes.byteLength >> 2; i < n; i++) {
      const v = view.getFloat32(i * 4, true);
      if (v > bestV) {
        best = i;
        bestV = v;
      }
    }
    if (model.isEog(best)) break;
    generated.push(best);
    feed = Int32Array.of(best);
  }
  return model.detokenize(Uint32Array.from(generated), false);
}

function main() {
  const a = parseArgs();
  if (a.mode === 'stream') {
    streamMode(a);
  } else {
    write((a.mode === 'text' ? textMode(a) : tokensMode(a)) + '\n');
  }
}

// wasi:cli/run: returning is success; any failure exits with status 1.
export const run = {
  run() {
    try {
      main();
    } catch (e) {
      if (!(e instanceof Exit)) eprint(`conformance: ${e && e.stack ? e.stack : e}`);
      exit({ tag: 'err' });
    }
  },
};
