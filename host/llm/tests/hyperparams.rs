//! Hyperparameters a file may lie about (issue 20): each rule of
//! `ModelConfig::from_gguf` and the tensor-shape checks refuses a lying
//! file with a typed error naming the key or tensor, and what a context
//! allocates is computed without overflow, counted exactly, and allocated
//! fallibly.

use std::sync::Arc;

use edgewasm_gguf::{GgmlType, GgufFile, GgufWriter, Value};
use edgewasm_llm::model::Scratch;
use edgewasm_llm::{Context, KvType, KvTypes, Model, ModelConfig, ModelError, ThreadPool};

const VOCAB: usize = 8;

/// A one-layer llama with F16 zero weights shaped by its own metadata
/// (unless `wrong_q_rows` gives `attn_q` another row count).
#[derive(Clone)]
struct Spec {
    n_embd: usize,
    n_head: usize,
    n_head_kv: usize,
    key_length: Option<usize>,
    n_ff: usize,
    rope_dims: Option<usize>,
    context_length: Option<u64>,
    wrong_q_rows: Option<usize>,
    /// `expert_count` and `expert_used_count`: expert layers (`n_ff` wide)
    /// instead of the dense FFN.
    experts: Option<(u64, u64)>,
    /// `ffn_up_exps` holds this many experts instead of `expert_count`.
    wrong_up_experts: Option<usize>,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            n_embd: 64,
            n_head: 4,
            n_head_kv: 2,
            key_length: None,
            n_ff: 128,
            rope_dims: None,
            context_length: Some(256),
            wrong_q_rows: None,
            experts: None,
            wrong_up_experts: None,
        }
    }
}

fn gguf(s: &Spec) -> Vec<u8> {
    let mut w = GgufWriter::new();
    let mut kv: Vec<(&str, Value)> = vec![
        ("general.architecture", "llama".into()),
        ("llama.block_count", 1u32.into()),
        ("llama.embedding_length", (s.n_embd as u32).into()),
        ("llama.feed_forward_length", (s.n_ff as u32).into()),
        ("llama.attention.head_count", (s.n_head as u32).into()),
        ("llama.attention.head_count_kv", (s.n_head_kv as u32).into()),
        ("tokenizer.ggml.model", "gpt2".into()),
        ("tokenizer.ggml.pre", "smollm".into()),
        ("tokenizer.ggml.tokens", (0..VOCAB).map(|i| match i { 3 => "t".into(), 4 => "1".into(), _ => format!("t{i}") }).collect::<Vec<String>>().into()),
        ("tokenizer.ggml.token_type", vec![1i32; VOCAB].into()),
        ("tokenizer.ggml.merges", vec!["t 1".to_string()].into()),
    ];
    if let Some(k) = s.key_length {
        kv.push(("llama.attention.key_length", (k as u32).into()));
    }
    if let Some(r) = s.rope_dims {
        kv.push(("llama.rope.dimension_count", (r as u32).into()));
    }
    if let Some(c) = s.context_length {
        kv.push(("llama.context_length", c.into()));
    }
    if let Some((count, used)) = s.experts {
        kv.push(("llama.expert_count", count.into()));
        kv.push(("llama.expert_used_count", used.into()));
    }
    for (k, v) in kv {
        w.add_metadata(k, v).unwrap();
    }
    let hd = s.key_length.unwrap_or(s.n_embd / s.n_head);
    let (d, qd, kvd) = (s.n_embd, s.n_head * hd, s.n_head_kv * hd);
    // F16 zeros: 2 bytes a value, the cheapest shape a lying file can have.
    let mat = |w: &mut GgufWriter, name: &str, cols: usize, rows: usize| {
        w.add_tensor(name, GgmlType::F16, &[cols as u64, rows as u64], vec![0u8; cols * rows * 2]).unwrap();
    };
    mat(&mut w, "token_embd.weight", d, VOCAB);
    w.add_f32_tensor("blk.0.attn_norm.weight", &[d as u64], &vec![1.0; d]).unwrap();
    w.add_f32_tensor("blk.0.ffn_norm.weight", &[d as u64], &vec![1.0; d]).unwrap();
    mat(&mut w, "blk.0.attn_q.weight", d, s.wrong_q_rows.unwrap_or(qd));
    mat(&mut w, "blk.0.attn_k.weight", d, kvd);
    mat(&mut w, "blk.0.attn_v.weight", d, kvd);
    mat(&mut w, "blk.0.attn_output.weight", qd, d);
    match s.experts {
        Some((count, _)) => {
            // Lying counts are refused before tensors are looked at.
            let e = count.clamp(1, 512) as usize;
            let exps = |w: &mut GgufWriter, name: &str, cols: usize, rows: usize, e: usize| {
                w.add_tensor(name, GgmlType::F16, &[cols as u64, rows as u64, e as u64], vec![0u8; cols * rows * e * 2]).unwrap();
            };
            mat(&mut w, "blk.0.ffn_gate_inp.weight", d, e);
            exps(&mut w, "blk.0.ffn_gate_exps.weight", d, s.n_ff, e);
            exps(&mut w, "blk.0.ffn_up_exps.weight", d, s.n_ff, s.wrong_up_experts.unwrap_or(e));
            exps(&mut w, "blk.0.ffn_down_exps.weight", s.n_ff, d, e);
        }
        None => {
            mat(&mut w, "blk.0.ffn_gate.weight", d, s.n_ff);
            mat(&mut w, "blk.0.ffn_up.weight", d, s.n_ff);
            mat(&mut w, "blk.0.ffn_down.weight", s.n_ff, d);
        }
    }
    w.add_f32_tensor("output_norm.weight", &[d as u64], &vec![1.0; d]).unwrap();
    w.to_bytes().unwrap()
}

