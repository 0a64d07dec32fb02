//! The Gemma family: √d-scaled embeddings, NeoX RoPE, GeGLU, tied output.
//!
//! * `gemma` (Gemma 1): that alone.
//! * `gemma2`: norms after attention and FFN, attention and final-logit
//!   soft-caps (50 and 30 by default), a sliding window on even layers.
//! * `gemma3`: Gemma 2 without the attention soft-cap, plus per-head Q/K
//!   RMSNorm; five of every six layers use the window and their own RoPE
//!   table (base `rope.freq_base_swa`, never scaled); the global layers get
//!   the file's scaling (×1/8 on 4B and larger).
//!
//! * `gemma4` (E2B, E4B): Gemma 3's layers with their own head width on
//!   the sliding-window layers (`key_length_swa`), values RMS-normed
//!   without a weight, attention unscaled (the Q/K norms do it), RoPE over
//!   the whole global head with `rope_freqs` factors leaving three
//!   quarters still, per-layer FFN widths, the last
//!   `shared_kv_layers` layers reading earlier layers' keys and values,
//!   per-layer embeddings ([`super::ple`]), an optional per-layer output
//!   scale, and a final soft-cap of 30 unless the file says otherwise.
//!
//! The 27B models scale queries by `1/√(n_embd/n_head)` instead of
//! `1/√head_dim` (llama.cpp keys this on their layer counts, 46 and 62).

use edgewasm_gguf::{Array, Value};

use super::config::ModelConfig;
use super::decoder::{load_layers, Decoder, Layer, LayerSpec, Options, RopeTable};
use super::head::{Head, Output};
use super::ops::{gelu_ggml, RopeStyle};
use super::ple::{PerLayerInputs, PleBlock};
use super::rope::Rope;
use super::weights::{optional_vector, Weights};
use crate::ModelError;

fn opts(c: &ModelConfig, layers_27b: usize) -> Options {
    let d = c.n_embd as f32;
    let qk = if c.n_layer == layers_27b { d / c.n_head as f32 } else { c.k_dim as f32 };
    Options { embed_scale: d.sqrt(), rope_style: RopeStyle::Neox, act: gelu_ggml, kq_scale: 1.0 / qk.sqrt(), ..Options::llama(c) }
}

pub(super) fn rope(g: &Weights<'_>, c: &ModelConfig) -> Result<Rope, ModelError> {
    Rope::from_gguf(g, &c.arch, c.rope_dims, c.rope_base, c.n_ctx_train)
}

/// Which layers use the sliding window: `attention.sliding_window_pattern`
/// as a per-layer bool array, or a period `n` (layer `i` is local when
/// `i % n < n - 1`), else `default_period`.
fn swa_layers(g: &Weights<'_>, c: &ModelConfig, default_period: usize) -> Result<Vec<bool>, ModelError> {
    let key = format!("{}.attention.sliding_window_pattern", c.arch);
    let period = match g.get(&key) {
        None => default_period,
        Some(Value::Array(Array::Bool(v))) if v.len() == c.n_layer => return Ok(v.clone()),
        Some(Value::Array(_)) => {
            return Err(ModelError::InconsistentHyperparameter { key, value: 0, reason: format!("expected {} booleans, one per layer", c.n_layer) })
        }
        Some(_) => g.get_u64(&key)?.map_or(default_period, |v| usize::try_from(v).unwrap_or(usize::MAX)),
    };
    Ok((0..c.n_layer).map(|i| period == 0 || i % period < period - 1).collect())
}

fn table(local: bool) -> RopeTable {
    if local {
        RopeTable::Local
    } else {
        RopeTable::Global
    }
}

pub fn load_gemma(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    let layers = load_layers(g, c, LayerSpec::LLAMA, |_| None, |_| RopeTable::Global)?;
    Ok(Decoder { opts: opts(c, usize::MAX), head: Head::load(g, c, Output::Tied)?, layers, rope: rope(g, c)?, rope_local: None, rope_long: None, ple: None })
}

