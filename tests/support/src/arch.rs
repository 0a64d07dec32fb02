//! Tiny random-weight models of every architecture the engine runs, written
//! with our GGUF writer: the tensors and keys llama.cpp's converters write
//! for each, with hyperparameters chosen to exercise every feature (GQA,
//! biases, norms, soft-caps, a sliding window shorter than the test
//! context, RoPE factors and scaling, partial rotation, NoPE layers,
//! experts with and without a shared one), so that the same file can be
//! run by llama.cpp as the oracle.
//!
//! Names are `general.architecture` values, plus `llama-moe`: `llama`
//! with experts (Mixtral, OLMoE).

use edgewasm_gguf::{Array, GgmlType, GgufFile, GgufWriter, Value};

use crate::{peer_dir, quantized, require, Rng};

/// Every name [`TinyArch::new`] knows: each architecture the engine runs,
/// and `llama-moe`.
pub const TINY_ARCHS: &[&str] = &[
    "llama", "granite", "smollm3", "internlm2", "qwen2", "qwen3", "phi3", "gemma", "gemma2", "gemma3", "starcoder2", "llama-moe", "qwen2moe", "qwen3moe",
    "granitemoe", "lfm2", "lfm2moe", "qwen35", "qwen35moe", "gemma4", "gemma3n",
];

/// `tokenizer.*` keys and the vocabulary size of llama.cpp's
/// `models/ggml-vocab-{name}.gguf` (in the peer's sources).
pub fn llama_cpp_vocab(name: &str) -> (Vec<(String, Value)>, usize) {
    let path = peer_dir().join("src/vendor/llama.cpp/models").join(format!("ggml-vocab-{name}.gguf"));
    require(path.is_file(), &format!("{} is missing: run `./just peer`", path.display()));
    let g = GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let keys: Vec<(String, Value)> = g.metadata().iter().filter(|(k, _)| k.starts_with("tokenizer.")).cloned().collect();
    let n = g.get_str_array("tokenizer.ggml.tokens").unwrap().unwrap().len();
    (keys, n)
}

/// The llama.cpp vocabulary a tiny model of `arch` gets: its family's
/// (Llama 3's 128k BPE, Qwen's, Phi-3's SentencePiece...), GPT-2's where
/// llama.cpp ships none of the family.
pub fn family_vocab(arch: &str) -> &'static str {
    match arch {
        "llama" | "smollm3" => "llama-bpe",
        "qwen2" | "qwen3" => "qwen2",
        "phi3" => "phi-3",
        // Gemma 4's own vocabulary has 262k tokens: its per-layer
        // embedding table alone would be a gigabyte of F32 in the tiny
        // model, so it gets SentencePiece's 32k.
        "gemma" | "gemma2" | "gemma3" | "gemma3n" | "gemma4" | "internlm2" => "llama-spm",
        "starcoder2" => "starcoder",
        "qwen35" | "qwen35moe" => "qwen35",
        _ => "gpt-2",
    }
}

/// A tiny `arch` model (F32 or quantized) with its family's llama.cpp vocabulary.
pub fn tiny_with_family_vocab(arch: &str, ty: GgmlType) -> TinyArch {
    let (keys, n_vocab) = llama_cpp_vocab(family_vocab(arch));
    TinyArch::new(arch, ty, keys, n_vocab)
}

/// What a layer of an architecture has beyond the llama layer.
#[derive(Clone, Copy, Debug, Default)]
struct Features {
    /// LayerNorm with biases instead of RMSNorm.
    layer_norm: bool,
    qkv_bias: bool,
    out_bias: bool,
    ffn_bias: bool,
    fused_qkv: bool,
    /// Gate and up in one `ffn_up` (gate first).
    fused_gate_up: bool,
    /// `ffn_up`/`ffn_down` only.
    mlp: bool,
    qk_norm: bool,
    post_norms: bool,
    /// Its own `output.weight` (else tied to the embedding).
    output: bool,
    output_bias: bool,
    rope_freqs: bool,
    longrope: bool,
    /// `ffn_gate_inp_shexp` scales the shared expert (Qwen 2 MoE).
    shared_gate: bool,
    /// Even layers are gated short convolutions (no KV heads), odd ones
    /// attend; the final norm is `token_embd_norm` (LFM2).
    short_conv: bool,
    /// Gated delta-net layers, but every `DELTA_ATTN_EVERY`-th, which
    /// attends with a gated query, Q/K norms and multi-section RoPE; the
    /// pre-FFN norm is `post_attention_norm` (Qwen 3.5).
    delta_net: bool,
    /// Every token embedding has a large first value, and each layer's
    /// router favours a pair of experts (another pair in each layer) in
    /// proportion to it: softmax routing without near-ties (see
    /// `STEADY_*`).
    steady_route: bool,
    /// Gemma 4: sliding layers with narrower heads, values normed, the
    /// last layers reading earlier layers' keys and values, per-layer FFN
    /// widths, per-layer embeddings and output scales (see `GEMMA4_*`).
    gemma4: bool,
    /// Gemma 3n: AltUp streams, LAuReL, sparse FFNs and per-layer
    /// embeddings (see `GEMMA3N_*`).
    gemma3n: bool,
}

