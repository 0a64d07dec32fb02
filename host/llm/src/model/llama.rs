//! The llama architecture (SmolLM2, Llama 2/3, Mistral-style GQA models):
//! pre-norm blocks of RMSNorm → GQA attention with RoPE → residual, RMSNorm →
//! SwiGLU FFN → residual, then a final norm and the (possibly tied) output
//! projection.


use super::attention::{attention, AttentionParams};
use super::config::ModelConfig;
use super::matmul::{matmul, matmul_many, QMatrix};
use super::ops::{add_inplace, gated, rms_norm, rope_apply, silu, RopeStyle};
use super::head::Head;
use super::weights::{matrix, vector, Weights};
use super::{Architecture, ForwardEnv};
use crate::ModelError;

#[derive(Debug)]
struct Layer {
    attn_norm: Vec<f32>,
    wq: QMatrix,
    wk: QMatrix,
    wv: QMatrix,
    wo: QMatrix,
    ffn_norm: Vec<f32>,
    w_gate: QMatrix,
    w_up: QMatrix,
    w_down: QMatrix,
}

/// Weights of a llama-architecture model.
#[derive(Debug)]
pub struct Llama {
    head: Head,
    layers: Vec<Layer>,
}

impl Llama {
    pub fn load(g: &Weights<'_>, c: &ModelConfig) -> Result<Llama, ModelError> {
        let (d, qd, kvd, vd) = (c.n_embd, c.n_head * c.k_dim, c.n_head_kv * c.k_dim, c.n_head_kv * c.v_dim);
        let layers = (0..c.n_layer)
            .map(|i| {
                let n = |s: &str| format!("blk.{i}.{s}.weight");
                Ok(Layer {
                    attn_norm: vector(g, &n("attn_norm"), d)?,
                    wq: matrix(g, &n("attn_q"), d, qd)?,
                    wk: matrix(g, &n("attn_k"), d, kvd)?,
                    wv: matrix(g, &n("attn_v"), d, vd)?,
                    wo: matrix(g, &n("attn_output"), c.n_head * c.v_dim, d)?,
                    ffn_norm: vector(g, &n("ffn_norm"), d)?,
                    w_gate: matrix(g, &n("ffn_gate"), d, c.n_ff)?,
                    w_up: matrix(g, &n("ffn_up"), d, c.n_ff)?,
                    w_down: matrix(g, &n("ffn_down"), c.n_ff, d)?,
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        Ok(Llama { head: Head::load(g, c)?, layers })
    }
}

impl Architecture for Llama {
    fn forward(&self, env: &mut ForwardEnv<'_>, tokens: &[u32], pos0: usize, out_from: usize, logits: &mut [f32]) {
        let c = env.config;
        let (file, pool) = (env.file, env.pool);
        let s = &mut *env.scratch;
        let n = tokens.len();
        let d = c.n_embd;
        let (qd, kvd, vd, od) = (c.n_head * c.k_dim, c.n_head_kv * c.k_dim, c.n_head_kv * c.v_dim, c.n_head * c.v_dim);

        self.head.embed(file, c, tokens, 1.0, s);
        s.fill_rope(c, pos0, n, c.rope_base);
        let params = |layer| AttentionParams {
            layer,
            n_head: c.n_head,
            n_kv_head: c.n_head_kv,
            k_dim: c.k_dim,
            v_dim: c.v_dim,
            scale: 1.0 / (c.k_dim as f32).sqrt(),
            window: None,
        };

        for (l, w) in self.layers.iter().enumerate() {
            let x = &s.x;
            pool.for_each_row_mut(&mut s.xn[..n * d], d, |i, xn| rms_norm(&x[i * d..(i + 1) * d], &w.attn_norm, c.rms_eps, xn));
            let xn = &s.xn[..n * d];
            let qkv = &mut [(&w.wq, &mut s.q[..]), (&w.wk, &mut s.k[..]), (&w.wv, &mut s.v[..])];
            matmul_many(pool, file, xn, n, &mut s.xq, qkv);
            for i in 0..n {
                let rope = &s.rope[i * c.rope_dims..(i + 1) * c.rope_dims];
                rope_apply(&mut s.q[i * qd..(i + 1) * qd], c.k_dim, c.rope_dims, RopeStyle::Normal, rope);
                rope_apply(&mut s.k[i * kvd..(i + 1) * kvd], c.k_dim, c.rope_dims, RopeStyle::Normal, rope);
                env.kv.store(l, pos0 + i, &s.k[i * kvd..(i + 1) * kvd], &s.v[i * vd..(i + 1) * vd]);
            }
            attention(pool, &params(l), env.kv, &s.q, pos0, n, &mut s.att);
            matmul(pool, file, &w.wo, &s.att[..n * od], n, &mut s.xq, &mut s.tmp);
            add_inplace(&mut s.x[..n * d], &s.tmp[..n * d]);

            let x = &s.x;
            pool.for_each_row_mut(&mut s.xn[..n * d], d, |i, xn| rms_norm(&x[i * d..(i + 1) * d], &w.ffn_norm, c.rms_eps, xn));
            let xn = &s.xn[..n * d];
            matmul_many(pool, file, xn, n, &mut s.xq, &mut [(&w.w_gate, &mut s.gate[..]), (&w.w_up, &mut s.up[..])]);
            let (up, f) = (&s.up, c.n_ff);
            pool.for_each_row_mut(&mut s.gate[..n * f], f, |i, g| gated(g, &up[i * f..(i + 1) * f], silu));
            matmul(pool, file, &w.w_down, &s.gate[..n * c.n_ff], n, &mut s.xq, &mut s.tmp);
            add_inplace(&mut s.x[..n * d], &s.tmp[..n * d]);
        }

        self.head.logits(pool, file, c, s, n, out_from, logits);
    }
}
