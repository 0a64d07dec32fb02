//! The f32 helpers of attention: the scores `q · k` of one query against a
//! run of keys, and the softmax-weighted sum of a run of values.
//!
//! The functions here are the scalar references. Each product is fused
//! into its running sum (`f32::mul_add`: one rounding, as the FMA
//! instruction of every SIMD path does) in a fixed order, so any vector
//! width gives the same bits; the SIMD twins
//! (`crate::arch::x86_64::avx2::attn`, `crate::arch::x86_64::avx512::attn`)
//! compute eight (sixteen) keys' dots at once and hold 32 (64) outputs of
//! the weighted sum in registers, in the same order of operations. On
//! aarch64 the baseline already has NEON (and its fused multiply-add), so
//! the reference is the NEON build. Fused, because a separate multiply and
//! add are two operations on the same two vector ports an FMA uses once:
//! at depth, attention is most of prefill.
//!
//! [`ScaledDotsBlockFn`] takes many queries against the same keys (a
//! prefill tile): with the keys transposed once, a SIMD twin keeps a block
//! of queries times keys in registers and needs no horizontal sums.

use std::sync::OnceLock;

use half::f16;

use crate::{active_path, KernelPath};

/// `scaled_dots(q, keys, scale, out)`: `out[i] = dot(q, key i) * scale`,
/// with `keys` exactly `out.len()` rows of `q.len()` floats.
pub type ScaledDotsFn = fn(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]);
/// `weighted_sum(w, scale, values, out)`: `out += (w[i] * scale) * value i`
/// (the product `w[i] * scale` rounded, then fused) for each `i` in order, with `values` exactly `w.len()` rows of
/// `out.len()` floats.
pub type WeightedSumFn = fn(w: &[f32], scale: f32, values: &[f32], out: &mut [f32]);

/// `weighted_sum_block(w, n, values, out)`: for `m = w.len() / n` rows of
/// weights `w` (rows of `n`) and the `n` value rows `values` (rows of
/// `dv = values.len() / n`), `out[r] += w[r][i] * value i` for each `i` in
/// order, each row the bits of [`WeightedSumFn`] with `scale` 1. `n` must
/// be positive.
pub type WeightedSumBlockFn = fn(w: &[f32], n: usize, values: &[f32], out: &mut [f32]);

/// `exp_sum(s, max)`: `s[i] = exp(s[i] - max)` for scores `s[i] <= max`
/// (by [`exp_nonpositive`]), returning their sum (eight lanes, each in
/// index order, then the lanes in order, then the tail).
pub type ExpSumFn = fn(s: &mut [f32], max: f32) -> f32;

/// `scaled_dots_block(qs, keys, d, scale, out, scratch)`: for the `m`
/// queries `qs` (rows of `d` floats) and the `n` keys `keys` (rows of `d`),
/// `out[r * n + t] = dot(query r, key t) * scale`, each the bits of
/// [`ScaledDotsFn`] on that query and key. `scratch` is the kernel's (a
/// transposed copy of the keys, kept between calls to save allocations).
/// `d` must be positive.
pub type ScaledDotsBlockFn = fn(qs: &[f32], keys: &[f32], d: usize, scale: f32, out: &mut [f32], scratch: &mut Vec<f32>);

/// [`ScaledDotsFn`] reading f16 keys.
pub type ScaledDotsF16Fn = fn(q: &[f32], keys: &[f16], scale: f32, out: &mut [f32]);
/// [`ScaledDotsBlockFn`] reading f16 keys.
pub type ScaledDotsBlockF16Fn = fn(qs: &[f32], keys: &[f16], d: usize, scale: f32, out: &mut [f32], scratch: &mut Vec<f32>);
/// [`WeightedSumFn`] reading f16 values.
pub type WeightedSumF16Fn = fn(w: &[f32], scale: f32, values: &[f16], out: &mut [f32]);

