//! SmolLM2-135M-Instruct Q4_1 against llama.cpp's reference outputs:
//! tokenization, teacher-forced logits, perplexity.

use std::sync::Arc;

use edgewasm_llm::perplexity::perplexity;
use edgewasm_llm::{Context, ThreadPool};
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

/// Compares our logits with the reference at every step of every
/// teacher-forced generation, with the tolerances of the reference README.
pub fn check_generations(model_name: &str, folder: &str) {
    let m = model(model_name);
    let n_vocab = m.config().n_vocab;
    let pool = Arc::new(ThreadPool::new(2));
    let mut report = Vec::new();
    for (file, g) in generations(folder) {
        let ids = m.tokenizer().encode(&g.prompt, true, true);
        assert_eq!(ids, g.prompt_ids, "{file}: prompt tokenization differs");
        let mut seq = g.prompt_ids.clone();
        seq.extend_from_slice(&g.gen_ids[..g.gen_ids.len() - 1]);
        let mut ctx = Context::new(Arc::clone(&m), Arc::clone(&pool), seq.len()).unwrap();
        let logits = ctx.eval(&seq, true).unwrap().to_vec();
        let mut worst_mean = 0f32;
        let mut worst_max = 0f32;
        for (i, step) in g.steps.iter().enumerate() {
            let row = &logits[(g.prompt_ids.len() - 1 + i) * n_vocab..][..n_vocab];
            let diffs: Vec<f32> =
                step.top_ids.iter().zip(&step.top_logits).map(|(&id, &l)| (row[id as usize] - l).abs()).collect();
            let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
            let max = diffs.iter().copied().fold(0.0, f32::max);
            worst_mean = worst_mean.max(mean);
            worst_max = worst_max.max(max);
            assert!(mean <= 0.25, "{file} step {i}: mean |Δlogit| over reference top-16 = {mean:.4} > 0.25");
            assert!(max <= 1.0, "{file} step {i}: max |Δlogit| = {max:.4} > 1.0");
            let argmax = (0..n_vocab).max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a))).unwrap() as u32;
            if g.top1_top2_margin[i] >= 0.25 {
                assert_eq!(argmax, g.gen_ids[i], "{file} step {i}: argmax differs (margin {})", g.top1_top2_margin[i]);
            }
        }
        report.push(format!("{file}: {} steps, worst mean {worst_mean:.4}, worst max {worst_max:.4}", g.steps.len()));
    }
    eprintln!("{}", report.join("\n"));
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
    let ours = perplexity(&m, Arc::new(ThreadPool::new(2)), &text, r.n_ctx, |_, _, _| {}).unwrap();
    eprintln!("perplexity: ours {:.4} ({} chunks), llama.cpp {:.4} ({} chunks)", ours.ppl, ours.chunks, r.ppl, r.chunks);
    assert_eq!(ours.chunks, r.chunks, "chunk count differs: tokenization of the corpus differs");
    let rel = (ours.ppl - r.ppl).abs() / r.ppl;
    assert!(rel <= 0.01, "perplexity {:.4} vs {:.4}: {:.2}% off", ours.ppl, r.ppl, rel * 100.0);
}
