//! AVX2 twins of the attention helpers of `crate::attn`, with the reference's
//! exact bits:
//! - `scaled_dots` takes eight keys at a time. Each key keeps the
//!   reference's eight running lanes (one register per key, the query chunk
//!   loaded once for all eight); an 8×8 transpose then adds lane 0, lane 1,
//!   ... of all eight keys at once, which is the reference's lane order.
//! - `weighted_sum` holds 32 outputs in four registers across all the
//!   weights, instead of reloading them per weight; each output still sees
//!   `out += (w[i] * scale) * value[i]` in the order of `i`.
//!
//! - `exp_sum` runs `exp_nonpositive` on eight scores at once (two halves
//!   of four widened to f64), each operation the scalar one's: rounding to
//!   an integer is exact, and so is building `2^k` from its bits.
//!
//! - The f16 versions are the same code reading f16 keys or values,
//!   widened exactly (`vcvtph2ps`) as they are loaded.
//!
//! - `scaled_dots_block` (many queries, the same keys) transposes the
//!   keys once, eight per register, and runs a block of three queries by
//!   sixteen keys one lane at a time: lane `l`'s running sum over elements
//!   `l, l + 8, ...` of each query and key, then added to the lanes before
//!   it, as the reference adds its lanes. No horizontal sums.
//!
//! - `weighted_sum_block` holds two rows by 32 outputs across the weights,
//!   each value row loaded once for both.
//!
//! Every product is fused into its sum (FMA), as the reference's
//! `mul_add`.

/// A KV element the kernels read: f32, or f16 widened on load.
pub(crate) trait Elem: Copy {
    /// Eight elements from `p` as f32 lanes.
    ///
    /// # Safety
    /// `p` must point at eight readable elements; the CPU must support
    /// AVX2 and F16C.
    unsafe fn load8(p: *const Self) -> __m256;
    fn f32(self) -> f32;
}

impl Elem for f32 {
    #[inline(always)]
    unsafe fn load8(p: *const f32) -> __m256 {
        // SAFETY: per the trait's contract.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    fn f32(self) -> f32 {
        self
    }
}

impl Elem for f16 {
    #[inline(always)]
    unsafe fn load8(p: *const f16) -> __m256 {
        // SAFETY: per the trait's contract: 16 readable bytes, F16C present.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
    }
    #[inline(always)]
    fn f32(self) -> f32 {
        self.to_f32()
    }
}

use std::arch::x86_64::*;

use half::f16;

use crate::attn::{exp_sum_tail, lanes_sum, scaled_dots_args, scaled_dots_block_args, weighted_sum_args, weighted_sum_block_args, AttnKernels, F16Kernels};
use crate::attn::{EXP_MIN, EXP_TAYLOR};
use crate::KernelPath;

/// The AVX2 helpers, reported as `path` (AVX2 or AVX-512).
pub(crate) fn kernels(path: KernelPath) -> AttnKernels {
    assert!(KernelPath::Avx2.is_available());
    AttnKernels {
        scaled_dots,
        scaled_dots_block,
        weighted_sum,
        weighted_sum_block,
        exp_sum,
        f16: Some(F16Kernels { scaled_dots: scaled_dots_f16, scaled_dots_block: scaled_dots_block_f16, weighted_sum: weighted_sum_f16 }),
        path,
    }
}

