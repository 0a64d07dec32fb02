//! Random-weight models with the exact tensor shapes, hyperparameters and
//! vocabulary size of named real models (`edgewasm bench --like`). Values
//! do not change the cost of inference, so such a file measures what the
//! real model would cost on a device before gigabytes are downloaded, and
//! llama-bench can run the same bytes.
//!
//! The tensor types are those `llama-quantize` would give the real model
//! for the file type ([`choose_types`]: Q4_K_M keeps some tensors at Q6_K,
//! norms at F32…). Each matrix is tiled from a few random rows quantized to
//! its type: the bytes are valid blocks of unit-scale weights, and making a
//! 4B model takes seconds. The vocabulary is a synthetic SentencePiece one
//! of the real size (the embedding and output matrices are what cost).

use edgewasm_gguf::{Array, GgmlType, GgufWriter, Value};

use crate::quantize::{choose_types, llama_order, Ftype, ModelInfo, TensorDesc};

/// A named real model's shape; `source` says where the numbers come from.
#[derive(Clone, Copy, Debug)]
pub struct Like {
    pub name: &'static str,
    pub arch: &'static str,
    pub source: &'static str,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub n_vocab: usize,
    /// Output matrix tied to the embedding.
    pub tied: bool,
    pub rope_base: f32,
    pub extra: Extra,
}

