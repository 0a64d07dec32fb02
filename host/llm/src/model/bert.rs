//! BERT-style encoders. They have no output layer: they make embeddings
//! only ([`crate::embed`]), as llama.cpp's `bert` graph, whose `t_embd` is
//! the last layer's output.
//!
//! * `bert` (all-MiniLM, bge, e5): token, absolute position and type-0
//!   embeddings summed and LayerNormed; per layer attention with biases
//!   (bidirectional when the file says `attention.causal = false`, as
//!   converted BERTs do), no RoPE, then `x = norm(x + attn(x))` and
//!   `x = norm(x + mlp(x))` (post-LN) with a GELU MLP with biases.
//! * `nomic-bert` (nomic-embed-text): the same without position
//!   embeddings: NeoX RoPE instead, Q/K/V fused, and a SwiGLU FFN, whose
//!   biases llama.cpp's graph leaves out (so do we).

use super::config::ModelConfig;
use super::decoder::{load_layers, Decoder, Ffn, FfnKind, LayerSpec, NormKind, Options, RopeTable};
use super::head::Head;
use super::ops::{gelu_ggml, RopeStyle};
use super::rope::Rope;
use super::starcoder2::ln_eps;
use super::weights::Weights;
use crate::ModelError;

/// No pre-norms: the residual stream is normed after each add instead.
const ENCODER: LayerSpec = LayerSpec { attn_norm: false, ffn_norm: false, res_norms: true, ..LayerSpec::LLAMA };

pub fn load_bert(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    let eps = ln_eps(g, c)?;
    let opts = Options { norm: NormKind::Layer, eps, act: gelu_ggml, ..Options::llama(c) };
    let layers = load_layers(g, c, LayerSpec { ffn: FfnKind::Mlp, ..ENCODER }, |_| None, |_| RopeTable::None)?;
    let head = Head::load_encoder(g, c, true, NormKind::Layer, eps)?;
    // No layer turns (`RopeTable::None`); the decoder still holds a table.
    let rope = Rope::plain(c.rope_dims, c.rope_base, 1.0);
    Ok(Decoder { opts, head, layers, rope, rope_local: None, rope_long: None, ple: None })
}

pub fn load_nomic_bert(g: &Weights<'_>, c: &ModelConfig) -> Result<Decoder, ModelError> {
    let eps = ln_eps(g, c)?;
    let opts = Options { norm: NormKind::Layer, eps, rope_style: RopeStyle::Neox, ..Options::llama(c) };
    let mut layers = load_layers(g, c, ENCODER, |_| None, |_| RopeTable::Global)?;
    for l in &mut layers {
        if let Ffn::Gated { gate, up, down } = &mut l.ffn {
            (gate.bias, up.bias, down.bias) = (None, None, None);
        }
    }
    let head = Head::load_encoder(g, c, false, NormKind::Layer, eps)?;
    let rope = Rope::from_gguf(g, &c.arch, c.rope_dims, c.rope_base, c.n_ctx_train)?;
    Ok(Decoder { opts, head, layers, rope, rope_local: None, rope_long: None, ple: None })
}
