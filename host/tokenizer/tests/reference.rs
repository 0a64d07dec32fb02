//! Every llama.cpp `tokenize.jsonl` case of both models, token for token.

mod common;

use common::*;
use edgewasm_tokenizer::Tokenizer;

fn check(model: &str, tok: &Tokenizer) {
    let cases = cases(model);
    assert!(cases.len() >= 33, "{model}: only {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let got = tok.encode(&c.text, true, c.parse_special);
        if got != c.ids {
            failures.push(format!("{:?} (parse_special={})\n  want {:?}\n  got  {:?}", c.text, c.parse_special, c.ids, got));
        }
    }
    println!("{model}: {}/{} cases match", cases.len() - failures.len(), cases.len());
    assert!(failures.is_empty(), "{model}: {} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn smollm_matches_llama_cpp() {
    check(SMOLLM, smollm());
}

#[test]
fn gemma_matches_llama_cpp() {
    check(GEMMA, gemma());
}