/// What an architecture has beyond the llama layer.
#[derive(Clone, Copy, Debug)]
pub enum Extra {
    None,
    /// Llama 3's `rope_freqs` divisors.
    Llama3,
    /// Q/K/V biases (Qwen 2).
    QkvBias,
    /// Per-head Q/K RMSNorm (Qwen 3).
    QkNorm,
    /// Post-norms, soft-caps and a sliding window on even layers (Gemma 2).
    Gemma2 { window: usize },
    /// Fused QKV and gate/up, longrope factors (Phi-3).
    Phi3 { n_ctx_orig: usize },
    /// RoPE off on every fourth layer (SmolLM3).
    SmolLm3,
    /// Short-convolution layers but at `attention` (LFM2).
    Lfm2 { attention: &'static [usize], taps: usize },
    /// Gated delta-net layers but every `interval`-th (Qwen 3.5).
    Qwen35 { k_heads: usize, v_heads: usize, head: usize, taps: usize, interval: usize, rot: usize, sections: [i32; 4] },
    /// Gemma 4: every `full_every`-th layer global (heads of `head_dim`,
    /// a quarter of the pairs turning), the others sliding (`head_swa`);
    /// the last `shared` layers read earlier layers' keys and values (with
    /// twice the FFN width when `double_ff`); per-layer embeddings of
    /// `per_layer`.
    Gemma4 { full_every: usize, head_swa: usize, window: usize, shared: usize, double_ff: bool, per_layer: usize },
    /// Gemma 3n: every fifth layer global, the others sliding; the last
    /// `shared` layers read earlier layers' keys and values; 4 AltUp
    /// streams, LAuReL of rank 64, per-layer embeddings of 256 (the sizes
    /// llama.cpp fixes).
    Gemma3n { window: usize, shared: usize },
}

/// A llama-family shape with the common defaults (tied, no extras).
const fn llama(name: &'static str, arch: &'static str, source: &'static str, dims: [usize; 7], rope_base: f32, extra: Extra) -> Like {
    let [n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab] = dims;
    Like { name, arch, source, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_vocab, tied: true, rope_base, extra }
}

/// Every name `--like` knows: `[n_embd, layers, heads, KV heads, head
/// width, FFN width, vocabulary]` as in each model's Hugging Face
/// `config.json` (docs/PERFORMANCE.md gives the sources).
pub const LIKE: &[Like] = &[
    llama("qwen2.5-0.5b", "qwen2", "Qwen/Qwen2.5-0.5B-Instruct", [896, 24, 14, 2, 64, 4864, 151_936], 1e6, Extra::QkvBias),
    llama("qwen3-0.6b", "qwen3", "Qwen/Qwen3-0.6B", [1024, 28, 16, 8, 128, 3072, 151_936], 1e6, Extra::QkNorm),
    llama("llama-3.2-1b", "llama", "meta-llama/Llama-3.2-1B-Instruct", [2048, 16, 32, 8, 64, 8192, 128_256], 5e5, Extra::Llama3),
    llama("qwen2.5-1.5b", "qwen2", "Qwen/Qwen2.5-1.5B-Instruct", [1536, 28, 12, 2, 128, 8960, 151_936], 1e6, Extra::QkvBias),
    llama("gemma-2-2b", "gemma2", "google/gemma-2-2b-it", [2304, 26, 8, 4, 256, 9216, 256_000], 1e4, Extra::Gemma2 { window: 4096 }),
    llama("llama-3.2-3b", "llama", "meta-llama/Llama-3.2-3B-Instruct", [3072, 28, 24, 8, 128, 8192, 128_256], 5e5, Extra::Llama3),
    Like { tied: false, ..llama("phi-3.5-mini", "phi3", "microsoft/Phi-3.5-mini-instruct", [3072, 32, 32, 32, 96, 8192, 32_064], 1e4, Extra::Phi3 { n_ctx_orig: 4096 }) },
    llama("smollm3-3b", "smollm3", "HuggingFaceTB/SmolLM3-3B", [2048, 36, 16, 4, 128, 11008, 128_256], 5e6, Extra::None),
    // block_ff_dim 12288, auto-adjusted (2/3, multiple of 256) to 8192.
    llama("lfm2.5-1.2b", "lfm2", "LiquidAI/LFM2.5-1.2B-Instruct", [2048, 16, 32, 8, 64, 8192, 65_536], 1e6, Extra::Lfm2 { attention: &[2, 5, 8, 10, 12, 14], taps: 3 }),
    llama("qwen3.5-0.8b", "qwen35", "Qwen/Qwen3.5-0.8B", [1024, 24, 8, 2, 256, 3584, 248_320], 1e7, qwen35(16)),
    llama("qwen3.5-2b", "qwen35", "Qwen/Qwen3.5-2B", [2048, 24, 8, 2, 256, 6144, 248_320], 1e7, qwen35(16)),
    llama("qwen3.5-4b", "qwen35", "Qwen/Qwen3.5-4B", [2560, 32, 16, 4, 256, 9216, 248_320], 1e7, qwen35(32)),
    // head_dim: the global layers' (512); n_ff: the layers' own before
    // the shared ones.
    llama("gemma-4-e2b", "gemma4", "google/gemma-4-E2B-it", [1536, 35, 8, 1, 512, 6144, 262_144], 1e6, gemma4(5, 20, true)),
    llama("gemma-4-e4b", "gemma4", "google/gemma-4-E4B-it", [2560, 42, 8, 2, 512, 10240, 262_144], 1e6, gemma4(6, 18, false)),
    // The vocabulary as llama.cpp's converter pads it (262,144 text
    // tokens + 256 vision/audio slots).
    llama("gemma-3n-e2b", "gemma3n", "google/gemma-3n-E2B-it", [2048, 30, 8, 2, 256, 8192, 262_400], 1e6, Extra::Gemma3n { window: 512, shared: 10 }),
    llama("gemma-3n-e4b", "gemma3n", "google/gemma-3n-E4B-it", [2048, 35, 8, 2, 256, 16384, 262_400], 1e6, Extra::Gemma3n { window: 512, shared: 15 }),
];

/// Gemma 3n's fixed AltUp, LAuReL and per-layer sizes.
const GEMMA3N_STREAMS: usize = 4;
const GEMMA3N_LAUREL: usize = 64;
const GEMMA3N_PER_LAYER: usize = 256;

/// Gemma 4 E2B/E4B: sliding heads of 256, a window of 512, per-layer
/// embeddings of 256.
const fn gemma4(full_every: usize, shared: usize, double_ff: bool) -> Extra {
    Extra::Gemma4 { full_every, head_swa: 256, window: 512, shared, double_ff, per_layer: 256 }
}

/// Qwen 3.5's linear attention (all sizes: 16 key heads of 128, a 4-tap
/// convolution, full attention every 4th layer, 64 of 256 dimensions
/// rotated in sections 11/11/10); value heads differ.
const fn qwen35(v_heads: usize) -> Extra {
    Extra::Qwen35 { k_heads: 16, v_heads, head: 128, taps: 4, interval: 4, rot: 64, sections: [11, 11, 10, 0] }
}

/// The model called `name`, if [`LIKE`] has it.
pub fn find(name: &str) -> Option<&'static Like> {
    LIKE.iter().find(|l| l.name.eq_ignore_ascii_case(name))
}

/// The names of [`LIKE`], comma-separated (for error messages).
pub fn names() -> String {
    LIKE.iter().map(|l| l.name).collect::<Vec<_>>().join(", ")
}

