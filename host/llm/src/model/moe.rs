//! The mixture-of-experts feed-forward network, as llama.cpp's
//! `build_moe_ffn` computes it: a router scores the experts per token
//! (`softmax(gate_inp · x)`, or independent sigmoids, whose selection may
//! be shifted by a per-expert bias that the weights do not see), the token
//! goes to the
//! `n_expert_used` best (optionally with their weights renormalized to sum
//! to 1), each of those experts is a SwiGLU network of its own, and the
//! output is the weighted sum of theirs, plus an optional shared expert
//! every token goes through (Qwen 2 MoE scales it by a sigmoid gate).
//!
//! A batch is computed expert by expert: the rows routed to an expert are
//! gathered, go through its matrices together, and are added back, weighted,
//! to their tokens' outputs; so each expert's weights are read once per
//! batch.

use edgewasm_gguf::GgufFile;

use super::config::{Gating, ModelConfig};
use super::matmul::{matmul, matmul_many, QMatrix};
use super::ops::{gated, sigmoid, silu};
use super::weights::{experts, matrix, optional_experts, vector, Weights};
use super::Scratch;
use crate::threadpool::ThreadPool;
use crate::ModelError;

/// How an architecture's expert layers work (for [`super::decoder::load_layers`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MoeSpec {
    /// The chosen experts' weights are divided by their sum (Mixtral,
    /// Qwen 3 MoE, Granite MoE; not Qwen 2 MoE).
    pub norm_weights: bool,
    /// `ffn_gate_exps` may be absent; the experts are then `down(act(up·x))`
    /// (llama.cpp's llama and granite loaders).
    pub gate_optional: bool,
    /// The shared expert (present when `n_ff_shexp > 0`) is scaled by
    /// `sigmoid(gate_inp_shexp · x)` (Qwen 2 MoE), else added as it is
    /// (Granite MoE).
    pub shared_gated: bool,
    /// `exp_probs_b.bias` is added to the probabilities to select the
    /// experts, not to weight them (LFM2 MoE).
    pub probs_bias: bool,
}

/// The always-used expert: a SwiGLU network, optionally gated per token.
#[derive(Debug)]
pub struct SharedExpert {
    pub gate: QMatrix,
    pub up: QMatrix,
    pub down: QMatrix,
    /// `ffn_gate_inp_shexp`: one row of `n_embd`.
    pub gate_inp: Option<QMatrix>,
}

/// One layer's experts.
#[derive(Debug)]
pub struct Moe {
    /// `ffn_gate_inp`: `n_embd` → `n_expert` logits.
    pub router: QMatrix,
    pub gate: Option<Vec<QMatrix>>,
    pub up: Vec<QMatrix>,
    pub down: Vec<QMatrix>,
    pub shared: Option<SharedExpert>,
    pub norm_weights: bool,
    pub gating: Gating,
    /// Selection bias per expert.
    pub bias: Option<Vec<f32>>,
}

/// Smallest sum the chosen weights are divided by: the smallest normal
/// f16, 2^-14 (llama.cpp clamps to 6.103515625e-5).
const MIN_WEIGHT_SUM: f32 = 1.0 / 16384.0;

impl Moe {
    /// Layer `i`'s expert tensors (`blk.{i}.ffn_*_exps`, the router, and the
    /// shared expert's when `c.n_ff_shexp > 0`).
    pub fn load(g: &Weights<'_>, c: &ModelConfig, spec: MoeSpec, i: usize) -> Result<Moe, ModelError> {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        let (d, e, f) = (c.n_embd, c.n_expert, c.n_ff_exp);
        let gate = if spec.gate_optional {
            optional_experts(g, &n("ffn_gate_exps"), d, f, e)?
        } else {
            Some(experts(g, &n("ffn_gate_exps"), d, f, e)?)
        };
        let shared = if c.n_ff_shexp > 0 {
            let fs = c.n_ff_shexp;
            Some(SharedExpert {
                gate: matrix(g, &n("ffn_gate_shexp"), d, fs)?,
                up: matrix(g, &n("ffn_up_shexp"), d, fs)?,
                down: matrix(g, &n("ffn_down_shexp"), fs, d)?,
                gate_inp: if spec.shared_gated { Some(matrix(g, &n("ffn_gate_inp_shexp"), d, 1)?) } else { None },
            })
        } else {
            None
        };
        Ok(Moe {
            router: matrix(g, &n("ffn_gate_inp"), d, e)?,
            gate,
            up: experts(g, &n("ffn_up_exps"), d, f, e)?,
            down: experts(g, &n("ffn_down_exps"), f, d, e)?,
            shared,
            norm_weights: spec.norm_weights,
            gating: c.expert_gating,
            bias: if spec.probs_bias { Some(vector(g, &format!("blk.{i}.exp_probs_b.bias"), e)?) } else { None },
        })
    }

