//! StarCoder2 (`starcoder2`): LayerNorm with biases, biased projections,
//! NeoX RoPE and a GELU MLP. Its sliding window is not applied, as in
//! llama.cpp.

use super::config::ModelConfig;
use super::decoder::{Decoder, FfnKind, LayerSpec, NormKind, Options};
use super::llama::plain;
use super::ops::{gelu_ggml, RopeStyle};
use super::rope::Rope;
use super::weights::Weights;
use crate::ModelError;

/// `{arch}.attention.layer_norm_epsilon`, required by LayerNorm models.
pub(super) fn ln_eps(g: &Weights<'_>, c: &ModelConfig) -> Result<f32, ModelError> {
    let key = format!("{}.attention.layer_norm_epsilon", c.arch);
    match g.get_f32(&key)? {
        Some(v) if v.is_finite() && v > 0.0 => Ok(v),
        Some(v) => Err(ModelError::BadHyperparameter { key, value: v.to_bits() as u64 }),
        None => Err(ModelError::MissingKey(key)),
    }
}

pub fn load_starcoder2(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    let opts = Options { norm: NormKind::Layer, eps: ln_eps(g, c)?, rope_style: RopeStyle::Neox, act: gelu_ggml, ..Options::llama(c) };
    let spec = LayerSpec { ffn: FfnKind::Mlp, ..LayerSpec::LLAMA };
    let rope = Rope::from_gguf(g, &c.arch, c.rope_dims, c.rope_base, c.n_ctx_train)?;
    plain(g, c, opts, spec, rope, |_| false)
}
