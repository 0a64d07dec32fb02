//! Hyperparameters read from GGUF metadata (`{arch}.*` keys).

use edgewasm_gguf::GgufFile;

use crate::kv_cache::KvLayer;
use crate::ModelError;

mod experts;
mod layers;

use experts::Experts;
use layers::{attention_layers, delta_net_shape, kv_heads, rope_sections, Gemma3nLayers, Gemma4Layers};

/// The shape of a decoder-only transformer, as stored in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub arch: String,
    pub name: Option<String>,
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    /// Per-head key/query width (`attention.key_length`, else n_embd / n_head).
    pub k_dim: usize,
    /// Per-head value width (`attention.value_length`, else k_dim).
    pub v_dim: usize,
    pub n_ff: usize,
    pub rms_eps: f32,
    pub rope_base: f32,
    pub rope_scale: f32,
    /// Rotated dimensions per head (`rope.dimension_count`, else k_dim).
    pub rope_dims: usize,
    /// Context the model was trained for.
    pub n_ctx_train: usize,
    /// Sliding attention window, for architectures that have one.
    pub sliding_window: Option<usize>,
    /// Final logit soft-cap, if the file sets one.
    pub final_logit_softcap: Option<f32>,
    /// Q, K and V come from one `attn_qkv` matrix (their product is
    /// `q + k + v` wide before it is split).
    pub fused_qkv: bool,
    /// Gate and up come from one `ffn_up` matrix `2 · n_ff` wide (Phi-3).
    pub fused_gate_up: bool,
    /// Experts per mixture-of-experts layer (`expert_count`); 0 for dense
    /// models, and for architectures without expert layers (whose graphs
    /// ignore the key in llama.cpp).
    pub n_expert: usize,
    /// Experts each token is routed to (`expert_used_count`), `1..=n_expert`
    /// when there are experts.
    pub n_expert_used: usize,
    /// Hidden width of each expert: `expert_feed_forward_length` (Qwen MoE;
    /// default `n_ff / n_expert_used`), else `n_ff` (Mixtral, Granite MoE);
    /// 0 without experts.
    pub n_ff_exp: usize,
    /// Hidden width of the shared expert, 0 when there is none:
    /// `expert_shared_feed_forward_length` (Qwen 2 MoE: default `n_ff`;
    /// Granite MoE: optional).
    pub n_ff_shexp: usize,
    /// How the router's logits become expert probabilities
    /// (`expert_gating_func`: softmax unless the file says sigmoid).
    pub expert_gating: Gating,
    /// Leading layers with a dense FFN before the expert layers
    /// (`leading_dense_block_count`, LFM2 MoE).
    pub n_dense_lead: usize,
    /// Whether each layer attends (keeps keys and values); the others are
    /// recurrent and keep a fixed-size state instead (LFM2's short
    /// convolutions, where `attention.head_count_kv` is 0).
    pub kv_layers: Vec<bool>,
    /// Taps of the short convolutions (`shortconv.l_cache`: the current
    /// token and the `taps - 1` before it), 0 without recurrent layers.
    pub shortconv_taps: usize,
    /// The gated delta-net layers' shape (Qwen 3.5), `None` elsewhere.
    pub delta_net: Option<DeltaNetShape>,
    /// The attention layers' query projection is twice as wide: per head,
    /// the query, then a gate whose sigmoid scales the head's output
    /// (Qwen 3.5).
    pub q_gate: bool,
    /// Multi-section RoPE (`rope.dimension_sections`, Qwen 3.5): for text,
    /// the pairs of the time/height/width sections turn with the position,
    /// the others stay still.
    pub rope_sections: Option<[u32; 4]>,
    /// Each layer's head widths `(key, value)`: `(k_dim, v_dim)`, but for
    /// Gemma 4's sliding-window layers (`attention.key_length_swa`).
    pub layer_heads: Vec<(usize, usize)>,
    /// Each layer's feed-forward width (`feed_forward_length` may be one
    /// per layer: Gemma 4 E2B); `n_ff` is the widest.
    pub layer_ff: Vec<usize>,
    /// The layer whose keys and values each layer attends over: itself,
    /// but for Gemma 4's last `attention.shared_kv_layers` layers.
    pub kv_from: Vec<usize>,
    /// Gemma 4's sliding-window layers (`attention.sliding_window_pattern`).
    pub swa_layers: Option<Vec<bool>>,
    /// Rotated dimensions of the sliding-window layers
    /// (`rope.dimension_count_swa`), else `rope_dims`.
    pub rope_dims_swa: usize,
    /// Width of each layer's slice of the per-layer embeddings
    /// (`embedding_length_per_layer_input`, Gemma 4), 0 without.
    pub n_embd_per_layer: usize,
    /// Gemma 3n's parallel residual streams and its LAuReL and sparse-FFN
    /// settings (`None` elsewhere).
    pub altup: Option<AltUpShape>,
    /// Whether a token attends only to those before it
    /// (`attention.causal`, default true; converted BERTs say false).
    /// Generation is always causal; this decides embeddings.
    pub causal: bool,
    /// How embeddings pool a text's tokens (`pooling_type`, llama.cpp's
    /// `llama_pooling_type`: 0 none, 1 mean, 2 cls, 3 last, 4 rank), when
    /// the file says; see [`crate::embed::Pooling::for_model`].
    pub pooling_type: Option<i64>,
}