safe_fn! {
    requires KernelPath::Avx2.is_available();
    fn scaled_dots(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
        checks { scaled_dots_args(q, keys, out); }
        unsafe { scaled_dots_avx2(q, keys, scale, out) }
    }
    fn scaled_dots_block(qs: &[f32], keys: &[f32], d: usize, scale: f32, out: &mut [f32], scratch: &mut Vec<f32>) {
        checks { scaled_dots_block_args(qs, keys, d, out); }
        unsafe { scaled_dots_block_avx2(qs, keys, d, scale, out, scratch) }
    }
    fn scaled_dots_block_f16(qs: &[f32], keys: &[f16], d: usize, scale: f32, out: &mut [f32], scratch: &mut Vec<f32>) {
        checks { scaled_dots_block_args(qs, keys, d, out); }
        unsafe { scaled_dots_block_avx2(qs, keys, d, scale, out, scratch) }
    }
    fn weighted_sum(w: &[f32], scale: f32, values: &[f32], out: &mut [f32]) {
        checks { weighted_sum_args(w, values, out); }
        unsafe { weighted_sum_avx2(w, scale, values, out) }
    }
    fn weighted_sum_block(w: &[f32], n: usize, values: &[f32], out: &mut [f32]) {
        checks { weighted_sum_block_args(w, n, values, out); }
        unsafe { weighted_sum_block_avx2(w, n, values, out) }
    }
    fn scaled_dots_f16(q: &[f32], keys: &[f16], scale: f32, out: &mut [f32]) {
        checks { scaled_dots_args(q, keys, out); }
        unsafe { scaled_dots_avx2(q, keys, scale, out) }
    }
    fn weighted_sum_f16(w: &[f32], scale: f32, values: &[f16], out: &mut [f32]) {
        checks { weighted_sum_args(w, values, out); }
        unsafe { weighted_sum_avx2(w, scale, values, out) }
    }
    fn exp_sum(s: &mut [f32], max: f32) -> f32 {
        checks {}
        unsafe { exp_sum_avx2(s, max) }
    }
}

/// Transposes eight registers of eight lanes (row r, lane c → row c, lane r).
#[target_feature(enable = "avx2")]
pub(crate) fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(s0, s4),
        _mm256_permute2f128_ps::<0x20>(s1, s5),
        _mm256_permute2f128_ps::<0x20>(s2, s6),
        _mm256_permute2f128_ps::<0x20>(s3, s7),
        _mm256_permute2f128_ps::<0x31>(s0, s4),
        _mm256_permute2f128_ps::<0x31>(s1, s5),
        _mm256_permute2f128_ps::<0x31>(s2, s6),
        _mm256_permute2f128_ps::<0x31>(s3, s7),
    ]
}

/// One key's dot product in the reference's order: eight running lanes,
/// added in lane order, then the tail.
#[target_feature(enable = "avx2,fma,f16c")]
fn dot1<T: Elem>(q: &[f32], key: &[T]) -> f32 {
    let whole = q.len() / 8 * 8;
    let mut acc = _mm256_setzero_ps();
    let mut c = 0;
    while c < whole {
        // SAFETY: c + 8 <= whole <= q.len() = key.len().
        acc = unsafe { _mm256_fmadd_ps(_mm256_loadu_ps(q.as_ptr().add(c)), T::load8(key.as_ptr().add(c)), acc) };
        c += 8;
    }
    let mut lanes = [0f32; 8];
    // SAFETY: lanes is 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
    lanes_sum(&lanes) + tail::<T>(&q[whole..], &key[whole..])
}

