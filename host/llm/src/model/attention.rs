//! Causal grouped-query attention over the KV cache.
//!
//! The f32 inner loops (scores, weighted sum of values) are kernels:
//! `edgewasm_kernels::attn`, with a scalar reference and per-ISA builds
//! chosen once for the active kernel path, all giving the same bits.

use edgewasm_kernels::attn::{attn_kernels, AttnKernels};

use crate::kv_cache::KvCache;
use crate::threadpool::ThreadPool;

/// Shape and options of one attention layer.
#[derive(Clone, Copy, Debug)]
pub struct AttentionParams {
    pub layer: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub k_dim: usize,
    pub v_dim: usize,
    /// Multiplier on q·k (usually `1/sqrt(k_dim)`).
    pub scale: f32,
    /// Sliding window: a query at position p sees keys in `(p - w, p]`.
    pub window: Option<usize>,
    /// `cap · tanh(score / cap)` on the scaled scores (Gemma 2).
    pub softcap: Option<f32>,
}

#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: each (token, head) output slice is written by exactly one thread.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

/// For `n` queries at positions `pos0..pos0+n` (already stored in `kv`),
/// writes `out[i][h*v_dim..]` = softmax(q·K) · V for every head.
pub fn attention(
    pool: &ThreadPool,
    p: &AttentionParams,
    kv: &KvCache,
    q: &[f32],
    pos0: usize,
    n: usize,
    out: &mut [f32],
) {
    let q_stride = p.n_head * p.k_dim;
    let o_stride = p.n_head * p.v_dim;
    assert!(q.len() >= n * q_stride && out.len() >= n * o_stride);
    let tasks = n * p.n_head;
    let outp = OutPtr(out.as_mut_ptr());
    let k = attn_kernels();
    let chunk = pool.chunk_size(tasks, 4, 1);
    pool.for_each_chunk(tasks, chunk, |range| {
        let outp = outp;
        let mut scores = Vec::with_capacity(pos0 + n);
        for t in range {
            let (i, h) = (t / p.n_head, t % p.n_head);
            // SAFETY: task t = (i, h) owns out[i*o_stride + h*v_dim ..][..v_dim],
            // in bounds by the assert above; no other task touches it.
            let o = unsafe { std::slice::from_raw_parts_mut(outp.0.add(i * o_stride + h * p.v_dim), p.v_dim) };
            let qh = &q[i * q_stride + h * p.k_dim..i * q_stride + (h + 1) * p.k_dim];
            let task = HeadTask { p, kv, qh, kv_head: h / (p.n_head / p.n_kv_head), pos: pos0 + i };
            task.run(k, &mut scores, o);
        }
    });
}

/// One query head at one position.
struct HeadTask<'a> {
    p: &'a AttentionParams,
    kv: &'a KvCache,
    qh: &'a [f32],
    kv_head: usize,
    pos: usize,
}

impl HeadTask<'_> {
    /// The attention of one head: scores, softmax, weighted sum of values.
    fn run(&self, k: &AttnKernels, scores: &mut Vec<f32>, o: &mut [f32]) {
        let p = self.p;
        let end = self.pos + 1;
        let start = match p.window {
            Some(w) if end > w => end - w,
            _ => 0,
        };
        let keys = &self.kv.keys(p.layer, self.kv_head, end)[start * p.k_dim..end * p.k_dim];
        let values = &self.kv.values(p.layer, self.kv_head, end)[start * p.v_dim..end * p.v_dim];
        scores.clear();
        scores.resize(end - start, 0.0);
        (k.scaled_dots)(self.qh, keys, p.scale, scores);
        if let Some(cap) = p.softcap {
            scores.iter_mut().for_each(|s| *s = (*s / cap).tanh() * cap);
        }
        let max = scores.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
        let mut sum = 0.0f32;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s;
        }
        let inv = 1.0 / sum;
        o.fill(0.0);
        (k.weighted_sum)(scores, inv, values, o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgewasm_kernels::{attn_kernels_for_path, available_paths, KernelPath};

    /// One head's attention gives the scalar path's bits on every path.
    #[test]
    fn head_bits_are_the_same_on_every_path() {
        let (k_dim, v_dim, len) = (64, 64, 77);
        let mut kv = KvCache::new(&[crate::kv_cache::KvLayer::Own { k_dim, v_dim }], 1, len).unwrap();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                })
                .collect()
        };
        for pos in 0..len {
            kv.store(0, pos, &rnd(k_dim), &rnd(v_dim));
        }
        let q = rnd(k_dim);
        let scalar = attn_kernels_for_path(KernelPath::Scalar).unwrap();
        for path in available_paths() {
            let k = attn_kernels_for_path(path).unwrap();
            for window in [None, Some(5)] {
                let p = AttentionParams { layer: 0, n_head: 1, n_kv_head: 1, k_dim, v_dim, scale: 0.125, window, softcap: None };
                for pos in [0, 1, 30, len - 1] {
                    let task = HeadTask { p: &p, kv: &kv, qh: &q, kv_head: 0, pos };
                    let (mut a, mut b, mut s) = (vec![0.0; v_dim], vec![0.0; v_dim], Vec::new());
                    task.run(&scalar, &mut s, &mut a);
                    task.run(&k, &mut s, &mut b);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&a), bits(&b), "{path} window {window:?} pos {pos}");
                }
            }
        }
    }
}