/// Why a model could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("unknown model {0:?}; known: {known}", known = names())]
    UnknownName(String),
    #[error(transparent)]
    Rules(#[from] crate::quantize::RuleError),
    #[error(transparent)]
    Gguf(#[from] edgewasm_gguf::GgufError),
}

/// A tensor before its type is chosen: name, ggml dims, and how to fill
/// a float version of it.
struct Plan {
    name: String,
    dims: Vec<u64>,
    fill: Fill,
}

#[derive(Clone, Copy)]
enum Fill {
    /// Uniform weights of variance 1/cols.
    Matrix,
    /// `center` everywhere (norm weights 1, biases 0, decays < 0).
    Const(f32),
    /// Gemma 4's `rope_freqs`, as its converter writes them: 1 for the
    /// first quarter of the pairs, 1e30 (still) for the rest.
    QuarterTurns,
}

impl Like {
    /// Gemma 4's layer kinds: `(sliding, own KV, FFN width)` per layer.
    fn gemma4_layers(&self) -> Vec<(bool, bool, usize)> {
        let Extra::Gemma4 { full_every, shared, double_ff, .. } = self.extra else { return Vec::new() };
        (0..self.n_layer)
            .map(|l| {
                let own = l < self.n_layer - shared;
                (l % full_every != full_every - 1, own, if double_ff && !own { 2 * self.n_ff } else { self.n_ff })
            })
            .collect()
    }

    /// Gemma 4's tensors, in the converter's order.
    fn gemma4_tensors(&self, t: &mut Vec<Plan>) {
        let Extra::Gemma4 { head_swa, per_layer, .. } = self.extra else { return };
        let (d, p) = (self.n_embd as u64, per_layer as u64);
        let mut push = |name: String, dims: &[u64], fill: Fill| t.push(Plan { name, dims: dims.to_vec(), fill });
        let wide = p * self.n_layer as u64;
        push("token_embd.weight".into(), &[d, self.n_vocab as u64], Fill::Matrix);
        push("per_layer_token_embd.weight".into(), &[wide, self.n_vocab as u64], Fill::Matrix);
        push("per_layer_model_proj.weight".into(), &[d, wide], Fill::Matrix);
        push("per_layer_proj_norm.weight".into(), &[p], Fill::Const(1.0));
        push("rope_freqs.weight".into(), &[self.head_dim as u64 / 2], Fill::QuarterTurns);
        for (l, (sliding, own, ff)) in self.gemma4_layers().into_iter().enumerate() {
            let n = |s: &str| format!("blk.{l}.{s}");
            let hd = if sliding { head_swa } else { self.head_dim } as u64;
            let (qd, kd, ff) = (self.n_head as u64 * hd, self.n_head_kv as u64 * hd, ff as u64);
            gemma_layer(&mut push, l, [d, hd, qd, kd, ff, p], own);
            push(n("layer_output_scale.weight"), &[1], Fill::Const(1.0));
        }
        push("output_norm.weight".into(), &[d], Fill::Const(1.0));
    }

    /// Gemma 3n's sliding layers: all but every fifth.
    fn gemma3n_sliding(&self) -> Vec<bool> {
        (0..self.n_layer).map(|l| l % 5 != 4).collect()
    }

    /// Gemma 3n's tensors, in the converter's order.
    fn gemma3n_tensors(&self, t: &mut Vec<Plan>) {
        // (The converter writes K and V for the shared layers too; llama.cpp
        // loads them and reads the earlier layers' cache.)
        let (d, p, a, r) = (self.n_embd as u64, GEMMA3N_PER_LAYER as u64, GEMMA3N_STREAMS as u64, GEMMA3N_LAUREL as u64);
        let (hd, f) = (self.head_dim as u64, self.n_ff as u64);
        let (qd, kd) = (self.n_head as u64 * hd, self.n_head_kv as u64 * hd);
        let mut push = |name: String, dims: &[u64], fill: Fill| t.push(Plan { name, dims: dims.to_vec(), fill });
        let wide = p * self.n_layer as u64;
        push("token_embd.weight".into(), &[d, self.n_vocab as u64], Fill::Matrix);
        push("per_layer_token_embd.weight".into(), &[wide, self.n_vocab as u64], Fill::Matrix);
        push("per_layer_model_proj.weight".into(), &[d, wide], Fill::Matrix);
        push("per_layer_proj_norm.weight".into(), &[p], Fill::Const(1.0));
        push("altup_proj.weight".into(), &[d, d, a - 1], Fill::Matrix);
        push("altup_unembd_proj.weight".into(), &[d, d, a - 1], Fill::Matrix);
        for l in 0..self.n_layer {
            let n = |s: &str| format!("blk.{l}.{s}");
            gemma_layer(&mut push, l, [d, hd, qd, kd, f, p], true);
            push(n("altup_correct_coef.weight"), &[a, a], Fill::Matrix);
            push(n("altup_correct_scale.weight"), &[d], Fill::Const(1.0));
            push(n("altup_predict_coef.weight"), &[a, a * a], Fill::Matrix);
            push(n("altup_router.weight"), &[d, a], Fill::Matrix);
            push(n("altup_router_norm.weight"), &[d], Fill::Const(1.0));
            push(n("laurel_l.weight"), &[d, r], Fill::Matrix);
            push(n("laurel_r.weight"), &[r, d], Fill::Matrix);
            push(n("laurel_post_norm.weight"), &[d], Fill::Const(1.0));
        }
        push("output_norm.weight".into(), &[d], Fill::Const(1.0));
    }

    /// Every tensor of the model, in the converter's order.
    fn tensors(&self) -> Vec<Plan> {
        if let Extra::Gemma4 { .. } = self.extra {
            let mut t = Vec::new();
            self.gemma4_tensors(&mut t);
            return t;
        }
        if let Extra::Gemma3n { .. } = self.extra {
            let mut t = Vec::new();
            self.gemma3n_tensors(&mut t);
            return t;
        }
        let (d, hd, f) = (self.n_embd as u64, self.head_dim as u64, self.n_ff as u64);
        let (qd, kd) = (self.n_head as u64 * hd, self.n_head_kv as u64 * hd);
        let mut t = Vec::new();
        let mut push = |name: String, dims: &[u64], fill: Fill| t.push(Plan { name, dims: dims.to_vec(), fill });
        push("token_embd.weight".into(), &[d, self.n_vocab as u64], Fill::Matrix);
        for l in 0..self.n_layer {
            let n = |s: &str| format!("blk.{l}.{s}");
            push(n("attn_norm.weight"), &[d], Fill::Const(1.0));
            let attends = match self.extra {
                Extra::Lfm2 { attention, .. } => attention.contains(&l),
                Extra::Qwen35 { interval, .. } => (l + 1) % interval == 0,
                _ => true,
            };
            match self.extra {
                Extra::Lfm2 { taps, .. } if !attends => {
                    push(n("shortconv.conv.weight"), &[taps as u64, d], Fill::Matrix);
                    push(n("shortconv.in_proj.weight"), &[d, 3 * d], Fill::Matrix);
                    push(n("shortconv.out_proj.weight"), &[d, d], Fill::Matrix);
                }
                Extra::Qwen35 { k_heads, v_heads, head, taps, .. } if !attends => {
                    let (kd, vd, hv) = ((k_heads * head) as u64, (v_heads * head) as u64, v_heads as u64);
                    push(n("attn_qkv.weight"), &[d, 2 * kd + vd], Fill::Matrix);
                    push(n("attn_gate.weight"), &[d, vd], Fill::Matrix);
                    push(n("ssm_conv1d.weight"), &[taps as u64, 2 * kd + vd], Fill::Matrix);
                    push(n("ssm_dt.bias"), &[hv], Fill::Const(0.0));
                    push(n("ssm_a"), &[hv], Fill::Const(-1.0));
                    push(n("ssm_beta.weight"), &[d, hv], Fill::Matrix);
                    push(n("ssm_alpha.weight"), &[d, hv], Fill::Matrix);
                    push(n("ssm_norm.weight"), &[head as u64], Fill::Const(1.0));
                    push(n("ssm_out.weight"), &[vd, d], Fill::Matrix);
                }
                Extra::Phi3 { .. } => push(n("attn_qkv.weight"), &[d, qd + 2 * kd], Fill::Matrix),
                _ => {
                    let q_rows = if matches!(self.extra, Extra::Qwen35 { .. }) { 2 * qd } else { qd };
                    push(n("attn_q.weight"), &[d, q_rows], Fill::Matrix);
                    push(n("attn_k.weight"), &[d, kd], Fill::Matrix);
                    push(n("attn_v.weight"), &[d, kd], Fill::Matrix);
                    if matches!(self.extra, Extra::QkvBias) {
                        push(n("attn_q.bias"), &[qd], Fill::Const(0.0));
                        push(n("attn_k.bias"), &[kd], Fill::Const(0.0));
                        push(n("attn_v.bias"), &[kd], Fill::Const(0.0));
                    }
                }
            }
            if attends {
                if matches!(self.extra, Extra::QkNorm | Extra::Lfm2 { .. } | Extra::Qwen35 { .. }) {
                    push(n("attn_q_norm.weight"), &[hd], Fill::Const(1.0));
                    push(n("attn_k_norm.weight"), &[hd], Fill::Const(1.0));
                }
                push(n("attn_output.weight"), &[qd, d], Fill::Matrix);
            }
            if matches!(self.extra, Extra::Gemma2 { .. }) {
                push(n("post_attention_norm.weight"), &[d], Fill::Const(1.0));
                push(n("post_ffw_norm.weight"), &[d], Fill::Const(1.0));
            }
            let ffn_norm = if matches!(self.extra, Extra::Qwen35 { .. }) { "post_attention_norm.weight" } else { "ffn_norm.weight" };
            push(n(ffn_norm), &[d], Fill::Const(1.0));
            if matches!(self.extra, Extra::Phi3 { .. }) {
                push(n("ffn_up.weight"), &[d, 2 * f], Fill::Matrix);
            } else {
                push(n("ffn_gate.weight"), &[d, f], Fill::Matrix);
                push(n("ffn_up.weight"), &[d, f], Fill::Matrix);
            }
            push(n("ffn_down.weight"), &[f, d], Fill::Matrix);
        }
        let out_norm = if matches!(self.extra, Extra::Lfm2 { .. }) { "token_embd_norm.weight" } else { "output_norm.weight" };
        push(out_norm.into(), &[d], Fill::Const(1.0));
        if !self.tied {
            push("output.weight".into(), &[d, self.n_vocab as u64], Fill::Matrix);
        }
        if let Extra::Llama3 = self.extra {
            push("rope_freqs.weight".into(), &[hd / 2], Fill::Const(1.0));
        }
        if let Extra::Phi3 { .. } = self.extra {
            push("rope_factors_long.weight".into(), &[hd / 2], Fill::Const(1.0));
            push("rope_factors_short.weight".into(), &[hd / 2], Fill::Const(1.0));
        }
        t
    }

    /// The `{arch}.*` keys, without the prefix.
    fn keys(&self) -> Vec<(String, Value)> {
        let u = |v: usize| Value::U32(v as u32);
        let mut k: Vec<(&str, Value)> = vec![
            ("context_length", u(32768)),
            ("embedding_length", u(self.n_embd)),
            ("block_count", u(self.n_layer)),
            ("feed_forward_length", u(self.n_ff)),
            ("attention.head_count", u(self.n_head)),
            ("attention.head_count_kv", u(self.n_head_kv)),
            ("attention.key_length", u(self.head_dim)),
            ("attention.value_length", u(self.head_dim)),
            ("attention.layer_norm_rms_epsilon", Value::F32(1e-6)),
            ("rope.freq_base", Value::F32(self.rope_base)),
        ];
        match self.extra {
            Extra::Gemma2 { window } => {
                k.push(("attention.sliding_window", u(window)));
                k.push(("attn_logit_softcapping", Value::F32(50.0)));
                k.push(("final_logit_softcapping", Value::F32(30.0)));
            }
            Extra::Phi3 { n_ctx_orig } => {
                k.push(("rope.dimension_count", u(self.head_dim)));
                k.push(("rope.scaling.original_context_length", u(n_ctx_orig)));
                k.push(("rope.scaling.attn_factor", Value::F32(1.19)));
                k.retain(|(name, _)| *name != "context_length");
                k.push(("context_length", u(131072)));
            }
            Extra::Lfm2 { attention, taps } => {
                let heads = (0..self.n_layer).map(|l| if attention.contains(&l) { self.n_head_kv as i32 } else { 0 }).collect();
                k.retain(|(name, _)| *name != "attention.head_count_kv");
                k.push(("attention.head_count_kv", Value::Array(Array::I32(heads))));
                k.push(("shortconv.l_cache", u(taps)));
            }
            Extra::Gemma4 { head_swa, window, shared, double_ff, per_layer, .. } => {
                let layers = self.gemma4_layers();
                k.push(("attention.sliding_window", u(window)));
                k.push(("attention.sliding_window_pattern", Value::Array(Array::Bool(layers.iter().map(|l| l.0).collect()))));
                k.push(("attention.key_length_swa", u(head_swa)));
                k.push(("attention.value_length_swa", u(head_swa)));
                k.push(("rope.dimension_count", u(self.head_dim)));
                k.push(("rope.dimension_count_swa", u(head_swa)));
                k.push(("rope.freq_base_swa", Value::F32(1e4)));
                k.push(("attention.shared_kv_layers", u(shared)));
                k.push(("embedding_length_per_layer_input", u(per_layer)));
                k.push(("final_logit_softcapping", Value::F32(30.0)));
                if double_ff {
                    k.retain(|(name, _)| *name != "feed_forward_length");
                    k.push(("feed_forward_length", Value::Array(Array::I32(layers.iter().map(|l| l.2 as i32).collect()))));
                }
                k.retain(|(name, _)| *name != "context_length");
                k.push(("context_length", u(131_072)));
            }
            Extra::Gemma3n { window, shared } => {
                k.push(("attention.sliding_window", u(window)));
                k.push(("attention.sliding_window_pattern", Value::Array(Array::Bool(self.gemma3n_sliding()))));
                k.push(("rope.freq_base_swa", Value::F32(1e4)));
                k.push(("attention.shared_kv_layers", u(shared)));
                k.push(("embedding_length_per_layer_input", u(GEMMA3N_PER_LAYER)));
                k.push(("altup.num_inputs", u(GEMMA3N_STREAMS)));
                k.push(("altup.active_idx", u(0)));
                // icdf(0.95) for the first 10 layers, −∞ (dense) after.
                let sparsity = (0..self.n_layer).map(|l| if l < 10 { 1.644_853_4 } else { f32::NEG_INFINITY }).collect();
                k.push(("activation_sparsity_scale", Value::Array(Array::F32(sparsity))));
                k.push(("final_logit_softcapping", Value::F32(30.0)));
                // One width per layer, as the converter writes Gemma 3n's.
                k.retain(|(name, _)| *name != "feed_forward_length");
                k.push(("feed_forward_length", Value::Array(Array::I32(vec![self.n_ff as i32; self.n_layer]))));
            }
            Extra::Qwen35 { k_heads, v_heads, head, taps, interval, rot, sections } => {
                k.push(("ssm.conv_kernel", u(taps)));
                k.push(("ssm.state_size", u(head)));
                k.push(("ssm.group_count", u(k_heads)));
                k.push(("ssm.time_step_rank", u(v_heads)));
                k.push(("ssm.inner_size", u(v_heads * head)));
                k.push(("full_attention_interval", u(interval)));
                k.push(("rope.dimension_count", u(rot)));
                k.push(("rope.dimension_sections", Value::Array(Array::I32(sections.to_vec()))));
            }
            _ => {}
        }
        k.into_iter().map(|(name, v)| (format!("{}.{name}", self.arch), v)).collect()
    }

    /// The model as a GGUF writer ready to write: `ftype`'s tensor types,
    /// tiled random weights, a synthetic vocabulary of the real size.
    pub fn build(&self, ftype: Ftype) -> Result<GgufWriter, SynthError> {
        let mut w = GgufWriter::new();
        w.add_metadata("general.architecture", Value::from(self.arch))?;
        w.add_metadata("general.name", Value::from(format!("random weights like {}", self.name)))?;
        for (k, v) in self.keys() {
            w.add_metadata(k, v)?;
        }
        for (k, v) in vocab(self.n_vocab) {
            w.add_metadata(k, v)?;
        }
        let mut plans = self.tensors();
        plans.sort_by(|a, b| llama_order(&a.name, &b.name));
        let descs: Vec<TensorDesc> = plans.iter().map(|p| TensorDesc { name: p.name.clone(), dims: p.dims.clone(), ty: GgmlType::F32 }).collect();
        let info = ModelInfo { arch: self.arch.into(), n_layer: self.n_layer as u32, n_head: self.n_head as u32, n_head_kv: self.n_head_kv as u32, n_expert: 0 };
        let choices = choose_types(&info, ftype, false, &descs)?;
        let mut rows = RowPool::default();
        for (p, c) in plans.iter().zip(choices) {
            let cols = p.dims[0] as usize;
            let n_rows = p.dims[1..].iter().product::<u64>() as usize;
            let floats = |v: Vec<f32>| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
            let (ty, data) = match p.fill {
                Fill::Const(v) => (GgmlType::F32, floats(vec![v; cols * n_rows])),
                Fill::QuarterTurns => (GgmlType::F32, floats((0..cols).map(|i| if i < cols / 4 { 1.0 } else { 1e30 }).collect())),
                Fill::Matrix => (c.ty, rows.tiled(c.ty, cols, n_rows)),
            };
            w.add_tensor(p.name.clone(), ty, &p.dims, data)?;
        }
        w.add_metadata("general.file_type", Value::U32(ftype.id()))?;
        Ok(w)
    }
}

/// A Gemma 4 / Gemma 3n layer's attention, FFN and per-layer-block
/// tensors (`dims`: width, head, query and key widths, FFN, per-layer
/// width); `own`: it has K/V projections of its own.
fn gemma_layer(push: &mut impl FnMut(String, &[u64], Fill), l: usize, dims: [u64; 6], own: bool) {
    let [d, hd, qd, kd, ff, p] = dims;
    let n = |s: &str| format!("blk.{l}.{s}");
    push(n("attn_norm.weight"), &[d], Fill::Const(1.0));
    push(n("attn_q.weight"), &[d, qd], Fill::Matrix);
    push(n("attn_q_norm.weight"), &[hd], Fill::Const(1.0));
    if own {
        push(n("attn_k.weight"), &[d, kd], Fill::Matrix);
        push(n("attn_v.weight"), &[d, kd], Fill::Matrix);
        push(n("attn_k_norm.weight"), &[hd], Fill::Const(1.0));
    }
    push(n("attn_output.weight"), &[qd, d], Fill::Matrix);
    push(n("post_attention_norm.weight"), &[d], Fill::Const(1.0));
    push(n("ffn_norm.weight"), &[d], Fill::Const(1.0));
    push(n("ffn_gate.weight"), &[d, ff], Fill::Matrix);
    push(n("ffn_up.weight"), &[d, ff], Fill::Matrix);
    push(n("ffn_down.weight"), &[ff, d], Fill::Matrix);
    push(n("post_ffw_norm.weight"), &[d], Fill::Const(1.0));
    push(n("inp_gate.weight"), &[d, p], Fill::Matrix);
    push(n("proj.weight"), &[p, d], Fill::Matrix);
    push(n("post_norm.weight"), &[d], Fill::Const(1.0));
}

/// Distinct random rows per (type, width), quantized once and tiled.
#[derive(Default)]
struct RowPool {
    seed: u64,
}

/// Distinct rows a matrix is tiled from.
const POOL_ROWS: usize = 16;

impl RowPool {
    fn tiled(&mut self, ty: GgmlType, cols: usize, n_rows: usize) -> Vec<u8> {
        let row_bytes = ty.row_bytes(cols as u64).expect("the rules chose a type that fits the row") as usize;
        let scale = 3f32.sqrt() / (cols as f32).sqrt();
        let pool: Vec<Vec<u8>> = (0..POOL_ROWS.min(n_rows))
            .map(|_| {
                let values: Vec<f32> = (0..cols).map(|_| (self.next() * 2.0 - 1.0) * scale).collect();
                let mut row = vec![0u8; row_bytes];
                edgewasm_kernels::quantize_row(ty, &values, &mut row);
                row
            })
            .collect();
        let mut out = Vec::with_capacity(row_bytes * n_rows);
        for r in 0..n_rows {
            out.extend_from_slice(&pool[r % pool.len()]);
        }
        out
    }

    /// A uniform value in [0, 1) (xorshift).
    fn next(&mut self) -> f32 {
        if self.seed == 0 {
            self.seed = 0x9E37_79B9_7F4A_7C15;
        }
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        (self.seed >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// A SentencePiece vocabulary of `n` tokens: `<unk>`, `<s>`, `</s>`, the
/// 256 byte tokens, then distinct pieces.
fn vocab(n: usize) -> Vec<(String, Value)> {
    let mut tokens = vec!["<unk>".to_string(), "<s>".into(), "</s>".into()];
    tokens.extend((0..=255u8).map(|b| format!("<0x{b:02X}>")));
    let specials = tokens.len();
    tokens.extend((specials..n).map(|i| format!("\u{2581}w{i}")));
    tokens.truncate(n);
    let scores = (0..n).map(|i| -(i as f32)).collect();
    let types = (0..n).map(|i| match i {
        0 => 2,
        1 | 2 => 3,
        i if i < specials => 6,
        _ => 1,
    });
    vec![
        ("tokenizer.ggml.model".into(), Value::from("llama")),
        ("tokenizer.ggml.tokens".into(), Value::Array(Array::String(tokens))),
        ("tokenizer.ggml.scores".into(), Value::Array(Array::F32(scores))),
        ("tokenizer.ggml.token_type".into(), Value::Array(Array::I32(types.collect()))),
        ("tokenizer.ggml.unknown_token_id".into(), Value::U32(0)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
    ]
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use edgewasm_gguf::GgufFile;

    use super::*;
    use crate::{Context, Model, ThreadPool};

    /// Each shape, cut to a few layers and a small vocabulary (every
    /// layer kind kept), loads with the configuration it describes, and
    /// runs: the tensors and keys are those the architecture needs.
    #[test]
    fn every_like_model_loads_and_runs() {
        for like in LIKE {
            let mut l = *like;
            l.n_layer = match l.extra {
                Extra::Lfm2 { .. } => 3,
                Extra::Qwen35 { .. } => 4,
                // Two periods, the second shared: sliding, full, sliding,
                // full.
                Extra::Gemma4 { head_swa, window, per_layer, double_ff, .. } => {
                    l.extra = Extra::Gemma4 { full_every: 2, head_swa, window, shared: 2, double_ff, per_layer };
                    4
                }
                // Four sliding and a global layer, then two sharing the
                // last sliding one's keys and values.
                Extra::Gemma3n { window, .. } => {
                    l.extra = Extra::Gemma3n { window, shared: 2 };
                    7
                }
                _ => 2,
            };
            l.n_vocab = 1000;
            let bytes = l.build(Ftype::Q4_K_M).unwrap().to_bytes().unwrap();
            let m = Model::from_gguf(Arc::new(GgufFile::from_bytes(&bytes).unwrap())).unwrap_or_else(|e| panic!("{}: {e}", l.name));
            let c = m.config();
            assert_eq!((c.arch.as_str(), c.n_embd, c.n_head, c.n_head_kv, c.k_dim, c.layer_ff[0], c.n_vocab), (l.arch, l.n_embd, l.n_head, l.n_head_kv, l.head_dim, l.n_ff, 1000), "{}", l.name);
            if let Extra::Gemma4 { .. } = l.extra {
                assert_eq!(c.kv_from, [0, 1, 0, 1], "{}", l.name);
                assert_eq!(c.layer_heads[0], (256, 256), "{}", l.name);
            }
            if let Extra::Gemma3n { .. } = l.extra {
                assert_eq!(c.kv_from, [0, 1, 2, 3, 4, 3, 3], "{}", l.name);
                assert_eq!(c.altup.as_ref().map(|a| (a.inputs, a.laurel_rank)), Some((4, 64)), "{}", l.name);
            }
            if let Extra::Qwen35 { v_heads, head, .. } = l.extra {
                let dn = c.delta_net.unwrap();
                assert_eq!((dn.n_v_heads, dn.head_dim), (v_heads, head), "{}", l.name);
                assert_eq!(c.kv_layers, [false, false, false, true], "{}", l.name);
            }
            let mut ctx = Context::new(Arc::new(m), Arc::new(ThreadPool::new(1)), 16).unwrap();
            let logits = ctx.eval(&[5, 6, 7], false).unwrap();
            assert!(logits.iter().all(|v| v.is_finite()), "{}", l.name);
        }
    }

    /// Names are found case-insensitively; the file type mixes as
    /// llama-quantize does (Q4_K_M keeps the tied embedding at Q6_K).
    #[test]
    fn names_and_mixtures() {
        assert_eq!(find("Qwen3.5-0.8B").unwrap().name, "qwen3.5-0.8b");
        assert!(find("gpt-5").is_none());
        let mut l = *find("qwen3-0.6b").unwrap();
        l.n_layer = 2;
        let bytes = l.build(Ftype::Q4_K_M).unwrap().to_bytes().unwrap();
        let g = GgufFile::from_bytes(&bytes).unwrap();
        let ty = |n: &str| g.tensor(n).unwrap().ty;
        assert_eq!(ty("token_embd.weight"), GgmlType::Q6_K);
        assert_eq!(ty("blk.0.attn_q.weight"), GgmlType::Q4_K);
        assert_eq!(ty("blk.0.attn_norm.weight"), GgmlType::F32);
    }
}
