//! A tiny random-weight llama model written with the GGUF writer: checks
//! the forward pass's invariants (batching, threading, cache reuse) and its
//! errors without needing a real model.

use std::sync::Arc;

use edgewasm_gguf::{GgmlType, GgufFile, GgufWriter, Value};
use edgewasm_llm::chat::ChatMessage;
use edgewasm_llm::{Context, Model, ModelError, ThreadPool};

const D: usize = 64;
const N_HEAD: usize = 4;
const N_KV: usize = 2;
const HD: usize = D / N_HEAD;
const FF: usize = 128;
const LAYERS: usize = 2;
const VOCAB: usize = 300;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

fn quantized(ty: GgmlType, values: &[f32], cols: usize) -> Vec<u8> {
    let row_bytes = ty.row_bytes(cols as u64).unwrap() as usize;
    let rows = values.len() / cols;
    let mut out = vec![0u8; rows * row_bytes];
    for r in 0..rows {
        edgewasm_kernels::quantize_row(ty, &values[r * cols..(r + 1) * cols], &mut out[r * row_bytes..(r + 1) * row_bytes]);
    }
    out
}

/// Builds the tiny model; `skip` omits a tensor, `bad_shape` gives one the wrong shape.
fn tiny_gguf(ty: GgmlType, skip: Option<&str>, bad_shape: Option<&str>) -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut w = GgufWriter::new();
    let kv: Vec<(&str, Value)> = vec![
        ("general.architecture", "llama".into()),
        ("general.name", "tiny".into()),
        ("llama.block_count", (LAYERS as u32).into()),
        ("llama.context_length", 256u32.into()),
        ("llama.embedding_length", (D as u32).into()),
        ("llama.feed_forward_length", (FF as u32).into()),
        ("llama.attention.head_count", (N_HEAD as u32).into()),
        ("llama.attention.head_count_kv", (N_KV as u32).into()),
        ("llama.rope.freq_base", 10000.0f32.into()),
        ("llama.attention.layer_norm_rms_epsilon", 1e-5f32.into()),
        ("tokenizer.chat_template", "FILE:{% for m in messages %}{{ m.content }}{% endfor %}".into()),
        ("tokenizer.ggml.model", "gpt2".into()),
        ("tokenizer.ggml.pre", "smollm".into()),
        // Token 3 is "t" and 4 is "1", so the one merge "t 1" makes token 1 ("t1").
        ("tokenizer.ggml.tokens", (0..VOCAB).map(|i| match i { 3 => "t".into(), 4 => "1".into(), _ => format!("t{i}") }).collect::<Vec<String>>().into()),
        ("tokenizer.ggml.token_type", vec![1i32; VOCAB].into()),
        ("tokenizer.ggml.merges", vec!["t 1".to_string()].into()),
        ("tokenizer.ggml.bos_token_id", 1u32.into()),
        ("tokenizer.ggml.eos_token_id", 2u32.into()),
    ];
    for (k, v) in kv {
        w.add_metadata(k, v).unwrap();
    }
    let mut mat = |w: &mut GgufWriter, name: &str, cols: usize, rows: usize, ty: GgmlType| {
        if skip == Some(name) {
            return;
        }
        let rows = if bad_shape == Some(name) { rows + 1 } else { rows };
        let vals = rng.vec(rows * cols, 0.5);
        w.add_tensor(name, ty, &[cols as u64, rows as u64], quantized(ty, &vals, cols)).unwrap();
    };
    mat(&mut w, "token_embd.weight", D, VOCAB, GgmlType::Q8_0);
    for l in 0..LAYERS {
        let n = |s: &str| format!("blk.{l}.{s}.weight");
        w.add_f32_tensor(n("attn_norm"), &[D as u64], &vec![1.0; D]).unwrap();
        w.add_f32_tensor(n("ffn_norm"), &[D as u64], &vec![1.0; D]).unwrap();
        mat(&mut w, &n("attn_q"), D, D, ty);
        mat(&mut w, &n("attn_k"), D, N_KV * HD, ty);
        mat(&mut w, &n("attn_v"), D, N_KV * HD, ty);
        mat(&mut w, &n("attn_output"), D, D, ty);
        mat(&mut w, &n("ffn_gate"), D, FF, ty);
        mat(&mut w, &n("ffn_up"), D, FF, ty);
        mat(&mut w, &n("ffn_down"), FF, D, ty);
    }
    w.add_f32_tensor("output_norm.weight", &[D as u64], &vec![1.0; D]).unwrap();
    w.to_bytes().unwrap()
}

fn load(bytes: &[u8]) -> Result<Arc<Model>, ModelError> {
    let file = GgufFile::from_bytes(bytes)?;
    Ok(Arc::new(Model::from_gguf(Arc::new(file))?))
}

fn logits(model: &Arc<Model>, threads: usize, tokens: &[u32]) -> Vec<f32> {
    let mut ctx = Context::new(Arc::clone(model), Arc::new(ThreadPool::new(threads)), 64).unwrap();
    ctx.eval(tokens, true).unwrap().to_vec()
}