/// The tiny Gemma 4: layers 0 and 2 slide (heads of 64, all rotated,
/// base 10⁴), 1 and 3 attend globally (heads of 128, a quarter of the
/// pairs turning through `rope_freqs`); layers 2 and 3 share the keys and
/// values of 0 and 1 and have twice the FFN width (as E2B's); per-layer
/// embeddings of 256 per layer.
const GEMMA4_SWA: [bool; 4] = [true, false, true, false];
const GEMMA4_HEAD: (usize, usize) = (64, 128);
const GEMMA4_FF: [usize; 4] = [512, 512, 1024, 1024];
const GEMMA4_SHARED: usize = 2;
const GEMMA4_PER_LAYER: usize = 256;

/// The tiny Gemma 3n: layers 0, 1 and 3 slide (llama.cpp's period of 5
/// would leave only layer 4 global), all keep their own keys and values
/// (llama.cpp shares them only from layer 20 on) and all FFNs are sparse
/// (llama.cpp: the first 10), with the multiplier llama.cpp fixes; 4
/// streams, LAuReL of rank 64 and 256 per-layer values, the sizes
/// llama.cpp fixes.
const GEMMA3N_SWA: [bool; 4] = [true, true, false, true];
const GEMMA3N_STREAMS: usize = 4;
const GEMMA3N_LAUREL: usize = 64;
const GEMMA3N_PER_LAYER: usize = 256;
#[allow(clippy::excessive_precision)]
const GEMMA3N_SPARSITY: f32 = 1.644_853_353_500_366_2;

/// With [`Features::steady_route`]: the first embedding value of every
/// token, and the router weight that turns it into a lead for the layer's
/// pair. The residual's first value then stays large through the layers,
/// so the favoured pair leads the others by several times the spread of
/// the random part of the router's logits: the chosen set never sits near
/// a tie, where the rounding of quantized files (ours and llama.cpp's
/// alike) would flip it and swap whole experts between the two sides,
/// while the pair's weights still vary from token to token. (Softmax
/// gating has no selection bias to do this with, as LFM2 MoE's does.)
const STEADY_EMBD: f32 = 6.0;
const STEADY_ROUTER: f32 = 2.0;

/// The tiny Qwen 3.5 models' delta nets: 2 query/key heads, 4 value heads
/// (each value head shares a key head with another), heads of 64, a
/// convolution of 4 taps.
const DELTA_K_HEADS: usize = 2;
const DELTA_V_HEADS: usize = 4;
const DELTA_HEAD: usize = 64;
const DELTA_TAPS: usize = 4;

/// Taps of the tiny models' short convolutions (LFM2's `l_cache`).
const CONV_TAPS: usize = 3;

/// A mixture of experts in place of each layer's dense FFN.
#[derive(Clone, Copy, Debug)]
pub struct TinyExperts {
    pub count: usize,
    pub used: usize,
    /// Hidden width of each expert (written as `expert_feed_forward_length`
    /// where the architecture reads it, else it is `n_ff`).
    pub n_ff: usize,
    /// Hidden width of the shared expert, 0 for none.
    pub n_ff_shared: usize,
}

/// A tiny model of `arch`. `Default` fields give 3 layers of 4 heads (2 KV
/// heads) of 64 dimensions over `n_embd` 256, which every block type
/// (K-quants: 256 values per block) can hold.
#[derive(Clone, Debug)]
pub struct TinyArch {
    pub arch: String,
    /// Type of the matrices (the embedding too); norms and biases are F32.
    pub ty: GgmlType,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    pub n_layer: usize,
    pub seed: u64,
    /// `tokenizer.*` keys (from a llama.cpp vocab file).
    pub tokenizer: Vec<(String, Value)>,
    pub n_vocab: usize,
    /// Extra `{arch}.*` keys (without the prefix), set after the defaults.
    pub keys: Vec<(String, Value)>,
    /// Expert layers instead of dense FFNs.
    pub experts: Option<TinyExperts>,
}

