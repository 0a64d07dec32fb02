//! Qwen 3.5's gated delta net, the recurrent block of its hybrid layers
//! (llama.cpp `build_layer_attn_linear` with the fused `gated_delta_net`
//! op): `attn_qkv` projects `[Q | K | V]`, which goes through a causal
//! depthwise convolution (its last `taps - 1` inputs are state) and SiLU;
//! Q and K are L2-normalized per head; each value head keeps a
//! `head_dim × head_dim` matrix, decayed by `exp(softplus(α + dt_bias) · a)`
//! and written with strength `sigmoid(β)` by the delta rule
//! ([`edgewasm_kernels::recurrent::delta_rule`]); the read-out is
//! RMS-normed per head, gated by `silu(z)` (`attn_gate`), and `ssm_out`
//! maps it back. Value head `h` reads query/key head `h mod n_k_heads`, as
//! ggml broadcasts them.

use edgewasm_gguf::GgufFile;
use edgewasm_kernels::recurrent::{recurrent_kernels, DeltaToken};

use super::config::{DeltaNetShape, ModelConfig};
use super::decoder::Linear;
use super::matmul::matmul_many;
use super::ops::{rms_norm, rms_norm_unweighted, sigmoid, silu};
use super::shortconv::conv_taps;
use super::weights::{vector, Weights};
use super::Scratch;
use crate::threadpool::ThreadPool;
use crate::ModelError;

/// One layer's delta-net weights.
#[derive(Debug)]
pub struct DeltaNet {
    shape: DeltaNetShape,
    /// `n_embd` → `[Q | K | V]` (`conv_dim`).
    qkv: Linear,
    /// `n_embd` → `z`, the output gate (`value_dim`).
    z: Linear,
    /// `n_embd` → one β per value head.
    beta: Linear,
    /// `n_embd` → one α per value head.
    alpha: Linear,
    /// `taps` rows of `conv_dim` weights, tap-major.
    conv: Vec<f32>,
    /// Added to α before the softplus (`ssm_dt.bias`).
    dt_bias: Vec<f32>,
    /// Multiplier of the softplus, `-exp(A_log)` (`ssm_a`).
    a: Vec<f32>,
    /// The read-out's RMSNorm weight, shared by the heads.
    norm: Vec<f32>,
    /// `value_dim` → `n_embd`.
    out: Linear,
    eps: f32,
}

/// Tokens whose convolution output and read-out [`DeltaNet::forward`]
/// holds at a time: the convolution and the recurrence run over the batch
/// in chunks of this many tokens, so their rows take a fixed
/// [`scratch_width`] × `CHUNK` floats however long the batch is. (Each
/// token's values are the same operations in the same order either way.)
pub const CHUNK: usize = 64;

/// f32 values per chunk token [`DeltaNet::forward`] needs in
/// [`Scratch::ssm`]: the convolution's output and the read-out. Its other
/// rows go to buffers no mixer output lives in: `z` to `gate`, β and α to
/// `up`, the gated read-out to `att` ([`batch_widths`]).
pub fn scratch_width(dn: &DeltaNetShape) -> Option<usize> {
    dn.conv_dim().checked_add(dn.value_dim())
}

/// Widths per batch token the forward pass needs in `gate` (`z`), `up`
/// (β then α) and `att` (the gated read-out).
pub fn batch_widths(dn: &DeltaNetShape) -> Option<(usize, usize, usize)> {
    Some((dn.value_dim(), dn.n_v_heads.checked_mul(2)?, dn.value_dim()))
}