/// Helpers that read an f16 KV cache where it lies, widening in registers.
/// Each gives the bits of the f32 helper on the exactly widened rows (its
/// scalar twin: widen, then the reference).
#[derive(Clone, Copy, Debug)]
pub struct F16Kernels {
    pub scaled_dots: ScaledDotsF16Fn,
    /// Widens the keys as it lays them out.
    pub scaled_dots_block: ScaledDotsBlockF16Fn,
    pub weighted_sum: WeightedSumF16Fn,
}

/// The attention helpers of one kernel path.
#[derive(Clone, Copy, Debug)]
pub struct AttnKernels {
    pub scaled_dots: ScaledDotsFn,
    pub scaled_dots_block: ScaledDotsBlockFn,
    pub weighted_sum: WeightedSumFn,
    pub weighted_sum_block: WeightedSumBlockFn,
    pub exp_sum: ExpSumFn,
    /// `None` where widening a tile first is as fast (the caller does).
    pub f16: Option<F16Kernels>,
    /// The path these pointers were resolved for.
    pub path: KernelPath,
}

/// The helpers on `path`, or `None` if this CPU cannot run it.
pub fn attn_kernels_for_path(path: KernelPath) -> Option<AttnKernels> {
    if !path.is_available() {
        return None;
    }
    Some(crate::arch::attn(path).unwrap_or(AttnKernels {
        scaled_dots,
        scaled_dots_block,
        weighted_sum,
        weighted_sum_block,
        exp_sum,
        f16: None,
        path,
    }))
}

/// The helpers on the [`active_path`] (resolved once per process).
pub fn attn_kernels() -> &'static AttnKernels {
    static TABLE: OnceLock<AttnKernels> = OnceLock::new();
    TABLE.get_or_init(|| {
        attn_kernels_for_path(active_path()).expect("the active path is available")
    })
}

/// Checks the shapes of [`ScaledDotsFn`] (panics on a caller's bug).
#[track_caller]
#[inline]
pub(crate) fn scaled_dots_args<T>(q: &[f32], keys: &[T], out: &[f32]) {
    assert_eq!(
        Some(keys.len()),
        out.len().checked_mul(q.len()),
        "scaled_dots: {} key floats for {} rows of {}",
        keys.len(),
        out.len(),
        q.len()
    );
}

/// Checks the shapes of [`ScaledDotsBlockFn`] and returns `(m, n)`
/// (panics on a caller's bug).
#[track_caller]
#[inline]
pub(crate) fn scaled_dots_block_args<T>(qs: &[f32], keys: &[T], d: usize, out: &[f32]) -> (usize, usize) {
    assert!(d > 0 && qs.len() % d == 0 && keys.len() % d == 0, "scaled_dots_block: {} query and {} key floats in rows of {d}", qs.len(), keys.len());
    let (m, n) = (qs.len() / d, keys.len() / d);
    assert_eq!(Some(out.len()), m.checked_mul(n), "scaled_dots_block: {} outputs for {m} queries and {n} keys", out.len());
    (m, n)
}

/// Checks the shapes of [`WeightedSumBlockFn`] and returns `(m, dv)`
/// (panics on a caller's bug).
#[track_caller]
#[inline]
pub(crate) fn weighted_sum_block_args(w: &[f32], n: usize, values: &[f32], out: &[f32]) -> (usize, usize) {
    assert!(n > 0 && w.len() % n == 0 && values.len() % n == 0, "weighted_sum_block: {} weights and {} value floats in rows of {n}", w.len(), values.len());
    let (m, dv) = (w.len() / n, values.len() / n);
    assert_eq!(Some(out.len()), m.checked_mul(dv), "weighted_sum_block: {} outputs for {m} rows of {dv}", out.len());
    (m, dv)
}

/// Checks the shapes of [`WeightedSumFn`] (panics on a caller's bug).
#[track_caller]
#[inline]
pub(crate) fn weighted_sum_args<T>(w: &[f32], values: &[T], out: &[f32]) {
    assert_eq!(
        Some(values.len()),
        w.len().checked_mul(out.len()),
        "weighted_sum: {} value floats for {} rows of {}",
        values.len(),
        w.len(),
        out.len()
    );
}