impl TinyArch {
    /// The architecture's tiny model with its feature-exercising settings
    /// (`name`: an architecture, or `llama-moe`).
    pub fn new(name: &str, ty: GgmlType, tokenizer: Vec<(String, Value)>, n_vocab: usize) -> TinyArch {
        let arch = match name {
            "llama-moe" => "llama",
            a => a,
        };
        let mut t = TinyArch {
            arch: arch.to_string(),
            ty,
            n_embd: 256,
            n_head: 4,
            n_head_kv: 2,
            head_dim: 64,
            n_ff: 512,
            n_layer: 3,
            seed: 0x5eed_0000 ^ name.len() as u64,
            tokenizer,
            n_vocab,
            keys: Vec::new(),
            experts: None,
        };
        let key = |k: &str, v: Value| (k.to_string(), v);
        let granite = |t: &mut TinyArch| {
            t.keys.push(key("logit_scale", 4.0f32.into()));
            t.keys.push(key("embedding_scale", 6.0f32.into()));
            t.keys.push(key("residual_scale", 0.3f32.into()));
            t.keys.push(key("attention.scale", 0.05f32.into()));
        };
        // Experts 256 wide (K-quant blocks): Mixtral's and Granite's are
        // `n_ff` wide; Qwen 3 MoE's default to `n_ff / used`.
        match name {
            "llama-moe" => {
                t.n_ff = 256;
                t.experts = Some(TinyExperts { count: 4, used: 2, n_ff: 256, n_ff_shared: 0 });
            }
            "qwen2moe" => {
                t.keys.push(key("expert_feed_forward_length", 256u32.into()));
                t.keys.push(key("expert_shared_feed_forward_length", 512u32.into()));
                t.experts = Some(TinyExperts { count: 4, used: 2, n_ff: 256, n_ff_shared: 512 });
            }
            "qwen3moe" => {
                // Three of eight experts (a sum of more than two outputs),
                // 8 × 64 query values ≠ n_embd as Qwen 3.
                t.n_head = 8;
                t.n_ff = 768;
                t.experts = Some(TinyExperts { count: 8, used: 3, n_ff: 256, n_ff_shared: 0 });
            }
            "lfm2moe" => {
                // A dense first layer, then experts chosen by sigmoid
                // scores plus a selection bias.
                t.n_layer = 4;
                t.keys.push(key("expert_feed_forward_length", 256u32.into()));
                t.keys.push(key("expert_gating_func", 2u32.into()));
                t.keys.push(key("leading_dense_block_count", 1u32.into()));
                t.experts = Some(TinyExperts { count: 4, used: 2, n_ff: 256, n_ff_shared: 0 });
            }
            "qwen35moe" => {
                // Two of four experts and a gated shared expert; layers
                // 1 and 3 of 4 attend.
                t.n_layer = 4;
                t.keys.push(key("full_attention_interval", 2u32.into()));
                t.keys.push(key("expert_feed_forward_length", 256u32.into()));
                t.keys.push(key("expert_shared_feed_forward_length", 256u32.into()));
                t.experts = Some(TinyExperts { count: 4, used: 2, n_ff: 256, n_ff_shared: 256 });
            }
            "granitemoe" => {
                granite(&mut t);
                t.n_ff = 256;
                t.keys.push(key("expert_shared_feed_forward_length", 512u32.into()));
                t.experts = Some(TinyExperts { count: 4, used: 2, n_ff: 256, n_ff_shared: 512 });
            }
            _ => {}
        }
        if let Some(e) = t.experts {
            t.keys.push(key("expert_count", (e.count as u32).into()));
            t.keys.push(key("expert_used_count", (e.used as u32).into()));
        }
        match arch {
            // Llama 3.2-style rope_freqs are written as a tensor.
            "llama" => t.keys.push(key("rope.freq_base", 500_000.0f32.into())),
            "qwen3" => t.n_head = 8, // 8 × 64 = 512 query values ≠ n_embd
            "phi3" => {
                // Partial rotation (48 of 64) and longrope: the test context
                // (512) is longer than the original one, so the long
                // factors are used.
                t.keys.push(key("rope.dimension_count", 48u32.into()));
                t.keys.push(key("rope.scaling.original_context_length", 256u32.into()));
                t.keys.push(key("rope.scaling.attn_factor", 1.19f32.into()));
            }
            "gemma2" => {
                t.keys.push(key("attention.sliding_window", 8u32.into()));
                t.keys.push(key("attn_logit_softcapping", 5.0f32.into()));
                t.keys.push(key("final_logit_softcapping", 3.0f32.into()));
                t.keys.push(key("rope.freq_base_swa", 1000.0f32.into()));
            }
            "gemma3" => {
                t.keys.push(key("attention.sliding_window", 8u32.into()));
                t.keys.push(key("attention.sliding_window_pattern", 3u32.into()));
                t.keys.push(key("rope.freq_base", 1_000_000.0f32.into()));
                t.keys.push(key("rope.scaling.type", "linear".into()));
                t.keys.push(key("rope.scaling.factor", 8.0f32.into()));
            }
            "granite" => granite(&mut t),
            "smollm3" => t.n_layer = 4,
            "gemma4" => {
                t.n_layer = 4;
                t.head_dim = GEMMA4_HEAD.1;
                let (swa, full) = (GEMMA4_HEAD.0 as u32, GEMMA4_HEAD.1 as u32);
                t.keys.push(key("attention.sliding_window", 8u32.into()));
                t.keys.push(key("attention.sliding_window_pattern", Value::Array(Array::Bool(GEMMA4_SWA.to_vec()))));
                t.keys.push(key("attention.key_length_swa", swa.into()));
                t.keys.push(key("attention.value_length_swa", swa.into()));
                t.keys.push(key("rope.dimension_count", full.into()));
                t.keys.push(key("rope.dimension_count_swa", swa.into()));
                t.keys.push(key("rope.freq_base", 1_000_000.0f32.into()));
                t.keys.push(key("rope.freq_base_swa", 10_000.0f32.into()));
                t.keys.push(key("attention.shared_kv_layers", (GEMMA4_SHARED as u32).into()));
                t.keys.push(key("embedding_length_per_layer_input", (GEMMA4_PER_LAYER as u32).into()));
                t.keys.push(key("feed_forward_length", Value::Array(Array::I32(GEMMA4_FF.iter().map(|&f| f as i32).collect()))));
                // No `final_logit_softcapping`: both sides cap at 30.
            }
            "gemma3n" => {
                t.n_layer = 4;
                t.keys.push(key("attention.sliding_window", 8u32.into()));
                t.keys.push(key("attention.sliding_window_pattern", Value::Array(Array::Bool(GEMMA3N_SWA.to_vec()))));
                t.keys.push(key("rope.freq_base", 1_000_000.0f32.into()));
                t.keys.push(key("rope.freq_base_swa", 10_000.0f32.into()));
                t.keys.push(key("attention.shared_kv_layers", 0u32.into()));
                t.keys.push(key("embedding_length_per_layer_input", (GEMMA3N_PER_LAYER as u32).into()));
                t.keys.push(key("altup.num_inputs", (GEMMA3N_STREAMS as u32).into()));
                t.keys.push(key("altup.active_idx", 0u32.into()));
                t.keys.push(key("activation_sparsity_scale", Value::Array(Array::F32(vec![GEMMA3N_SPARSITY; 4]))));
                // One width per layer, as the converter writes Gemma 3n's.
                t.keys.push(key("feed_forward_length", Value::Array(Array::I32(vec![t.n_ff as i32; 4]))));
            }
            // Convolution, attention, convolution, attention.
            "lfm2" => t.n_layer = 4,
            // Layers 2 and 5 of 6 attend.
            "qwen35" => {
                t.n_layer = 6;
                t.keys.push(key("full_attention_interval", 3u32.into()));
            }
            _ => {}
        }
        if arch.starts_with("qwen35") {
            let shape = [("conv_kernel", DELTA_TAPS), ("group_count", DELTA_K_HEADS), ("time_step_rank", DELTA_V_HEADS), ("state_size", DELTA_HEAD)];
            for (k, v) in shape {
                t.keys.push(key(&format!("ssm.{k}"), (v as u32).into()));
            }
            t.keys.push(key("ssm.inner_size", ((DELTA_V_HEADS * DELTA_HEAD) as u32).into()));
            // 16 rotated pairs of 64; the sections leave pair 14 still
            // (the extra section) and wrap at 15 (time again).
            t.keys.push(key("rope.dimension_count", 32u32.into()));
            t.keys.push(key("rope.dimension_sections", Value::Array(Array::I32(vec![5, 5, 4, 1]))));
        }
        t
    }