    /// `s.tmp[..n·d]` = the layer's output for the `n` normed rows in
    /// `s.xn`.
    pub fn forward(&self, pool: &ThreadPool, file: &GgufFile, c: &ModelConfig, act: fn(f32) -> f32, n: usize, s: &mut Scratch) {
        let (d, e, k, f) = (c.n_embd, c.n_expert, c.n_expert_used, c.n_ff_exp);
        let xn = &s.xn[..n * d];
        matmul(pool, file, &self.router, xn, n, &mut s.xq, &mut s.router);
        for i in 0..n {
            let r = Routing { gating: self.gating, bias: self.bias.as_deref(), norm: self.norm_weights };
            route(&mut s.router[i * e..(i + 1) * e], r, &mut s.moe_sel[i * k..(i + 1) * k], &mut s.moe_w[i * k..(i + 1) * k]);
        }

        let out = &mut s.tmp[..n * d];
        out.fill(0.0);
        for (x, (up, down)) in self.up.iter().zip(&self.down).enumerate() {
            // The rows (token · k + slot) routed to expert `x`, gathered.
            let mut m = 0;
            for (r, &sel) in s.moe_sel[..n * k].iter().enumerate() {
                if sel as usize == x {
                    s.moe_rows[m] = r as u32;
                    s.moe_x[m * d..(m + 1) * d].copy_from_slice(&xn[r / k * d..(r / k + 1) * d]);
                    m += 1;
                }
            }
            if m == 0 {
                continue;
            }
            let xe = &s.moe_x[..m * d];
            match &self.gate {
                Some(gate) => {
                    matmul_many(pool, file, xe, m, &mut s.xq, &mut [(&gate[x], &mut s.gate[..]), (up, &mut s.up[..])]);
                    let up = &s.up;
                    pool.for_each_row_mut(&mut s.gate[..m * f], f, |i, g| gated(g, &up[i * f..(i + 1) * f], act));
                }
                None => {
                    matmul(pool, file, up, xe, m, &mut s.xq, &mut s.gate);
                    s.gate[..m * f].iter_mut().for_each(|v| *v = act(*v));
                }
            }
            matmul(pool, file, down, &s.gate[..m * f], m, &mut s.xq, &mut s.moe_y);
            // As ggml: each expert's output times its weight, then summed.
            for (j, &r) in s.moe_rows[..m].iter().enumerate() {
                let (r, w) = (r as usize, s.moe_w[r as usize]);
                let dst = &mut out[r / k * d..(r / k + 1) * d];
                for (o, &y) in dst.iter_mut().zip(&s.moe_y[j * d..(j + 1) * d]) {
                    *o += y * w;
                }
            }
        }

        if let Some(sh) = &self.shared {
            let fs = c.n_ff_shexp;
            matmul_many(pool, file, xn, n, &mut s.xq, &mut [(&sh.gate, &mut s.gate[..]), (&sh.up, &mut s.up[..])]);
            let up = &s.up;
            pool.for_each_row_mut(&mut s.gate[..n * fs], fs, |i, g| gated(g, &up[i * fs..(i + 1) * fs], act));
            matmul(pool, file, &sh.down, &s.gate[..n * fs], n, &mut s.xq, &mut s.moe_y);
            if let Some(gate_inp) = &sh.gate_inp {
                // One logit per token; the router's logits are used up.
                matmul(pool, file, gate_inp, xn, n, &mut s.xq, &mut s.router);
                for (row, &z) in s.moe_y[..n * d].chunks_exact_mut(d).zip(&s.router[..n]) {
                    // sigmoid(z) as llama.cpp builds it, silu(z) / z (its
                    // limit at 0, where that is 0/0).
                    let g = if z == 0.0 { 0.5 } else { silu(z) / z };
                    row.iter_mut().for_each(|v| *v *= g);
                }
            }
            s.tmp[..n * d].iter_mut().zip(&s.moe_y[..n * d]).for_each(|(o, &y)| *o += y);
        }
    }
}