impl DeltaNet {
    pub fn load(g: &Weights<'_>, c: &ModelConfig, shape: DeltaNetShape, layer: usize) -> Result<DeltaNet, ModelError> {
        let d = c.n_embd;
        let (cd, vd, hv) = (shape.conv_dim(), shape.value_dim(), shape.n_v_heads);
        let n = |s: &str| format!("blk.{layer}.{s}");
        Ok(DeltaNet {
            shape,
            qkv: Linear::load(g, &n("attn_qkv"), d, cd)?,
            z: Linear::load(g, &n("attn_gate"), d, vd)?,
            beta: Linear::load(g, &n("ssm_beta"), d, hv)?,
            alpha: Linear::load(g, &n("ssm_alpha"), d, hv)?,
            conv: conv_taps(g, &n("ssm_conv1d.weight"), shape.conv_taps, cd)?,
            dt_bias: vector(g, &n("ssm_dt.bias"), hv)?,
            a: vector(g, &n("ssm_a"), hv)?,
            norm: vector(g, &n("ssm_norm.weight"), shape.head_dim)?,
            out: Linear::load(g, &n("ssm_out"), vd, d)?,
            eps: c.rms_eps,
        })
    }

    /// Mixes `n` tokens whose normed input is in `s.xn`, continuing from
    /// `state` (this layer's [`DeltaNetShape::state_floats`]); the output
    /// ends in `s.tmp`.
    pub fn forward(&self, pool: &ThreadPool, file: &GgufFile, state: &mut [f32], n: usize, s: &mut Scratch) {
        let sh = &self.shape;
        let (cd, vd, hv) = (sh.conv_dim(), sh.value_dim(), sh.n_v_heads);
        let d = self.out.w.rows;
        let z = &mut s.gate[..n * vd];
        let (beta, alpha) = s.up[..2 * n * hv].split_at_mut(n * hv);
        matmul_many(
            pool,
            file,
            &s.xn[..n * d],
            n,
            &mut s.xq,
            &mut [(&self.qkv.w, &mut s.tmp[..]), (&self.z.w, &mut z[..]), (&self.beta.w, &mut beta[..]), (&self.alpha.w, &mut alpha[..])],
        );
        for (l, out) in [(&self.qkv, &mut s.tmp[..]), (&self.z, &mut z[..]), (&self.beta, &mut beta[..]), (&self.alpha, &mut alpha[..])] {
            l.add_bias(out, n);
        }
        for (b, a) in beta.chunks_exact_mut(hv).zip(alpha.chunks_exact_mut(hv)) {
            for h in 0..hv {
                b[h] = sigmoid(b[h]);
                a[h] = (softplus(a[h] + self.dt_bias[h]) * self.a[h]).exp();
            }
        }

        let (conv_state, heads) = state.split_at_mut((sh.conv_taps - 1) * cd);
        let (conv_out, core) = s.ssm[..CHUNK.min(n) * scratch_width(sh).expect("checked at load")].split_at_mut(CHUNK.min(n) * cd);
        let mut t0 = 0;
        while t0 < n {
            let m = CHUNK.min(n - t0);
            let gated = &mut s.att[t0 * vd..(t0 + m) * vd];
            let chunk = Chunk { t0, m, x: &s.tmp[t0 * cd..(t0 + m) * cd], z: &*z, beta: &*beta, alpha: &*alpha };
            self.mix_chunk(pool, conv_state, heads, chunk, &mut conv_out[..m * cd], &mut core[..m * vd], gated);
            t0 += m;
        }
        matmul_many(pool, file, &s.att[..n * vd], n, &mut s.xq, &mut [(&self.out.w, &mut s.tmp[..])]);
        self.out.add_bias(&mut s.tmp, n);
    }

