//! SmolLM2-135M-Instruct Q4_1 against llama.cpp's reference outputs:
//! tokenization, teacher-forced logits, perplexity.

use std::sync::Arc;

use edgewasm_llm::perplexity::perplexity;
use edgewasm_llm::{KvTypes, ThreadPool};
use edgewasm_tests::*;

const FOLDER: &str = "smollm2-135m-instruct-q4_1";

#[test]
fn tokenization_matches_llama_cpp() {
    let m = model(SMOLLM2);
    let mut failures = Vec::new();
    let cases = tokenize_cases(FOLDER);
    for c in &cases {
        let ids = m.tokenizer().encode(&c.text, true, c.parse_special);
        if ids != c.ids {
            failures.push(format!("{:?} (special={}): got {:?}, want {:?}", c.text, c.parse_special, ids, c.ids));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn teacher_forced_logits_match_llama_cpp() {
    check_generations(SMOLLM2, FOLDER);
}

#[test]
fn perplexity_within_one_percent_of_llama_cpp() {
    let r = perplexity_ref(FOLDER);
    let m = model(SMOLLM2);
    let text = std::fs::read_to_string(reference_dir().join("corpus/gpl-3.txt")).unwrap();
    let ours = perplexity(&m, Arc::new(ThreadPool::new(2)), &text, r.n_ctx, KvTypes::default(), |_, _, _| {}).unwrap();
    eprintln!("perplexity: ours {:.4} ({} chunks), llama.cpp {:.4} ({} chunks)", ours.ppl, ours.chunks, r.ppl, r.chunks);
    assert_eq!(ours.chunks, r.chunks, "chunk count differs: tokenization of the corpus differs");
    let rel = (ours.ppl - r.ppl).abs() / r.ppl;
    assert!(rel <= 0.01, "perplexity {:.4} vs {:.4}: {:.2}% off", ours.ppl, r.ppl, rel * 100.0);
}