fn load(s: &Spec) -> Result<Model, ModelError> {
    Model::from_gguf(Arc::new(GgufFile::from_bytes(&gguf(s))?))
}

/// The key a `BadHyperparameter` or `InconsistentHyperparameter` names.
fn bad_key(e: &ModelError) -> &str {
    match e {
        ModelError::BadHyperparameter { key, .. } | ModelError::InconsistentHyperparameter { key, .. } => key,
        other => panic!("not a hyperparameter error: {other}"),
    }
}

#[test]
fn the_reference_spec_loads_and_runs() {
    let m = Arc::new(load(&Spec::default()).unwrap());
    let mut ctx = Context::new(m, Arc::new(ThreadPool::new(1)), 16).unwrap();
    assert_eq!(ctx.eval(&[1, 2, 3], false).unwrap().len(), VOCAB);
}

/// The red-team file: `n_embd = 1` and 512 heads of 65536, so 2^25 query
/// values per token from 2 × 64 MiB of F16 weights. Each context would
/// have allocated 512 × 2^25 floats (64 GiB) per scratch buffer.
#[test]
fn huge_heads_over_a_tiny_embedding_are_refused_at_load() {
    let s = Spec { n_embd: 1, n_head: 512, n_head_kv: 1, key_length: Some(1 << 16), n_ff: 1, ..Spec::default() };
    let e = load(&s).unwrap_err();
    assert_eq!(bad_key(&e), "llama.attention.key_length", "{e}");
    let msg = e.to_string();
    assert!(msg.contains("512 heads × 65536 = 33554432 query values per token, over the limit of 65536"), "{msg}");
}

#[test]
fn tensor_shapes_must_match_the_hyperparameters() {
    // key_length says 32 per head (128 query rows); attn_q has 64.
    let s = Spec { key_length: Some(32), wrong_q_rows: Some(64), ..Spec::default() };
    let e = load(&s).unwrap_err();
    assert!(
        matches!(&e, ModelError::TensorShape { tensor, expected, found }
            if tensor == "blk.0.attn_q.weight" && expected == &[64, 128] && found == &[64, 64]),
        "{e}"
    );
}

#[test]
fn head_counts_must_divide() {
    let e = load(&Spec { n_head: 4, n_head_kv: 3, ..Spec::default() }).unwrap_err();
    assert_eq!(bad_key(&e), "llama.attention.head_count_kv", "{e}");
    // Without key_length, n_embd must split evenly into heads.
    let e = load(&Spec { n_embd: 64, n_head: 6, n_head_kv: 6, ..Spec::default() }).unwrap_err();
    assert_eq!(bad_key(&e), "llama.attention.head_count", "{e}");
}

