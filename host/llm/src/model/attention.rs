//! Grouped-query attention over the KV cache: causal over one sequence,
//! or over independent sequences packed in one cache ([`Mask::Packed`],
//! causal or bidirectional, for embeddings).
//!
//! Keys and values are read a tile at a time with an online softmax (see
//! [`attention_with`]). The f32 inner loops (scores, weighted sum of values) are kernels:
//! `edgewasm_kernels::attn`, with a scalar reference and per-ISA builds
//! chosen once for the active kernel path, all giving the same bits.

use edgewasm_kernels::attn::{attn_kernels, exp_nonpositive, AttnKernels};

use std::ops::Range;

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
// SAFETY: each (token, head) output slice is written by exactly one task.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

/// Which cached positions each query row sees (the sliding window, if
/// any, then narrows the first).
#[derive(Clone, Copy, Debug)]
pub enum Mask<'a> {
    /// One sequence: row `i`, at position `pos0 + i`, sees every position
    /// up to its own.
    Causal,
    /// The rows of independent sequences packed in one cache: row `i` is
    /// at cache position `slots[i]` and sees positions
    /// `keys[i].0..keys[i].1`, its own sequence's (up to itself, or all of
    /// it for a bidirectional encoder). Sequences that start at multiples
    /// of [`TILE`] get the bits they get alone.
    Packed { slots: &'a [u32], keys: &'a [(u32, u32)] },
}

/// Keys and values are read (and widened to f32) this many positions at a
/// time. Tiles start at multiples of `TILE` in absolute positions, so a
/// query's result never depends on which task computed it.
pub const TILE: usize = 64;
/// Query positions per task: they share each tile (its keys laid out once
/// by the block scoring kernel, its values widened once). 32 rather than
/// 16 measured 100 against 96-98 t/s (1B Q4_K_M pp512 at depth 4096, 2
/// threads): the key layout serves twice the queries.
const QUERY_BLOCK: usize = 32;
/// Tasks with fewer queries than this (counting every head) score and sum
/// one query at a time, reading an f16 cache in place; larger ones score a
/// tile in one call (block mode).
const DIRECT_F16_BELOW: usize = 8;

/// For `n` queries at positions `pos0..pos0+n` (already stored in `kv`),
/// writes `out[i][h*v_dim..]` = softmax(q·K) · V for every head, over the
/// keys `mask` gives each.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    pool: &ThreadPool,
    p: &AttentionParams,
    kv: &KvCache,
    q: &[f32],
    pos0: usize,
    n: usize,
    mask: Mask<'_>,
    out: &mut [f32],
) {
    attention_with(attn_kernels(), pool, p, kv, q, pos0, n, mask, out)
}

/// [`attention`] on the kernels `k`.
///
/// Flash-attention style: each query keeps a running maximum, sum and
/// weighted sum over tiles of [`TILE`] keys (an online softmax), so memory
/// does not grow with the context. A task is a block of query positions
/// times either every query head of one KV head (they share the widened
/// tiles) or, when that leaves threads idle (decode of a model with few KV
/// heads), a single query head.
#[allow(clippy::too_many_arguments)]
pub fn attention_with(
    k: &AttnKernels,
    pool: &ThreadPool,
    p: &AttentionParams,
    kv: &KvCache,
    q: &[f32],
    pos0: usize,
    n: usize,
    mask: Mask<'_>,
    out: &mut [f32],
) {
    let q_stride = p.n_head * p.k_dim;
    let o_stride = p.n_head * p.v_dim;
    assert!(q.len() >= n * q_stride && out.len() >= n * o_stride);
    assert!(p.n_kv_head > 0 && p.n_head % p.n_kv_head == 0);
    if let Mask::Packed { slots, keys } = mask {
        assert!(slots.len() >= n && keys.len() >= n && keys[..n].iter().all(|&(lo, hi)| lo <= hi && hi as usize <= kv.capacity()));
    }
    let group = p.n_head / p.n_kv_head;
    let blocks = n.div_ceil(QUERY_BLOCK);
    let heads = if p.n_kv_head * blocks >= pool.n_threads() { group } else { 1 };
    let per_block = p.n_head / heads;
    let outp = OutPtr(out.as_mut_ptr());
    pool.for_each_chunk(blocks * per_block, 1, |range| {
        let outp = outp;
        let mut ws = Workspace::default();
        for t in range {
            let (b, g) = (t / per_block, t % per_block);
            let i0 = b * QUERY_BLOCK;
            let task = Task {
                p,
                kv,
                q,
                pos0,
                mask,
                rows: i0..(i0 + QUERY_BLOCK).min(n),
                heads: g * heads..(g + 1) * heads,
                kv_head: g * heads / group,
            };
            task.run(k, &mut ws);
            for (j, (i, h)) in task.queries().enumerate() {
                // SAFETY: the (i, h) pairs of different tasks are disjoint,
                // and out[i*o_stride + h*v_dim ..][..v_dim] is in bounds by
                // the assert above; no other task touches this slice.
                let o = unsafe { std::slice::from_raw_parts_mut(outp.0.add(i * o_stride + h * p.v_dim), p.v_dim) };
                let inv = 1.0 / ws.sum[j];
                for (o, &a) in o.iter_mut().zip(&ws.acc[j * p.v_dim..(j + 1) * p.v_dim]) {
                    *o = a * inv;
                }
            }
        }
    });
}