    /// Leading dense layers of an expert model (`leading_dense_block_count`).
    fn dense_lead(&self) -> usize {
        match self.keys.iter().find(|(k, _)| k == "leading_dense_block_count") {
            Some((_, Value::U32(n))) => *n as usize,
            _ => 0,
        }
    }

    fn features(&self) -> Features {
        let f = Features::default();
        match self.arch.as_str() {
            // With experts (Mixtral-style): routing away from near-ties, as
            // Qwen 3.5 MoE's (on AVX2 hosts, where llama.cpp's Q8_0 dots
            // round differently, a near-tie moved the perplexity 0.150%).
            "llama" => Features { output: true, rope_freqs: true, steady_route: self.experts.is_some(), ..f },
            "granite" | "granitemoe" | "smollm3" => f,
            "internlm2" => Features { output: true, ..f },
            "qwen2" => Features { qkv_bias: true, output: true, output_bias: true, ..f },
            "qwen3" => Features { qk_norm: true, output: true, ..f },
            "qwen2moe" => Features { qkv_bias: true, output: true, shared_gate: true, ..f },
            // The tied output (llama.cpp's fallback).
            "qwen3moe" => Features { qk_norm: true, ..f },
            "phi3" => Features { fused_qkv: true, fused_gate_up: true, output: true, longrope: true, ..f },
            "gemma" => f,
            "gemma2" => Features { post_norms: true, ..f },
            "gemma3" => Features { qk_norm: true, post_norms: true, ..f },
            "lfm2" | "lfm2moe" => Features { qk_norm: true, short_conv: true, ..f },
            "qwen35" => Features { qk_norm: true, delta_net: true, output: true, ..f },
            "qwen35moe" => Features { qk_norm: true, delta_net: true, shared_gate: true, steady_route: true, ..f },
            "gemma4" => Features { qk_norm: true, post_norms: true, gemma4: true, ..f },
            "gemma3n" => Features { qk_norm: true, post_norms: true, gemma3n: true, ..f },
            "starcoder2" => Features { layer_norm: true, qkv_bias: true, out_bias: true, ffn_bias: true, mlp: true, output: true, ..f },
            other => panic!("TinyArch: no recipe for {other}"),
        }
    }

