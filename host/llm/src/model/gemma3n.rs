//! Gemma 3n (E2B, E4B; llama.cpp `gemma3n.cpp`): Gemma 3's attention
//! layers (Q/K norms, values RMS-normed without a weight, unscaled
//! scores, sliding windows with their own RoPE base, the last layers
//! reading earlier layers' keys and values) and Gemma 4's per-layer
//! embeddings, around a residual stream kept as `A` parallel copies
//! (AltUp):
//!
//! * before the layers, streams 1.. are projections of the scaled
//!   embedding (stream 0), rescaled to its magnitude;
//! * each layer *predicts* every stream as itself plus a mix of all of
//!   them, with coefficients from a router over stream 0; computes on the
//!   predicted stream 0 — attention, a low-rank LAuReL residual beside it,
//!   then an FFN whose first layers keep only the gate values above
//!   mean + m·std (a Gaussian top-k); *corrects* every stream by its
//!   share of what the layer changed, and adds the per-layer-embedding
//!   block's output to streams 1..;
//! * after them, streams 1.. are projected back and rescaled to stream
//!   0's magnitude; their mean with stream 0 is the final hidden state.
//!
//! The layers' attention, FFN weights, norms, per-layer blocks and head
//! are the shared [`Decoder`]'s; this file holds only the streams.

use edgewasm_gguf::GgufFile;

use super::config::ModelConfig;
use super::decoder::{Decoder, Ffn, Mixer, NormKind, Pass};
use super::gemma::{ple_layers, rope};
use super::head::{Head, Output};
use super::matmul::{matmul, matmul_many, ActBuf, QMatrix};
use super::ops::{add_inplace, gated, gaussian_top_k, magnitude, rms_norm, rms_norm_inplace};
use super::ple::PerLayerInputs;
use super::rope::Rope;
use super::weights::{experts, matrix, tensor_f32, vector, Weights};
use super::{Architecture, BatchEnv, ForwardEnv, KvSet, Rows};
use crate::threadpool::ThreadPool;
use crate::ModelError;

/// A layer's AltUp and LAuReL weights.
#[derive(Debug)]
struct StreamLayer {
    /// LAuReL: `n_embd` → rank → `n_embd`, then a norm.
    laurel_l: QMatrix,
    laurel_r: QMatrix,
    laurel_norm: Vec<f32>,
    /// The router: a norm, then `n_embd` → `A` modalities.
    router_norm: Vec<f32>,
    router: QMatrix,
    /// Prediction coefficients from the modalities: `A²` rows of `A`.
    predict: Vec<f32>,
    /// Correction coefficients: `A` rows of `A`.
    correct: Vec<f32>,
    /// Multiplier of the corrected stream 0 going into the per-layer block.
    correct_scale: Vec<f32>,
    /// The FFN's Gaussian top-k multiplier, `None` for a dense FFN.
    sparsity: Option<f32>,
}

/// A Gemma 3n model.
#[derive(Debug)]
pub struct Gemma3n {
    dec: Decoder,
    /// `altup_proj`: `A − 1` matrices `n_embd` → `n_embd` making streams 1..
    proj: Vec<QMatrix>,
    /// `altup_unembd_proj`: the way back.
    unembd: Vec<QMatrix>,
    layers: Vec<StreamLayer>,
}

/// Values per token of [`super::Scratch::altup`]: streams 1.., the predictions
/// of all `A`, the LAuReL output, the attention-plus-LAuReL sum, LAuReL's
/// low-rank rows, the modalities and the prediction coefficients.
pub fn scratch_width(c: &ModelConfig) -> Option<usize> {
    let Some(s) = &c.altup else { return Some(0) };
    let (a, d) = (s.inputs, c.n_embd);
    (2 * a + 1).checked_mul(d)?.checked_add(s.laurel_rank)?.checked_add(a.checked_mul(a + 1)?)
}