#[test]
fn rope_dims_must_be_even_and_within_a_head() {
    for r in [15, 18] {
        let e = load(&Spec { rope_dims: Some(r), ..Spec::default() }).unwrap_err();
        assert_eq!(bad_key(&e), "llama.rope.dimension_count", "{r}: {e}");
    }
    load(&Spec { rope_dims: Some(8), ..Spec::default() }).unwrap();
}

#[test]
fn context_length_must_be_sane() {
    for c in [0, 1 << 23, u64::MAX] {
        let e = load(&Spec { context_length: Some(c), ..Spec::default() }).unwrap_err();
        assert_eq!(bad_key(&e), "llama.context_length", "{c}: {e}");
    }
    let m = load(&Spec { context_length: None, ..Spec::default() }).unwrap();
    assert_eq!(m.config().n_ctx_train, 2048);
}

/// What a context allocates is what `Context::bytes_for` says, to the byte,
/// so a limit checked against it counts the real memory.
#[test]
fn context_memory_is_counted_exactly() {
    let m = Arc::new(load(&Spec::default()).unwrap());
    let (k_dim, v_dim) = (m.config().k_dim, m.config().v_dim);
    for k in KvType::ALL {
        for v in KvType::ALL {
            let types = KvTypes { k, v };
            for n_ctx in [1, 16, 256] {
                match Context::with_kv_types(Arc::clone(&m), Arc::new(ThreadPool::new(1)), n_ctx, types) {
                    Ok(ctx) => {
                        assert_eq!(ctx.kv_types(), types);
                        assert_eq!(Some(ctx.memory_bytes()), Context::bytes_for(m.config(), n_ctx, types), "{types:?} {n_ctx}");
                    }
                    // Q8_0 blocks of 32 must tile each head.
                    Err(e) => assert!(
                        matches!(e, ModelError::KvTypeWidth { ty: "q8_0", block: 32, .. }) && (k_dim % 32 != 0 || v_dim % 32 != 0),
                        "{types:?}: {e}"
                    ),
                }
            }
        }
    }
    // The KV cache's share: 2 bytes per value in f16, half of f32.
    let c = m.config();
    let kv = |types| edgewasm_llm::kv_cache::KvCache::bytes_for(&c.kv_layout(), c.n_head_kv, 256, types).unwrap();
    assert_eq!(kv(KvTypes::F32), 2 * kv(KvTypes::default()));
    assert_eq!(kv(KvTypes::F32), c.n_layer * c.n_head_kv * (k_dim + v_dim) * 256 * 4);
    // Scratch dominates a short context of a wide model: n_ff = 16384 costs
    // 2 × 16 × 16384 floats for gate/up alone.
    let wide = Arc::new(load(&Spec { n_ff: 16384, ..Spec::default() }).unwrap());
    let bytes = Context::bytes_for(wide.config(), 16, KvTypes::default()).unwrap();
    assert!(bytes > 2 * 16 * 16384 * 4, "{bytes}");
    let ctx = Context::new(Arc::clone(&wide), Arc::new(ThreadPool::new(1)), 16).unwrap();
    assert_eq!(ctx.memory_bytes(), bytes);
    // Experts: router, routing and gather buffers too.
    let moe = Arc::new(load(&Spec { experts: Some((8, 2)), ..Spec::default() }).unwrap());
    assert_eq!(moe.config().n_ff_exp, 128);
    for n_ctx in [1, 16, 256] {
        let ctx = Context::new(Arc::clone(&moe), Arc::new(ThreadPool::new(1)), n_ctx).unwrap();
        assert_eq!(Some(ctx.memory_bytes()), Context::bytes_for(moe.config(), n_ctx, KvTypes::default()), "{n_ctx}");
    }
}

