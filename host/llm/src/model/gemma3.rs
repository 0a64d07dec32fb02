//! The Gemma 3 architecture: the llama block plus Q/K RMSNorm, norms after
//! attention and FFN, a GELU-gated FFN, √d-scaled embeddings, and
//! sliding-window attention on five of every six layers (local RoPE base
//! 10 000, global base from `rope.freq_base`).


use super::attention::{attention, AttentionParams};
use super::config::ModelConfig;
use super::matmul::{matmul, matmul_many, QMatrix};
use super::ops::{add_inplace, gated, gelu_ggml, rms_norm, rms_norm_inplace, rope_apply, RopeStyle};
use super::head::Head;
use super::weights::{matrix, vector, Weights};
use super::{Architecture, ForwardEnv};
use crate::ModelError;

/// Layers `il` with `il % 6 < 5` use the sliding window (llama.cpp's
/// `set_swa_pattern(6)`).
const SWA_PERIOD: usize = 6;
/// RoPE base of the local layers when the file does not say
/// (`rope.freq_base_swa`), as in llama.cpp.
const DEFAULT_SWA_ROPE_BASE: f32 = 10_000.0;

#[derive(Debug)]
struct Layer {
    attn_norm: Vec<f32>,
    wq: QMatrix,
    wk: QMatrix,
    wv: QMatrix,
    q_norm: Vec<f32>,
    k_norm: Vec<f32>,
    wo: QMatrix,
    attn_post_norm: Vec<f32>,
    ffn_norm: Vec<f32>,
    w_gate: QMatrix,
    w_up: QMatrix,
    w_down: QMatrix,
    ffn_post_norm: Vec<f32>,
    /// Sliding window of this layer, `None` for global layers.
    window: Option<usize>,
}

/// Weights of a Gemma 3 model.
#[derive(Debug)]
pub struct Gemma3 {
    head: Head,
    layers: Vec<Layer>,
    swa_rope_base: f32,
}