/// The shape of Qwen 3.5's gated delta-net layers (`ssm.*` keys, named
/// after Mamba's as llama.cpp reads them).
/// Gemma 3n's AltUp streams, LAuReL width and FFN sparsity.
#[derive(Clone, Debug, PartialEq)]
pub struct AltUpShape {
    /// Copies of the residual stream (`altup.num_inputs`); stream 0 is the
    /// one the layers compute on.
    pub inputs: usize,
    /// Width of the LAuReL low-rank residual (`laurel_l`'s rows).
    pub laurel_rank: usize,
    /// Per layer, the multiple of the gate values' standard deviation above
    /// their mean below which the FFN zeroes them (a Gaussian top-k);
    /// `None`: a dense FFN.
    pub sparsity: Vec<Option<f32>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeltaNetShape {
    /// Taps of the causal convolution over Q, K and V (`ssm.conv_kernel`).
    pub conv_taps: usize,
    /// Query/key heads (`ssm.group_count`).
    pub n_k_heads: usize,
    /// Value heads, each with its own state, decay and β
    /// (`ssm.time_step_rank`); a multiple of `n_k_heads`.
    pub n_v_heads: usize,
    /// Width of every head, key and value alike (`ssm.state_size`).
    pub head_dim: usize,
}

impl DeltaNetShape {
    /// Query (and key) values per token.
    pub fn key_dim(&self) -> usize {
        self.n_k_heads * self.head_dim
    }
    /// Value (and output) values per token (`ssm.inner_size`).
    pub fn value_dim(&self) -> usize {
        self.n_v_heads * self.head_dim
    }
    /// Channels of the convolution: `[Q | K | V]`.
    pub fn conv_dim(&self) -> usize {
        2 * self.key_dim() + self.value_dim()
    }
    /// Floats of one layer's state: the convolution's last `taps - 1`
    /// inputs, then one `head_dim²` matrix per value head.
    pub fn state_floats(&self) -> usize {
        (self.conv_taps - 1) * self.conv_dim() + self.n_v_heads * self.head_dim * self.head_dim
    }
}

/// Architectures whose layers may be recurrent instead of attending, marked
/// by 0 KV heads.
const HYBRID: &[&str] = &["lfm2", "lfm2moe"];
/// Architectures whose recurrent layers are gated delta nets, marked by
/// `attention.recurrent_layers` or every layer but each
/// `full_attention_interval`-th.
const DELTA_NET: &[&str] = &["qwen35", "qwen35moe"];
/// Widest delta-net head (real models: 128); each value head keeps a
/// square of it.
const MAX_DELTA_HEAD: usize = 1024;

/// An expert router's gating function (llama.cpp's
/// `llama_expert_gating_func_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gating {
    Softmax,
    /// Independent sigmoids, then a selection bias (`exp_probs_b`) where
    /// the file has one (LFM2 MoE).
    Sigmoid,
}
/// Most taps of a short convolution (LFM2: 3).
const MAX_TAPS: usize = 64;

