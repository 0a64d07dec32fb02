//! Continuous batching (`Batcher`): contexts decoding at the same time on
//! several threads share forward passes, and every row's logits have the
//! same bits as a lone decode, on every architecture that batches; the
//! others decode alone through the same call.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use edgewasm_gguf::{GgmlType, GgufFile};
use edgewasm_llm::{Batcher, Context, Model, ThreadPool};
use edgewasm_test_support::{tiny_with_family_vocab, Rng, TINY_ARCHS};

const SEQS: usize = 3;
const STEPS: usize = 6;

/// Each sequence's prompt and the tokens it then decodes one by one.
fn script(n_vocab: usize, seed: u64) -> Vec<(Vec<u32>, Vec<u32>)> {
    let mut rng = Rng::new(seed);
    (0..SEQS)
        .map(|s| {
            let prompt = (0..5 + 3 * s).map(|_| rng.below(n_vocab as u64) as u32).collect();
            let steps = (0..STEPS).map(|_| rng.below(n_vocab as u64) as u32).collect();
            (prompt, steps)
        })
        .collect()
}

/// The logits after each decoded token, sequence by sequence.
fn decode(m: &Arc<Model>, pool: &Arc<ThreadPool>, script: &[(Vec<u32>, Vec<u32>)], batcher: Option<Arc<Batcher>>) -> Vec<Vec<Vec<f32>>> {
    let barrier = Arc::new(Barrier::new(script.len()));
    let threads: Vec<_> = script
        .iter()
        .cloned()
        .map(|(prompt, steps)| {
            let (m, pool, batcher, barrier) = (Arc::clone(m), Arc::clone(pool), batcher.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let mut ctx = Context::new(m, pool, 64).unwrap();
                ctx.set_batcher(batcher);
                ctx.eval(&prompt, false).unwrap();
                barrier.wait();
                steps.iter().map(|&t| ctx.eval(&[t], false).unwrap().to_vec()).collect::<Vec<_>>()
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn batched_decodes_equal_lone_decodes() {
    let pool = Arc::new(ThreadPool::new(2));
    let mut batched_archs = Vec::new();
    for &arch in TINY_ARCHS {
        for ty in [GgmlType::F32, GgmlType::Q8_0] {
            let file = tiny_with_family_vocab(arch, ty).gguf();
            let m = Arc::new(Model::from_gguf(Arc::new(GgufFile::from_bytes(&file).unwrap())).unwrap());
            let script = script(m.config().n_vocab, 7);
            let alone = decode(&m, &pool, &script, None);
            // Leaders wait (up to 20 s) until all three are queued: every
            // pass has all three sequences.
            let b = Arc::new(Batcher::with_limits(32, SEQS, Duration::from_secs(20)));
            let together = decode(&m, &pool, &script, Some(Arc::clone(&b)));
            for (s, (a, t)) in alone.iter().zip(&together).enumerate() {
                for (step, (a, t)) in a.iter().zip(t).enumerate() {
                    let same = a.len() == t.len() && a.iter().zip(t).all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{arch} {}: sequence {s}, step {step}: batched logits differ from a lone decode", ty.name());
                }
            }
            let (passes, rows) = b.counts();
            let mut probe = Context::new(Arc::clone(&m), Arc::clone(&pool), 8).unwrap();
            probe.set_batcher(Some(Arc::new(Batcher::new())));
            if probe.batches() {
                assert_eq!((passes, rows), (STEPS as u64, (SEQS * STEPS) as u64), "{arch}: every pass had all three");
                batched_archs.push(arch);
            } else {
                assert_eq!((passes, rows), (0, 0), "{arch} decodes alone");
            }
        }
    }
    // Recurrent (lfm2, qwen35 ...) and longrope (phi3) models decode alone.
    for arch in ["llama", "qwen3", "gemma2", "gemma3", "gemma4", "qwen3moe", "starcoder2"] {
        assert!(batched_archs.contains(&arch), "{arch} should batch: {batched_archs:?}");
    }
    for arch in ["lfm2", "qwen35", "phi3"] {
        assert!(!batched_archs.contains(&arch), "{arch} must decode alone");
    }
}

/// A sequence whose context is full gets its own error at once, and does
/// not hold up the others.
#[test]
fn one_sequence_failing_does_not_fail_the_pass() {
    let pool = Arc::new(ThreadPool::new(2));
    let file = tiny_with_family_vocab("llama", GgmlType::F32).gguf();
    let m = Arc::new(Model::from_gguf(Arc::new(GgufFile::from_bytes(&file).unwrap())).unwrap());
    let b = Arc::new(Batcher::with_limits(32, 2, Duration::from_millis(200)));
    let mut full = Context::new(Arc::clone(&m), Arc::clone(&pool), 4).unwrap();
    full.set_batcher(Some(Arc::clone(&b)));
    full.eval(&[1, 2, 3, 4], false).unwrap();
    let (m2, pool2, b2) = (Arc::clone(&m), Arc::clone(&pool), Arc::clone(&b));
    let other = std::thread::spawn(move || {
        let mut ctx = Context::new(m2, pool2, 16).unwrap();
        ctx.set_batcher(Some(b2));
        ctx.eval(&[5, 6], false).unwrap();
        ctx.eval(&[7], false).map(|l| l.len())
    });
    let err = full.eval(&[9], false).unwrap_err();
    assert!(matches!(err, edgewasm_llm::ModelError::ContextFull { .. }), "{err}");
    assert_eq!(other.join().unwrap().unwrap(), m.config().n_vocab);
}

/// More sequences in a pass than any of their (small) contexts has
/// scratch rows for: the pass runs in pieces, with the same bits.
#[test]
fn passes_larger_than_a_contexts_scratch() {
    let pool = Arc::new(ThreadPool::new(2));
    let file = tiny_with_family_vocab("llama", GgmlType::F32).gguf();
    let m = Arc::new(Model::from_gguf(Arc::new(GgufFile::from_bytes(&file).unwrap())).unwrap());
    let n = 6;
    let run = |batcher: Option<Arc<Batcher>>| {
        let barrier = Arc::new(Barrier::new(n));
        let threads: Vec<_> = (0..n as u32)
            .map(|s| {
                let (m, pool, batcher, barrier) = (Arc::clone(&m), Arc::clone(&pool), batcher.clone(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    // Three positions: scratch for three rows.
                    let mut ctx = Context::new(m, pool, 3).unwrap();
                    ctx.set_batcher(batcher);
                    ctx.eval(&[10 + s], false).unwrap();
                    barrier.wait();
                    [20 + s, 30 + s].iter().map(|&t| ctx.eval(&[t], false).unwrap().to_vec()).collect::<Vec<_>>()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect::<Vec<_>>()
    };
    let alone = run(None);
    let b = Arc::new(Batcher::with_limits(32, n, Duration::from_secs(20)));
    let together = run(Some(Arc::clone(&b)));
    // The one-token prompts go through the batcher too: three passes of six.
    assert_eq!(b.counts(), (3, 3 * n as u64), "three passes of six");
    for (a, t) in alone.iter().zip(&together) {
        for (a, t) in a.iter().zip(t) {
            assert!(a.iter().zip(t).all(|(x, y)| x.to_bits() == y.to_bits()));
        }
    }
}