/// How a layer turns router logits into chosen experts and weights.
#[derive(Clone, Copy, Debug)]
pub struct Routing<'a> {
    pub gating: Gating,
    /// Added to the probabilities for the choice only.
    pub bias: Option<&'a [f32]>,
    /// Divide the chosen weights by their sum.
    pub norm: bool,
}

/// One token's routing: `probs` (the router's logits) become probabilities
/// (ggml's softmax: `exp(l − max)` summed in f64, then multiplied by the
/// f32 reciprocal of the sum; or `1 / (1 + exp(−l))` each); `sel` gets the
/// `k = sel.len()` experts with the highest probability plus bias, best
/// first (ties: the lower index), `w` their probabilities, divided by their
/// sum when `r.norm`.
pub fn route(probs: &mut [f32], r: Routing<'_>, sel: &mut [u32], w: &mut [f32]) {
    match r.gating {
        Gating::Softmax => {
            let max = probs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f64;
            for p in probs.iter_mut() {
                *p = (*p - max).exp();
                sum += *p as f64;
            }
            let scale = (1.0 / sum) as f32;
            probs.iter_mut().for_each(|p| *p *= scale);
        }
        Gating::Sigmoid => probs.iter_mut().for_each(|p| *p = sigmoid(*p)),
    }
    let score = |x: usize| probs[x] + r.bias.map_or(0.0, |b| b[x]);

    let mut order = [0u16; super::config::MAX_EXPERTS];
    let order = &mut order[..probs.len()];
    order.iter_mut().enumerate().for_each(|(i, o)| *o = i as u16);
    order.sort_unstable_by(|&a, &b| score(b as usize).total_cmp(&score(a as usize)).then(a.cmp(&b)));
    for ((s, w), &x) in sel.iter_mut().zip(w.iter_mut()).zip(order.iter()) {
        *s = x as u32;
        *w = probs[x as usize];
    }
    if r.norm {
        let sum = w.iter().map(|&v| v as f64).sum::<f64>() as f32;
        let sum = sum.max(MIN_WEIGHT_SUM);
        w.iter_mut().for_each(|v| *v /= sum);
    }
}

#[cfg(test)]
mod tests {
    use super::{route, Gating, Routing};

    #[test]
    fn routing_picks_the_best_and_normalizes() {
        let mut logits = vec![0.0, 2.0, 1.0, 2.0];
        let (mut sel, mut w) = ([0u32; 2], [0f32; 2]);
        let plain = |norm| Routing { gating: Gating::Softmax, bias: None, norm };
        route(&mut logits, plain(false), &mut sel, &mut w);
        assert_eq!(sel, [1, 3]);
        let total: f32 = logits.iter().sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert_eq!(w[0], logits[1]);
        let mut logits = vec![0.0, 2.0, 1.0, 3.0];
        route(&mut logits, plain(true), &mut sel, &mut w);
        assert_eq!(sel, [3, 1]);
        assert!((w[0] + w[1] - 1.0).abs() < 1e-6 && w[0] > w[1]);
    }

    /// Sigmoid gating: the bias moves the choice, not the weights.
    #[test]
    fn the_selection_bias_only_chooses() {
        let bias = [0.0, 0.0, 0.9, 0.0];
        let r = Routing { gating: Gating::Sigmoid, bias: Some(&bias), norm: false };
        let mut logits = vec![0.0, 2.0, 1.0, -1.0];
        let (mut sel, mut w) = ([0u32; 2], [0f32; 2]);
        route(&mut logits, r, &mut sel, &mut w);
        // sigmoid(1) + 0.9 > sigmoid(2) > sigmoid(0)
        assert_eq!(sel, [2, 1]);
        assert_eq!(w, [1.0 / (1.0 + (-1.0f32).exp()), 1.0 / (1.0 + (-2.0f32).exp())]);
    }
}