    /// The GGUF file's bytes.
    pub fn gguf(&self) -> Vec<u8> {
        let f = self.features();
        let a = &self.arch;
        let (d, hd) = (self.n_embd, self.head_dim);
        let mut kv: Vec<(String, Value)> = vec![
            ("general.architecture".into(), a.as_str().into()),
            ("general.name".into(), format!("tiny {a}").into()),
        ];
        let mut arch_keys: Vec<(String, Value)> = vec![
            ("block_count".into(), (self.n_layer as u32).into()),
            ("context_length".into(), 4096u32.into()),
            ("embedding_length".into(), (d as u32).into()),
            ("feed_forward_length".into(), (self.n_ff as u32).into()),
            ("attention.head_count".into(), (self.n_head as u32).into()),
            ("attention.head_count_kv".into(), (self.n_head_kv as u32).into()),
            ("attention.key_length".into(), (hd as u32).into()),
            ("attention.value_length".into(), (hd as u32).into()),
            ("rope.freq_base".into(), 10_000.0f32.into()),
        ];
        let every = match self.keys.iter().find(|(k, _)| k == "full_attention_interval") {
            Some((_, Value::U32(n))) => *n as usize,
            _ => 4,
        };
        let attends = |l: usize| match (f.short_conv, f.delta_net) {
            (true, _) => l % 2 == 1,
            (_, true) => (l + 1) % every == 0,
            _ => true,
        };
        if f.short_conv {
            let heads = (0..self.n_layer).map(|l| if attends(l) { self.n_head_kv as i32 } else { 0 }).collect();
            arch_keys.retain(|(k, _)| k != "attention.head_count_kv");
            arch_keys.push(("attention.head_count_kv".into(), Value::Array(Array::I32(heads))));
            arch_keys.push(("shortconv.l_cache".into(), (CONV_TAPS as u32).into()));
        }
        if f.layer_norm {
            arch_keys.push(("attention.layer_norm_epsilon".into(), 1e-5f32.into()));
        } else {
            arch_keys.push(("attention.layer_norm_rms_epsilon".into(), 1e-6f32.into()));
        }
        for (k, v) in &self.keys {
            arch_keys.retain(|(key, _)| key != k);
            arch_keys.push((k.clone(), v.clone()));
        }
        kv.extend(arch_keys.into_iter().map(|(k, v)| (format!("{a}.{k}"), v)));
        kv.extend(self.tokenizer.iter().cloned());
        let mut w = GgufWriter::new();
        for (k, v) in kv {
            w.add_metadata(k, v).expect("valid metadata");
        }

        let mut rng = Rng::new(self.seed);
        let ty = self.ty;
        // Uniform weights of variance 1/cols keep activations near unit
        // size through the layers, so rounding differences do not grow
        // from layer to layer.
        // `n` > 1: a 3-D tensor of `n` matrices (experts).
        let mut mat = |w: &mut GgufWriter, name: &str, cols: usize, rows: usize, n: usize| {
            let mut values = rng.f32s(rows * cols * n, 3f32.sqrt() / (cols as f32).sqrt());
            if f.steady_route && name == "token_embd.weight" {
                values.chunks_exact_mut(cols).for_each(|row| row[0] += STEADY_EMBD);
            }
            let dims: &[u64] = if n > 1 { &[cols as u64, rows as u64, n as u64] } else { &[cols as u64, rows as u64] };
            w.add_tensor(name, ty, dims, quantized(ty, &values, cols)).expect("valid tensor");
        };
        let mut rng_f32 = Rng::new(self.seed ^ 0x1234);
        let mut rng_v = Rng::new(self.seed ^ 0xabcd);
        let mut vec = |w: &mut GgufWriter, name: &str, n: usize, center: f32, spread: f32| {
            let v: Vec<f32> = rng_v.f32s(n, spread).into_iter().map(|x| center + x).collect();
            w.add_f32_tensor(name, &[n as u64], &v).expect("valid tensor");
        };
        let mut tensors_mat: Vec<(String, usize, usize)> = vec![("token_embd.weight".into(), d, self.n_vocab)];
        // Expert tensors `{cols, rows, experts}`, and F32 matrices.
        let mut tensors_exp: Vec<(String, usize, usize, usize)> = Vec::new();
        let mut tensors_f32: Vec<(String, Vec<usize>)> = Vec::new();
        let mut tensors_vec: Vec<(String, usize, f32, f32)> = Vec::new();
        let norm = |v: &mut Vec<(String, usize, f32, f32)>, name: String| {
            v.push((format!("{name}.weight"), d, 1.0, 0.2));
            if f.layer_norm {
                v.push((format!("{name}.bias"), d, 0.0, 0.1));
            }
        };
        let first_shared = self.n_layer - if f.gemma4 { GEMMA4_SHARED } else { 0 };
        let per_layer = if f.gemma3n { GEMMA3N_PER_LAYER } else { GEMMA4_PER_LAYER };
        for l in 0..self.n_layer {
            let n = |s: &str| format!("blk.{l}.{s}");
            let hd = if f.gemma4 && GEMMA4_SWA[l] { GEMMA4_HEAD.0 } else { hd };
            let (qd, kd) = (self.n_head * hd, self.n_head_kv * hd);
            let own_kv = l < first_shared;
            let n_ff = if f.gemma4 { GEMMA4_FF[l] } else { self.n_ff };
            norm(&mut tensors_vec, n("attn_norm"));
            if !attends(l) && f.delta_net {
                let (kd, vd, hv) = (DELTA_K_HEADS * DELTA_HEAD, DELTA_V_HEADS * DELTA_HEAD, DELTA_V_HEADS);
                tensors_mat.push((n("attn_qkv.weight"), d, 2 * kd + vd));
                tensors_mat.push((n("attn_gate.weight"), d, vd));
                tensors_mat.push((n("ssm_beta.weight"), d, hv));
                tensors_mat.push((n("ssm_alpha.weight"), d, hv));
                tensors_mat.push((n("ssm_out.weight"), vd, d));
                // The taps stay F32, as llama-quantize leaves them.
                tensors_f32.push((n("ssm_conv1d.weight"), vec![DELTA_TAPS, 2 * kd + vd]));
                // Decays exp(softplus(α + dt) · a) between about 0.1 and 1:
                // a = −exp(A_log) < 0.
                tensors_vec.push((n("ssm_a"), hv, -1.0, 0.6));
                tensors_vec.push((n("ssm_dt.bias"), hv, 0.0, 1.0));
                tensors_vec.push((n("ssm_norm.weight"), DELTA_HEAD, 1.0, 0.2));
            } else if !attends(l) {
                // The taps stay F32, as llama-quantize leaves them.
                tensors_f32.push((n("shortconv.conv.weight"), vec![CONV_TAPS, d]));
                tensors_mat.push((n("shortconv.in_proj.weight"), d, 3 * d));
                tensors_mat.push((n("shortconv.out_proj.weight"), d, d));
            } else if f.fused_qkv {
                tensors_mat.push((n("attn_qkv.weight"), d, qd + 2 * kd));
            } else {
                // A gated query: per head, query then gate.
                tensors_mat.push((n("attn_q.weight"), d, if f.delta_net { 2 * qd } else { qd }));
                if own_kv {
                    tensors_mat.push((n("attn_k.weight"), d, kd));
                    tensors_mat.push((n("attn_v.weight"), d, kd));
                }
            }
            if f.qkv_bias && attends(l) {
                for (s, r) in [("attn_q", qd), ("attn_k", kd), ("attn_v", kd)] {
                    tensors_vec.push((n(&format!("{s}.bias")), r, 0.0, 0.5));
                }
            }
            if f.qk_norm && attends(l) {
                tensors_vec.push((n("attn_q_norm.weight"), hd, 1.0, 0.2));
                if own_kv {
                    tensors_vec.push((n("attn_k_norm.weight"), hd, 1.0, 0.2));
                }
            }
            if attends(l) {
                tensors_mat.push((n("attn_output.weight"), qd, d));
            }
            if f.out_bias && attends(l) {
                tensors_vec.push((n("attn_output.bias"), d, 0.0, 0.1));
            }
            if f.post_norms {
                tensors_vec.push((n("post_attention_norm.weight"), d, 1.0, 0.2));
                tensors_vec.push((n("post_ffw_norm.weight"), d, 1.0, 0.2));
            }
            norm(&mut tensors_vec, n(if f.delta_net { "post_attention_norm" } else { "ffn_norm" }));
            let experts = self.experts.filter(|_| l >= self.dense_lead());
            if let Some(e) = experts {
                if f.short_conv {
                    // A bias of 0.9 on a pair of experts (another pair in
                    // each layer): the chosen set is the biased pair, not
                    // the best sigmoid scores, and it never sits near a
                    // tie, where the rounding of quantized files (ours and
                    // llama.cpp's alike) would flip it and swap whole
                    // experts between the two sides.
                    let bias: Vec<f32> = (0..e.count).map(|x| if (x + e.count - l % e.count) % e.count < e.used { 0.9 } else { 0.0 }).collect();
                    w.add_f32_tensor(&n("exp_probs_b.bias"), &[e.count as u64], &bias).expect("valid tensor");
                }
                // The router stays F32, as llama-quantize leaves it.
                tensors_f32.push((n("ffn_gate_inp.weight"), vec![d, e.count]));
                tensors_exp.push((n("ffn_gate_exps.weight"), d, e.n_ff, e.count));
                tensors_exp.push((n("ffn_up_exps.weight"), d, e.n_ff, e.count));
                tensors_exp.push((n("ffn_down_exps.weight"), e.n_ff, d, e.count));
                if e.n_ff_shared > 0 {
                    tensors_mat.push((n("ffn_gate_shexp.weight"), d, e.n_ff_shared));
                    tensors_mat.push((n("ffn_up_shexp.weight"), d, e.n_ff_shared));
                    tensors_mat.push((n("ffn_down_shexp.weight"), e.n_ff_shared, d));
                }
                if f.shared_gate {
                    tensors_f32.push((n("ffn_gate_inp_shexp.weight"), vec![d]));
                }
            } else if f.fused_gate_up {
                tensors_mat.push((n("ffn_up.weight"), d, 2 * self.n_ff));
            } else {
                if !f.mlp {
                    tensors_mat.push((n("ffn_gate.weight"), d, n_ff));
                }
                tensors_mat.push((n("ffn_up.weight"), d, n_ff));
            }
            if experts.is_none() {
                tensors_mat.push((n("ffn_down.weight"), n_ff, d));
            }
            if f.gemma3n {
                // llama-quantize leaves AltUp and LAuReL tensors F32.
                let a = GEMMA3N_STREAMS;
                tensors_f32.push((n("altup_router.weight"), vec![d, a]));
                tensors_vec.push((n("altup_router_norm.weight"), d, 1.0, 0.2));
                tensors_f32.push((n("altup_predict_coef.weight"), vec![a, a * a]));
                tensors_f32.push((n("altup_correct_coef.weight"), vec![a, a]));
                tensors_vec.push((n("altup_correct_scale.weight"), d, 1.0, 0.2));
                tensors_f32.push((n("laurel_l.weight"), vec![d, GEMMA3N_LAUREL]));
                tensors_f32.push((n("laurel_r.weight"), vec![GEMMA3N_LAUREL, d]));
                tensors_vec.push((n("laurel_post_norm.weight"), d, 1.0, 0.2));
            }
            if f.gemma3n || (f.gemma4 && GEMMA4_PER_LAYER > 0) {
                let p = per_layer;
                tensors_mat.push((n("inp_gate.weight"), d, p));
                tensors_mat.push((n("proj.weight"), p, d));
                tensors_vec.push((n("post_norm.weight"), d, 1.0, 0.2));
            }
            if f.gemma4 {
                tensors_vec.push((n("layer_output_scale.weight"), 1, 1.0, 0.3));
            }
            if f.ffn_bias {
                tensors_vec.push((n("ffn_up.bias"), self.n_ff, 0.0, 0.1));
                tensors_vec.push((n("ffn_down.bias"), d, 0.0, 0.1));
            }
        }
        norm(&mut tensors_vec, if f.short_conv { "token_embd_norm" } else { "output_norm" }.into());
        if f.output {
            tensors_mat.push(("output.weight".into(), d, self.n_vocab));
        }
        if f.output_bias {
            tensors_vec.push(("output.bias".into(), self.n_vocab, 0.0, 0.5));
        }
        let n_rot = match self.keys.iter().find(|(k, _)| k == "rope.dimension_count") {
            Some((_, Value::U32(r))) => *r as usize,
            _ => hd,
        };
        if f.rope_freqs {
            // Llama 3.1's recipe (factor 8, low 1, high 4, original 64
            // positions so that the test context spans every regime).
            let base: f32 = 500_000.0;
            let v: Vec<f32> = (0..n_rot / 2)
                .map(|i| {
                    let freq = base.powf(-2.0 * i as f32 / n_rot as f32);
                    let wavelen = 2.0 * std::f32::consts::PI / freq;
                    let (factor, low, high, orig) = (8.0f32, 1.0f32, 4.0f32, 64.0f32);
                    if wavelen < orig / high {
                        1.0
                    } else if wavelen > orig / low {
                        factor
                    } else {
                        let s = (orig / wavelen - low) / (high - low);
                        1.0 / ((1.0 - s) / factor + s)
                    }
                })
                .collect();
            w.add_f32_tensor("rope_freqs.weight", &[v.len() as u64], &v).expect("valid tensor");
        }
        if f.gemma3n {
            let a = GEMMA3N_STREAMS;
            tensors_f32.push(("altup_proj.weight".into(), vec![d, d, a - 1]));
            tensors_f32.push(("altup_unembd_proj.weight".into(), vec![d, d, a - 1]));
        }
        if f.gemma3n || (f.gemma4 && GEMMA4_PER_LAYER > 0) {
            let width = per_layer * self.n_layer;
            tensors_mat.push(("per_layer_token_embd.weight".into(), width, self.n_vocab));
            tensors_mat.push(("per_layer_model_proj.weight".into(), d, width));
            tensors_vec.push(("per_layer_proj_norm.weight".into(), per_layer, 1.0, 0.2));
        }
        if f.gemma4 {
            // As Gemma 4's converter writes them: a quarter of the pairs
            // turn, the rest are divided by 1e30 (still).
            let pairs = GEMMA4_HEAD.1 / 2;
            let v: Vec<f32> = (0..pairs).map(|i| if i < pairs / 4 { 1.0 } else { 1e30 }).collect();
            w.add_f32_tensor("rope_freqs.weight", &[v.len() as u64], &v).expect("valid tensor");
        }
        if f.longrope {
            tensors_vec.push(("rope_factors_long.weight".into(), n_rot / 2, 4.0, 3.0));
            tensors_vec.push(("rope_factors_short.weight".into(), n_rot / 2, 1.5, 0.4));
        }
        for (name, cols, rows) in tensors_mat {
            mat(&mut w, &name, cols, rows, 1);
        }
        for (name, cols, rows, n) in tensors_exp {
            mat(&mut w, &name, cols, rows, n);
        }
        for (name, dims) in tensors_f32 {
            let mut values = rng_f32.f32s(dims.iter().product(), 3f32.sqrt() / (dims[0] as f32).sqrt());
            if let Some(l) = name.strip_suffix(".ffn_gate_inp.weight").and_then(|b| b.strip_prefix("blk.")).filter(|_| f.steady_route) {
                let (l, e) = (l.parse::<usize>().expect("layer number"), self.experts.expect("experts"));
                for x in 0..e.count {
                    if (x + e.count - l % e.count) % e.count < e.used {
                        values[x * d] += STEADY_ROUTER;
                    }
                }
            }
            w.add_f32_tensor(&name, &dims.iter().map(|&d| d as u64).collect::<Vec<_>>(), &values).expect("valid tensor");
        }
        for (name, n, center, spread) in tensors_vec {
            vec(&mut w, &name, n, center, spread);
        }
        w.to_bytes().expect("tiny model fits a GGUF file")
    }
}