/// Upper bounds a file's hyperparameters must respect before we allocate
/// anything from them. Generous for small models, tight enough that a lying
/// file cannot ask for terabytes.
const MAX_DIM: usize = 1 << 16;
const MAX_LAYERS: usize = 512;
const MAX_VOCAB: usize = 1 << 21;
/// Widest per-token row of heads (`head_count × key_length` and the like).
/// Every context holds several buffers of `batch × width` floats, so a file
/// with `n_embd = 1` and 2^25-wide heads (128 MiB of F16 weights) would ask
/// for 64 GiB each; real models stay far below (Llama 3 405B: 16384).
const MAX_WIDTH: usize = MAX_DIM;
/// Longest trained context accepted (4M positions; real models: ≤ 1M).
const MAX_CTX_TRAIN: usize = 1 << 22;
/// Most experts per layer (real models: ≤ 256, DeepSeek V3, Qwen 3.5).
pub const MAX_EXPERTS: usize = 256;
/// Widest feed-forward hidden layer (dense or one expert).
const MAX_FF: usize = MAX_DIM * 4;

fn required(g: &GgufFile, key: &str) -> Result<usize, ModelError> {
    g.get_u64(key)?
        .map(|v| v as usize)
        .ok_or_else(|| ModelError::MissingKey(key.to_string()))
}

fn check(key: &str, v: usize, max: usize) -> Result<usize, ModelError> {
    if v == 0 || v > max {
        return Err(ModelError::BadHyperparameter { key: key.to_string(), value: v as u64 });
    }
    Ok(v)
}

/// `heads × dim` values per token for `what`, if it stays within
/// [`MAX_WIDTH`]; the error names `key` (the per-head width's key).
fn width(key: &str, heads: usize, dim: usize, what: &str) -> Result<usize, ModelError> {
    match heads.checked_mul(dim) {
        Some(w) if w <= MAX_WIDTH => Ok(w),
        w => Err(ModelError::InconsistentHyperparameter {
            key: key.to_string(),
            value: dim as u64,
            reason: match w {
                Some(w) => format!("{heads} heads × {dim} = {w} {what} values per token, over the limit of {MAX_WIDTH}"),
                None => format!("{heads} heads × {dim} {what} values per token overflows"),
            },
        }),
    }
}

