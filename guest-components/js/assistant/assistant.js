// js-assistant.wasm: an offline multi-turn assistant (componentize-js,
// world edgewasm:llm/command).
//
//   js-assistant.wasm [--system MSG] [--max-tokens N] [--temp T] [--seed S]
//       [--model NAME] [--ctx N] [--turn TEXT]...
//
// With --turn (repeatable): a scripted dialogue, one turn per --turn, then
// exit. Without: a REPL reading one turn per line from stdin (empty line or
// end of input quits; /reset forgets the history, /history prints it).
//
// One edgewasm:llm session holds the whole conversation: `session.chat`
// appends the user's turn to the history, the host renders the chat
// template over it and streams the answer, which joins the history. The
// session's KV cache persists across turns, so each turn only evaluates
// what is new; after every answer a line on stderr shows the
// generation's stats (prompt tokens, how many of them were reused from
// the cache, generated tokens, speed, stop reason).
//
// stdout carries the dialogue only: `> TURN` (scripted mode) or the `> `
// prompt (REPL), then the streamed answer and a newline.

import { getArguments } from 'wasi:cli/environment@0.2.12';
import { getStdout } from 'wasi:cli/stdout@0.2.12';
import { getStderr } from 'wasi:cli/stderr@0.2.12';
import { getStdin } from 'wasi:cli/stdin@0.2.12';
import { exit } from 'wasi:cli/exit@0.2.12';
import { Model, Session } from 'edgewasm:llm/llm@0.1.0';

const USAGE =
  'usage: js-assistant.wasm [--system MSG] [--max-tokens N] [--temp T] [--seed S] [--model NAME] [--ctx N] [--turn TEXT]...';

const encoder = new TextEncoder();

// Streams are taken at run time: the component is pre-initialized by wizer,
// so no WASI resource may be created at the top level.
function writeTo(stream, text) {
  const bytes = encoder.encode(text);
  // blocking-write-and-flush takes at most 4096 bytes per call.
  for (let i = 0; i < bytes.length; i += 4096) {
    stream.blockingWriteAndFlush(bytes.subarray(i, i + 4096));
  }
}
const write = (text) => writeTo(getStdout(), text);
const eprint = (text) => writeTo(getStderr(), text + '\n');

class Exit extends Error {}

function die(message) {
  eprint(`assistant: ${message}`);
  throw new Exit(message);
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
  const a = { system: undefined, maxTokens: 256, temp: undefined, seed: undefined, model: 'default', ctx: undefined, turns: [] };
  const args = getArguments().slice(1);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const value = () => {
      if (i + 1 >= args.length) die(`${arg} needs a value\n${USAGE}`);
      return args[++i];
    };
    const int = (min) => {
      const v = value();
      if (!/^[0-9]+$/.test(v) || Number(v) < min || Number(v) > 0xffffffff) die(`${arg} needs an integer >= ${min}, got \`${v}\``);
      return Number(v);
    };
    if (arg === '--system') a.system = value();
    else if (arg === '--max-tokens') a.maxTokens = int(1);
    else if (arg === '--ctx') a.ctx = int(1);
    else if (arg === '--seed') a.seed = BigInt(int(0));
    else if (arg === '--temp') {
      const v = value();
      const t = Number(v);
      if (v.trim() === '' || !Number.isFinite(t) || t < 0) die(`--temp needs a number >= 0, got \`${v}\``);
      a.temp = t;
    } else if (arg === '--model') a.model = value();
    else if (arg === '--turn') a.turns.push(value());
    else if (arg === '-h' || arg === '--help') die(USAGE);
    else die(`unexpected argument \`${arg}\` (give turns with --turn TEXT, or none for a REPL on stdin)\n${USAGE}`);
  }
  for (const t of a.turns) if (t.trim() === '') die('--turn needs a non-empty text');
  return a;
}

