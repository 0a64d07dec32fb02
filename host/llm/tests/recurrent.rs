//! Sessions over models with recurrent layers (issue 22): a recurrent state
//! cannot be cut back like a KV cache, so reusing a context across turns
//! must give what recomputing each turn from scratch gives, including when a
//! turn rewinds into the previous one (a re-rendered or edited reply).

use std::sync::Arc;

use edgewasm_gguf::GgmlType;
use edgewasm_llm::generate::prefill;
use edgewasm_llm::{Context, Model, ThreadPool};
use edgewasm_test_support::{tiny_with_family_vocab, Rng};

/// Architectures with recurrent layers (tests/support/src/arch.rs recipes).
const RECURRENT: &[&str] = &["lfm2", "lfm2moe", "qwen35", "qwen35moe"];
/// The 2026 families of issue 22: the recurrent ones, and Gemma 4 (whose
/// last layers read earlier layers' KV cache), Gemma 3n (AltUp streams) and
/// SmolLM3.
const SESSIONS: &[&str] = &["lfm2", "lfm2moe", "qwen35", "qwen35moe", "gemma4", "gemma3n", "smollm3"];

fn fresh_logits(m: &Arc<Model>, pool: &Arc<ThreadPool>, tokens: &[u32]) -> Vec<f32> {
    let mut ctx = Context::new(Arc::clone(m), Arc::clone(pool), 256).unwrap();
    ctx.eval(tokens, false).unwrap().to_vec()
}

/// Largest |a − b| relative to the spread of `b`.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    let (lo, hi) = b.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / (hi - lo)
}

/// Three turns: the second extends the first (prompt, a decoded reply, new
/// tokens); the third diverges inside the second's reply, so the context
/// must restore a checkpoint and replay. After each turn's prompt and each
/// decoded token, the logits equal those of a fresh context fed the whole
/// sequence at once (up to batch-order rounding, far below what a wrong
/// state gives).
#[test]
fn three_turns_with_reuse_match_recomputing_each_turn() {
    let pool = Arc::new(ThreadPool::new(2));
    for &arch in SESSIONS {
        let file = tiny_with_family_vocab(arch, GgmlType::F32).gguf();
        let m = Arc::new(Model::from_gguf(Arc::new(edgewasm_gguf::GgufFile::from_bytes(&file).unwrap())).unwrap());
        assert_eq!(RECURRENT.contains(&arch), !m.config().kv_layers.iter().all(|&a| a), "{arch}: recurrent layers");
        let n_vocab = m.config().n_vocab as u32;
        let mut rng = Rng::new(22);
        let mut ids = |n: usize| -> Vec<u32> { (0..n).map(|_| rng.below(n_vocab as u64) as u32).collect() };

        let mut ctx = Context::new(Arc::clone(&m), Arc::clone(&pool), 256).unwrap();
        let turn1 = ids(20);
        let reply1 = ids(6);
        let turn2_new = ids(15);
        let reply2 = ids(6);
        // Turn 3 keeps turn 2's prompt and two tokens of its reply, then
        // differs.
        let turn3_new = ids(12);

        let mut seq = turn1.clone();
        let check = |ctx: &Context, seq: &[u32], what: &str| {
            let want = fresh_logits(&m, &pool, seq);
            let d = rel_diff(ctx.logits(), &want);
            assert!(d < 1e-4, "{arch} {what}: logits differ from a fresh context by {d:.2e} of their spread");
        };
        assert_eq!(prefill(&mut ctx, &seq).unwrap(), 0);
        check(&ctx, &seq, "turn 1");
        for &t in &reply1 {
            ctx.eval(&[t], false).unwrap();
            seq.push(t);
            check(&ctx, &seq, "turn 1 reply");
        }
        seq.extend_from_slice(&turn2_new);
        let turn2_prompt = seq.clone();
        assert_eq!(prefill(&mut ctx, &seq).unwrap(), turn1.len() + reply1.len(), "turn 2 reuses turn 1");
        check(&ctx, &seq, "turn 2");
        for &t in &reply2 {
            ctx.eval(&[t], false).unwrap();
            seq.push(t);
        }
        let mut turn3 = turn2_prompt.clone();
        turn3.extend_from_slice(&reply2[..2]);
        turn3.extend_from_slice(&turn3_new);
        let keep = prefill(&mut ctx, &turn3).unwrap();
        assert_eq!(keep, turn2_prompt.len() + 2, "turn 3 keeps the shared prefix");
        assert_eq!(ctx.tokens(), &turn3[..], "turn 3");
        check(&ctx, &turn3, "turn 3 (rewound into turn 2's reply)");

        // A rewind to before every checkpoint starts from the zero state.
        ctx.rewind(5).unwrap();
        assert_eq!(ctx.tokens(), &turn1[..5]);
        ctx.eval(&turn1[5..], false).unwrap();
        check(&ctx, &turn1, "rewound to 5 and replayed");
    }
}

