//! LFM2's gated short convolution, the recurrent block of its hybrid
//! layers (llama.cpp `build_shortconv_block`): `in_proj` makes three
//! `n_embd`-wide chunks `b`, `c`, `x`; `b ⊙ x` goes through a causal
//! depthwise convolution of `taps` positions, whose last `taps - 1` inputs
//! are the layer's state; `c` gates its output, and `out_proj` maps it
//! back.

use edgewasm_gguf::GgufFile;
use edgewasm_kernels::recurrent::recurrent_kernels;

use super::config::ModelConfig;
use super::decoder::Linear;
use super::matmul::matmul;
use super::weights::{tensor_f32, Weights};
use super::Scratch;
use crate::threadpool::ThreadPool;
use crate::ModelError;

/// A depthwise convolution's weights, `{taps, channels}` in ggml order
/// (channel-major), as the kernel takes them: `taps` rows of `channels`.
pub(super) fn conv_taps(g: &Weights<'_>, name: &str, taps: usize, channels: usize) -> Result<Vec<f32>, ModelError> {
    let by_channel = tensor_f32(g, name, &[taps, channels])?;
    let mut conv = vec![0.0; taps * channels];
    for (ch, w) in by_channel.chunks_exact(taps).enumerate() {
        for (k, &v) in w.iter().enumerate() {
            conv[k * channels + ch] = v;
        }
    }
    Ok(conv)
}

/// One layer's short-convolution weights.
#[derive(Debug)]
pub struct ShortConv {
    in_proj: Linear,
    /// `taps` rows of `n_embd` weights, tap-major (the file stores them
    /// channel-major, `{taps, n_embd}` in ggml order).
    conv: Vec<f32>,
    out_proj: Linear,
}

impl ShortConv {
    pub fn load(g: &Weights<'_>, c: &ModelConfig, layer: usize) -> Result<ShortConv, ModelError> {
        let (d, taps) = (c.n_embd, c.shortconv_taps);
        let n = |s: &str| format!("blk.{layer}.shortconv.{s}");
        let conv = conv_taps(g, &n("conv.weight"), taps, d)?;
        Ok(ShortConv { in_proj: Linear::load(g, &n("in_proj"), d, 3 * d)?, conv, out_proj: Linear::load(g, &n("out_proj"), d, d)? })
    }

    /// Mixes `n` tokens whose normed input is in `s.xn`, continuing from
    /// `state`; the output ends in `s.tmp`. Uses `s.tmp` (3 · n_embd wide)
    /// and `s.att` (at least n_embd wide for hybrid models).
    pub fn forward(&self, pool: &ThreadPool, file: &GgufFile, state: &mut [f32], n: usize, s: &mut Scratch) {
        let d = self.out_proj.w.rows;
        matmul(pool, file, &self.in_proj.w, &s.xn[..n * d], n, &mut s.xq, &mut s.tmp);
        self.in_proj.add_bias(&mut s.tmp, n);
        // `xn` is free again: it takes b ⊙ x.
        for (bx, bcx) in s.xn[..n * d].chunks_exact_mut(d).zip(s.tmp.chunks_exact(3 * d)) {
            for ((o, &b), &x) in bx.iter_mut().zip(&bcx[..d]).zip(&bcx[2 * d..]) {
                *o = b * x;
            }
        }
        (recurrent_kernels().short_conv)(d, &self.conv, state, &s.xn[..n * d], &mut s.att[..n * d]);
        for (y, bcx) in s.att[..n * d].chunks_exact_mut(d).zip(s.tmp.chunks_exact(3 * d)) {
            for (o, &c) in y.iter_mut().zip(&bcx[d..2 * d]) {
                *o *= c;
            }
        }
        matmul(pool, file, &self.out_proj.w, &s.att[..n * d], n, &mut s.xq, &mut s.tmp);
        self.out_proj.add_bias(&mut s.tmp, n);
    }
}