// Lines of stdin, read through wasi:io (blocking).
class LineReader {
  constructor() {
    this.stdin = getStdin();
    this.pending = new Uint8Array(0);
    this.eof = false;
    this.decoder = new TextDecoder();
  }
  // The next line without its newline, or undefined at end of input.
  next() {
    for (;;) {
      const nl = this.pending.indexOf(10);
      if (nl >= 0) {
        const line = this.pending.subarray(0, nl);
        this.pending = this.pending.slice(nl + 1);
        return this.decoder.decode(line).replace(/\r$/, '');
      }
      if (this.eof) {
        if (this.pending.length === 0) return undefined;
        const line = this.decoder.decode(this.pending);
        this.pending = new Uint8Array(0);
        return line;
      }
      let chunk;
      try {
        chunk = this.stdin.blockingRead(4096n);
      } catch (e) {
        // stream-error `closed`: end of input.
        if (e && e.payload && e.payload.tag === 'closed') {
          this.eof = true;
          continue;
        }
        die(`reading stdin: ${e && e.payload ? JSON.stringify(e.payload.tag) : e}`);
      }
      const joined = new Uint8Array(this.pending.length + chunk.length);
      joined.set(this.pending);
      joined.set(chunk, this.pending.length);
      this.pending = joined;
    }
  }
}

class Assistant {
  constructor(a) {
    this.a = a;
    this.model = llmCall(`model.open \`${a.model}\``, () => Model.open(a.model));
    this.session = llmCall('session.create', () => Session.create(this.model, a.ctx));
    if (a.system !== undefined) this.session.setSystem(a.system);
    this.sampling = { maxTokens: a.maxTokens, temperature: a.temp, seed: a.seed, stop: [] };
    this.turn = 0;
  }

  // Streams the answer to one user turn; the stats go to stderr.
  answer(text) {
    this.turn++;
    const gen = llmCall('session.chat', () => this.session.chat(text, this.sampling));
    for (;;) {
      let chunk;
      try {
        chunk = llmCall('generation.next', () => gen.next());
      } catch (e) {
        write('\n');
        throw e;
      }
      if (chunk === undefined) break;
      write(chunk);
    }
    write('\n');
    const s = gen.stats();
    const tps = s.generateMs > 0 ? (s.generatedTokens / (s.generateMs / 1000)).toFixed(1) : '-';
    eprint(
      `[assistant] turn ${this.turn}: prompt ${s.promptTokens} tokens, ${s.reusedTokens} reused from the KV cache ` +
        `(${s.promptMs.toFixed(0)} ms); ${s.generatedTokens} generated in ${s.generateMs.toFixed(0)} ms (${tps} t/s); ` +
        `stop: ${gen.stopReason() ?? '-'}; ${this.session.nPast()}/${this.session.nCtx()} context tokens used`,
    );
  }

  scripted(turns) {
    for (const t of turns) {
      write(`> ${t}\n`);
      this.answer(t);
    }
  }

  repl() {
    const info = this.model.info();
    eprint(
      `assistant with ${info.displayName ?? info.name} (${info.arch}); one turn per line, ` +
        'empty line or end of input quits, /reset forgets the conversation, /history shows it',
    );
    const lines = new LineReader();
    for (;;) {
      write('> ');
      const line = lines.next();
      if (line === undefined || line.trim() === '') break;
      const text = line.trim();
      if (text === '/reset') {
        this.session.reset();
        this.turn = 0;
        eprint('[assistant] history cleared');
        continue;
      }
      if (text === '/history') {
        for (const m of this.session.history()) write(`${m.role}: ${m.content}\n`);
        continue;
      }
      this.answer(text);
    }
    write('\n');
  }
}

function main() {
  const a = parseArgs();
  const assistant = new Assistant(a);
  if (a.turns.length > 0) assistant.scripted(a.turns);
  else assistant.repl();
}

// wasi:cli/run: returning is success; any failure exits with status 1.
export const run = {
  run() {
    try {
      main();
    } catch (e) {
      if (!(e instanceof Exit)) eprint(`assistant: ${e && e.stack ? e.stack : e}`);
      exit({ tag: 'err' });
    }
  },
};