impl ModelConfig {
    /// Reads and sanity-checks the hyperparameters of `g`.
    pub fn from_gguf(g: &GgufFile) -> Result<ModelConfig, ModelError> {
        let arch = g.architecture()?.to_string();
        let k = |s: &str| format!("{arch}.{s}");
        let n_embd = check(&k("embedding_length"), required(g, &k("embedding_length"))?, MAX_DIM)?;
        let n_layer_all = check(&k("block_count"), required(g, &k("block_count"))?, MAX_LAYERS)?;
        // Multi-token-prediction layers follow the trunk; only the trunk
        // runs (llama.cpp's `n_layer()`).
        let n_nextn = g.get_u64(&k("nextn_predict_layers"))?.unwrap_or(0);
        let n_layer = match usize::try_from(n_nextn).ok().filter(|&m| m < n_layer_all) {
            Some(m) => n_layer_all - m,
            None => return Err(ModelError::InconsistentHyperparameter { key: k("nextn_predict_layers"), value: n_nextn, reason: format!("{n_nextn} of {n_layer_all} layers") }),
        };
        let n_head = check(&k("attention.head_count"), required(g, &k("attention.head_count"))?, MAX_DIM)?;
        let (n_head_kv, mut kv_layers) = kv_heads(g, &arch, n_layer, n_head)?;
        let delta_net = match DELTA_NET.contains(&arch.as_str()) {
            true => {
                kv_layers = attention_layers(g, &arch, n_layer, n_layer_all)?;
                Some(delta_net_shape(g, &arch)?)
            }
            false => None,
        };
        let q_gate = DELTA_NET.contains(&arch.as_str());
        if n_head % n_head_kv != 0 {
            return Err(ModelError::BadHyperparameter {
                key: k("attention.head_count_kv"),
                value: n_head_kv as u64,
            });
        }
        let k_dim = match g.get_u64(&k("attention.key_length"))? {
            Some(v) => check(&k("attention.key_length"), v as usize, MAX_DIM)?,
            None => {
                if n_embd % n_head != 0 {
                    return Err(ModelError::BadHyperparameter {
                        key: k("attention.head_count"),
                        value: n_head as u64,
                    });
                }
                n_embd / n_head
            }
        };
        let v_dim = match g.get_u64(&k("attention.value_length"))? {
            Some(v) => check(&k("attention.value_length"), v as usize, MAX_DIM)?,
            None => k_dim,
        };
        // Each projection's output row (and the scratch rows sized from it)
        // must stay small, whatever n_embd is.
        width(&k("attention.key_length"), n_head, if q_gate { 2 * k_dim } else { k_dim }, "query")?;
        width(&k("attention.key_length"), n_head_kv, k_dim, "key")?;
        width(&k("attention.value_length"), n_head, v_dim, "attention output")?;
        width(&k("attention.value_length"), n_head_kv, v_dim, "value")?;
        let layer_ff = match g.get(&k("feed_forward_length")) {
            // Gemma 4 and Gemma 3n (MatFormer) give one width per layer.
            Some(edgewasm_gguf::Value::Array(_)) if arch == "gemma4" || arch == "gemma3n" => {
                let v = g.get_u64_array(&k("feed_forward_length"))?.unwrap_or_default();
                if v.len() != n_layer {
                    return Err(ModelError::InconsistentHyperparameter { key: k("feed_forward_length"), value: v.len() as u64, reason: format!("{} values for {n_layer} layers", v.len()) });
                }
                v.iter().map(|&f| check(&k("feed_forward_length"), usize::try_from(f).unwrap_or(usize::MAX), MAX_FF)).collect::<Result<Vec<_>, _>>()?
            }
            _ => vec![check(&k("feed_forward_length"), required(g, &k("feed_forward_length"))?, MAX_FF)?; n_layer],
        };
        let n_ff = layer_ff.iter().copied().max().unwrap_or(0);
        let experts = Experts::from_gguf(g, &arch, n_ff)?;
        let rope_dims = match g.get_u64(&k("rope.dimension_count"))? {
            Some(v) => check(&k("rope.dimension_count"), v as usize, k_dim)?,
            None => k_dim,
        };
        if rope_dims % 2 != 0 {
            return Err(ModelError::BadHyperparameter { key: k("rope.dimension_count"), value: rope_dims as u64 });
        }
        let n_vocab = match g.get_u64(&k("vocab_size"))? {
            Some(v) => v as usize,
            None => g.get_str_array("tokenizer.ggml.tokens")?.map(|t| t.len()).unwrap_or(0),
        };
        let n_vocab = check(&k("vocab_size"), n_vocab, MAX_VOCAB)?;
        let rms_eps = g.get_f32(&k("attention.layer_norm_rms_epsilon"))?.unwrap_or(1e-5);
        let rope_base = g.get_f32(&k("rope.freq_base"))?.unwrap_or(10_000.0);
        let rope_scale = match g.get_f32(&k("rope.scaling.factor"))? {
            Some(f) if f > 0.0 => 1.0 / f,
            _ => 1.0,
        };
        for (key, v) in [("attention.layer_norm_rms_epsilon", rms_eps), ("rope.freq_base", rope_base)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(ModelError::BadHyperparameter { key: k(key), value: v.to_bits() as u64 });
            }
        }
        let n_ctx_train = match g.get_u64(&k("context_length"))? {
            Some(v) => check(&k("context_length"), usize::try_from(v).unwrap_or(usize::MAX), MAX_CTX_TRAIN)?,
            None => 2048,
        };
        let sliding_window = g.get_u64(&k("attention.sliding_window"))?.map(|v| v as usize).filter(|&v| v > 0);
        // Gemma 4 and 3n cap at 30 when the key is absent (llama.cpp's default).
        let default_cap = if arch == "gemma4" || arch == "gemma3n" { Some(30.0) } else { None };
        let final_logit_softcap = g.get_f32(&k("final_logit_softcapping"))?.or(default_cap).filter(|v| *v > 0.0);
        // (A delta net's `attn_qkv` is its own projection, not a fused one.)
        let fused_qkv = delta_net.is_none() && g.tensor("blk.0.attn_qkv.weight").is_some();
        let fused_gate_up = arch == "phi3";
        let shortconv_taps = match kv_layers.iter().all(|&a| a) || delta_net.is_some() {
            true => 0,
            false => check(&k("shortconv.l_cache"), required(g, &k("shortconv.l_cache"))?, MAX_TAPS)?,
        };
        if shortconv_taps == 1 {
            return Err(ModelError::BadHyperparameter { key: k("shortconv.l_cache"), value: 1 });
        }
        let rope_sections = match delta_net {
            Some(_) => Some(rope_sections(g, &arch, k_dim)?),
            None => None,
        };
        let g4 = match arch.as_str() {
            "gemma4" => Some(Gemma4Layers::from_gguf(g, &arch, n_layer, (k_dim, v_dim), rope_dims, n_head, n_head_kv)?),
            _ => None,
        };
        let g3n = match arch.as_str() {
            "gemma3n" => Some(Gemma3nLayers::from_gguf(g, &arch, n_layer)?),
            _ => None,
        };
        let layer_heads = match &g4 {
            Some(g4) => g4.swa.iter().map(|&swa| if swa { g4.head_swa } else { (k_dim, v_dim) }).collect(),
            None => vec![(k_dim, v_dim); n_layer],
        };
        let kv_from = match (&g4, &g3n) {
            (Some(g4), _) => g4.kv_from.clone(),
            (_, Some(g3n)) => g3n.kv_from.clone(),
            _ => (0..n_layer).collect(),
        };
        if (g4.is_some() || g3n.is_some()) && sliding_window.is_none() {
            return Err(ModelError::MissingKey(k("attention.sliding_window")));
        }
        let n_embd_per_layer = match (&g4, &g3n) {
            (Some(g4), _) => g4.per_layer,
            (_, Some(g3n)) => g3n.per_layer,
            _ => 0,
        };
        let rope_dims_swa = g4.as_ref().map_or(rope_dims, |g4| g4.rope_dims_swa);
        let (swa_layers, altup) = match (g4, g3n) {
            (Some(g4), _) => (Some(g4.swa), None),
            (_, Some(g3n)) => (Some(g3n.swa), Some(g3n.altup)),
            _ => (None, None),
        };
        let causal = g.get_bool(&k("attention.causal"))?.unwrap_or(true);
        let pooling_type = g.get_i64(&k("pooling_type"))?;
        Ok(ModelConfig {
            causal,
            pooling_type,
            layer_heads,
            layer_ff,
            kv_from,
            rope_dims_swa,
            n_embd_per_layer,
            swa_layers,
            altup,
            name: g.get_str("general.name")?.map(str::to_string),
            arch,
            n_vocab,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            k_dim,
            v_dim,
            n_ff,
            rms_eps,
            rope_base,
            rope_scale,
            rope_dims,
            n_ctx_train,
            sliding_window,
            final_logit_softcap,
            fused_qkv,
            fused_gate_up,
            n_expert: experts.count,
            n_expert_used: experts.used,
            n_ff_exp: experts.ff,
            n_ff_shexp: experts.ff_shared,
            expert_gating: experts.gating,
            n_dense_lead: experts.dense_lead,
            kv_layers,
            shortconv_taps,
            delta_net,
            q_gate,
            rope_sections,
        })
    }

    /// Layers that keep keys and values of their own.
    pub fn n_kv_layers(&self) -> usize {
        self.kv_layout().iter().filter(|l| matches!(l, KvLayer::Own { .. })).count()
    }

    /// What each layer keeps in the KV cache.
    pub fn kv_layout(&self) -> Vec<KvLayer> {
        (0..self.n_layer)
            .map(|l| match (self.kv_layers[l], self.kv_from[l]) {
                (false, _) => KvLayer::None,
                (true, src) if src != l => KvLayer::Shared(src),
                _ => KvLayer::Own { k_dim: self.layer_heads[l].0, v_dim: self.layer_heads[l].1 },
            })
            .collect()
    }

    /// Floats of recurrent state each layer keeps (0 for attention layers):
    /// a short convolution's last `taps - 1` inputs, or a delta net's
    /// ([`DeltaNetShape::state_floats`]).
    pub fn state_sizes(&self) -> Vec<usize> {
        let per_layer = match &self.delta_net {
            Some(dn) => dn.state_floats(),
            None => self.shortconv_taps.saturating_sub(1) * self.n_embd,
        };
        self.kv_layers.iter().map(|&attends| if attends { 0 } else { per_layer }).collect()
    }

    /// Width of the feed-forward hidden layer the scratch must hold: the
    /// dense `n_ff`, or with experts the wider of an expert's and the
    /// shared expert's (the dense FFN is then absent).
    pub fn ffn_width(&self) -> usize {
        if self.n_expert > 0 {
            let dense = if self.n_dense_lead > 0 { self.n_ff } else { 0 };
            self.n_ff_exp.max(self.n_ff_shexp).max(dense)
        } else {
            self.n_ff
        }
    }
}
