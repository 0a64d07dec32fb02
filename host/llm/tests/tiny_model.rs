//! A tiny random-weight llama model written with the GGUF writer: checks
//! the forward pass's invariants (batching, threading, cache reuse) and its
//! errors without needing a real model.

use std::sync::Arc;

use edgewasm_gguf::{GgmlType, GgufFile};
use edgewasm_llm::chat::ChatMessage;
use edgewasm_llm::{Context, Model, ModelError, ThreadPool};
use edgewasm_test_support::TinyLlama;

const VOCAB: usize = 300;

/// The tiny model; `skip` omits a tensor, `bad_shape` gives one the wrong shape.
fn tiny_gguf(ty: GgmlType, skip: Option<&str>, bad_shape: Option<&str>) -> Vec<u8> {
    TinyLlama { ty, skip: skip.map(Into::into), bad_shape: bad_shape.map(Into::into), ..TinyLlama::default() }.gguf()
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
    ctx.rewind(5).unwrap();
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

/// Loading accepts exactly the types `supported_weight_types` lists: a
/// model whose matrices are any listed type loads, and one with a single
/// matrix of any other ggml type (IQ2_XXS, TQ2_0, MXFP4, I8, Q8_K...) is
/// refused naming the tensor, its type and the list.
#[test]
fn weight_types_are_refused_by_name_unless_supported() {
    let list = edgewasm_llm::model::supported_weight_types();
    assert!(list.starts_with("f32, f16, bf16, q4_0, q4_1, q5_0, q5_1, q8_0, q2_K"), "{list}");
    // Row lengths of 256: whole blocks of every type.
    let tiny = TinyLlama { n_embd: 256, n_ff: 256, ..TinyLlama::default() };
    let tensor = "blk.0.attn_q.weight";
    for ty in GgmlType::ALL {
        if list.split(", ").any(|t| t == ty.name()) {
            load(&TinyLlama { ty, ..tiny.clone() }.gguf()).unwrap_or_else(|e| panic!("{ty}: {e}"));
            continue;
        }
        let bytes = TinyLlama { retype: Some((tensor.into(), ty)), ..tiny.clone() }.gguf();
        let e = load(&bytes).unwrap_err();
        assert!(matches!(&e, ModelError::TensorType { tensor: t, ty: found } if t == tensor && *found == ty), "{ty}: {e}");
        let want = format!("tensor `{tensor}` has type {ty}, which this engine cannot run (supported weight types: {list})");
        assert_eq!(e.to_string(), want);
    }
    assert!(list.contains("iq4_nl") && list.contains("iq4_xs"), "{list}");
    assert!(!list.contains("iq2_xxs") && !list.contains("q8_K") && !list.contains("q8_1"), "{list}");
}