/// The reference [`ScaledDotsFn`].
pub fn scaled_dots(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
    scaled_dots_args(q, keys, out);
    scaled_dots_body(q, keys, scale, out)
}

/// The reference [`ScaledDotsBlockFn`]: [`scaled_dots`] per query.
pub fn scaled_dots_block(qs: &[f32], keys: &[f32], d: usize, scale: f32, out: &mut [f32], _scratch: &mut Vec<f32>) {
    let (_, n) = scaled_dots_block_args(qs, keys, d, out);
    if n == 0 {
        return;
    }
    for (q, o) in qs.chunks_exact(d).zip(out.chunks_exact_mut(n)) {
        scaled_dots_body(q, keys, scale, o);
    }
}

/// The reference [`WeightedSumBlockFn`]: [`weighted_sum`] per row.
pub fn weighted_sum_block(w: &[f32], n: usize, values: &[f32], out: &mut [f32]) {
    let (_, dv) = weighted_sum_block_args(w, n, values, out);
    if dv == 0 {
        return;
    }
    for (w, o) in w.chunks_exact(n).zip(out.chunks_exact_mut(dv)) {
        weighted_sum_body(w, 1.0, values, o);
    }
}

/// The reference [`WeightedSumFn`].
pub fn weighted_sum(w: &[f32], scale: f32, values: &[f32], out: &mut [f32]) {
    weighted_sum_args(w, values, out);
    weighted_sum_body(w, scale, values, out)
}

/// Below this, `exp` of an f32 is not a normal number; [`exp_nonpositive`]
/// returns 0 (a softmax weight that small is nothing next to the maximum's 1).
pub const EXP_MIN: f32 = -87.33654;

/// `1/k!` for k = 9 down to 1: the Taylor polynomial of [`exp_nonpositive`].
pub(crate) const EXP_TAYLOR: [f64; 9] = [
    1.0 / 362880.0,
    1.0 / 40320.0,
    1.0 / 5040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    1.0 / 2.0,
    1.0,
];

/// `e^x` for `x <= 0`, computed in f64 and rounded once to f32, so it is
/// correctly rounded but for about one input in 10^4 (one ulp off then),
/// as accurate as libm's `expf`; 0 below [`EXP_MIN`].
///
/// `x = k ln 2 + r` with integral `k` and `|r| <= ln 2 / 2`; `e^r` by its
/// Taylor polynomial of degree 9 (relative error under 1e-11); `2^k` built
/// in the exponent bits. f64 fused multiply-adds (`mul_add`, Horner's rule)
/// in a fixed order, so every path, scalar or SIMD, gives the same bits,
/// which libm does not promise, and the SIMD twins do eight at a time.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    if x < EXP_MIN {
        return 0.0;
    }
    let x = x as f64;
    let k = (x * std::f64::consts::LOG2_E).round_ties_even();
    let r = (-k).mul_add(std::f64::consts::LN_2, x);
    let mut p = EXP_TAYLOR[0];
    for &c in &EXP_TAYLOR[1..] {
        p = p.mul_add(r, c);
    }
    let p = p.mul_add(r, 1.0);
    // k is in -126..=0 here, so 2^k is a normal f64.
    let pow2k = f64::from_bits(((k as i64 + 1023) as u64) << 52);
    (p * pow2k) as f32
}

/// The reference [`ExpSumFn`].
pub fn exp_sum(s: &mut [f32], max: f32) -> f32 {
    let mut acc = [0f32; 8];
    let mut chunks = s.chunks_exact_mut(8);
    for c in &mut chunks {
        for l in 0..8 {
            c[l] = exp_nonpositive(c[l] - max);
            acc[l] += c[l];
        }
    }
    lanes_sum(&acc) + exp_sum_tail(chunks.into_remainder(), max)
}

/// [`exp_sum`] past the last whole chunk of eight.
#[inline(always)]
pub(crate) fn exp_sum_tail(s: &mut [f32], max: f32) -> f32 {
    let mut t = 0.0;
    for x in s {
        *x = exp_nonpositive(*x - max);
        t += *x;
    }
    t
}

