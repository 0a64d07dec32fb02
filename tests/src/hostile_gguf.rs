//! Model files that lie about their hyperparameters (issue 20), written
//! with the project's GGUF writer: one-layer llamas with F16 zero weights
//! whose shapes follow their (hostile) metadata, so only the sizes they
//! imply are hostile. Used by tests/tests/hostile_models.rs and by
//! `cargo run -p edgewasm-tests --example write-hostile-gguf` for
//! measurements.

use edgewasm_gguf::{GgmlType, GgufWriter, Value};

const VOCAB: usize = 8;

/// The shape of a hostile llama.
#[derive(Clone, Copy, Debug)]
pub struct HostileLlama {
    pub n_embd: usize,
    pub n_head: usize,
    pub key_length: Option<usize>,
    pub n_ff: usize,
}

impl HostileLlama {
    /// The red-team file: `n_embd = 1`, 512 heads of 65536 (2^25 query
    /// values per token) in 128 MiB; each context used to allocate 64 GiB
    /// per activation buffer.
    pub const HUGE_HEADS: HostileLlama = HostileLlama { n_embd: 1, n_head: 512, key_length: Some(1 << 16), n_ff: 1 };
    /// Its 16 MiB variant: 64 heads of 65536 (2^22 per token).
    pub const HUGE_HEADS_16MIB: HostileLlama = HostileLlama { n_embd: 1, n_head: 64, key_length: Some(1 << 16), n_ff: 1 };
    /// Within every width limit, with a tiny KV cache, but a 2^18-wide FFN:
    /// 1.25 GiB of activation buffers per context from a 3 MiB file.
    pub const WIDE_FFN: HostileLlama = HostileLlama { n_embd: 2, n_head: 1, key_length: None, n_ff: 1 << 18 };

    /// The GGUF bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = GgufWriter::new();
        let mut kv: Vec<(&str, Value)> = vec![
            ("general.architecture", "llama".into()),
            ("llama.block_count", 1u32.into()),
            ("llama.context_length", 2048u32.into()),
            ("llama.embedding_length", (self.n_embd as u32).into()),
            ("llama.feed_forward_length", (self.n_ff as u32).into()),
            ("llama.attention.head_count", (self.n_head as u32).into()),
            ("llama.attention.head_count_kv", 1u32.into()),
            ("tokenizer.ggml.model", "gpt2".into()),
            ("tokenizer.ggml.pre", "smollm".into()),
            ("tokenizer.ggml.tokens", (0..VOCAB).map(|i| match i { 3 => "t".into(), 4 => "1".into(), _ => format!("t{i}") }).collect::<Vec<String>>().into()),
            ("tokenizer.ggml.token_type", vec![1i32; VOCAB].into()),
            ("tokenizer.ggml.merges", vec!["t 1".to_string()].into()),
        ];
        if let Some(k) = self.key_length {
            kv.push(("llama.attention.key_length", (k as u32).into()));
        }
        for (k, v) in kv {
            w.add_metadata(k, v).expect("metadata");
        }
        let hd = self.key_length.unwrap_or(self.n_embd / self.n_head);
        let (d, qd, f) = (self.n_embd, self.n_head * hd, self.n_ff);
        let mat = |w: &mut GgufWriter, name: &str, cols: usize, rows: usize| {
            w.add_tensor(name, GgmlType::F16, &[cols as u64, rows as u64], vec![0u8; cols * rows * 2]).expect("tensor");
        };
        mat(&mut w, "token_embd.weight", d, VOCAB);
        w.add_f32_tensor("blk.0.attn_norm.weight", &[d as u64], &vec![1.0; d]).expect("tensor");
        w.add_f32_tensor("blk.0.ffn_norm.weight", &[d as u64], &vec![1.0; d]).expect("tensor");
        mat(&mut w, "blk.0.attn_q.weight", d, qd);
        mat(&mut w, "blk.0.attn_k.weight", d, hd);
        mat(&mut w, "blk.0.attn_v.weight", d, hd);
        mat(&mut w, "blk.0.attn_output.weight", qd, d);
        mat(&mut w, "blk.0.ffn_gate.weight", d, f);
        mat(&mut w, "blk.0.ffn_up.weight", d, f);
        mat(&mut w, "blk.0.ffn_down.weight", f, d);
        w.add_f32_tensor("output_norm.weight", &[d as u64], &vec![1.0; d]).expect("tensor");
        w.to_bytes().expect("gguf")
    }
}
