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
    let tasks = n * p.n_head;
    let outp = OutPtr(out.as_mut_ptr());
    let wide = wide_available();
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
            if wide {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `wide` is only true when AVX2 is present.
                unsafe {
                    task.run_avx2(&mut scores, o)
                };
            } else {
                task.run(&mut scores, o);
            }
        }
    });
}

/// Whether [`HeadTask::run_avx2`] can be used: AVX2 is present and the
/// kernel path is not forced to `scalar`.
fn wide_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use edgewasm_kernels::{active_path, KernelPath};
        matches!(active_path(), KernelPath::Avx2 | KernelPath::Avx512)
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
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
    ///
    /// `dot_f32` and `axpy` are plain Rust with separate multiplies and adds
    /// in a fixed order (Rust never fuses them into FMAs), so compiling this
    /// for 4-lane SSE2, 8-lane AVX2 or NEON gives the same bits everywhere.
    #[inline(always)]
    fn run(&self, scores: &mut Vec<f32>, o: &mut [f32]) {
        let p = self.p;
        let end = self.pos + 1;
        let start = match p.window {
            Some(w) if end > w => end - w,
            _ => 0,
        };
        let keys = self.kv.keys(p.layer, self.kv_head, end);
        let values = self.kv.values(p.layer, self.kv_head, end);
        scores.clear();
        let mut max = f32::NEG_INFINITY;
        for key in keys[start * p.k_dim..].chunks_exact(p.k_dim) {
            let s = dot_f32(self.qh, key) * p.scale;
            max = max.max(s);
            scores.push(s);
        }
        let mut sum = 0.0f32;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s;
        }
        let inv = 1.0 / sum;
        o.fill(0.0);
        for (s, value) in scores.iter().zip(values[start * p.v_dim..].chunks_exact(p.v_dim)) {
            axpy(s * inv, value, o);
        }
    }

    /// [`HeadTask::run`] compiled for AVX2 (twice the lanes of the x86_64
    /// baseline; same results, see there).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn run_avx2(&self, scores: &mut Vec<f32>, o: &mut [f32]) {
        self.run(scores, o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 build of a head's attention returns the baseline's bits.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_head_matches_baseline_bits() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let (k_dim, v_dim, len) = (64, 64, 77);
        let mut kv = KvCache::new(1, 1, k_dim, v_dim, len).unwrap();
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
        for window in [None, Some(5)] {
            let p = AttentionParams { layer: 0, n_head: 1, n_kv_head: 1, k_dim, v_dim, scale: 0.125, window };
            for pos in [0, 1, 30, len - 1] {
                let task = HeadTask { p: &p, kv: &kv, qh: &q, kv_head: 0, pos };
                let (mut a, mut b, mut s) = (vec![0.0; v_dim], vec![0.0; v_dim], Vec::new());
                task.run(&mut s, &mut a);
                // SAFETY: AVX2 was detected above.
                unsafe { task.run_avx2(&mut s, &mut b) };
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "window {window:?} pos {pos}");
            }
        }
    }
}