/// The reference `dot_fused_tail` on widened elements.
#[inline(always)]
pub(crate) fn tail<T: Elem>(a: &[f32], b: &[T]) -> f32 {
    let mut s = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        s = x.mul_add(y.f32(), s);
    }
    s
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C; the shapes are those
/// `scaled_dots_args` checks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn scaled_dots_avx2<T: Elem>(q: &[f32], keys: &[T], scale: f32, out: &mut [f32]) {
    let d = q.len();
    if d == 0 {
        out.fill(0.0 * scale);
        return;
    }
    let whole = d / 8 * 8;
    let mut groups = out.chunks_exact_mut(8);
    let mut key0 = 0;
    for o in &mut groups {
        let block = &keys[key0 * d..(key0 + 8) * d];
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut c = 0;
        while c < whole {
            // SAFETY: c + 8 <= whole <= d = q.len().
            let qv = unsafe { _mm256_loadu_ps(q.as_ptr().add(c)) };
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: block holds 8 rows of d elements; k*d + c + 8 <= 8*d.
                let kv = unsafe { T::load8(block.as_ptr().add(k * d + c)) };
                *a = _mm256_fmadd_ps(qv, kv, *a);
            }
            c += 8;
        }
        let lanes = transpose8(acc);
        let mut sum = lanes[0];
        for l in &lanes[1..] {
            sum = _mm256_add_ps(sum, *l);
        }
        let mut tails = [0f32; 8];
        for (k, t) in tails.iter_mut().enumerate() {
            *t = tail(&q[whole..], &block[k * d + whole..(k + 1) * d]);
        }
        // SAFETY: tails and o are 8 floats.
        unsafe {
            sum = _mm256_add_ps(sum, _mm256_loadu_ps(tails.as_ptr()));
            _mm256_storeu_ps(o.as_mut_ptr(), _mm256_mul_ps(sum, _mm256_set1_ps(scale)));
        }
        key0 += 8;
    }
    for (i, o) in groups.into_remainder().iter_mut().enumerate() {
        let k = key0 + i;
        *o = dot1(q, &keys[k * d..(k + 1) * d]) * scale;
    }
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C; the shapes are those
/// `scaled_dots_block_args` checks.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scaled_dots_block_avx2<T: Elem>(qs: &[f32], keys: &[T], d: usize, scale: f32, out: &mut [f32], scratch: &mut Vec<f32>) {
    let (m, n) = (qs.len() / d, keys.len() / d);
    if m == 0 || n == 0 {
        return;
    }
    // Keys as columns, eight to a register, the last ones padded with zero
    // keys (computed, not stored).
    let w = n.div_ceil(8) * 8;
    // SAFETY: AVX2 and F16C are enabled here.
    unsafe { transpose_keys_avx2(keys, d, w, scratch) };
    let (q, kt, o) = (qs.as_ptr(), scratch.as_ptr(), out.as_mut_ptr());
    let mut col = 0;
    while col < w {
        let v = ((w - col) / 8).min(2);
        let mut r = 0;
        while r < m {
            let rows = (m - r).min(3);
            // SAFETY: rows r..r + rows of qs and out, columns col..col +
            // 8v of the d x w transposed keys; out columns only below n.
            unsafe {
                let (q, o) = (q.add(r * d), o.add(r * n));
                match (rows, v) {
                    (3, 2) => block8::<3, 2>(q, d, kt, w, col, scale, o, n),
                    (2, 2) => block8::<2, 2>(q, d, kt, w, col, scale, o, n),
                    (1, 2) => block8::<1, 2>(q, d, kt, w, col, scale, o, n),
                    (3, _) => block8::<3, 1>(q, d, kt, w, col, scale, o, n),
                    (2, _) => block8::<2, 1>(q, d, kt, w, col, scale, o, n),
                    _ => block8::<1, 1>(q, d, kt, w, col, scale, o, n),
                }
            }
            r += rows;
        }
        col += 8 * v;
    }
}

/// The `n = keys.len() / d` keys (rows of `d`), widened, as the columns of
/// a `d x w` matrix in `buf`, zero for the padding keys `n..w`: eight keys
/// by eight elements at a time through `transpose8`, the edges one by one.
///
/// # Safety
/// AVX2 and F16C; `d > 0`, `w >= n`.
#[target_feature(enable = "avx2,f16c")]
pub(crate) unsafe fn transpose_keys_avx2<T: Elem>(keys: &[T], d: usize, w: usize, buf: &mut Vec<f32>) {
    let n = keys.len() / d;
    assert!(n <= w);
    // Every element is written below: the keys, then the padding as zero.
    buf.resize(d * w, 0.0);
    if n < w {
        for row in buf.chunks_exact_mut(w) {
            row[n..].fill(0.0);
        }
    }
    let (d8, n8) = (d / 8 * 8, n / 8 * 8);
    let (src, dst) = (keys.as_ptr(), buf.as_mut_ptr());
    for t0 in (0..n8).step_by(8) {
        for j0 in (0..d8).step_by(8) {
            let mut rows = [_mm256_setzero_ps(); 8];
            for (i, r) in rows.iter_mut().enumerate() {
                // SAFETY: key t0 + i < n, elements j0..j0 + 8 <= d.
                *r = unsafe { T::load8(src.add((t0 + i) * d + j0)) };
            }
            for (jj, c) in transpose8(rows).iter().enumerate() {
                // SAFETY: row j0 + jj < d of buf, columns t0..t0 + 8 <= w.
                unsafe { _mm256_storeu_ps(dst.add((j0 + jj) * w + t0), *c) };
            }
        }
    }
    for (t, key) in keys.chunks_exact(d).enumerate() {
        let from = if t < n8 { d8 } else { 0 };
        for (j, x) in key.iter().enumerate().skip(from) {
            buf[j * w + t] = x.f32();
        }
    }
}