const TOKENS: [u32; 11] = [5, 17, 250, 3, 3, 99, 1, 42, 299, 0, 7];

#[test]
fn batched_prefill_equals_token_by_token() {
    for ty in [GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::F32] {
        let m = load(&tiny_gguf(ty, None, None)).unwrap();
        let all = logits(&m, 2, &TOKENS);
        let mut ctx = Context::new(Arc::clone(&m), Arc::new(ThreadPool::new(2)), 64).unwrap();
        for (i, &t) in TOKENS.iter().enumerate() {
            let l = ctx.eval(&[t], false).unwrap();
            assert_eq!(l, &all[i * VOCAB..(i + 1) * VOCAB], "{ty}: position {i}");
        }
    }
}

#[test]
fn thread_count_does_not_change_results() {
    let m = load(&tiny_gguf(GgmlType::Q4_1, None, None)).unwrap();
    let one = logits(&m, 1, &TOKENS);
    for threads in [2, 3, 5] {
        assert_eq!(one, logits(&m, threads, &TOKENS), "{threads} threads");
    }
}

#[test]
fn truncating_the_cache_reuses_the_prefix_exactly() {
    let m = load(&tiny_gguf(GgmlType::Q4_1, None, None)).unwrap();
    let pool = Arc::new(ThreadPool::new(2));
    let mut ctx = Context::new(Arc::clone(&m), pool, 64).unwrap();
    ctx.eval(&TOKENS, false).unwrap();
    ctx.truncate(5);
    let reused = ctx.eval(&[8, 9, 10], false).unwrap().to_vec();
    let mut fresh_seq = TOKENS[..5].to_vec();
    fresh_seq.extend([8, 9, 10]);
    let fresh = logits(&m, 2, &fresh_seq);
    assert_eq!(reused, &fresh[7 * VOCAB..8 * VOCAB]);
}

#[test]
fn logits_are_finite_and_depend_on_input() {
    let m = load(&tiny_gguf(GgmlType::Q4_1, None, None)).unwrap();
    let a = logits(&m, 2, &[1, 2, 3]);
    let b = logits(&m, 2, &[1, 2, 4]);
    assert!(a.iter().all(|v| v.is_finite()));
    assert_eq!(a[..2 * VOCAB], b[..2 * VOCAB], "causal: earlier positions cannot see later tokens");
    assert_ne!(a[2 * VOCAB..], b[2 * VOCAB..]);
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let m = load(&tiny_gguf(GgmlType::Q4_1, None, None)).unwrap();
    let mut ctx = Context::new(Arc::clone(&m), Arc::new(ThreadPool::new(1)), 8).unwrap();
    assert!(matches!(ctx.eval(&[VOCAB as u32], false), Err(ModelError::TokenOutOfRange { .. })));
    assert!(matches!(ctx.eval(&[], false), Err(ModelError::EmptyInput)));
    assert!(matches!(ctx.eval(&[1; 9], false), Err(ModelError::ContextFull { .. })));
    ctx.eval(&[1; 8], false).unwrap();
    assert!(matches!(ctx.eval(&[1], false), Err(ModelError::ContextFull { .. })));
}

#[test]
fn missing_or_misshapen_tensors_are_named() {
    let e = load(&tiny_gguf(GgmlType::Q4_1, Some("blk.1.ffn_up.weight"), None)).unwrap_err();
    assert!(matches!(&e, ModelError::MissingTensor(n) if n == "blk.1.ffn_up.weight"), "{e}");
    let e = load(&tiny_gguf(GgmlType::Q4_1, None, Some("blk.0.attn_k.weight"))).unwrap_err();
    assert!(matches!(&e, ModelError::TensorShape { tensor, .. } if tensor == "blk.0.attn_k.weight"), "{e}");
}

#[test]
fn absurd_context_sizes_fail_cleanly() {
    let m = load(&tiny_gguf(GgmlType::Q4_1, None, None)).unwrap();
    let r = Context::new(Arc::clone(&m), Arc::new(ThreadPool::new(1)), usize::MAX / 2);
    assert!(matches!(r, Err(ModelError::ContextTooLarge { .. })));
}

/// A file's own template is used, unless the file is untrusted (a guest's
/// `load`), when the architecture's built-in one (ChatML for llama) is.
#[test]
fn untrusted_files_do_not_run_their_chat_template() {
    let file = Arc::new(GgufFile::from_bytes(&tiny_gguf(GgmlType::Q8_0, None, None)).unwrap());
    let msgs = [ChatMessage::new("user", "hi")];
    let own = Model::from_gguf(Arc::clone(&file)).unwrap().chat_template().unwrap().render(&msgs, true).unwrap();
    assert_eq!(own, "FILE:hi");
    let untrusted = Model::from_gguf(file).unwrap().without_file_chat_template();
    assert!(untrusted.chat_template_source().is_none());
    let built_in = untrusted.chat_template().unwrap().render(&msgs, true).unwrap();
    assert!(built_in.contains("<|im_start|>user\nhi<|im_end|>"), "{built_in}");
}
