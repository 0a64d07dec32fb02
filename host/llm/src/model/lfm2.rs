//! LFM2 (`lfm2`): a hybrid of gated short-convolution layers and GQA
//! attention layers (per-head Q/K RMSNorm, NeoX RoPE), each followed by a
//! SwiGLU FFN; `attention.head_count_kv` is 0 for the convolution layers.
//! The final norm is stored as `token_embd_norm`, the output tied unless
//! the file has its own. `lfm2moe`: after `leading_dense_block_count`
//! dense layers, every FFN is a mixture of experts with sigmoid gating, a
//! selection bias (`exp_probs_b`) and renormalized weights.

use super::config::ModelConfig;
use super::decoder::{load_layers, Decoder, LayerSpec, Options, RopeTable};
use super::head::{Head, Output};
use super::moe::MoeSpec;
use super::ops::RopeStyle;
use super::rope::Rope;
use super::weights::Weights;
use crate::ModelError;

/// The experts of LFM2 MoE.
const EXPERTS: MoeSpec = MoeSpec { norm_weights: true, gate_optional: false, shared_gated: false, probs_bias: true };

pub fn load_lfm2(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    let opts = Options { rope_style: RopeStyle::Neox, ..Options::llama(c) };
    let spec = LayerSpec { qk_norm: true, moe: Some(EXPERTS), ..LayerSpec::LLAMA };
    // A sliding window, when the file sets one, applies to every attention
    // layer (llama.cpp: `is_swa = !is_recr`).
    let layers = load_layers(g, c, spec, |i| c.sliding_window.filter(|_| c.kv_layers[i]), |_| RopeTable::Global)?;
    let rope = Rope::from_gguf(g, &c.arch, c.rope_dims, c.rope_base, c.n_ctx_train)?;
    let head = Head::load_with_norm(g, c, Output::OwnOrTied, "token_embd_norm")?;
    Ok(Decoder { opts, head, layers, rope, rope_local: None, rope_long: None, ple: None })
}
