//! Causal grouped-query attention over the KV cache.

use super::ops::{axpy, dot_f32};
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
    let group = p.n_head / p.n_kv_head;
    let tasks = n * p.n_head;
    let outp = OutPtr(out.as_mut_ptr());
    let chunk = pool.chunk_size(tasks, 4, 1);
    pool.for_each_chunk(tasks, chunk, |range| {
        let outp = outp;
        let mut scores = Vec::with_capacity(pos0 + n);
        for t in range {
            let (i, h) = (t / p.n_head, t % p.n_head);
            let pos = pos0 + i;
            let kvh = h / group;
            let end = pos + 1;
            let start = match p.window {
                Some(w) if end > w => end - w,
                _ => 0,
            };
            let qh = &q[i * q_stride + h * p.k_dim..i * q_stride + (h + 1) * p.k_dim];
            let keys = kv.keys(p.layer, kvh, end);
            let values = kv.values(p.layer, kvh, end);
            scores.clear();
            let mut max = f32::NEG_INFINITY;
            for j in start..end {
                let s = dot_f32(qh, &keys[j * p.k_dim..(j + 1) * p.k_dim]) * p.scale;
                max = max.max(s);
                scores.push(s);
            }
            let mut sum = 0.0f32;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                sum += *s;
            }
            let inv = 1.0 / sum;
            // SAFETY: task t = (i, h) owns out[i*o_stride + h*v_dim ..][..v_dim],
            // in bounds by the assert above; no other task touches it.
            let o = unsafe {
                std::slice::from_raw_parts_mut(outp.0.add(i * o_stride + h * p.v_dim), p.v_dim)
            };
            o.fill(0.0);
            for (s, j) in scores.iter().zip(start..end) {
                axpy(s * inv, &values[j * p.v_dim..(j + 1) * p.v_dim], o);
            }
        }
    });
}