/// The loops, shared with the SIMD builds (always inlined into them).
#[inline(always)]
pub(crate) fn scaled_dots_body(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
    if q.is_empty() {
        out.fill(0.0 * scale);
        return;
    }
    for (o, key) in out.iter_mut().zip(keys.chunks_exact(q.len())) {
        *o = dot_fused(q, key) * scale;
    }
}

#[inline(always)]
pub(crate) fn weighted_sum_body(w: &[f32], scale: f32, values: &[f32], out: &mut [f32]) {
    if out.is_empty() {
        return;
    }
    for (&wi, value) in w.iter().zip(values.chunks_exact(out.len())) {
        axpy(wi * scale, value, out);
    }
}

/// f32 dot product of equal-length slices: eight independent lanes, each a
/// running sum of products in index order, then the lanes and the tail
/// summed in order (the same bits whatever vector width the compiler uses).
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a, b) = (a.chunks_exact(8), b.chunks_exact(8));
    let (a_tail, b_tail) = (a.remainder(), b.remainder());
    let mut acc = [0f32; 8];
    for (x, y) in a.zip(b) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    lanes_sum(&acc) + dot_tail(a_tail, b_tail)
}

/// [`dot`] with each product fused into its lane (`mul_add`): the order
/// of the attention helpers.
#[inline(always)]
pub(crate) fn dot_fused(a: &[f32], b: &[f32]) -> f32 {
    let (a, b) = (a.chunks_exact(8), b.chunks_exact(8));
    let (a_tail, b_tail) = (a.remainder(), b.remainder());
    let mut acc = [0f32; 8];
    for (x, y) in a.zip(b) {
        for l in 0..8 {
            acc[l] = x[l].mul_add(y[l], acc[l]);
        }
    }
    lanes_sum(&acc) + dot_fused_tail(a_tail, b_tail)
}

/// The tail of [`dot_fused`] past the last whole chunk of eight.
#[inline(always)]
pub(crate) fn dot_fused_tail(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        s = x.mul_add(*y, s);
    }
    s
}

/// The eight lanes of [`dot`] added in lane order, starting from lane 0
/// (no leading zero, so the SIMD twins can add whole lanes of eight keys).
#[inline(always)]
pub(crate) fn lanes_sum(acc: &[f32; 8]) -> f32 {
    acc[1..].iter().fold(acc[0], |s, &x| s + x)
}

/// The tail of [`dot`] past the last whole chunk of eight.
#[inline(always)]
pub(crate) fn dot_tail(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0.0;
    for (x, y) in a.iter().zip(b) {
        s += x * y;
    }
    s
}