pub fn load_gemma2(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    let k = |s: &str| format!("{}.{s}", c.arch);
    let mut opts = opts(c, 46);
    opts.attn_softcap = Some(g.get_f32(&k("attn_logit_softcapping"))?.unwrap_or(50.0)).filter(|&v| v > 0.0);
    opts.final_softcap = Some(g.get_f32(&k("final_logit_softcapping"))?.unwrap_or(30.0)).filter(|&v| v > 0.0);
    let window = c.sliding_window.unwrap_or(4096);
    let swa = swa_layers(g, c, 2)?;
    let spec = LayerSpec { post_norms: true, ..LayerSpec::LLAMA };
    let layers = load_layers(g, c, spec, |i| swa[i].then_some(window), |i| table(swa[i]))?;
    let global = rope(g, c)?;
    // Local layers: their own base (default: the global one), the global
    // scaling.
    let base_swa = g.get_f32(&k("rope.freq_base_swa"))?.unwrap_or(c.rope_base);
    let local = Rope { base: base_swa, ..global.clone() };
    Ok(Decoder { opts, head: Head::load(g, c, Output::Tied)?, layers, rope: global, rope_local: Some(local), rope_long: None, ple: None })
}

pub fn load_gemma3(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    let mut opts = opts(c, 62);
    opts.final_softcap = c.final_logit_softcap;
    // No window key (or 0): every layer is global.
    let swa = match c.sliding_window {
        Some(_) => swa_layers(g, c, 6)?,
        None => vec![false; c.n_layer],
    };
    let spec = LayerSpec { qk_norm: true, post_norms: true, ..LayerSpec::LLAMA };
    let layers = load_layers(g, c, spec, |i| c.sliding_window.filter(|_| swa[i]), |i| table(swa[i]))?;
    let base_swa = g.get_f32(&format!("{}.rope.freq_base_swa", c.arch))?.unwrap_or(10_000.0);
    let local = Rope::plain(c.rope_dims, base_swa, 1.0);
    Ok(Decoder { opts, head: Head::load(g, c, Output::OwnOrTied)?, layers, rope: rope(g, c)?, rope_local: Some(local), rope_long: None, ple: None })
}

/// The options and layers Gemma 4 and Gemma 3n share: Gemma 3's layers
/// with values RMS-normed without a weight, unscaled attention (the Q/K
/// norms do it), the file's sliding layers, and a per-layer-embedding
/// block per layer.
pub(super) fn ple_layers(g: &Weights<'_>, c: &ModelConfig) -> Result<(Options, Vec<Layer>), ModelError> {
    let opts = Options {
        embed_scale: (c.n_embd as f32).sqrt(),
        rope_style: RopeStyle::Neox,
        act: gelu_ggml,
        kq_scale: 1.0,
        final_softcap: c.final_logit_softcap,
        ..Options::llama(c)
    };
    let swa = c.swa_layers.clone().unwrap_or_else(|| vec![false; c.n_layer]);
    let spec = LayerSpec { qk_norm: true, post_norms: true, v_norm: true, ..LayerSpec::LLAMA };
    let mut layers = load_layers(g, c, spec, |i| c.sliding_window.filter(|_| swa[i]), |i| table(swa[i]))?;
    for (i, layer) in layers.iter_mut().enumerate() {
        layer.ple = PleBlock::load(g, c, i)?;
    }
    Ok((opts, layers))
}

pub fn load_gemma4(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    // The 26B-A4B adds experts beside the dense FFN; running only the
    // dense half would be silently wrong.
    if g.get_u64(&format!("{}.expert_count", c.arch))?.unwrap_or(0) > 0 || g.tensor("blk.0.ffn_gate_inp.weight").is_some() {
        return Err(ModelError::UnsupportedArchitecture("gemma4 with experts (Gemma 4 26B-A4B)".into()));
    }
    let (opts, mut layers) = ple_layers(g, c)?;
    for (i, layer) in layers.iter_mut().enumerate() {
        layer.out_scale = optional_vector(g, &format!("blk.{i}.layer_output_scale.weight"), 1)?.map(|v| v[0]);
    }
    // Global layers: the file's base and its `rope_freqs` divisors (which
    // turn only the first quarter of the pairs); local layers: their own
    // width and base, no divisors.
    let mut global = rope(g, c)?;
    if g.tensor("rope_freqs.weight").is_some() {
        global = global.with_factors(g, "rope_freqs.weight")?;
    }
    let base_swa = g.get_f32(&format!("{}.rope.freq_base_swa", c.arch))?.unwrap_or(10_000.0);
    let local = Rope::plain(c.rope_dims_swa, base_swa, 1.0);
    let ple = PerLayerInputs::load(g, c)?.map(Box::new);
    Ok(Decoder { opts, head: Head::load(g, c, Output::OwnOrTied)?, layers, rope: global, rope_local: Some(local), rope_long: None, ple })
}
