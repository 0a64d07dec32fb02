//! Smoke tests against the real models fetched by `scripts/fetch-models.sh`.
//! Fetched when missing; a test fails, never skips, when they cannot be had.

use std::path::PathBuf;

use edgewasm_gguf::{GgmlType, GgufFile, GgufWriter};

fn model(name: &str) -> PathBuf {
    edgewasm_test_support::model_path(name)
}

#[test]
fn smollm2_header() {
    let path = model("smollm2-135m-instruct-q4_1.gguf");
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.tensors().len(), 272);
    assert_eq!(f.architecture().unwrap(), "llama");
    assert_eq!(f.get_u32("llama.block_count").unwrap(), Some(30));
    assert_eq!(f.get_u64("llama.embedding_length").unwrap(), Some(576));
    let emb = f.tensor("token_embd.weight").unwrap();
    assert_eq!(emb.ty, GgmlType::Q8_0);
    assert_eq!(emb.dims, [576, 49152]);
    assert_eq!(emb.size_bytes, 576 / 32 * 34 * 49152);
    assert_eq!(f.tensor_data(emb).len() as u64, emb.size_bytes);
    let tokens = f.get_str_array("tokenizer.ggml.tokens").unwrap().unwrap();
    assert_eq!(tokens.len(), 49152);
    assert!(f.tensors().iter().any(|t| t.ty == GgmlType::Q4_1));
    assert_eq!(f.data_offset() % f.alignment(), 0);
}

/// Rewriting a real model with the writer reproduces every value and byte
/// of tensor data.
#[test]
fn smollm2_rewrite_round_trips() {
    let path = model("smollm2-135m-instruct-q4_1.gguf");
    let f = GgufFile::open(&path).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in f.metadata() {
        w.add_metadata(k.clone(), v.clone()).unwrap();
    }
    for t in f.tensors() {
        w.add_tensor(t.name.clone(), t.ty, &t.dims, f.tensor_data(t))
            .unwrap();
    }
    let bytes = w.to_bytes().unwrap();
    let g = GgufFile::from_bytes(&bytes).unwrap();
    assert_eq!(g.metadata(), f.metadata());
    assert_eq!(g.tensors(), f.tensors());
    for t in f.tensors() {
        assert!(g.tensor_data(t) == f.tensor_data(t), "{}", t.name);
    }
    // Our writer lays files out exactly as ggml's does.
    assert!(
        bytes == f.as_bytes(),
        "rewritten file differs from the original"
    );
}

#[test]
fn gemma3_header() {
    let path = model("gemma-3-270m-q4_k_m.gguf");
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.architecture().unwrap(), "gemma3");
    assert!(!f.tensors().is_empty());
    for t in f.tensors() {
        assert_eq!(f.tensor_data(t).len() as u64, t.size_bytes);
    }
}