/// The recurrent state and its checkpoints are part of what a context
/// reserves and reports, to the byte.
#[test]
fn recurrent_state_is_counted_in_context_memory() {
    for &arch in RECURRENT {
        let file = tiny_with_family_vocab(arch, GgmlType::F32).gguf();
        let m = Arc::new(Model::from_gguf(Arc::new(edgewasm_gguf::GgufFile::from_bytes(&file).unwrap())).unwrap());
        let c = m.config();
        let state: usize = c.state_sizes().iter().sum();
        assert!(state > 0, "{arch}");
        // 256: batches longer than the delta net's chunk, whose rows do not
        // grow with the batch.
        for n_ctx in [64, 256] {
            let ctx = Context::new(Arc::clone(&m), Arc::new(ThreadPool::new(1)), n_ctx).unwrap();
            assert_eq!(Some(ctx.memory_bytes()), Context::bytes_for(c, n_ctx, KvTypes::default()), "{arch} n_ctx {n_ctx}");
        }
        // Attending layers only: fewer KV bytes than one slot per layer.
        use edgewasm_llm::kv_cache::{KvCache, KvLayer, KvTypes};
        let every = vec![KvLayer::Own { k_dim: c.k_dim, v_dim: c.v_dim }; c.n_layer];
        let all_layers = KvCache::bytes_for(&every, c.n_head_kv, 64, KvTypes::default()).unwrap();
        let kv = KvCache::bytes_for(&c.kv_layout(), c.n_head_kv, 64, KvTypes::default()).unwrap();
        assert!(kv < all_layers, "{arch}");
        let rs = (1 + edgewasm_llm::recurrent::CHECKPOINTS) * state * 4;
        let rest = Context::bytes_for(c, 64, KvTypes::default()).unwrap() - kv;
        assert!(rest >= rs, "{arch}: the state and its checkpoints are counted");
    }
}

/// A prompt longer than the delta net's chunk ([`edgewasm_llm::model::deltanet::CHUNK`]
/// tokens), evaluated at once, gives the logits of the same tokens fed one
/// at a time: each chunk continues the convolution window and the state the
/// previous one left, and reads its own tokens' gates.
#[test]
fn long_prompts_match_token_by_token() {
    let pool = Arc::new(ThreadPool::new(2));
    for &arch in RECURRENT {
        let file = tiny_with_family_vocab(arch, GgmlType::F32).gguf();
        let m = Arc::new(Model::from_gguf(Arc::new(edgewasm_gguf::GgufFile::from_bytes(&file).unwrap())).unwrap());
        let n_vocab = m.config().n_vocab as u64;
        let mut rng = Rng::new(7);
        let ids: Vec<u32> = (0..150).map(|_| rng.below(n_vocab) as u32).collect();
        let batch = fresh_logits(&m, &pool, &ids);
        let mut ctx = Context::new(Arc::clone(&m), Arc::clone(&pool), 256).unwrap();
        ctx.drop_checkpoints();
        for &t in &ids {
            ctx.eval(&[t], false).unwrap();
        }
        let d = rel_diff(ctx.logits(), &batch);
        assert!(d < 1e-4, "{arch}: 150 tokens at once differ from one at a time by {d:.2e} of their spread");
    }
}