pub fn load_gemma3n(g: &Weights<'_>, c: &ModelConfig) -> Result<Gemma3n, ModelError> {
    let shape = c.altup.as_ref().ok_or_else(|| ModelError::UnsupportedArchitecture("gemma3n without AltUp settings".into()))?;
    let (d, a, r) = (c.n_embd, shape.inputs, shape.laurel_rank);
    let (opts, layers) = ple_layers(g, c)?;
    for layer in &layers {
        if layer.ple.is_none() || !matches!(layer.ffn, Ffn::Gated { .. }) || !matches!(layer.mixer, Mixer::Attention(_)) {
            return Err(ModelError::UnsupportedArchitecture("gemma3n without per-layer embeddings".into()));
        }
    }
    let key = format!("{}.rope.freq_base_swa", c.arch);
    let base_swa = g.get_f32(&key)?.unwrap_or(10_000.0);
    if !(base_swa.is_finite() && base_swa > 0.0) {
        return Err(ModelError::BadHyperparameter { key, value: base_swa.to_bits() as u64 });
    }
    let local = Rope::plain(c.rope_dims, base_swa, 1.0);
    let ple = PerLayerInputs::load(g, c)?.map(Box::new);
    let dec = Decoder { opts, head: Head::load(g, c, Output::OwnOrTied)?, layers, rope: rope(g, c)?, rope_local: Some(local), rope_long: None, ple };
    let stream_layers = (0..c.n_layer)
        .map(|i| {
            let n = |s: &str| format!("blk.{i}.{s}");
            Ok(StreamLayer {
                laurel_l: matrix(g, &n("laurel_l.weight"), d, r)?,
                laurel_r: matrix(g, &n("laurel_r.weight"), r, d)?,
                laurel_norm: vector(g, &n("laurel_post_norm.weight"), d)?,
                router_norm: vector(g, &n("altup_router_norm.weight"), d)?,
                router: matrix(g, &n("altup_router.weight"), d, a)?,
                predict: tensor_f32(g, &n("altup_predict_coef.weight"), &[a, a * a])?,
                correct: tensor_f32(g, &n("altup_correct_coef.weight"), &[a, a])?,
                correct_scale: vector(g, &n("altup_correct_scale.weight"), d)?,
                sparsity: shape.sparsity[i],
            })
        })
        .collect::<Result<Vec<_>, ModelError>>()?;
    Ok(Gemma3n {
        dec,
        proj: experts(g, "altup_proj.weight", d, d, a - 1)?,
        unembd: experts(g, "altup_unembd_proj.weight", d, d, a - 1)?,
        layers: stream_layers,
    })
}

/// `out[i] = (Σ_k coef[i·a + k] · m[k])` for each of `out.len()` rows of
/// `a` coefficients: ggml's `mul_mat` of an F32 matrix, whose rows are
/// shorter than a SIMD step, so summed in order in f32.
fn mix(coef: &[f32], m: &[f32], out: &mut [f32]) {
    let a = m.len();
    for (o, row) in out.iter_mut().zip(coef.chunks_exact(a)) {
        *o = row.iter().zip(m).fold(0.0f32, |acc, (&c, &x)| acc + c * x);
    }
}

/// `x = x · target / magnitude(x)`, row by row (`target`: one per row).
fn rescale(x: &mut [f32], d: usize, target: &[f32]) {
    for (row, &t) in x.chunks_exact_mut(d).zip(target) {
        let m = magnitude(row);
        row.iter_mut().for_each(|v| *v = (*v * t) / m);
    }
}

impl Gemma3n {
    /// The router's modalities of the `n` rows of `x`: `tanh(router ·
    /// (norm(x) / n_embd))`, `A` per row, into `out` (`xn`: scratch).
    #[allow(clippy::too_many_arguments)]
    fn modalities(&self, pool: &ThreadPool, file: &GgufFile, eps: f32, w: &StreamLayer, x: &[f32], n: usize, xn: &mut [f32], xq: &mut ActBuf, out: &mut [f32]) {
        let d = w.router_norm.len();
        let inv_d = 1.0 / d as f32;
        for (row, o) in x.chunks_exact(d).zip(xn.chunks_exact_mut(d)).take(n) {
            rms_norm(row, &w.router_norm, eps, o);
            o.iter_mut().for_each(|v| *v *= inv_d);
        }
        matmul(pool, file, &w.router, &xn[..n * d], n, xq, out);
        out[..n * w.router.rows].iter_mut().for_each(|v| *v = v.tanh());
    }

