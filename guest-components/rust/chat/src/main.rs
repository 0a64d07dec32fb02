//! `chat.wasm`: chat with a preloaded model through edgewasm:llm.
//!
//!   edgewasm run chat.wasm [--max-tokens N] [--temp T] [--seed S]
//!       [--system MSG] [--raw] [--model NAME]
//!       [--grammar GBNF | --json-schema JSON] ["prompt"]
//!
//! With a prompt: one answer, streamed to stdout. Without: a REPL on stdin
//! (the session keeps its KV cache across turns). `--raw` continues the
//! text instead of applying the chat template. `--grammar`/`--json-schema`
//! constrain the answers (edgewasm:llm/constrained).

use std::io::{BufRead, Write};
use std::process::exit;

use edgewasm_guest::{constrained, llm, llm_error, types};

struct Args {
    model: String,
    system: Option<String>,
    raw: bool,
    sampling: types::Sampling,
    prompt: Option<String>,
    verbose: bool,
    constraint: Option<constrained::Constraint>,
}

fn usage() -> ! {
    eprintln!(
        "usage: chat.wasm [--max-tokens N] [--temp T] [--top-k K] [--top-p P] [--min-p P] [--repeat-penalty R] \
         [--seed S] [--stop STR] [--system MSG] [--raw] [--model NAME] [--grammar GBNF | --json-schema JSON] [-v] [PROMPT...]"
    );
    exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        model: "default".into(),
        system: None,
        raw: false,
        sampling: types::Sampling {
            max_tokens: None,
            temperature: None,
            top_k: None,
            top_p: None,
            min_p: None,
            repeat_penalty: None,
            seed: None,
            stop: Vec::new(),
        },
        prompt: None,
        verbose: false,
        constraint: None,
    };
    let mut words = Vec::new();
    let mut it = std::env::args().skip(1);
    fn val<T: std::str::FromStr>(flag: &str, v: Option<String>) -> T {
        match v.as_deref().map(str::parse) {
            Some(Ok(x)) => x,
            _ => {
                eprintln!("chat: {flag} needs a valid value");
                usage()
            }
        }
    }
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--max-tokens" | "-n" => a.sampling.max_tokens = Some(val(&arg, it.next())),
            "--temp" => a.sampling.temperature = Some(val(&arg, it.next())),
            "--top-k" => a.sampling.top_k = Some(val(&arg, it.next())),
            "--top-p" => a.sampling.top_p = Some(val(&arg, it.next())),
            "--min-p" => a.sampling.min_p = Some(val(&arg, it.next())),
            "--repeat-penalty" => a.sampling.repeat_penalty = Some(val(&arg, it.next())),
            "--seed" => a.sampling.seed = Some(val(&arg, it.next())),
            "--stop" => a.sampling.stop.push(val(&arg, it.next())),
            "--system" => a.system = Some(val(&arg, it.next())),
            "--model" | "-m" => a.model = val(&arg, it.next()),
            "--raw" => a.raw = true,
            "--grammar" => a.constraint = Some(constrained::Constraint::Grammar(val(&arg, it.next()))),
            "--json-schema" => a.constraint = Some(constrained::Constraint::JsonSchema(val(&arg, it.next()))),
            "-v" | "--verbose" => a.verbose = true,
            "-h" | "--help" => usage(),
            "--" => words.extend(it.by_ref()),
            s if s.starts_with("--") => {
                eprintln!("chat: unknown flag {s}");
                usage()
            }
            _ => words.push(arg),
        }
    }
    if !words.is_empty() {
        a.prompt = Some(words.join(" "));
    }
    a
}

fn fail(what: &str, e: &types::Error) -> ! {
    eprintln!("error: {what}: {}", llm_error(e));
    exit(1)
}

/// Streams one answer to stdout; returns false on a broken pipe.
fn answer(session: &llm::Session, args: &Args, text: &str) {
    let started = match (&args.constraint, args.raw) {
        (None, true) => session.complete(text, &args.sampling),
        (None, false) => session.chat(text, &args.sampling),
        (Some(c), true) => constrained::complete(session, text, &args.sampling, c),
        (Some(c), false) => constrained::chat(session, text, &args.sampling, c),
    };
    let gen = started.unwrap_or_else(|e| fail("starting generation", &e));
    let mut out = std::io::stdout().lock();
    // When the first chunk arrived, and the host's generation time by then.
    let mut first: Option<(std::time::Instant, f64)> = None;
    loop {
        match gen.next() {
            Ok(Some(chunk)) => {
                if first.is_none() && args.verbose {
                    first = Some((std::time::Instant::now(), gen.stats().generate_ms));
                }
                let _ = out.write_all(chunk.as_bytes());
                let _ = out.flush();
            }
            Ok(None) => break,
            Err(e) => {
                let _ = writeln!(out);
                let _ = out.flush();
                fail("generating", &e)
            }
        }
    }
    let _ = writeln!(out);
    let _ = out.flush();
    if args.verbose {
        let s = gen.stats();
        eprintln!(
            "[chat] prompt {} tokens ({} reused) in {:.1} ms; {} tokens in {:.1} ms ({:.1} t/s); stop: {:?}",
            s.prompt_tokens,
            s.reused_tokens,
            s.prompt_ms,
            s.generated_tokens,
            s.generate_ms,
            s.generated_tokens as f64 / (s.generate_ms / 1e3).max(1e-9),
            gen.stop_reason()
        );
        if let (Some((t, host0)), true) = (first, s.generated_tokens > 1) {
            // As the guest sees it (host calls + wasm + output), after the
            // first chunk, and how much of that the host engine spent
            // sampling and decoding: the rest is the cost of being a guest.
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let engine = s.generate_ms - host0;
            eprintln!(
                "[chat] guest-side decode: {} tokens in {:.1} ms ({:.1} t/s); host engine {:.1} ms of it ({:.2}%)",
                s.generated_tokens - 1,
                ms,
                (s.generated_tokens - 1) as f64 / (ms / 1e3),
                engine,
                100.0 * engine / ms
            );
        }
    }
}

fn main() {
    let args = parse_args();
    let model = llm::Model::open(&args.model).unwrap_or_else(|e| fail(&format!("opening model `{}`", args.model), &e));
    let session = llm::Session::create(&model, None).unwrap_or_else(|e| fail("creating a session", &e));
    if args.system.is_some() {
        session.set_system(args.system.as_deref());
    }
    if let Some(p) = &args.prompt {
        answer(&session, &args, p);
        return;
    }
    let info = model.info();
    eprintln!("chat with {} ({}); empty line or Ctrl-D quits, /reset clears the history", info.name, info.display_name.unwrap_or(info.arch));
    let stdin = std::io::stdin();
    let mut line = String::new();
    loop {
        print!("> ");
        let _ = std::io::stdout().flush();
        line.clear();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = line.trim();
        if text.is_empty() {
            break;
        }
        if text == "/reset" {
            session.reset();
            continue;
        }
        answer(&session, &args, text);
    }
    println!();
}
