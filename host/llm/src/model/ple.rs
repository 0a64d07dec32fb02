//! Gemma 4's and Gemma 3n's per-layer embeddings (llama.cpp `build_inp_per_layer`,
//! `project_per_layer_inputs` and the per-layer block of `gemma4.cpp`).
//!
//! Once per batch, each token gets `P` extra values per layer: its row of
//! `per_layer_token_embd` (`P · n_layer` wide) times √P, plus a projection
//! of its (already √E-scaled) embedding by `per_layer_model_proj`, times
//! 1/√E and RMS-normed per layer slice with `per_layer_proj_norm`; the sum
//! times 1/√2. After each layer's FFN, `gelu(inp_gate · x)` is multiplied
//! by the layer's slice, projected back by `proj`, RMS-normed with
//! `post_norm` and added to the residual.

use edgewasm_gguf::GgufFile;

use super::config::ModelConfig;
use super::decoder::{Norm, NormKind};
use super::matmul::{matmul, ActBuf, QMatrix};
use super::ops::rms_norm_inplace;
use super::weights::{matrix, plain_matrix, vector, Weights};
use super::Scratch;
use crate::threadpool::ThreadPool;
use crate::ModelError;

/// The model-level tensors: made once per batch into `s.ple`.
#[derive(Debug)]
pub struct PerLayerInputs {
    /// `per_layer_token_embd`: a `P · n_layer` row per token.
    token_embd: QMatrix,
    /// `per_layer_model_proj`: `n_embd` → `P · n_layer`.
    model_proj: QMatrix,
    /// `per_layer_proj_norm`: `P`, shared by the layer slices.
    proj_norm: Vec<f32>,
}

/// Values per token [`Scratch::ple`] holds: every layer's slice, and one
/// slice of gate values.
pub fn scratch_width(c: &ModelConfig) -> Option<usize> {
    c.n_embd_per_layer.checked_mul(c.n_layer.checked_add(1)?)
}

impl PerLayerInputs {
    /// `None` when the model has no per-layer embeddings (`P` = 0).
    pub fn load(g: &Weights<'_>, c: &ModelConfig) -> Result<Option<PerLayerInputs>, ModelError> {
        let (p, w) = (c.n_embd_per_layer, c.n_embd_per_layer * c.n_layer);
        if p == 0 {
            return Ok(None);
        }
        Ok(Some(PerLayerInputs {
            token_embd: plain_matrix(g, "per_layer_token_embd.weight", w, c.n_vocab)?,
            model_proj: matrix(g, "per_layer_model_proj.weight", c.n_embd, w)?,
            proj_norm: vector(g, "per_layer_proj_norm.weight", p)?,
        }))
    }

    /// Fills `s.ple` for the `tokens`, whose scaled embeddings are in `s.x`.
    pub fn compute(&self, pool: &ThreadPool, file: &GgufFile, c: &ModelConfig, tokens: &[u32], eps: f32, s: &mut Scratch) {
        let (n, d, p) = (tokens.len(), c.n_embd, c.n_embd_per_layer);
        let w = p * c.n_layer;
        matmul(pool, file, &self.model_proj, &s.x[..n * d], n, &mut s.xq, &mut s.ple);
        let (inv_e, sqrt_p, inv_2) = (1.0 / (d as f32).sqrt(), (p as f32).sqrt(), 1.0 / 2f32.sqrt());
        let mut emb = vec![0.0f32; w];
        for (i, &t) in tokens.iter().enumerate() {
            let row = &mut s.ple[i * w..(i + 1) * w];
            row.iter_mut().for_each(|v| *v *= inv_e);
            row.chunks_exact_mut(p).for_each(|slice| rms_norm_inplace(slice, &self.proj_norm, eps));
            self.token_embd.dequantize_row(file, t as usize, &mut emb);
            for (v, &e) in row.iter_mut().zip(&emb) {
                *v = (*v + e * sqrt_p) * inv_2;
            }
        }
    }
}

/// One layer's per-layer-embedding block.
#[derive(Debug)]
pub struct PleBlock {
    /// `inp_gate`: `n_embd` → `P`.
    inp_gate: QMatrix,
    /// `proj`: `P` → `n_embd`.
    proj: QMatrix,
    post_norm: Norm,
}

impl PleBlock {
    /// Layer `i`'s block; `None` without per-layer embeddings.
    pub fn load(g: &Weights<'_>, c: &ModelConfig, i: usize) -> Result<Option<PleBlock>, ModelError> {
        let (d, p) = (c.n_embd, c.n_embd_per_layer);
        if p == 0 {
            return Ok(None);
        }
        let n = |s: &str| format!("blk.{i}.{s}");
        Ok(Some(PleBlock {
            inp_gate: matrix(g, &n("inp_gate.weight"), d, p)?,
            proj: matrix(g, &n("proj.weight"), p, d)?,
            post_norm: Norm::load(g, &n("post_norm"), d)?,
        }))
    }

    /// The block's output for the `n` rows of `input` (layer `layer`; the
    /// per-layer inputs and room for the gates in `ple`, as
    /// [`PerLayerInputs::compute`] left them), to be added to the residual,
    /// in `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(&self, pool: &ThreadPool, file: &GgufFile, c: &ModelConfig, layer: usize, act: fn(f32) -> f32, eps: f32, n: usize, input: &[f32], ple: &mut [f32], xq: &mut ActBuf, out: &mut [f32]) {
        let (d, p) = (c.n_embd, c.n_embd_per_layer);
        let w = p * c.n_layer;
        let (inputs, gates) = ple.split_at_mut(n * w);
        matmul(pool, file, &self.inp_gate, &input[..n * d], n, xq, gates);
        for (i, g) in gates[..n * p].chunks_exact_mut(p).enumerate() {
            let slice = &inputs[i * w + layer * p..i * w + (layer + 1) * p];
            for (v, &x) in g.iter_mut().zip(slice) {
                *v = act(*v) * x;
            }
        }
        matmul(pool, file, &self.proj, &gates[..n * p], n, xq, out);
        let mut tmp = Vec::new();
        self.post_norm.apply_rows(NormKind::Rms, eps, &mut out[..n * d], &mut tmp);
    }
}