/// `y += a * x`, fused.
#[inline(always)]
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yy, &xx) in y.iter_mut().zip(x) {
        *yy = a.mul_add(xx, *yy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_matches_naive_math() {
        let q: Vec<f32> = (0..67).map(|i| i as f32 * 0.5).collect();
        let keys: Vec<f32> = (0..3 * 67).map(|i| 1.0 - i as f32 * 0.01).collect();
        let mut out = [0.0f32; 3];
        scaled_dots(&q, &keys, 0.5, &mut out);
        for (o, key) in out.iter().zip(keys.chunks_exact(67)) {
            let naive: f32 = q.iter().zip(key).map(|(x, y)| x * y).sum::<f32>() * 0.5;
            assert!((o - naive).abs() < 1e-2, "{o} vs {naive}");
        }
        let mut y = [1.0f32; 67];
        weighted_sum(&[2.0, -1.0, 0.5], 0.5, &keys, &mut y);
        for (j, v) in y.iter().enumerate() {
            let naive = 1.0 + keys[j] - 0.5 * keys[67 + j] + 0.25 * keys[134 + j];
            assert!((v - naive).abs() < 1e-5, "{j}: {v} vs {naive}");
        }
    }

    /// `n` floats in [-2, 2) from an xorshift generator.
    fn rnd(seed: &mut u64, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                (*seed >> 40) as f32 / (1u64 << 22) as f32 - 2.0
            })
            .collect()
    }

    /// Every path's helpers give the reference's bits, for widths and key
    /// counts on and off the vector and block sizes.
    #[test]
    fn every_path_matches_the_reference_bits() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut rnd = |n: usize| rnd(&mut seed, n);
        for path in crate::available_paths() {
            let k = attn_kernels_for_path(path).unwrap();
            for d in [0, 1, 7, 8, 13, 32, 40, 64, 80, 128, 192, 256] {
                // Key counts around the groups of eight and sixteen.
                for n in [0, 1, 7, 8, 9, 17, 31, 40, 64, 65] {
                    let (q, keys, w) = (rnd(d), rnd(n * d), rnd(n));
                    let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
                    scaled_dots(&q, &keys, 0.125, &mut a);
                    (k.scaled_dots)(&q, &keys, 0.125, &mut b);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&a), bits(&b), "scaled_dots {path} d {d} n {n}");
                    let start = rnd(d);
                    let (mut a, mut b) = (start.clone(), start);
                    weighted_sum(&w, 0.3, &keys, &mut a);
                    (k.weighted_sum)(&w, 0.3, &keys, &mut b);
                    assert_eq!(bits(&a), bits(&b), "weighted_sum {path} d {d} n {n}");
                    if let Some(h) = k.f16 {
                        let keys16: Vec<f16> = keys.iter().map(|&x| f16::from_f32(x)).collect();
                        let wide: Vec<f32> = keys16.iter().map(|x| x.to_f32()).collect();
                        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
                        scaled_dots(&q, &wide, 0.125, &mut a);
                        (h.scaled_dots)(&q, &keys16, 0.125, &mut b);
                        assert_eq!(bits(&a), bits(&b), "scaled_dots f16 {path} d {d} n {n}");
                        let start = rnd(d);
                        let (mut a, mut b) = (start.clone(), start);
                        weighted_sum(&w, 0.3, &wide, &mut a);
                        (h.weighted_sum)(&w, 0.3, &keys16, &mut b);
                        assert_eq!(bits(&a), bits(&b), "weighted_sum f16 {path} d {d} n {n}");
                    }
                    // Around EXP_MIN (zeroed below it) in one chunk of
                    // eight and in the tail, then random scores.
                    let edge = [0.0, -1.0, EXP_MIN + 0.5, EXP_MIN, EXP_MIN - 1e-5, -100.0, -87.0, -88.0, EXP_MIN, -200.0, -0.5];
                    let (mut a, mut b) = (edge.to_vec(), edge.to_vec());
                    let (sa, sb) = (exp_sum(&mut a, 0.0), (k.exp_sum)(&mut b, 0.0));
                    assert_eq!((bits(&a), sa.to_bits()), (bits(&b), sb.to_bits()), "exp_sum {path} around EXP_MIN");
                    let mut scores = rnd(d + n);
                    scores.iter_mut().enumerate().for_each(|(i, x)| *x *= (i % 50) as f32);
                    let max = scores.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
                    let (mut a, mut b) = (scores.clone(), scores);
                    let (sa, sb) = (exp_sum(&mut a, max), (k.exp_sum)(&mut b, max));
                    assert_eq!((bits(&a), sa.to_bits()), (bits(&b), sb.to_bits()), "exp_sum {path} n {}", d + n);
                }
            }
        }
    }

    /// Every path's `scaled_dots_block` gives [`scaled_dots`]'s bits per
    /// query, and `weighted_sum_block` [`weighted_sum`]'s per row, for
    /// query and key counts around the register blocks (three queries,
    /// eight or sixteen keys per register, up to 64 keys) and head sizes on
    /// and off the lanes of eight; the scratch is reused.
    #[test]
    fn block_dots_match_per_query_dots() {
        let mut seed = 0x0DDB_1A5E_5BAD_5EEDu64;
        let mut rnd = |n: usize| rnd(&mut seed, n);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for path in crate::available_paths() {
            let k = attn_kernels_for_path(path).unwrap();
            let mut scratch = Vec::new();
            for d in [1, 7, 8, 13, 64, 80, 128, 256] {
                for m in [0, 1, 2, 3, 4, 5, 7, 64] {
                    for n in [0, 1, 7, 8, 9, 16, 17, 33, 48, 63, 64, 65] {
                        let (qs, keys) = (rnd(m * d), rnd(n * d));
                        let mut want = vec![0.0; m * n];
                        for (q, o) in qs.chunks_exact(d).zip(want.chunks_exact_mut(n.max(1))) {
                            scaled_dots(q, &keys, 0.125, &mut o[..n]);
                        }
                        let mut got = vec![f32::NAN; m * n];
                        (k.scaled_dots_block)(&qs, &keys, d, 0.125, &mut got, &mut scratch);
                        assert_eq!(bits(&got), bits(&want), "{path} d {d} m {m} n {n}");
                        if let Some(h) = k.f16 {
                            let keys16: Vec<f16> = keys.iter().map(|&x| f16::from_f32(x)).collect();
                            let wide: Vec<f32> = keys16.iter().map(|x| x.to_f32()).collect();
                            let mut want = vec![0.0; m * n];
                            scaled_dots_block(&qs, &wide, d, 0.125, &mut want, &mut scratch);
                            let mut got = vec![f32::NAN; m * n];
                            (h.scaled_dots_block)(&qs, &keys16, d, 0.125, &mut got, &mut scratch);
                            assert_eq!(bits(&got), bits(&want), "f16 {path} d {d} m {m} n {n}");
                        }
                    }
                }
            }
            for dv in [1, 8, 13, 16, 32, 48, 64, 80, 128] {
                for m in [1, 2, 3, 5, 6, 7, 13] {
                    for n in [1, 2, 9, 64] {
                        let (w, values, start) = (rnd(m * n), rnd(n * dv), rnd(m * dv));
                        let mut want = start.clone();
                        for (w, o) in w.chunks_exact(n).zip(want.chunks_exact_mut(dv)) {
                            weighted_sum(w, 1.0, &values, o);
                        }
                        let mut got = start;
                        (k.weighted_sum_block)(&w, n, &values, &mut got);
                        assert_eq!(bits(&got), bits(&want), "weighted_sum_block {path} dv {dv} m {m} n {n}");
                    }
                }
            }
            let r = std::panic::catch_unwind(|| (k.weighted_sum_block)(&[0.0; 6], 3, &[0.0; 12], &mut [0.0; 7]));
            assert!(r.is_err(), "{path}: 2 x 4 outputs, not 7");
            let r = std::panic::catch_unwind(|| (k.scaled_dots_block)(&[0.0; 8], &[0.0; 12], 4, 1.0, &mut [0.0; 5], &mut Vec::new()));
            assert!(r.is_err(), "{path}: 2 x 3 outputs, not 5");
        }
    }

    /// Within 1 ulp of the correctly rounded `e^x` everywhere, and equal to
    /// it almost always; 0 below the range.
    #[test]
    fn exp_nonpositive_is_accurate() {
        let (mut worst, mut off, mut n) = (0u32, 0u32, 0u32);
        // Every 997th f32 from -0 down to EXP_MIN.
        let mut bits = 0x8000_0000u32;
        while f32::from_bits(bits) >= EXP_MIN {
            let x = f32::from_bits(bits);
            let want = (x as f64).exp() as f32;
            let d = exp_nonpositive(x).to_bits().abs_diff(want.to_bits());
            worst = worst.max(d);
            off += (d != 0) as u32;
            n += 1;
            bits += 997;
        }
        assert!(worst <= 1, "{worst} ulp");
        assert!(off * 1000 < n, "{off} of {n} not correctly rounded");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-0.0), 1.0);
        assert_eq!(exp_nonpositive(-100.0), 0.0);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
    }

    #[test]
    fn bad_shapes_panic() {
        let r = std::panic::catch_unwind(|| scaled_dots(&[1.0; 4], &[0.0; 7], 1.0, &mut [0.0; 2]));
        assert!(r.is_err());
        let r = std::panic::catch_unwind(|| weighted_sum(&[1.0; 2], 1.0, &[0.0; 7], &mut [0.0; 4]));
        assert!(r.is_err());
    }
}