/// Buffers of one thread, reused across its tasks.
#[derive(Default)]
struct Workspace {
    /// The task's queries, one row each (block mode).
    qs: Vec<f32>,
    /// The scoring kernel's own buffer (block mode).
    scratch: Vec<f32>,
    keys: Vec<f32>,
    values: Vec<f32>,
    scores: Vec<f32>,
    /// Block mode: the queries that see every key of the tile.
    full: Vec<usize>,
    /// Per query: running maximum score, sum of weights, weighted values.
    max: Vec<f32>,
    sum: Vec<f32>,
    acc: Vec<f32>,
}

/// Some query heads (all of one KV head's group) at some batch rows.
struct Task<'a> {
    p: &'a AttentionParams,
    kv: &'a KvCache,
    q: &'a [f32],
    pos0: usize,
    mask: Mask<'a>,
    rows: Range<usize>,
    heads: Range<usize>,
    kv_head: usize,
}

impl Task<'_> {
    /// (batch row, query head) of each query, in workspace order.
    fn queries(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.rows.clone().flat_map(move |i| self.heads.clone().map(move |h| (i, h)))
    }

    /// The key positions batch row `i` sees: `lo..hi`.
    fn keys_of(&self, i: usize) -> (usize, usize) {
        let (pos, lo, hi) = match self.mask {
            Mask::Causal => (self.pos0 + i, 0, self.pos0 + i + 1),
            Mask::Packed { slots, keys } => (slots[i] as usize, keys[i].0 as usize, keys[i].1 as usize),
        };
        match self.p.window {
            Some(w) if pos + 1 > w => (lo.max(pos + 1 - w), hi),
            _ => (lo, hi),
        }
    }

    /// Leaves each query's running maximum, weight sum and unnormalised
    /// weighted sum of values in `ws`.
    fn run(&self, k: &AttnKernels, ws: &mut Workspace) {
        let p = self.p;
        let n_q = self.rows.len() * self.heads.len();
        ws.max.clear();
        ws.max.resize(n_q, f32::NEG_INFINITY);
        ws.sum.clear();
        ws.sum.resize(n_q, 0.0);
        ws.acc.clear();
        ws.acc.resize(n_q * p.v_dim, 0.0);
        // The union of the rows' keys (with `Mask::Causal`, the first
        // row's first and the last row's last).
        let (lo, hi) = self.rows.clone().map(|i| self.keys_of(i)).fold((usize::MAX, 0), |(a, b), (lo, hi)| (a.min(lo), b.max(hi)));
        let keys = self.kv.keys(p.layer, self.kv_head, hi);
        let values = self.kv.values(p.layer, self.kv_head, hi);
        // f16 rows are read where they lie by a few queries (decode), when
        // the path has kernels for that; many queries (prefill) share a
        // value tile widened once, and a key tile the scoring kernel widens
        // as it transposes it. Measured on SmolLM2 at depth 4096 (before
        // block mode): decode 48 -> 80 t/s reading in place.
        let f16 = k.f16.filter(|_| n_q < DIRECT_F16_BELOW);
        // Many queries (prefill) score each tile in one call, which lays
        // the keys out once for all of them; a few (decode) one at a time.
        let block = n_q >= DIRECT_F16_BELOW && p.k_dim > 0;
        if block {
            ws.qs.clear();
            for (i, h) in self.queries() {
                ws.qs.extend_from_slice(&self.q[(i * p.n_head + h) * p.k_dim..][..p.k_dim]);
            }
        }
        let mut tile = lo / TILE * TILE;
        while tile < hi {
            let (t0, t1) = (tile.max(lo), (tile + TILE).min(hi));
            // Block mode reads f16 keys in place too: its kernel widens them
            // as it lays them out.
            let k16 = f16.or(k.f16.filter(|_| block)).and_then(|h| keys.f16_rows(t0, t1 - t0).map(|r| (h, r)));
            let v16 = f16.and_then(|h| values.f16_rows(t0, t1 - t0).map(|r| (h, r)));
            let kt = if k16.is_none() { keys.f32_rows(t0, t1 - t0, &mut ws.keys) } else { &[][..] };
            let vt = if v16.is_none() { values.f32_rows(t0, t1 - t0, &mut ws.values) } else { &[][..] };
            let nt = t1 - t0;
            let mut full = std::mem::take(&mut ws.full);
            full.clear();
            // Only grown: every score read is written first.
            let len = if block { n_q * nt } else { nt };
            if ws.scores.len() < len {
                ws.scores.resize(len, 0.0);
            }
            if block {
                // Every query against every key of the tile: a key a query
                // does not see is scored and left unused.
                match k16 {
                    Some((h, rows)) => (h.scaled_dots_block)(&ws.qs, rows, p.k_dim, p.scale, &mut ws.scores[..len], &mut ws.scratch),
                    None => (k.scaled_dots_block)(&ws.qs, kt, p.k_dim, p.scale, &mut ws.scores[..len], &mut ws.scratch),
                }
            }
            for (j, (i, h)) in self.queries().enumerate() {
                let (first, end) = self.keys_of(i);
                let (a, b) = (t0.max(first), t1.min(end));
                if a >= b {
                    continue;
                }
                let s = if block {
                    &mut ws.scores[j * nt + (a - t0)..j * nt + (b - t0)]
                } else {
                    let qh = &self.q[(i * p.n_head + h) * p.k_dim..][..p.k_dim];
                    let s = &mut ws.scores[..b - a];
                    let (k0, k1) = ((a - t0) * p.k_dim, (b - t0) * p.k_dim);
                    match k16 {
                        Some((h, rows)) => (h.scaled_dots)(qh, &rows[k0..k1], p.scale, s),
                        None => (k.scaled_dots)(qh, &kt[k0..k1], p.scale, s),
                    }
                    s
                };
                if let Some(cap) = p.softcap {
                    s.iter_mut().for_each(|x| *x = (*x / cap).tanh() * cap);
                }
                let acc = &mut ws.acc[j * p.v_dim..(j + 1) * p.v_dim];
                let tile_max = max_of(s);
                let old = ws.max[j];
                if tile_max > old {
                    if old != f32::NEG_INFINITY {
                        let f = exp_nonpositive(old - tile_max);
                        ws.sum[j] *= f;
                        acc.iter_mut().for_each(|a| *a *= f);
                    }
                    ws.max[j] = tile_max;
                }
                // exp in f64 rounded to f32 (`exp_nonpositive`): as accurate as
                // libm's expf and vectorised. A 2-ulp f32 polynomial was as fast
                // but moved the reference models' logits across the llama.cpp
                // comparison bounds.
                ws.sum[j] += (k.exp_sum)(s, ws.max[j]);
                if block && (a, b) == (t0, t1) {
                    // Queries that see the whole tile take their weighted
                    // sums together, below, a run at a time.
                    full.push(j);
                    continue;
                }
                let (v0, v1) = ((a - t0) * p.v_dim, (b - t0) * p.v_dim);
                match v16 {
                    Some((h, rows)) => (h.weighted_sum)(s, 1.0, &rows[v0..v1], acc),
                    None => (k.weighted_sum)(s, 1.0, &vt[v0..v1], acc),
                }
            }
            let mut rest = &full[..];
            while let Some(&j0) = rest.first() {
                let run = rest.iter().enumerate().take_while(|&(r, &j)| j == j0 + r).count();
                let j1 = j0 + run;
                (k.weighted_sum_block)(&ws.scores[j0 * nt..j1 * nt], nt, vt, &mut ws.acc[j0 * p.v_dim..j1 * p.v_dim]);
                rest = &rest[run..];
            }
            ws.full = full;
            tile += TILE;
        }
    }
}

