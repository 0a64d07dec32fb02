//! `rust-conformance.wasm`: one completion, three ways. The C, JavaScript
//! and Python conformance guests (guest-components/{c,js,python}/conformance)
//! do exactly the same; `tests/tests/conformance.rs` requires all of them to
//! print the same text as `edgewasm generate`.
//!
//!   rust-conformance.wasm [--mode text|stream|tokens] [--max-tokens N] [--temp T]
//!       [--model NAME] PROMPT...
//!
//! - `text`: wasi:nn text mode (input `prompt` + `config` JSON
//!   `{"n-predict": N, "temp": T}`, output `text`);
//! - `stream`: edgewasm:llm `session.complete` (raw completion, no chat
//!   template), printing each chunk as it comes;
//! - `tokens`: wasi:nn token mode with the guest's own greedy loop
//!   (tokenize and detokenize through edgewasm:llm's `model`; stops after N
//!   tokens or at an end-of-generation token). Greedy only: `--temp` must be 0.
//!
//! Prints the generated text and a newline on stdout; errors go to stderr
//! with a non-zero exit code.

use std::io::Write;
use std::process::exit;

use edgewasm_guest::nn::{graph, inference, tensor};
use edgewasm_guest::{llm, llm_error, nn_error, types};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Text,
    Stream,
    Tokens,
}

struct Args {
    mode: Mode,
    max_tokens: u32,
    temp: f32,
    model: String,
    prompt: String,
}

fn usage() -> ! {
    eprintln!("usage: rust-conformance.wasm [--mode text|stream|tokens] [--max-tokens N] [--temp T] [--model NAME] PROMPT...");
    exit(2)
}

fn parse_args() -> Args {
    let mut a = Args { mode: Mode::Text, max_tokens: 16, temp: 0.0, model: "default".into(), prompt: String::new() };
    let mut words: Vec<String> = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| { eprintln!("conformance: {arg} needs a value"); usage() });
        match arg.as_str() {
            "--mode" => {
                a.mode = match value().as_str() {
                    "text" => Mode::Text,
                    "stream" => Mode::Stream,
                    "tokens" => Mode::Tokens,
                    m => {
                        eprintln!("conformance: unknown mode `{m}`");
                        usage()
                    }
                }
            }
            "--max-tokens" => a.max_tokens = value().parse().unwrap_or_else(|_| usage()),
            "--temp" => a.temp = value().parse().unwrap_or_else(|_| usage()),
            "--model" => a.model = value(),
            "--" => words.extend(it.by_ref()),
            s if s.starts_with("--") => {
                eprintln!("conformance: unknown flag {s}");
                usage()
            }
            _ => words.push(arg),
        }
    }
    if words.is_empty() {
        usage()
    }
    a.prompt = words.join(" ");
    a
}

fn nn_fail(what: &str, e: &edgewasm_guest::nn::errors::Error) -> ! {
    eprintln!("conformance: {what}: wasi-nn error {}", nn_error(e));
    exit(1)
}

fn llm_fail(what: &str, e: &types::Error) -> ! {
    eprintln!("conformance: {what}: edgewasm:llm error {}", llm_error(e));
    exit(1)
}

fn u8_tensor(bytes: &[u8]) -> tensor::Tensor {
    tensor::Tensor::new(&[bytes.len() as u32], tensor::TensorType::U8, bytes)
}

/// wasi:nn text mode: prompt + config in, `text` out.
fn text_mode(a: &Args) -> String {
    let g = graph::load_by_name(&a.model).unwrap_or_else(|e| nn_fail(&format!("load-by-name `{}`", a.model), &e));
    let ctx = g.init_execution_context().unwrap_or_else(|e| nn_fail("init-execution-context", &e));
    let config = format!("{{\"n-predict\": {}, \"temp\": {}}}", a.max_tokens, a.temp);
    let inputs = vec![("prompt".to_string(), u8_tensor(a.prompt.as_bytes())), ("config".to_string(), u8_tensor(config.as_bytes()))];
    let outputs = ctx.compute(inputs).unwrap_or_else(|e| nn_fail("compute", &e));
    match outputs.into_iter().find(|(name, _)| name == "text") {
        Some((_, t)) => String::from_utf8_lossy(&t.data()).into_owned(),
        None => {
            eprintln!("conformance: compute returned no `text` output");
            exit(1)
        }
    }
}