/// `R` queries (rows of `d` at `q`) by `8V` keys (columns `col..` of the
/// `d x w` transposed keys at `kt`), scaled, to `o` (rows of `n`; columns
/// past `n` are padding and not stored). Lane `l` of the reference's
/// eight is the running sum over elements `l, l + 8, ...`; the lanes are
/// added in order as each completes, then the tail.
///
/// # Safety
/// `q` must hold `R` rows of `d`, `kt` `d` rows of `w >= col + 8V`, `o` `R`
/// rows of `n > col`; AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn block8<const R: usize, const V: usize>(q: *const f32, d: usize, kt: *const f32, w: usize, col: usize, scale: f32, o: *mut f32, n: usize) {
    let whole = d / 8 * 8;
    let mut sum = [[_mm256_setzero_ps(); V]; R];
    for l in 0..8 {
        let mut acc = [[_mm256_setzero_ps(); V]; R];
        let mut j = l;
        while j < whole {
            let mut k = [_mm256_setzero_ps(); V];
            for (v, k) in k.iter_mut().enumerate() {
                // SAFETY: j < d rows, col + 8v + 8 <= w.
                *k = unsafe { _mm256_loadu_ps(kt.add(j * w + col + 8 * v)) };
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: r < R rows of d, j < d.
                let x = _mm256_set1_ps(unsafe { *q.add(r * d + j) });
                for (a, k) in acc.iter_mut().zip(&k) {
                    *a = _mm256_fmadd_ps(x, *k, *a);
                }
            }
            j += 8;
        }
        for (s, a) in sum.iter_mut().zip(&acc) {
            for (s, a) in s.iter_mut().zip(a) {
                *s = if l == 0 { *a } else { _mm256_add_ps(*s, *a) };
            }
        }
    }
    // The tail, a running sum from zero, added even when empty (+0.0).
    let mut acc = [[_mm256_setzero_ps(); V]; R];
    for j in whole..d {
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: as above.
            let x = _mm256_set1_ps(unsafe { *q.add(r * d + j) });
            for (v, a) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                *a = _mm256_fmadd_ps(x, unsafe { _mm256_loadu_ps(kt.add(j * w + col + 8 * v)) }, *a);
            }
        }
    }
    let sc = _mm256_set1_ps(scale);
    for (r, (s, a)) in sum.iter().zip(&acc).enumerate() {
        for (v, (s, a)) in s.iter().zip(a).enumerate() {
            let x = _mm256_mul_ps(_mm256_add_ps(*s, *a), sc);
            let c0 = col + 8 * v;
            if c0 + 8 <= n {
                // SAFETY: row r of o has n > c0 + 7 columns.
                unsafe { _mm256_storeu_ps(o.add(r * n + c0), x) };
            } else if c0 < n {
                let mut t = [0f32; 8];
                // SAFETY: t is 8 floats; row r of o has n - c0 columns past c0.
                unsafe {
                    _mm256_storeu_ps(t.as_mut_ptr(), x);
                    std::ptr::copy_nonoverlapping(t.as_ptr(), o.add(r * n + c0), n - c0);
                }
            }
        }
    }
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C; the shapes are those
/// `weighted_sum_args` checks.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn weighted_sum_avx2<T: Elem>(w: &[f32], scale: f32, values: &[T], out: &mut [f32]) {
    let d = out.len();
    let whole = d / 32 * 32;
    let mut c = 0;
    while c < whole {
        let o = out[c..c + 32].as_mut_ptr();
        // SAFETY: o points at 32 floats of out.
        let mut acc = unsafe { [_mm256_loadu_ps(o), _mm256_loadu_ps(o.add(8)), _mm256_loadu_ps(o.add(16)), _mm256_loadu_ps(o.add(24))] };
        for (i, &wi) in w.iter().enumerate() {
            let a = _mm256_set1_ps(wi * scale);
            let v = values[i * d + c..i * d + c + 32].as_ptr();
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: v points at 32 elements of value row i.
                *acc = _mm256_fmadd_ps(a, unsafe { T::load8(v.add(8 * j)) }, *acc);
            }
        }
        for (j, acc) in acc.iter().enumerate() {
            // SAFETY: as the loads above.
            unsafe { _mm256_storeu_ps(o.add(8 * j), *acc) };
        }
        c += 32;
    }
    if whole < d {
        // The columns past the last 32: the reference loop, per column
        // order unchanged.
        for (i, &wi) in w.iter().enumerate() {
            let a = wi * scale;
            for (y, x) in out[whole..].iter_mut().zip(&values[i * d + whole..(i + 1) * d]) {
                *y = a.mul_add(x.f32(), *y);
            }
        }
    }
}

