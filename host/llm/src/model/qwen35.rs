//! Qwen 3.5 (`qwen35`) and its mixture of experts (`qwen35moe`): a hybrid
//! of gated delta-net layers ([`super::deltanet`]) and, every
//! `full_attention_interval`-th layer, GQA attention with per-head Q/K
//! RMSNorm, a sigmoid output gate made by the query projection, and
//! multi-section NeoX RoPE (all sections at the token's position for
//! text). Each layer's pre-FFN norm is stored as `post_attention_norm`.
//! The MoE routes by softmax, renormalizes the chosen weights, and adds a
//! shared expert scaled by a sigmoid gate. Multi-token-prediction layers
//! are not loaded.

use super::config::ModelConfig;
use super::decoder::{load_layers, Decoder, LayerSpec, Options, RopeTable};
use super::head::{Head, Output};
use super::moe::MoeSpec;
use super::ops::RopeStyle;
use super::rope::Rope;
use super::weights::Weights;
use crate::ModelError;

/// The experts of Qwen 3.5 MoE.
const EXPERTS: MoeSpec = MoeSpec { norm_weights: true, gate_optional: false, shared_gated: true, probs_bias: false };

pub fn load_qwen35(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    if c.k_dim != c.v_dim {
        // The output gate scales the attention output value by value.
        return Err(ModelError::InconsistentHyperparameter {
            key: format!("{}.attention.value_length", c.arch),
            value: c.v_dim as u64,
            reason: format!("gated attention needs value heads as wide as key heads ({})", c.k_dim),
        });
    }
    let opts = Options { rope_style: RopeStyle::Neox, ..Options::llama(c) };
    let spec = LayerSpec { qk_norm: true, ffn_norm_name: "post_attention_norm", moe: Some(EXPERTS), ..LayerSpec::LLAMA };
    let layers = load_layers(g, c, spec, |_| None, |_| RopeTable::Global)?;
    let mut rope = Rope::from_gguf(g, &c.arch, c.rope_dims, c.rope_base, c.n_ctx_train)?;
    if let Some(sections) = c.rope_sections {
        rope = rope.with_imrope_sections(sections);
    }
    let head = Head::load(g, c, Output::OwnOrTied)?;
    Ok(Decoder { opts, head, layers, rope, rope_local: None, rope_long: None, ple: None })
}
