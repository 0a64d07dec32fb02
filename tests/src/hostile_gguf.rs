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

/// The text of a WasmEdge-style core module that reads `name` (`file_len`
/// bytes) from the first preopened directory (WASI), hands the bytes to
/// `wasi_ephemeral_nn.load`, then creates an execution context. Exits with
/// 20 + the load error, or 40 + the init error (40: both succeeded).
pub fn load_and_init_wat(name: &str, file_len: usize) -> String {
    const BASE: usize = 65536;
    const CHUNK: usize = 1 << 24;
    let pages = (BASE + file_len + CHUNK).div_ceil(65536);
    // Relative to the preopened directory's fd.
    let path = name.to_string();
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_ephemeral_nn" "load" (func $load (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "init_execution_context" (func $init (param i32 i32) (result i32)))
  (memory (export "memory") {pages})
  (data (i32.const 256) "{path}")
  ;; 0 fd, 4 bytes read, 8 iovec, 16 graph builder, 24 graph, 28 context.
  (func (export "_start")
    (local $off i32) (local $r i32)
    ;; The preopened /m is fd 3; rights: fd_read (bit 1).
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 256) (i32.const {path_len}) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0))
      (then (call $exit (i32.const 10))))
    (local.set $off (i32.const {BASE}))
    (block $eof (loop $more
      (i32.store (i32.const 8) (local.get $off))
      (i32.store (i32.const 12) (i32.const {CHUNK}))
      (if (call $fd_read (i32.load (i32.const 0)) (i32.const 8) (i32.const 1) (i32.const 4)) (then (call $exit (i32.const 11))))
      (br_if $eof (i32.eqz (i32.load (i32.const 4))))
      (local.set $off (i32.add (local.get $off) (i32.load (i32.const 4))))
      (br $more)))
    (i32.store (i32.const 16) (i32.const {BASE}))
    (i32.store (i32.const 20) (i32.sub (local.get $off) (i32.const {BASE})))
    ;; encoding 6 (GGML), target 0 (CPU).
    (local.set $r (call $load (i32.const 16) (i32.const 1) (i32.const 6) (i32.const 0) (i32.const 24)))
    (if (local.get $r) (then (call $exit (i32.add (i32.const 20) (local.get $r)))))
    (call $exit (i32.add (i32.const 40) (call $init (i32.load (i32.const 24)) (i32.const 28))))))"#,
        path_len = path.len(),
    )
}