/// # Safety
/// The CPU must support AVX2 and FMA; the shapes are those
/// `weighted_sum_block_args` checks.
#[target_feature(enable = "avx2,fma")]
unsafe fn weighted_sum_block_avx2(w: &[f32], n: usize, values: &[f32], out: &mut [f32]) {
    let (m, dv) = (w.len() / n, values.len() / n);
    let whole = dv / 8 * 8;
    let (wp, vp, op) = (w.as_ptr(), values.as_ptr(), out.as_mut_ptr());
    let mut col = 0;
    while col < whole {
        let v = ((whole - col) / 8).min(4);
        let mut r = 0;
        while r < m {
            let rows = (m - r).min(2);
            // SAFETY: rows r..r + rows of w (rows of n) and out (rows of
            // dv), columns col..col + 8v <= dv of every value row.
            unsafe {
                let (wp, op) = (wp.add(r * n), op.add(r * dv));
                match (rows, v) {
                    (2, 4) => wsum8::<2, 4>(wp, n, vp, dv, col, op),
                    (2, 3) => wsum8::<2, 3>(wp, n, vp, dv, col, op),
                    (2, 2) => wsum8::<2, 2>(wp, n, vp, dv, col, op),
                    (2, _) => wsum8::<2, 1>(wp, n, vp, dv, col, op),
                    (_, 4) => wsum8::<1, 4>(wp, n, vp, dv, col, op),
                    (_, 3) => wsum8::<1, 3>(wp, n, vp, dv, col, op),
                    (_, 2) => wsum8::<1, 2>(wp, n, vp, dv, col, op),
                    (_, _) => wsum8::<1, 1>(wp, n, vp, dv, col, op),
                }
            }
            r += rows;
        }
        col += 8 * v;
    }
    weighted_sum_block_rest(w, n, values, out, whole);
}

/// The columns `from..dv` of `weighted_sum_block`: the reference's loop
/// per row (each column's order is the same).
#[inline(always)]
pub(crate) fn weighted_sum_block_rest(w: &[f32], n: usize, values: &[f32], out: &mut [f32], from: usize) {
    let dv = values.len() / n;
    if from == dv {
        return;
    }
    for (w, o) in w.chunks_exact(n).zip(out.chunks_exact_mut(dv)) {
        for (&wi, value) in w.iter().zip(values.chunks_exact(dv)) {
            for (y, &x) in o[from..].iter_mut().zip(&value[from..]) {
                *y = wi.mul_add(x, *y);
            }
        }
    }
}

