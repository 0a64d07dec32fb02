//! `embed.wasm`: embeddings of texts through edgewasm:llm, for search and
//! RAG on the device.
//!
//!   edgewasm run embed.wasm [--model NAME] TEXT...
//!   edgewasm run embed.wasm [--model NAME] < one-text-per-line
//!
//! Prints a JSON array with one vector (L2-normalised, the model's pooling)
//! per text, then, on stderr, the cosine similarity of the first text to
//! each of the others.

use std::io::{BufRead, Write};
use std::process::exit;

use edgewasm_guest::{llm, llm_error};

fn main() {
    let mut model_name = "default".to_string();
    let mut texts = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--model" | "-m" => model_name = it.next().unwrap_or_else(|| usage()),
            "-h" | "--help" => usage(),
            _ => texts.push(arg),
        }
    }
    if texts.is_empty() {
        texts = std::io::stdin().lock().lines().map_while(Result::ok).filter(|l| !l.trim().is_empty()).collect();
    }
    if texts.is_empty() {
        usage();
    }
    let model = llm::Model::open(&model_name).unwrap_or_else(|e| fail(&format!("opening model `{model_name}`"), &llm_error(&e)));
    let vectors = model.embed(&texts).unwrap_or_else(|e| fail("embedding", &llm_error(&e)));
    let mut out = std::io::stdout().lock();
    let rows: Vec<String> =
        vectors.iter().map(|v| format!("[{}]", v.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join(","))).collect();
    let _ = writeln!(out, "[{}]", rows.join(","));
    for (i, v) in vectors.iter().enumerate().skip(1) {
        let cos: f32 = vectors[0].iter().zip(v).map(|(a, b)| a * b).sum();
        eprintln!("cosine(text 0, text {i}) = {cos:.4}");
    }
}

fn usage() -> ! {
    eprintln!("usage: embed.wasm [--model NAME] TEXT... (or one text per line on stdin)");
    exit(2)
}

fn fail(what: &str, e: &str) -> ! {
    eprintln!("error: {what}: {e}");
    exit(1)
}