#[test]
fn expert_counts_must_be_sane() {
    let m = Arc::new(load(&Spec { experts: Some((4, 2)), ..Spec::default() }).unwrap());
    assert_eq!((m.config().n_expert, m.config().n_expert_used), (4, 2));
    let mut ctx = Context::new(m, Arc::new(ThreadPool::new(1)), 16).unwrap();
    assert_eq!(ctx.eval(&[1, 2, 3], true).unwrap().len(), 3 * VOCAB);
    for (experts, key) in [
        ((257, 2), "llama.expert_count"),
        ((1 << 40, 2), "llama.expert_count"),
        ((4, 5), "llama.expert_used_count"),
        ((4, 0), "llama.expert_used_count"),
        ((0, 1), "llama.expert_used_count"),
    ] {
        let e = load(&Spec { experts: Some(experts), ..Spec::default() }).unwrap_err();
        assert_eq!(bad_key(&e), key, "{experts:?}: {e}");
    }
    // A 3-D expert tensor whose expert count disagrees.
    let e = load(&Spec { experts: Some((4, 2)), wrong_up_experts: Some(3), ..Spec::default() }).unwrap_err();
    assert!(
        matches!(&e, ModelError::TensorShape { tensor, expected, found }
            if tensor == "blk.0.ffn_up_exps.weight" && expected == &[64, 128, 4] && found == &[64, 128, 3]),
        "{e}"
    );
}

/// Sizes that overflow are `None` / a typed error, never a wrapped
/// multiplication or an abort.
#[test]
fn overflowing_sizes_are_errors() {
    let m = load(&Spec::default()).unwrap();
    let huge = ModelConfig { n_head: usize::MAX / 2, n_ff: usize::MAX / 4, ..m.config().clone() };
    assert_eq!(Context::bytes_for(&huge, 512, KvTypes::F32), None);
    assert!(matches!(Scratch::new(&huge, 512), Err(ModelError::OutOfMemory { what: "activation buffers", .. })));
    // Representable but impossible: a clean error too.
    let big = ModelConfig { n_ff: 1 << 40, ..m.config().clone() };
    assert!(Context::bytes_for(&big, 512, KvTypes::F32).is_some());
    assert!(matches!(Scratch::new(&big, 512), Err(ModelError::OutOfMemory { .. })));
    let e = Context::new(Arc::new(m), Arc::new(ThreadPool::new(1)), usize::MAX).unwrap_err();
    assert!(matches!(e, ModelError::ContextTooLarge { .. }), "{e}");
}

/// Gemma 3n's AltUp keys (the tiny Gemma 3n of the architecture tests):
/// an active stream other than 0 (llama.cpp assumes 0), fewer than two
/// streams, a sparsity list that is not one value per layer or holds NaN,
/// an infinite RoPE base for the sliding layers, and KV
/// sharing that would read a layer of the other attention kind are each
/// refused naming the key.
#[test]
fn gemma3n_stream_keys_are_checked() {
    use edgewasm_gguf::Array;
    use edgewasm_test_support::tiny_with_family_vocab;
    let base = tiny_with_family_vocab("gemma3n", GgmlType::Q8_0);
    let open = |t: &edgewasm_test_support::TinyArch| Model::from_gguf(Arc::new(GgufFile::from_bytes(&t.gguf()).unwrap()));
    open(&base).expect("the tiny Gemma 3n loads");
    let cases: [(&str, Value); 6] = [
        ("altup.active_idx", 1u32.into()),
        ("altup.num_inputs", 1u32.into()),
        ("activation_sparsity_scale", Value::Array(Array::F32(vec![1.0; 3]))),
        ("activation_sparsity_scale", Value::Array(Array::F32(vec![f32::NAN; 4]))),
        ("rope.freq_base_swa", f32::INFINITY.into()),
        // Layers 2 and 3 (global, sliding) would read 1 and 0: layer 2
        // would read sliding layer 1's keys.
        ("attention.shared_kv_layers", 2u32.into()),
    ];
    for (key, value) in cases {
        let mut t = base.clone();
        t.keys.push((key.to_string(), value));
        let e = open(&t).expect_err(key);
        assert_eq!(bad_key(&e), format!("gemma3n.{key}"), "{e}");
    }
}