/// The largest of `s` (`-inf` if empty), in eight lanes so that it
/// vectorises; a maximum is exact, so the order does not change it (but for
/// the sign of a zero maximum, which `exp(x - max)` does not see).
fn max_of(s: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        for (m, &x) in lanes.iter_mut().zip(c) {
            *m = m.max(x);
        }
    }
    lanes.iter().chain(chunks.remainder()).fold(f32::NEG_INFINITY, |m, &x| m.max(x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv_cache::{KvLayer, KvType, KvTypes};
    use edgewasm_kernels::{attn_kernels_for_path, available_paths, KernelPath};

    fn rnd(seed: &mut u64, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                (*seed >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    const K_DIM: usize = 64;
    const V_DIM: usize = 32;

    /// A cache of `len` random positions: 2 KV heads, 6 query heads.
    fn filled(len: usize, types: KvTypes, seed: &mut u64) -> (KvCache, Vec<f32>) {
        let mut kv = KvCache::new(&[KvLayer::Own { k_dim: K_DIM, v_dim: V_DIM }], 2, len, types).unwrap();
        for pos in 0..len {
            kv.store(0, pos, &rnd(seed, 2 * K_DIM), &rnd(seed, 2 * V_DIM));
        }
        kv.advance(len);
        let q = rnd(seed, len * 6 * K_DIM).iter().map(|x| x * 4.0).collect();
        (kv, q)
    }

    fn params(window: Option<usize>, softcap: Option<f32>) -> AttentionParams {
        AttentionParams { layer: 0, n_head: 6, n_kv_head: 2, k_dim: K_DIM, v_dim: V_DIM, scale: 0.125, window, softcap }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Each query's output has the same bits whatever the kernel path, the
    /// thread count (which changes how queries group into tasks) and
    /// whether the queries come as one batch or one at a time.
    #[test]
    fn bits_do_not_depend_on_path_grouping_or_batching() {
        let len = 150;
        let scalar = attn_kernels_for_path(KernelPath::Scalar).unwrap();
        for ty in KvType::ALL {
            let mut seed = 0x9E37_79B9_7F4A_7C15u64;
            let (kv, q) = filled(len, KvTypes { k: ty, v: ty }, &mut seed);
            for (window, softcap) in [(None, None), (Some(70), None), (None, Some(5.0))] {
                let p = params(window, softcap);
                let mut want = vec![0.0; len * 6 * V_DIM];
                attention_with(&scalar, &ThreadPool::new(1), &p, &kv, &q, 0, len, Mask::Causal, &mut want);
                for path in available_paths() {
                    let k = attn_kernels_for_path(path).unwrap();
                    for threads in [1, 3] {
                        let mut got = vec![0.0; len * 6 * V_DIM];
                        attention_with(&k, &ThreadPool::new(threads), &p, &kv, &q, 0, len, Mask::Causal, &mut got);
                        assert_eq!(bits(&got), bits(&want), "{ty} {path} {threads} threads {window:?} {softcap:?}");
                    }
                    let pool = ThreadPool::new(2);
                    for pos in [0, 63, 64, 100, len - 1] {
                        let mut one = vec![0.0; 6 * V_DIM];
                        let qp = &q[pos * 6 * K_DIM..(pos + 1) * 6 * K_DIM];
                        attention_with(&k, &pool, &p, &kv, qp, pos, 1, Mask::Causal, &mut one);
                        assert_eq!(bits(&one), bits(&want[pos * 6 * V_DIM..(pos + 1) * 6 * V_DIM]), "{ty} {path} pos {pos}");
                    }
                }
            }
        }
    }

    /// Softmax(q·K)·V in f64, two passes, from the cache's own f32 view,
    /// over keys `first..end` (narrowed by the window).
    fn naive_over(p: &AttentionParams, kv: &KvCache, q: &[f32], pos: usize, h: usize, (first, end): (usize, usize)) -> Vec<f64> {
        let g = h / (p.n_head / p.n_kv_head);
        let (mut kb, mut vb) = (Vec::new(), Vec::new());
        let keys = kv.keys(0, g, end).f32_rows(0, end, &mut kb).to_vec();
        let values = kv.values(0, g, end).f32_rows(0, end, &mut vb).to_vec();
        let first = first.max(p.window.map_or(0, |w| (pos + 1).saturating_sub(w)));
        let qh = &q[(pos * p.n_head + h) * p.k_dim..][..p.k_dim];
        let s: Vec<f64> = (first..end)
            .map(|t| {
                let d: f64 = qh.iter().zip(&keys[t * p.k_dim..]).map(|(&a, &b)| a as f64 * b as f64).sum();
                let d = d * p.scale as f64;
                p.softcap.map_or(d, |c| (d / c as f64).tanh() * c as f64)
            })
            .collect();
        let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
        let total: f64 = w.iter().sum();
        (0..p.v_dim).map(|c| (first..end).zip(&w).map(|(t, wi)| wi * values[t * p.v_dim + c] as f64).sum::<f64>() / total).collect()
    }

    /// [`naive_over`] causal: keys `0..=pos`.
    fn naive(p: &AttentionParams, kv: &KvCache, q: &[f32], pos: usize, h: usize) -> Vec<f64> {
        naive_over(p, kv, q, pos, h, (0, pos + 1))
    }

    #[test]
    fn matches_two_pass_softmax_in_f64() {
        let len = 200;
        for ty in KvType::ALL {
            let mut seed = 7;
            let (kv, q) = filled(len, KvTypes { k: ty, v: ty }, &mut seed);
            for (window, softcap) in [(None, None), (Some(90), None), (None, Some(3.0))] {
                let p = params(window, softcap);
                let mut out = vec![0.0; len * 6 * V_DIM];
                attention(&ThreadPool::new(2), &p, &kv, &q, 0, len, Mask::Causal, &mut out);
                for pos in [0, 1, 64, 127, 128, len - 1] {
                    for h in 0..6 {
                        let want = naive(&p, &kv, &q, pos, h);
                        let got = &out[(pos * 6 + h) * V_DIM..][..V_DIM];
                        for (c, (&g, &w)) in got.iter().zip(&want).enumerate() {
                            assert!((g as f64 - w).abs() < 1e-5, "{ty} {window:?} pos {pos} head {h} col {c}: {g} vs {w}");
                        }
                    }
                }
            }
        }
    }

    /// Packed sequences (`Mask::Packed`), causal and bidirectional: each
    /// row sees its own sequence's keys only, whatever the tiles and tasks
    /// it shares with other sequences' rows.
    #[test]
    fn spans_keep_packed_sequences_apart() {
        let len = 200;
        let seqs = [0..37, 37..150, 150..151, 151..200];
        let mut seed = 5;
        let (kv, q) = filled(len, KvTypes::F32, &mut seed);
        let p = params(None, None);
        for causal in [true, false] {
            let spans: Vec<(u32, u32)> = seqs
                .iter()
                .flat_map(|r| r.clone().map(move |i| (r.start as u32, if causal { i as u32 + 1 } else { r.end as u32 })))
                .collect();
            let slots: Vec<u32> = (0..len as u32).collect();
            let mut out = vec![0.0; len * 6 * V_DIM];
            attention(&ThreadPool::new(3), &p, &kv, &q, 0, len, Mask::Packed { slots: &slots, keys: &spans }, &mut out);
            for pos in [0, 36, 37, 63, 64, 149, 150, 151, len - 1] {
                for h in 0..6 {
                    let (lo, hi) = spans[pos];
                    let want = naive_over(&p, &kv, &q, pos, h, (lo as usize, hi as usize));
                    let got = &out[(pos * 6 + h) * V_DIM..][..V_DIM];
                    for (&g, &w) in got.iter().zip(&want) {
                        assert!((g as f64 - w).abs() < 1e-5, "causal {causal} pos {pos} head {h}: {g} vs {w}");
                    }
                }
            }
        }
    }

    /// f16 and Q8_0 caches stay close to the f32 one.
    #[test]
    fn narrow_caches_stay_close_to_f32() {
        let len = 100;
        let p = params(None, None);
        let mut outs = Vec::new();
        for ty in KvType::ALL {
            let mut seed = 11;
            let (kv, q) = filled(len, KvTypes { k: ty, v: ty }, &mut seed);
            let mut out = vec![0.0; len * 6 * V_DIM];
            attention(&ThreadPool::new(1), &p, &kv, &q, 0, len, Mask::Causal, &mut out);
            outs.push(out);
        }
        let diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(diff(&outs[0], &outs[1]) < 2e-3, "f16: {}", diff(&outs[0], &outs[1]));
        assert!(diff(&outs[0], &outs[2]) < 3e-2, "q8_0: {}", diff(&outs[0], &outs[2]));
        assert!(diff(&outs[0], &outs[1]) > 0.0, "f16 rounding must show");
    }
}