    /// Tokens `t0..t0 + m` of the batch: the convolution (into `conv_out`,
    /// then SiLU and the Q/K norms), the delta rule of every head (read-out
    /// into `core`) and the gated RMSNorm (into `gated`, token-major).
    #[allow(clippy::too_many_arguments)]
    fn mix_chunk(&self, pool: &ThreadPool, conv_state: &mut [f32], heads: &mut [f32], c: Chunk<'_>, conv_out: &mut [f32], core: &mut [f32], gated: &mut [f32]) {
        let sh = &self.shape;
        let (cd, vd, hv, hd, hk) = (sh.conv_dim(), sh.value_dim(), sh.n_v_heads, sh.head_dim, sh.n_k_heads);
        let (kd, m, eps) = (sh.key_dim(), c.m, self.eps);
        (recurrent_kernels().short_conv)(cd, &self.conv, conv_state, c.x, conv_out);
        pool.for_each_row_mut(conv_out, cd, |_, row| {
            row.iter_mut().for_each(|v| *v = silu(*v));
            row[..2 * kd].chunks_exact_mut(hd).for_each(|h| l2_norm(h, eps));
        });

        // One task per value head: its state and its read-out rows (head-
        // major in `core`, `m` rows of `hd`), so no two tasks share memory.
        let k = recurrent_kernels();
        let scale = 1.0 / (hd as f32).sqrt();
        let (rows, beta, alpha) = (&*conv_out, &c.beta[c.t0 * hv..], &c.alpha[c.t0 * hv..]);
        let heads_ptr = HeadsPtr(heads.as_mut_ptr(), core.as_mut_ptr());
        assert!(heads.len() == hv * hd * hd && core.len() >= hv * m * hd);
        pool.for_each_chunk(hv, 1, |range| {
            let p = &heads_ptr;
            for h in range {
                // SAFETY: head h (< hv) owns state[h·hd²..][..hd²] and
                // core[h·m·hd..][..m·hd], inside the slices by the assert
                // above; for_each_chunk hands each h out once.
                let (st, out) = unsafe { (std::slice::from_raw_parts_mut(p.0.add(h * hd * hd), hd * hd), std::slice::from_raw_parts_mut(p.1.add(h * m * hd), m * hd)) };
                let qk = (h % hk) * hd;
                for (i, o) in out.chunks_exact_mut(hd).enumerate() {
                    let row = &rows[i * cd..(i + 1) * cd];
                    let t = DeltaToken {
                        q: &row[qk..qk + hd],
                        k: &row[kd + qk..kd + qk + hd],
                        v: &row[2 * kd + h * hd..2 * kd + (h + 1) * hd],
                        decay: alpha[i * hv + h],
                        beta: beta[i * hv + h],
                        scale,
                    };
                    (k.delta_rule)(st, &t, o);
                }
            }
        });

        // Gated RMSNorm per head, back to token-major rows.
        let (core, z, norm) = (&*core, &c.z[c.t0 * vd..], &self.norm);
        pool.for_each_row_mut(gated, vd, |i, row| {
            for (h, o) in row.chunks_exact_mut(hd).enumerate() {
                rms_norm(&core[(h * m + i) * hd..(h * m + i + 1) * hd], norm, eps, o);
                for (o, &g) in o.iter_mut().zip(&z[i * vd + h * hd..i * vd + (h + 1) * hd]) {
                    *o *= silu(g);
                }
            }
        });
    }
}

/// A chunk of the batch [`DeltaNet::mix_chunk`] mixes: tokens `t0..t0 + m`,
/// their projected `[Q | K | V]` rows (`x`), and the whole batch's `z`,
/// β and α rows.
struct Chunk<'a> {
    t0: usize,
    m: usize,
    x: &'a [f32],
    z: &'a [f32],
    beta: &'a [f32],
    alpha: &'a [f32],
}

/// The state and read-out bases the head tasks split.
struct HeadsPtr(*mut f32, *mut f32);
// SAFETY: only used to build disjoint per-head slices of two `&mut [f32]`,
// each on one thread; equivalent to sending `&mut` sub-slices.
unsafe impl Sync for HeadsPtr {}

/// `x / sqrt(Σx² + eps)`, computed as llama.cpp does (`rms_norm` with
/// `eps / n`, then a scale by `1/√n`).
fn l2_norm(x: &mut [f32], eps: f32) {
    let n = x.len() as f32;
    rms_norm_unweighted(x, eps / n);
    let post = 1.0 / n.sqrt();
    x.iter_mut().for_each(|v| *v *= post);
}

/// ggml's softplus: `ln(1 + eˣ)`, `x` itself past 20.
fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        (1.0 + x.exp()).ln()
    }
}