/// edgewasm:llm streaming: raw completion, each chunk printed as it comes.
fn stream_mode(a: &Args) {
    let model = llm::Model::open(&a.model).unwrap_or_else(|e| llm_fail(&format!("model.open `{}`", a.model), &e));
    let session = llm::Session::create(&model, None).unwrap_or_else(|e| llm_fail("session.create", &e));
    let sampling = types::Sampling {
        max_tokens: Some(a.max_tokens),
        temperature: Some(a.temp),
        top_k: None,
        top_p: None,
        min_p: None,
        repeat_penalty: None,
        seed: None,
        stop: Vec::new(),
    };
    let generation = session.complete(&a.prompt, &sampling).unwrap_or_else(|e| llm_fail("session.complete", &e));
    let mut out = std::io::stdout().lock();
    loop {
        match generation.next() {
            Ok(Some(chunk)) => {
                let _ = out.write_all(chunk.as_bytes());
                let _ = out.flush();
            }
            Ok(None) => break,
            Err(e) => {
                let _ = writeln!(out);
                let _ = out.flush();
                llm_fail("generation.next", &e)
            }
        }
    }
    let _ = writeln!(out);
    let _ = out.flush();
}

/// wasi:nn token mode: the guest's own greedy loop over the logits.
fn tokens_mode(a: &Args) -> String {
    if a.temp != 0.0 {
        eprintln!("conformance: --mode tokens decodes greedily only (use --temp 0)");
        exit(2)
    }
    let model = llm::Model::open(&a.model).unwrap_or_else(|e| llm_fail(&format!("model.open `{}`", a.model), &e));
    // As text mode and session.complete do: BOS added, special tokens parsed.
    let prompt = model.tokenize(&a.prompt, true, true);
    let g = graph::load_by_name(&a.model).unwrap_or_else(|e| nn_fail(&format!("load-by-name `{}`", a.model), &e));
    let ctx = g.init_execution_context().unwrap_or_else(|e| nn_fail("init-execution-context", &e));
    let mut generated: Vec<u32> = Vec::new();
    let mut feed = prompt;
    while generated.len() < a.max_tokens as usize {
        let data: Vec<u8> = feed.iter().flat_map(|&t| (t as i32).to_le_bytes()).collect();
        let input = tensor::Tensor::new(&[feed.len() as u32], tensor::TensorType::I32, &data);
        let outputs: Vec<inference::NamedTensor> =
            ctx.compute(vec![("tokens".to_string(), input)]).unwrap_or_else(|e| nn_fail("compute", &e));
        let Some((_, logits)) = outputs.into_iter().find(|(n, _)| n == "logits") else {
            eprintln!("conformance: compute returned no `logits` output");
            exit(1)
        };
        let bytes = logits.data();
        // Greedy: the first maximum (ties go to the lowest id), as the engine does.
        let mut best = 0usize;
        let mut best_v = f32::NEG_INFINITY;
        for (i, c) in bytes.chunks_exact(4).enumerate() {
            let v = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            if v > best_v {
                best = i;
                best_v = v;
            }
        }
        let id = best as u32;
        if model.is_eog(id) {
            break;
        }
        generated.push(id);
        feed = vec![id];
    }
    model.detokenize(&generated, false)
}

fn main() {
    let a = parse_args();
    let text = match a.mode {
        Mode::Text => text_mode(&a),
        Mode::Tokens => tokens_mode(&a),
        Mode::Stream => return stream_mode(&a),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}