/// `R` rows: `o[r][col..col + 8V] += w[r][i] * value i` for each `i` in
/// order, the sums held in registers across all `n` weights.
///
/// # Safety
/// `w` must hold `R` rows of `n`, `v` `n` rows of `dv >= col + 8V`, `o`
/// `R` rows of `dv`; AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn wsum8<const R: usize, const V: usize>(w: *const f32, n: usize, v: *const f32, dv: usize, col: usize, o: *mut f32) {
    let mut acc = [[_mm256_setzero_ps(); V]; R];
    for (r, acc) in acc.iter_mut().enumerate() {
        for (j, a) in acc.iter_mut().enumerate() {
            // SAFETY: row r of o, columns col + 8j.. < dv.
            *a = unsafe { _mm256_loadu_ps(o.add(r * dv + col + 8 * j)) };
        }
    }
    for i in 0..n {
        let mut x = [_mm256_setzero_ps(); V];
        for (j, x) in x.iter_mut().enumerate() {
            // SAFETY: value row i < n, columns col + 8j.. < dv.
            *x = unsafe { _mm256_loadu_ps(v.add(i * dv + col + 8 * j)) };
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: row r < R of w, i < n.
            let a = _mm256_set1_ps(unsafe { *w.add(r * n + i) });
            for (s, x) in acc.iter_mut().zip(&x) {
                *s = _mm256_fmadd_ps(a, *x, *s);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (j, a) in acc.iter().enumerate() {
            // SAFETY: as the loads.
            unsafe { _mm256_storeu_ps(o.add(r * dv + col + 8 * j), *a) };
        }
    }
}

/// `exp_nonpositive` of four lanes widened to f64, rounded back to f32.
#[target_feature(enable = "avx2,fma")]
fn exp4(x: __m128) -> __m128 {
    let x = _mm256_cvtps_pd(x);
    let k = _mm256_round_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_pd(x, _mm256_set1_pd(std::f64::consts::LOG2_E)));
    let r = _mm256_fnmadd_pd(k, _mm256_set1_pd(std::f64::consts::LN_2), x);
    let mut p = _mm256_set1_pd(EXP_TAYLOR[0]);
    for &c in &EXP_TAYLOR[1..] {
        p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(c));
    }
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0));
    // k + 1023 (in 897..=1023 where it matters) lands in the low mantissa
    // bits of 2^52 + k + 1023; shifted up by 52 it is the exponent of 2^k.
    let biased = _mm256_castpd_si256(_mm256_add_pd(k, _mm256_set1_pd(4503599627370496.0 + 1023.0)));
    let pow2k = _mm256_castsi256_pd(_mm256_slli_epi64::<52>(biased));
    _mm256_cvtpd_ps(_mm256_mul_pd(p, pow2k))
}

/// `exp_nonpositive` of eight lanes; lanes below EXP_MIN (where 2^k could
/// leave the exponent's range) are zeroed after the fact.
#[target_feature(enable = "avx2,fma")]
fn exp8(x: __m256) -> __m256 {
    let below = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(EXP_MIN));
    let lo = exp4(_mm256_castps256_ps128(x));
    let hi = exp4(_mm256_extractf128_ps::<1>(x));
    _mm256_andnot_ps(below, _mm256_set_m128(hi, lo))
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_sum_avx2(s: &mut [f32], max: f32) -> f32 {
    let m = _mm256_set1_ps(max);
    let mut acc = _mm256_setzero_ps();
    let mut chunks = s.chunks_exact_mut(8);
    for c in &mut chunks {
        // SAFETY: c is 8 floats.
        unsafe {
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), m));
            _mm256_storeu_ps(c.as_mut_ptr(), e);
            acc = _mm256_add_ps(acc, e);
        }
    }
    let mut lanes = [0f32; 8];
    // SAFETY: lanes is 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc) };
    lanes_sum(&lanes) + exp_sum_tail(chunks.into_remainder(), max)
}
