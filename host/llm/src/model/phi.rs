//! Phi-3/3.5/4-mini (`phi3`): fused `attn_qkv` (or separate projections),
//! gate and up fused in `ffn_up` (gate first), NeoX RoPE over a partial
//! rotation, and longrope: `rope_factors_short` divide the angles, or
//! `rope_factors_long` when the context is longer than the original one;
//! cos/sin are multiplied by `rope.scaling.attn_factor`. Its sliding window
//! is not applied, as in llama.cpp.

use super::config::ModelConfig;
use super::decoder::{load_layers, Decoder, FfnKind, LayerSpec, Options, RopeTable};
use super::head::{Head, Output};
use super::ops::RopeStyle;
use super::rope::Rope;
use super::weights::Weights;
use crate::ModelError;

pub fn load_phi3(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    let opts = Options { rope_style: RopeStyle::Neox, ..Options::llama(c) };
    let spec = LayerSpec { ffn: FfnKind::FusedGated, ..LayerSpec::LLAMA };
    let layers = load_layers(g, c, spec, |_| None, |_| RopeTable::Global)?;
    let base = Rope::from_gguf(g, &c.arch, c.rope_dims, c.rope_base, c.n_ctx_train)?;
    let (mut rope, mut rope_long) = (base.clone(), None);
    if g.tensor("rope_factors_short.weight").is_some() {
        rope = base.clone().with_factors(g, "rope_factors_short.weight")?;
    }
    if g.tensor("rope_factors_long.weight").is_some() {
        let n_ctx_orig = match g.get_u64(&format!("{}.rope.scaling.original_context_length", c.arch))? {
            Some(v) if v > 0 => usize::try_from(v).unwrap_or(usize::MAX),
            _ => c.n_ctx_train,
        };
        rope_long = Some((base.with_factors(g, "rope_factors_long.weight")?, n_ctx_orig));
    }
    Ok(Decoder { opts, head: Head::load(g, c, Output::OwnOrTied)?, layers, rope, rope_local: None, rope_long, ple: None })
}
