//! A tiny random-weight llama model, written with our GGUF writer: for
//! tests of the forward pass, the loaders' errors and hostile files
//! without a real model.

use edgewasm_gguf::{GgmlType, GgufWriter, Value};

use crate::Rng;

/// The shape and contents of a tiny llama GGUF file. `Default` is a
/// 2-layer model with grouped-query attention (4 heads, 2 KV heads) over a
/// 300-token GPT-2-style vocabulary ("t0".."t299"; the merge "t 1" makes
/// token 1 from tokens 3 "t" and 4 "1").
#[derive(Clone, Debug)]
pub struct TinyLlama {
    /// Type of the block matrices (the embedding is always Q8_0, norms F32).
    pub ty: GgmlType,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub n_ff: usize,
    pub n_layer: usize,
    pub n_vocab: usize,
    pub context_length: u32,
    pub seed: u64,
    /// The file's chat template.
    pub chat_template: Option<String>,
    /// A tensor to leave out.
    pub skip: Option<String>,
    /// A tensor to give one row too many.
    pub bad_shape: Option<String>,
    /// A matrix to store in another type, as random bytes of that type's
    /// size: for types the kernels cannot quantize to (IQ4_XS...), which
    /// loading must refuse. Its row length must be whole blocks of the type.
    pub retype: Option<(String, GgmlType)>,
    /// Metadata set after (so overriding) the generated keys.
    pub metadata: Vec<(String, Value)>,
}

impl Default for TinyLlama {
    fn default() -> TinyLlama {
        TinyLlama {
            ty: GgmlType::Q8_0,
            n_embd: 64,
            n_head: 4,
            n_head_kv: 2,
            n_ff: 128,
            n_layer: 2,
            n_vocab: 300,
            context_length: 256,
            seed: 0x9e37_79b9_7f4a_7c15,
            chat_template: Some("FILE:{% for m in messages %}{{ m.content }}{% endfor %}".into()),
            skip: None,
            bad_shape: None,
            retype: None,
            metadata: Vec::new(),
        }
    }
}

impl TinyLlama {
    pub fn with_type(ty: GgmlType) -> TinyLlama {
        TinyLlama { ty, ..TinyLlama::default() }
    }

    /// The GGUF file's bytes.
    pub fn gguf(&self) -> Vec<u8> {
        let (d, hd) = (self.n_embd, self.n_embd / self.n_head);
        let mut w = GgufWriter::new();
        let mut kv: Vec<(String, Value)> = vec![
            ("general.architecture".into(), "llama".into()),
            ("general.name".into(), "tiny".into()),
            ("llama.block_count".into(), (self.n_layer as u32).into()),
            ("llama.context_length".into(), self.context_length.into()),
            ("llama.embedding_length".into(), (d as u32).into()),
            ("llama.feed_forward_length".into(), (self.n_ff as u32).into()),
            ("llama.attention.head_count".into(), (self.n_head as u32).into()),
            ("llama.attention.head_count_kv".into(), (self.n_head_kv as u32).into()),
            ("llama.rope.freq_base".into(), 10000.0f32.into()),
            ("llama.attention.layer_norm_rms_epsilon".into(), 1e-5f32.into()),
            ("tokenizer.ggml.model".into(), "gpt2".into()),
            ("tokenizer.ggml.pre".into(), "smollm".into()),
            (
                "tokenizer.ggml.tokens".into(),
                (0..self.n_vocab).map(|i| match i { 3 => "t".into(), 4 => "1".into(), _ => format!("t{i}") }).collect::<Vec<String>>().into(),
            ),
            ("tokenizer.ggml.token_type".into(), vec![1i32; self.n_vocab].into()),
            ("tokenizer.ggml.merges".into(), vec!["t 1".to_string()].into()),
            ("tokenizer.ggml.bos_token_id".into(), 1u32.into()),
            ("tokenizer.ggml.eos_token_id".into(), 2u32.into()),
        ];
        if let Some(t) = &self.chat_template {
            kv.push(("tokenizer.chat_template".into(), t.as_str().into()));
        }
        for (k, v) in &self.metadata {
            kv.retain(|(key, _)| key != k);
            kv.push((k.clone(), v.clone()));
        }
        for (k, v) in kv {
            w.add_metadata(k, v).expect("valid metadata");
        }
        let mut rng = Rng::new(self.seed);
        let mut mat = |w: &mut GgufWriter, name: &str, cols: usize, rows: usize, ty: GgmlType| {
            if self.skip.as_deref() == Some(name) {
                return;
            }
            let rows = if self.bad_shape.as_deref() == Some(name) { rows + 1 } else { rows };
            let (ty, data) = match &self.retype {
                Some((n, other)) if n == name => {
                    let row_bytes = other.row_bytes(cols as u64).expect("row fits the type's blocks") as usize;
                    (*other, rng.bytes(rows * row_bytes))
                }
                _ => (ty, quantized(ty, &rng.f32s(rows * cols, 0.5), cols)),
            };
            w.add_tensor(name, ty, &[cols as u64, rows as u64], data).expect("valid tensor");
        };
        mat(&mut w, "token_embd.weight", d, self.n_vocab, GgmlType::Q8_0);
        for l in 0..self.n_layer {
            let n = |s: &str| format!("blk.{l}.{s}.weight");
            w.add_f32_tensor(n("attn_norm"), &[d as u64], &vec![1.0; d]).expect("valid tensor");
            w.add_f32_tensor(n("ffn_norm"), &[d as u64], &vec![1.0; d]).expect("valid tensor");
            mat(&mut w, &n("attn_q"), d, d, self.ty);
            mat(&mut w, &n("attn_k"), d, self.n_head_kv * hd, self.ty);
            mat(&mut w, &n("attn_v"), d, self.n_head_kv * hd, self.ty);
            mat(&mut w, &n("attn_output"), d, d, self.ty);
            mat(&mut w, &n("ffn_gate"), d, self.n_ff, self.ty);
            mat(&mut w, &n("ffn_up"), d, self.n_ff, self.ty);
            mat(&mut w, &n("ffn_down"), self.n_ff, d, self.ty);
        }
        w.add_f32_tensor("output_norm.weight", &[d as u64], &vec![1.0; d]).expect("valid tensor");
        w.to_bytes().expect("tiny model fits a GGUF file")
    }
}

/// `values` (rows of `cols`) quantized row by row with the scalar reference.
pub fn quantized(ty: GgmlType, values: &[f32], cols: usize) -> Vec<u8> {
    let row_bytes = ty.row_bytes(cols as u64).expect("row fits the type's blocks") as usize;
    let rows = values.len() / cols;
    let mut out = vec![0u8; rows * row_bytes];
    for r in 0..rows {
        edgewasm_kernels::quantize_row(ty, &values[r * cols..(r + 1) * cols], &mut out[r * row_bytes..(r + 1) * row_bytes]);
    }
    out
}