impl Gemma3 {
    pub fn load(g: &Weights<'_>, c: &ModelConfig) -> Result<Gemma3, ModelError> {
        let (d, qd, kvd, vd) = (c.n_embd, c.n_head * c.k_dim, c.n_head_kv * c.k_dim, c.n_head_kv * c.v_dim);
        let layers = (0..c.n_layer)
            .map(|i| {
                let n = |s: &str| format!("blk.{i}.{s}.weight");
                Ok(Layer {
                    attn_norm: vector(g, &n("attn_norm"), d)?,
                    wq: matrix(g, &n("attn_q"), d, qd)?,
                    wk: matrix(g, &n("attn_k"), d, kvd)?,
                    wv: matrix(g, &n("attn_v"), d, vd)?,
                    q_norm: vector(g, &n("attn_q_norm"), c.k_dim)?,
                    k_norm: vector(g, &n("attn_k_norm"), c.k_dim)?,
                    wo: matrix(g, &n("attn_output"), c.n_head * c.v_dim, d)?,
                    attn_post_norm: vector(g, &n("post_attention_norm"), d)?,
                    ffn_norm: vector(g, &n("ffn_norm"), d)?,
                    w_gate: matrix(g, &n("ffn_gate"), d, c.n_ff)?,
                    w_up: matrix(g, &n("ffn_up"), d, c.n_ff)?,
                    w_down: matrix(g, &n("ffn_down"), c.n_ff, d)?,
                    ffn_post_norm: vector(g, &n("post_ffw_norm"), d)?,
                    window: c.sliding_window.filter(|_| i % SWA_PERIOD < SWA_PERIOD - 1),
                })
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        let swa_rope_base = g.get_f32(&format!("{}.rope.freq_base_swa", c.arch))?.unwrap_or(DEFAULT_SWA_ROPE_BASE);
        Ok(Gemma3 { head: Head::load(g, c)?, layers, swa_rope_base })
    }
}

impl Architecture for Gemma3 {
    fn forward(&self, env: &mut ForwardEnv<'_>, tokens: &[u32], pos0: usize, out_from: usize, logits: &mut [f32]) {
        let c = env.config;
        let (file, pool) = (env.file, env.pool);
        let s = &mut *env.scratch;
        let n = tokens.len();
        let d = c.n_embd;
        let (qd, kvd, vd, od) = (c.n_head * c.k_dim, c.n_head_kv * c.k_dim, c.n_head_kv * c.v_dim, c.n_head * c.v_dim);
        self.head.embed(file, c, tokens, (d as f32).sqrt(), s);
        // Two RoPE tables: local layers and global layers use different bases.
        let rope_len = n * c.rope_dims;
        s.fill_rope(c, pos0, n, self.swa_rope_base);
        s.rope_local[..rope_len].copy_from_slice(&s.rope[..rope_len]);
        s.fill_rope(c, pos0, n, c.rope_base);

        for (l, w) in self.layers.iter().enumerate() {
            let x = &s.x;
            pool.for_each_row_mut(&mut s.xn[..n * d], d, |i, xn| rms_norm(&x[i * d..(i + 1) * d], &w.attn_norm, c.rms_eps, xn));
            let xn = &s.xn[..n * d];
            let qkv = &mut [(&w.wq, &mut s.q[..]), (&w.wk, &mut s.k[..]), (&w.wv, &mut s.v[..])];
            matmul_many(pool, file, xn, n, &mut s.xq, qkv);
            let table = if w.window.is_some() { &s.rope_local[..rope_len] } else { &s.rope[..rope_len] };
            for i in 0..n {
                let rope = &table[i * c.rope_dims..(i + 1) * c.rope_dims];
                let q = &mut s.q[i * qd..(i + 1) * qd];
                for head in q.chunks_exact_mut(c.k_dim) {
                    rms_norm_inplace(head, &w.q_norm, c.rms_eps);
                }
                rope_apply(q, c.k_dim, c.rope_dims, RopeStyle::Neox, rope);
                let k = &mut s.k[i * kvd..(i + 1) * kvd];
                for head in k.chunks_exact_mut(c.k_dim) {
                    rms_norm_inplace(head, &w.k_norm, c.rms_eps);
                }
                rope_apply(k, c.k_dim, c.rope_dims, RopeStyle::Neox, rope);
                env.kv.store(l, pos0 + i, &s.k[i * kvd..(i + 1) * kvd], &s.v[i * vd..(i + 1) * vd]);
            }
            let params = AttentionParams {
                layer: l,
                n_head: c.n_head,
                n_kv_head: c.n_head_kv,
                k_dim: c.k_dim,
                v_dim: c.v_dim,
                scale: 1.0 / (c.k_dim as f32).sqrt(),
                window: w.window,
            };
            attention(pool, &params, env.kv, &s.q, pos0, n, &mut s.att);
            matmul(pool, file, &w.wo, &s.att[..n * od], n, &mut s.xq, &mut s.tmp);
            for i in 0..n {
                let row = &mut s.tmp[i * d..(i + 1) * d];
                rms_norm_inplace(row, &w.attn_post_norm, c.rms_eps);
            }
            add_inplace(&mut s.x[..n * d], &s.tmp[..n * d]);

            let x = &s.x;
            pool.for_each_row_mut(&mut s.xn[..n * d], d, |i, xn| rms_norm(&x[i * d..(i + 1) * d], &w.ffn_norm, c.rms_eps, xn));
            let xn = &s.xn[..n * d];
            matmul_many(pool, file, xn, n, &mut s.xq, &mut [(&w.w_gate, &mut s.gate[..]), (&w.w_up, &mut s.up[..])]);
            let (up, f) = (&s.up, c.n_ff);
            pool.for_each_row_mut(&mut s.gate[..n * f], f, |i, g| gated(g, &up[i * f..(i + 1) * f], gelu_ggml));
            matmul(pool, file, &w.w_down, &s.gate[..n * c.n_ff], n, &mut s.xq, &mut s.tmp);
            for i in 0..n {
                rms_norm_inplace(&mut s.tmp[i * d..(i + 1) * d], &w.ffn_post_norm, c.rms_eps);
            }
            add_inplace(&mut s.x[..n * d], &s.tmp[..n * d]);
        }

        self.head.logits(pool, file, c, s, n, out_from, logits);
        if let Some(cap) = c.final_logit_softcap {
            for v in logits[..(n - out_from) * c.n_vocab].iter_mut() {
                *v = (*v / cap).tanh() * cap;
            }
        }
    }
}