    /// The embeddings, every layer and the merge of the streams over
    /// `tokens`, placed by `rows`: the final hidden state (before the final
    /// norm) ends in `s.x`.
    fn trunk(&self, p: Pass<'_, '_, '_>, tokens: &[u32], rows: Rows<'_>) {
        let Pass { file, config: c, pool, mut kv, scratch: s, .. } = p;
        let dec = &self.dec;
        let o = &dec.opts;
        let (n, d) = (tokens.len(), c.n_embd);
        let Some(shape) = &c.altup else { unreachable!("gemma3n models are loaded with their AltUp shape") };
        let (a, r, nd) = (shape.inputs, shape.laurel_rank, tokens.len() * c.n_embd);

        dec.head.embed(file, c, tokens, o.embed_scale, rows, s);
        if let Some(ple) = &dec.ple {
            ple.compute(pool, file, c, tokens, o.eps, s);
        }
        dec.fill_rope(s, rows.n_ctx(kv.capacity()), rows, n);

        // Stream 0 lives in `s.x`; the rest of the per-layer rows in
        // `s.altup` (taken out for the pass so that `s` stays borrowable).
        let mut buf = std::mem::take(&mut s.altup);
        let (streams, rest) = buf.split_at_mut((a - 1) * nd);
        let (pred, rest) = rest.split_at_mut(a * nd);
        let (laurel, rest) = rest.split_at_mut(nd);
        let (attn_laurel, rest) = rest.split_at_mut(nd);
        let (low, rest) = rest.split_at_mut(n * r);
        let (modal, rest) = rest.split_at_mut(n * a);
        let coefs = &mut rest[..n * a * a];

        // Streams 1..: projections of the embedding at its magnitude.
        let target: Vec<f32> = s.x[..nd].chunks_exact(d).map(magnitude).collect();
        {
            let mut products: Vec<(&QMatrix, &mut [f32])> = self.proj.iter().zip(streams.chunks_exact_mut(nd)).collect();
            matmul_many(pool, file, &s.x[..nd], n, &mut s.xq, &mut products);
        }
        streams.chunks_exact_mut(nd).for_each(|st| rescale(st, d, &target));

        let mut row_tmp = Vec::new();
        for (l, (w, x)) in dec.layers.iter().zip(&self.layers).enumerate() {
            // Predict: pred_j = stream_j + Σ_k c[j·A + k] · stream_k.
            self.modalities(pool, file, o.eps, x, &s.x[..nd], n, &mut s.xn, &mut s.xq, modal);
            for t in 0..n {
                mix(&x.predict, &modal[t * a..(t + 1) * a], &mut coefs[t * a * a..(t + 1) * a * a]);
            }
            for t in 0..n {
                let stream = |k: usize| if k == 0 { &s.x[t * d..(t + 1) * d] } else { &streams[(k - 1) * nd + t * d..(k - 1) * nd + (t + 1) * d] };
                for j in 0..a {
                    let c = &coefs[t * a * a + j * a..t * a * a + (j + 1) * a];
                    let out = &mut pred[j * nd + t * d..j * nd + (t + 1) * d];
                    // In ggml's order: the products summed from k = 0 in
                    // f32, then the stream itself.
                    out.iter_mut().zip(stream(0)).for_each(|(p, &v)| *p = v * c[0]);
                    for (k, &ck) in c.iter().enumerate().skip(1) {
                        out.iter_mut().zip(stream(k)).for_each(|(p, &v)| *p += v * ck);
                    }
                    add_inplace(out, stream(j));
                }
            }
            let active = &pred[..nd];

            // The layer computes on the predicted stream 0.
            let Some(attn_norm) = &w.attn_norm else { unreachable!("gemma3n layers have attn_norm") };
            for (row, out) in active.chunks_exact(d).zip(s.xn.chunks_exact_mut(d)) {
                attn_norm.apply(NormKind::Rms, o.eps, row, out);
            }
            // LAuReL: xn + norm(R · L · xn).
            matmul(pool, file, &x.laurel_l, &s.xn[..nd], n, &mut s.xq, low);
            matmul(pool, file, &x.laurel_r, &low[..n * r], n, &mut s.xq, laurel);
            for (row, xn) in laurel.chunks_exact_mut(d).zip(s.xn.chunks_exact(d)) {
                rms_norm_inplace(row, &x.laurel_norm, o.eps);
                add_inplace(row, xn);
            }
            let Mixer::Attention(att) = &w.mixer else { unreachable!("gemma3n layers attend") };
            dec.attend(&mut kv, c, pool, file, att, w, l, s, rows, n);
            if let Some(norm) = &w.attn_post_norm {
                norm.apply_rows(NormKind::Rms, o.eps, &mut s.tmp[..nd], &mut row_tmp);
            }
            add_inplace(&mut s.tmp[..nd], active);
            let inv_sqrt2 = 1.0 / 2f32.sqrt();
            for ((al, &t), &la) in attn_laurel.iter_mut().zip(&s.tmp[..nd]).zip(laurel.iter()) {
                *al = (t + la) * inv_sqrt2;
            }

            // The FFN, sparse in the first layers.
            let Some(ffn_norm) = &w.ffn_norm else { unreachable!("gemma3n layers have ffn_norm") };
            for (row, out) in attn_laurel.chunks_exact(d).zip(s.xn.chunks_exact_mut(d)) {
                ffn_norm.apply(NormKind::Rms, o.eps, row, out);
            }
            let Ffn::Gated { gate, up, down } = &w.ffn else { unreachable!("gemma3n FFNs are gated") };
            let f = w.ff;
            matmul_many(pool, file, &s.xn[..nd], n, &mut s.xq, &mut [(&gate.w, &mut s.gate[..]), (&up.w, &mut s.up[..])]);
            let (sparsity, act) = (x.sparsity, o.act);
            let up_rows = &s.up;
            pool.for_each_row_mut(&mut s.gate[..n * f], f, |i, g| {
                if let Some(m) = sparsity {
                    gaussian_top_k(g, m);
                }
                gated(g, &up_rows[i * f..(i + 1) * f], act);
            });
            matmul(pool, file, &down.w, &s.gate[..n * f], n, &mut s.xq, &mut s.tmp);
            if let Some(norm) = &w.ffn_post_norm {
                norm.apply_rows(NormKind::Rms, o.eps, &mut s.tmp[..nd], &mut row_tmp);
            }
            add_inplace(&mut s.tmp[..nd], attn_laurel);

            // Correct: stream_j = pred_j + (1 + Σ_k c[j·A + k] · m_k) ·
            // (out − pred_0), `out` being the layer's output in `s.tmp`.
            self.modalities(pool, file, o.eps, x, &s.tmp[..nd], n, &mut s.xn, &mut s.xq, modal);
            for t in 0..n {
                let c = &mut coefs[t * a..(t + 1) * a];
                mix(&x.correct, &modal[t * a..(t + 1) * a], c);
                c.iter_mut().for_each(|v| *v += 1.0);
            }
            let (pred0, pred_rest) = pred.split_at_mut(nd);
            for t in 0..n {
                let (out, c) = (&s.tmp[t * d..(t + 1) * d], &coefs[t * a..(t + 1) * a]);
                let p0 = &mut pred0[t * d..(t + 1) * d];
                // Streams 1.. first: they read stream 0's prediction.
                for (j, pj) in pred_rest.chunks_exact_mut(nd).enumerate() {
                    for ((v, &y), &p) in pj[t * d..(t + 1) * d].iter_mut().zip(out).zip(p0.iter()) {
                        *v += (y - p) * c[j + 1];
                    }
                }
                for (v, &y) in p0.iter_mut().zip(out) {
                    *v += (y - *v) * c[0];
                }
            }
            // The per-layer block reads corrected stream 0 × the scale and
            // feeds streams 1..
            for (row, xn) in pred[..nd].chunks_exact(d).zip(s.xn.chunks_exact_mut(d)) {
                for ((o, &v), &sc) in xn.iter_mut().zip(row).zip(&x.correct_scale) {
                    *o = v * sc;
                }
            }
            let Some(block) = &w.ple else { unreachable!("gemma3n layers have per-layer blocks") };
            block.forward(pool, file, c, l, o.act, o.eps, n, &s.xn[..nd], &mut s.ple, &mut s.xq, &mut s.tmp);
            s.x[..nd].copy_from_slice(&pred[..nd]);
            for (st, pj) in streams.chunks_exact_mut(nd).zip(pred[nd..].chunks_exact(nd)) {
                for ((v, &p), &b) in st.iter_mut().zip(pj).zip(&s.tmp[..nd]) {
                    *v = p + b;
                }
            }
        }

        // Merge: stream 0 and the projected-back streams at its magnitude,
        // averaged.
        let target: Vec<f32> = s.x[..nd].chunks_exact(d).map(magnitude).collect();
        for (k, (un, st)) in self.unembd.iter().zip(streams.chunks_exact(nd)).enumerate() {
            let u = &mut pred[k * nd..(k + 1) * nd];
            matmul(pool, file, un, st, n, &mut s.xq, u);
            rescale(u, d, &target);
        }
        for u in pred[..(a - 1) * nd].chunks_exact(nd) {
            add_inplace(&mut s.x[..nd], u);
        }
        let inv_a = 1.0 / a as f32;
        s.x[..nd].iter_mut().for_each(|v| *v *= inv_a);
        s.altup = buf;
    }
}

