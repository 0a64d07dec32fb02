//! The llama family and its close relatives, as compositions of the shared
//! decoder: pre-RMSNorm blocks, adjacent-pair RoPE, SwiGLU.
//!
//! * `llama`: SmolLM/SmolLM2, TinyLlama, Llama 2/3.x (Llama 3's per-pair
//!   `rope_freqs` divisors), Mistral. Like llama.cpp, Mistral's sliding
//!   window is not applied (its converter does not write it). With
//!   `expert_count` set: Mixtral, OLMoE (softmax top-k experts, weights
//!   renormalized).
//! * `granite`, `granitemoe`: embedding, residual, attention and logit
//!   multipliers; experts as Mixtral's, plus an optional shared expert
//!   added ungated.
//! * `smollm3`: every fourth layer has no RoPE.
//! * `internlm2`: the llama graph.

use super::config::ModelConfig;
use super::decoder::{load_layers, Decoder, LayerSpec, Options, RopeTable};
use super::head::{Head, Output};
use super::moe::MoeSpec;
use super::rope::Rope;
use super::weights::Weights;
use crate::ModelError;

/// The global RoPE table from the `{arch}.rope.*` keys, with the per-pair
/// `rope_freqs` divisors when the file has them (Llama 3.1+).
pub(super) fn rope_with_freqs(g: &Weights<'_>, c: &ModelConfig) -> Result<Rope, ModelError> {
    let rope = Rope::from_gguf(g, &c.arch, c.rope_dims, c.rope_base, c.n_ctx_train)?;
    if g.tensor("rope_freqs.weight").is_some() {
        return rope.with_factors(g, "rope_freqs.weight");
    }
    Ok(rope)
}

/// A decoder with one global RoPE table and no sliding window.
pub(super) fn plain(g: &Weights<'_>, c: &ModelConfig, opts: Options, spec: LayerSpec, rope: Rope, nope: impl Fn(usize) -> bool) -> Result<Decoder, ModelError> {
    let layers = load_layers(g, c, spec, |_| None, |i| if nope(i) { RopeTable::None } else { RopeTable::Global })?;
    Ok(Decoder { opts, head: Head::load(g, c, Output::OwnOrTied)?, layers, rope, rope_local: None, rope_long: None, ple: None })
}

/// Mixtral's experts: `ffn_gate_exps` optional, weights renormalized, a
/// shared expert (Granite's) added as it is.
const MIXTRAL: MoeSpec = MoeSpec { norm_weights: true, gate_optional: true, shared_gated: false, probs_bias: false };

pub fn load(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    let spec = LayerSpec { moe: Some(MIXTRAL), ..LayerSpec::LLAMA };
    plain(g, c, Options::llama(c), spec, rope_with_freqs(g, c)?, |_| false)
}

/// SmolLM3: NoPE on layers 3, 7, 11, … (llama.cpp hard-codes the step).
pub fn load_smollm3(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    plain(g, c, Options::llama(c), LayerSpec::LLAMA, rope_with_freqs(g, c)?, |i| (i + 1) % 4 == 0)
}

/// Granite: `embedding_scale`, `residual_scale`, `attention.scale` and the
/// required `logit_scale` (logits are divided by it). With
/// `rope.scaling.finetuned = false` no layer uses RoPE (`granite` only;
/// llama.cpp's `granitemoe` loader does not read the key).
pub fn load_granite(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    let k = |s: &str| format!("{}.{s}", c.arch);
    let mut opts = Options::llama(c);
    let positive = |key: String, v: f32| {
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(ModelError::BadHyperparameter { key, value: v.to_bits() as u64 })
        }
    };
    let logit_scale = g.get_f32(&k("logit_scale"))?.ok_or_else(|| ModelError::MissingKey(k("logit_scale")))?;
    opts.logit_scale = 1.0 / positive(k("logit_scale"), logit_scale)?;
    if let Some(v) = g.get_f32(&k("embedding_scale"))?.filter(|&v| v != 0.0) {
        opts.embed_scale = positive(k("embedding_scale"), v)?;
    }
    if let Some(v) = g.get_f32(&k("residual_scale"))?.filter(|&v| v != 0.0) {
        opts.residual_scale = positive(k("residual_scale"), v)?;
    }
    if let Some(v) = g.get_f32(&k("attention.scale"))?.filter(|&v| v != 0.0) {
        opts.kq_scale = positive(k("attention.scale"), v)?;
    }
    let finetuned = c.arch != "granite" || g.get_bool(&k("rope.scaling.finetuned"))?.unwrap_or(true);
    let spec = LayerSpec { moe: Some(MIXTRAL), ..LayerSpec::LLAMA };
    plain(g, c, opts, spec, rope_with_freqs(g, c)?, |_| !finetuned)
}
