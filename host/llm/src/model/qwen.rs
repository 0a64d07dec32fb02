//! Qwen 2/2.5 (`qwen2`: Q/K/V biases) and Qwen 3 (`qwen3`: per-head Q/K
//! RMSNorm before RoPE): the llama block with half-split (NeoX) RoPE; and
//! their mixtures of experts, `qwen2moe` (weights not renormalized, a
//! shared expert scaled by a sigmoid gate) and `qwen3moe` (renormalized, no
//! shared expert).

use super::config::ModelConfig;
use super::decoder::{Decoder, LayerSpec, Options};
use super::llama::plain;
use super::moe::MoeSpec;
use super::ops::RopeStyle;
use super::rope::Rope;
use super::weights::Weights;
use crate::ModelError;

fn opts(c: &ModelConfig) -> Options {
    Options { rope_style: RopeStyle::Neox, ..Options::llama(c) }
}

fn rope(g: &Weights<'_>, c: &ModelConfig) -> Result<Rope, ModelError> {
    Rope::from_gguf(g, &c.arch, c.rope_dims, c.rope_base, c.n_ctx_train)
}

/// Qwen 2: the biases are loaded where present, as every llama-style layer.
pub fn load_qwen2(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    plain(g, c, opts(c), LayerSpec::LLAMA, rope(g, c)?, |_| false)
}

pub fn load_qwen3(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    let spec = LayerSpec { qk_norm: true, ..LayerSpec::LLAMA };
    plain(g, c, opts(c), spec, rope(g, c)?, |_| false)
}

/// Qwen 2 MoE: `output.weight` is required (no tied fallback).
pub fn load_qwen2moe(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    let moe = MoeSpec { norm_weights: false, gate_optional: false, shared_gated: true, probs_bias: false };
    let spec = LayerSpec { moe: Some(moe), ..LayerSpec::LLAMA };
    require_output(g)?;
    plain(g, c, opts(c), spec, rope(g, c)?, |_| false)
}

pub fn load_qwen3moe(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    let moe = MoeSpec { norm_weights: true, gate_optional: false, shared_gated: false, probs_bias: false };
    let spec = LayerSpec { qk_norm: true, moe: Some(moe), ..LayerSpec::LLAMA };
    plain(g, c, opts(c), spec, rope(g, c)?, |_| false)
}

fn require_output(g: &Weights<'_>) -> Result<(), ModelError> {
    match g.tensor("output.weight") {
        Some(_) => Ok(()),
        None => Err(ModelError::MissingTensor("output.weight".into())),
    }
}