impl Architecture for Gemma3n {
    fn forward(&self, env: &mut ForwardEnv<'_>, tokens: &[u32], pos0: usize, out_from: usize, logits: &mut [f32]) {
        let pass = Pass { file: env.file, config: env.config, pool: env.pool, kv: KvSet::One(&mut *env.kv), rs: Some(&mut *env.rs), scratch: &mut *env.scratch };
        self.trunk(pass, tokens, Rows::Continue { pos0 });
        self.dec.logits(env.pool, env.file, env.config, env.scratch, tokens.len(), out_from, logits);
    }

    fn hidden(&self, env: &mut ForwardEnv<'_>, tokens: &[u32], rows: Rows<'_>, out: &mut [f32]) {
        let pass = Pass { file: env.file, config: env.config, pool: env.pool, kv: KvSet::One(&mut *env.kv), rs: Some(&mut *env.rs), scratch: &mut *env.scratch };
        self.trunk(pass, tokens, rows);
        let o = &self.dec.opts;
        self.dec.head.hidden(env.pool, env.config, o.norm, o.eps, env.scratch, tokens.len(), out);
    }

    fn has_logits(&self) -> bool {
        self.dec.has_logits()
    }

    fn forward_rows(&self, env: &mut BatchEnv<'_, '_>, tokens: &[u32], pos: &[u32], logits: &mut [f32]) {
        assert!(self.batches_sequences() && tokens.len() == pos.len() && tokens.len() == env.caches.len());
        let pass = Pass { file: env.file, config: env.config, pool: env.pool, kv: KvSet::PerRow(&mut *env.caches), rs: None, scratch: &mut *env.scratch };
        self.trunk(pass, tokens, Rows::PerRow { pos });
        self.dec.logits(env.pool, env.file, env.config, env.scratch, tokens.len(), 0, logits);
    }

    fn batches_sequences(&self) -> bool {
        self.dec.batches_sequences()
    }
}
