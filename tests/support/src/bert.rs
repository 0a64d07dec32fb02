//! A tiny random-weight BERT (`bert`), written with our GGUF writer: the
//! tensors and keys llama.cpp's converter writes for all-MiniLM and bge
//! (token, position and token-type embeddings, an embedding LayerNorm,
//! biased attention and MLP, post-LN norms), or for nomic-embed-text
//! (`nomic-bert`: no position embeddings but RoPE, fused Q/K/V, a SwiGLU
//! FFN, no biases but the norms'), so the same file runs in llama.cpp's
//! `llama-embedding` as the oracle. It has no output layer, so it lives
//! apart from the decoders of [`crate::TinyArch`], which are compared by
//! their logits.

use edgewasm_gguf::{GgmlType, GgufWriter, Value};

use crate::{llama_cpp_vocab, quantized, Rng};

/// The shape and contents of a tiny BERT file. [`TinyBert::new`] makes a
/// `bert` of 2 layers of 4 heads of 32 over `n_embd` 128 (Q8_0 blocks fit
/// every row), a context of 512 positions, mean pooling, bidirectional
/// attention, and BERT's WordPiece vocabulary from llama.cpp's
/// `ggml-vocab-bert-bge.gguf`.
#[derive(Clone, Debug)]
pub struct TinyBert {
    /// `bert` or `nomic-bert`.
    pub arch: &'static str,
    /// Type of every matrix (the token and position embeddings too); the
    /// token-type embeddings, norms and biases are F32.
    pub ty: GgmlType,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_ff: usize,
    pub n_layer: usize,
    pub context_length: usize,
    /// `{arch}.pooling_type` (1 mean, 2 cls), `None` to leave it out.
    pub pooling_type: Option<u32>,
    /// `{arch}.attention.causal` (converted BERTs: false).
    pub causal: bool,
    pub seed: u64,
    /// `tokenizer.*` keys and the vocabulary size.
    pub tokenizer: Vec<(String, Value)>,
    pub n_vocab: usize,
}

impl TinyBert {
    /// The default tiny BERT with matrices of type `ty`.
    pub fn new(ty: GgmlType) -> TinyBert {
        let (tokenizer, n_vocab) = llama_cpp_vocab("bert-bge");
        TinyBert {
            arch: "bert",
            ty,
            n_embd: 128,
            n_head: 4,
            n_ff: 256,
            n_layer: 2,
            context_length: 512,
            pooling_type: Some(1),
            causal: false,
            seed: 0xbe47_0001,
            tokenizer,
            n_vocab,
        }
    }

    /// The GGUF file's bytes.
    pub fn gguf(&self) -> Vec<u8> {
        let (a, d) = (self.arch, self.n_embd);
        let nomic = a == "nomic-bert";
        let mut kv: Vec<(String, Value)> = vec![
            ("general.architecture".into(), a.into()),
            ("general.name".into(), format!("tiny {a}").into()),
            (format!("{a}.block_count"), (self.n_layer as u32).into()),
            (format!("{a}.context_length"), (self.context_length as u32).into()),
            (format!("{a}.embedding_length"), (d as u32).into()),
            (format!("{a}.feed_forward_length"), (self.n_ff as u32).into()),
            (format!("{a}.attention.head_count"), (self.n_head as u32).into()),
            (format!("{a}.attention.layer_norm_epsilon"), 1e-12f32.into()),
            (format!("{a}.attention.causal"), self.causal.into()),
        ];
        if nomic {
            kv.push((format!("{a}.rope.freq_base"), 1000f32.into()));
        }
        if let Some(p) = self.pooling_type {
            kv.push((format!("{a}.pooling_type"), p.into()));
        }
        kv.extend(self.tokenizer.iter().cloned());
        let n_types = match kv.iter().find(|(k, _)| k == "tokenizer.ggml.token_type_count") {
            Some((_, Value::U32(n))) => *n as usize,
            _ => 2,
        };
        let mut w = GgufWriter::new();
        for (k, v) in kv {
            w.add_metadata(k, v).expect("valid metadata");
        }
        let mut rng = Rng::new(self.seed);
        // Uniform weights of variance 1/cols, as the tiny decoders'.
        let mut mat = |w: &mut GgufWriter, name: &str, cols: usize, rows: usize| {
            let values = rng.f32s(rows * cols, 3f32.sqrt() / (cols as f32).sqrt());
            w.add_tensor(name, self.ty, &[cols as u64, rows as u64], quantized(self.ty, &values, cols)).expect("valid tensor");
        };
        let mut rng_v = Rng::new(self.seed ^ 0xabcd);
        let mut rng_f32 = Rng::new(self.seed ^ 0x1234);
        let mut vec = |w: &mut GgufWriter, name: &str, n: usize, center: f32, spread: f32| {
            let v: Vec<f32> = rng_v.f32s(n, spread).into_iter().map(|x| center + x).collect();
            w.add_f32_tensor(name, &[n as u64], &v).expect("valid tensor");
        };
        let mut norm = |w: &mut GgufWriter, name: &str| {
            vec(w, &format!("{name}.weight"), d, 1.0, 0.2);
            vec(w, &format!("{name}.bias"), d, 0.0, 0.1);
        };
        norm(&mut w, "token_embd_norm");
        for l in 0..self.n_layer {
            norm(&mut w, &format!("blk.{l}.attn_output_norm"));
            norm(&mut w, &format!("blk.{l}.layer_output_norm"));
        }
        for l in (0..self.n_layer).filter(|_| !nomic) {
            for (s, n) in [("attn_q", d), ("attn_k", d), ("attn_v", d), ("attn_output", d), ("ffn_up", self.n_ff), ("ffn_down", d)] {
                vec(&mut w, &format!("blk.{l}.{s}.bias"), n, 0.0, 0.1);
            }
        }
        mat(&mut w, "token_embd.weight", d, self.n_vocab);
        // F32 as converters leave it: llama.cpp adds its row 0 to every
        // token's embedding with a plain add, which has no quantized form.
        let types = rng_f32.f32s(n_types * d, 3f32.sqrt() / (d as f32).sqrt());
        w.add_f32_tensor("token_types.weight", &[d as u64, n_types as u64], &types).expect("valid tensor");
        if !nomic {
            mat(&mut w, "position_embd.weight", d, self.context_length);
        }
        for l in 0..self.n_layer {
            let n = |s: &str| format!("blk.{l}.{s}.weight");
            if nomic {
                mat(&mut w, &n("attn_qkv"), d, 3 * d);
                mat(&mut w, &n("ffn_gate"), d, self.n_ff);
            } else {
                for s in ["attn_q", "attn_k", "attn_v"] {
                    mat(&mut w, &n(s), d, d);
                }
            }
            mat(&mut w, &n("attn_output"), d, d);
            mat(&mut w, &n("ffn_up"), d, self.n_ff);
            mat(&mut w, &n("ffn_down"), self.n_ff, d);
        }
        w.to_bytes().expect("tiny model fits a GGUF file")
    }
}
