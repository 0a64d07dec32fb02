//! AVX-512 twins of the attention helpers (`scaled_dots`, `weighted_sum`,
//! `exp_sum` and the block kernels; f32 and f16 keys and values), with the
//! reference's exact bits:
//! - `scaled_dots` takes sixteen keys at a time, two per register: each
//!   half is one key's eight running lanes, the reference's, with the query
//!   chunk broadcast to both halves. The halves then go through the AVX2
//!   twin's transpose, so each key's lanes are added in lane order. Keys
//!   past the last sixteen take the AVX2 twin.
//! - `weighted_sum` holds 64 outputs in four registers across all the
//!   weights; each output still sees `out += (w[i] * scale) * value[i]` in
//!   the order of `i`. Head sizes that are not a multiple of 64 take the
//!   AVX2 twin.
//!
//! - `exp_sum` runs `exp_nonpositive` on eight scores at once in one
//!   register of eight f64 (the AVX2 twin needs two), each operation the
//!   scalar one's, and adds each eight to the running lanes in order.
//!
//! - `scaled_dots_block` transposes the keys once, sixteen per register,
//!   and runs blocks of three queries by 64 keys one lane at a time, as the
//!   AVX2 twin does with sixteen: 24 running sums in registers, each
//!   transposed key row loaded once for three queries.
//!
//! - `weighted_sum_block` holds six rows by 64 outputs (24 registers)
//!   across the weights, each value row loaded once for six rows.
//!
//! Every product is fused into its sum (FMA), as the reference's
//! `mul_add`.

use std::arch::x86_64::*;

use half::f16;

use super::super::avx2::attn::{scaled_dots_avx2, tail, transpose8, transpose_keys_avx2, weighted_sum_avx2, weighted_sum_block_rest, Elem};
use crate::attn::{exp_sum_tail, lanes_sum, scaled_dots_args, scaled_dots_block_args, weighted_sum_args, weighted_sum_block_args, AttnKernels, F16Kernels};
use crate::attn::{EXP_MIN, EXP_TAYLOR};
use crate::KernelPath;

/// The AVX-512 helpers.
pub(crate) fn kernels() -> AttnKernels {
    assert!(KernelPath::Avx512.is_available());
    AttnKernels {
        scaled_dots,
        scaled_dots_block,
        weighted_sum,
        weighted_sum_block,
        exp_sum,
        f16: Some(F16Kernels { scaled_dots: scaled_dots_f16, scaled_dots_block: scaled_dots_block_f16, weighted_sum: weighted_sum_f16 }),
        ..super::super::avx2::attn::kernels(KernelPath::Avx512)
    }
}

safe_fn! {
    requires KernelPath::Avx512.is_available();
    fn scaled_dots(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
        checks { scaled_dots_args(q, keys, out); }
        unsafe { scaled_dots_avx512(q, keys, scale, out) }
    }
    fn scaled_dots_block(qs: &[f32], keys: &[f32], d: usize, scale: f32, out: &mut [f32], scratch: &mut Vec<f32>) {
        checks { scaled_dots_block_args(qs, keys, d, out); }
        unsafe { scaled_dots_block_avx512(qs, keys, d, scale, out, scratch) }
    }
    fn scaled_dots_block_f16(qs: &[f32], keys: &[f16], d: usize, scale: f32, out: &mut [f32], scratch: &mut Vec<f32>) {
        checks { scaled_dots_block_args(qs, keys, d, out); }
        unsafe { scaled_dots_block_avx512(qs, keys, d, scale, out, scratch) }
    }
    fn weighted_sum(w: &[f32], scale: f32, values: &[f32], out: &mut [f32]) {
        checks { weighted_sum_args(w, values, out); }
        unsafe { weighted_sum_avx512(w, scale, values, out) }
    }
    fn weighted_sum_block(w: &[f32], n: usize, values: &[f32], out: &mut [f32]) {
        checks { weighted_sum_block_args(w, n, values, out); }
        unsafe { weighted_sum_block_avx512(w, n, values, out) }
    }
    fn scaled_dots_f16(q: &[f32], keys: &[f16], scale: f32, out: &mut [f32]) {
        checks { scaled_dots_args(q, keys, out); }
        unsafe { scaled_dots_avx512(q, keys, scale, out) }
    }
    fn weighted_sum_f16(w: &[f32], scale: f32, values: &[f16], out: &mut [f32]) {
        checks { weighted_sum_args(w, values, out); }
        unsafe { weighted_sum_avx512(w, scale, values, out) }
    }
    fn exp_sum(s: &mut [f32], max: f32) -> f32 {
        checks {}
        unsafe { exp_sum_avx512(s, max) }
    }
}

/// A KV element as the 512-bit kernels read it.
trait Elem16: Elem {
    /// Eight elements from each of `a` and `b`, as the low and high halves
    /// (moved as f64 pairs: the AVX-512 F forms, no DQ).
    ///
    /// # Safety
    /// `a` and `b` must each point at eight readable elements; AVX-512 F
    /// and F16C.
    unsafe fn load8x2(a: *const Self, b: *const Self) -> __m512;
    /// Sixteen elements from `p` as f32 lanes.
    ///
    /// # Safety
    /// `p` must point at sixteen readable elements; AVX-512 F and F16C.
    unsafe fn load16(p: *const Self) -> __m512;
}

impl Elem16 for f32 {
    #[inline(always)]
    unsafe fn load8x2(a: *const f32, b: *const f32) -> __m512 {
        // SAFETY: per the trait's contract.
        unsafe { _mm512_castpd_ps(_mm512_insertf64x4::<1>(_mm512_castps_pd(_mm512_castps256_ps512(_mm256_loadu_ps(a))), _mm256_castps_pd(_mm256_loadu_ps(b)))) }
    }
    #[inline(always)]
    unsafe fn load16(p: *const f32) -> __m512 {
        // SAFETY: per the trait's contract.
        unsafe { _mm512_loadu_ps(p) }
    }
}

impl Elem16 for f16 {
    #[inline(always)]
    unsafe fn load8x2(a: *const f16, b: *const f16) -> __m512 {
        // SAFETY: per the trait's contract: 16 readable bytes at each.
        unsafe { _mm512_cvtph_ps(_mm256_inserti128_si256::<1>(_mm256_castsi128_si256(_mm_loadu_si128(a.cast())), _mm_loadu_si128(b.cast()))) }
    }
    #[inline(always)]
    unsafe fn load16(p: *const f16) -> __m512 {
        // SAFETY: per the trait's contract: 32 readable bytes.
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
    }
}

/// # Safety
/// AVX-512 F/VL, AVX2, FMA and F16C; the shapes are those
/// `scaled_dots_args` checks.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma,f16c")]
unsafe fn scaled_dots_avx512<T: Elem16>(q: &[f32], keys: &[T], scale: f32, out: &mut [f32]) {
    let d = q.len();
    if d == 0 {
        out.fill(0.0 * scale);
        return;
    }
    let whole = d / 8 * 8;
    let mut groups = out.chunks_exact_mut(16);
    let mut key0 = 0;
    for o in &mut groups {
        let block = &keys[key0 * d..(key0 + 16) * d];
        let p = block.as_ptr();
        // acc[k]: key 2k in the low half, key 2k + 1 in the high half.
        let mut acc = [_mm512_setzero_ps(); 8];
        let mut c = 0;
        while c < whole {
            // SAFETY: c + 8 <= whole <= d = q.len().
            let qv = unsafe { _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(q.as_ptr().add(c))))) };
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: block holds 16 rows of d elements; (2k + 1) * d +
                // c + 8 <= 16 * d.
                let kv = unsafe { T::load8x2(p.add(2 * k * d + c), p.add((2 * k + 1) * d + c)) };
                *a = _mm512_fmadd_ps(qv, kv, *a);
            }
            c += 8;
        }
        for h in 0..2 {
            // Keys 8h..8h + 8, one register of eight lanes each.
            let rows: [__m256; 8] = core::array::from_fn(|k| {
                let a = acc[4 * h + k / 2];
                if k % 2 == 0 {
                    _mm512_castps512_ps256(a)
                } else {
                    _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(a)))
                }
            });
            let lanes = transpose8(rows);
            let mut sum = lanes[0];
            for l in &lanes[1..] {
                sum = _mm256_add_ps(sum, *l);
            }
            let mut tails = [0f32; 8];
            for (k, t) in tails.iter_mut().enumerate() {
                let key = &block[(8 * h + k) * d..(8 * h + k + 1) * d];
                *t = tail(&q[whole..], &key[whole..]);
            }
            let o = &mut o[8 * h..8 * h + 8];
            // SAFETY: tails and o are 8 floats.
            unsafe {
                sum = _mm256_add_ps(sum, _mm256_loadu_ps(tails.as_ptr()));
                _mm256_storeu_ps(o.as_mut_ptr(), _mm256_mul_ps(sum, _mm256_set1_ps(scale)));
            }
        }
        key0 += 16;
    }
    // SAFETY: AVX-512 implies AVX2, FMA and F16C here; the rest of the keys
    // and outputs keep the checked shapes.
    unsafe { scaled_dots_avx2(q, &keys[key0 * d..], scale, groups.into_remainder()) }
}

/// # Safety
/// AVX-512 F/VL, AVX2, FMA and F16C; the shapes are those
/// `scaled_dots_block_args` checks.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma,f16c")]
unsafe fn scaled_dots_block_avx512<T: Elem>(qs: &[f32], keys: &[T], d: usize, scale: f32, out: &mut [f32], scratch: &mut Vec<f32>) {
    let (m, n) = (qs.len() / d, keys.len() / d);
    if m == 0 || n == 0 {
        return;
    }
    // Keys as columns, sixteen to a register, the last ones padded with
    // zero keys (computed, not stored).
    let w = n.div_ceil(16) * 16;
    // SAFETY: AVX2 and F16C are enabled here.
    unsafe { transpose_keys_avx2(keys, d, w, scratch) };
    let (q, kt, o) = (qs.as_ptr(), scratch.as_ptr(), out.as_mut_ptr());
    let mut col = 0;
    while col < w {
        let v = ((w - col) / 16).min(4);
        let mut r = 0;
        while r < m {
            let rows = (m - r).min(3);
            // SAFETY: rows r..r + rows of qs and out, columns col..col +
            // 16v of the d x w transposed keys; out columns only below n.
            unsafe {
                let (q, o) = (q.add(r * d), o.add(r * n));
                match (rows, v) {
                    (3, 4) => block16::<3, 4>(q, d, kt, w, col, scale, o, n),
                    (3, 3) => block16::<3, 3>(q, d, kt, w, col, scale, o, n),
                    (3, 2) => block16::<3, 2>(q, d, kt, w, col, scale, o, n),
                    (3, _) => block16::<3, 1>(q, d, kt, w, col, scale, o, n),
                    (2, 4) => block16::<2, 4>(q, d, kt, w, col, scale, o, n),
                    (2, 3) => block16::<2, 3>(q, d, kt, w, col, scale, o, n),
                    (2, 2) => block16::<2, 2>(q, d, kt, w, col, scale, o, n),
                    (2, _) => block16::<2, 1>(q, d, kt, w, col, scale, o, n),
                    (_, 4) => block16::<1, 4>(q, d, kt, w, col, scale, o, n),
                    (_, 3) => block16::<1, 3>(q, d, kt, w, col, scale, o, n),
                    (_, 2) => block16::<1, 2>(q, d, kt, w, col, scale, o, n),
                    (_, _) => block16::<1, 1>(q, d, kt, w, col, scale, o, n),
                }
            }
            r += rows;
        }
        col += 16 * v;
    }
}

/// `R` queries (rows of `d` at `q`) by `16V` keys (columns `col..` of the
/// `d x w` transposed keys at `kt`), scaled, to `o` (rows of `n`; columns
/// past `n` are padding and not stored); the AVX2 `block8` with sixteen
/// keys per register.
///
/// # Safety
/// `q` must hold `R` rows of `d`, `kt` `d` rows of `w >= col + 16V`, `o`
/// `R` rows of `n > col`; AVX-512 F and FMA.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn block16<const R: usize, const V: usize>(q: *const f32, d: usize, kt: *const f32, w: usize, col: usize, scale: f32, o: *mut f32, n: usize) {
    let whole = d / 8 * 8;
    let mut sum = [[_mm512_setzero_ps(); V]; R];
    for l in 0..8 {
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        let mut j = l;
        while j < whole {
            let mut k = [_mm512_setzero_ps(); V];
            for (v, k) in k.iter_mut().enumerate() {
                // SAFETY: j < d rows, col + 16v + 16 <= w.
                *k = unsafe { _mm512_loadu_ps(kt.add(j * w + col + 16 * v)) };
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: r < R rows of d, j < d.
                let x = _mm512_set1_ps(unsafe { *q.add(r * d + j) });
                for (a, k) in acc.iter_mut().zip(&k) {
                    *a = _mm512_fmadd_ps(x, *k, *a);
                }
            }
            j += 8;
        }
        for (s, a) in sum.iter_mut().zip(&acc) {
            for (s, a) in s.iter_mut().zip(a) {
                *s = if l == 0 { *a } else { _mm512_add_ps(*s, *a) };
            }
        }
    }
    // The tail, a running sum from zero, added even when empty (+0.0).
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    for j in whole..d {
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: as above.
            let x = _mm512_set1_ps(unsafe { *q.add(r * d + j) });
            for (v, a) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                *a = _mm512_fmadd_ps(x, unsafe { _mm512_loadu_ps(kt.add(j * w + col + 16 * v)) }, *a);
            }
        }
    }
    let sc = _mm512_set1_ps(scale);
    for (r, (s, a)) in sum.iter().zip(&acc).enumerate() {
        for (v, (s, a)) in s.iter().zip(a).enumerate() {
            let x = _mm512_mul_ps(_mm512_add_ps(*s, *a), sc);
            let c0 = col + 16 * v;
            if c0 < n {
                let valid = (n - c0).min(16);
                // SAFETY: row r of o has `valid` columns from c0.
                unsafe { _mm512_mask_storeu_ps(o.add(r * n + c0), ((1u32 << valid) - 1) as __mmask16, x) };
            }
        }
    }
}

/// # Safety
/// AVX-512 F/VL, AVX2, FMA and F16C; the shapes are those
/// `weighted_sum_args` checks.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma,f16c")]
unsafe fn weighted_sum_avx512<T: Elem16>(w: &[f32], scale: f32, values: &[T], out: &mut [f32]) {
    let d = out.len();
    if d % 64 != 0 {
        // Head sizes such as 32, 80 or 96: the AVX2 twin. SAFETY: AVX-512
        // implies AVX2 and F16C here; the shapes are checked.
        return unsafe { weighted_sum_avx2(w, scale, values, out) };
    }
    let mut c = 0;
    while c < d {
        let o = out[c..c + 64].as_mut_ptr();
        // SAFETY: o points at 64 floats of out.
        let mut acc = unsafe { [_mm512_loadu_ps(o), _mm512_loadu_ps(o.add(16)), _mm512_loadu_ps(o.add(32)), _mm512_loadu_ps(o.add(48))] };
        for (i, &wi) in w.iter().enumerate() {
            let a = _mm512_set1_ps(wi * scale);
            let v = values[i * d + c..i * d + c + 64].as_ptr();
            for (j, acc) in acc.iter_mut().enumerate() {
                // SAFETY: v points at 64 elements of value row i.
                *acc = _mm512_fmadd_ps(a, unsafe { T::load16(v.add(16 * j)) }, *acc);
            }
        }
        for (j, acc) in acc.iter().enumerate() {
            // SAFETY: as the loads above.
            unsafe { _mm512_storeu_ps(o.add(16 * j), *acc) };
        }
        c += 64;
    }
}

/// # Safety
/// AVX-512 F/VL, AVX2 and FMA; the shapes are those
/// `weighted_sum_block_args` checks.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn weighted_sum_block_avx512(w: &[f32], n: usize, values: &[f32], out: &mut [f32]) {
    let (m, dv) = (w.len() / n, values.len() / n);
    let whole = dv / 16 * 16;
    let (wp, vp, op) = (w.as_ptr(), values.as_ptr(), out.as_mut_ptr());
    let mut col = 0;
    while col < whole {
        let v = ((whole - col) / 16).min(4);
        let mut r = 0;
        while r < m {
            let rows = (m - r).min(6);
            // SAFETY: rows r..r + rows of w (rows of n) and out (rows of
            // dv), columns col..col + 16v <= dv of every value row.
            unsafe {
                let (wp, op) = (wp.add(r * n), op.add(r * dv));
                match (rows, v) {
                    (6, 4) => wsum16::<6, 4>(wp, n, vp, dv, col, op),
                    (6, 3) => wsum16::<6, 3>(wp, n, vp, dv, col, op),
                    (6, 2) => wsum16::<6, 2>(wp, n, vp, dv, col, op),
                    (6, _) => wsum16::<6, 1>(wp, n, vp, dv, col, op),
                    (3..=5, 4) => wsum16::<3, 4>(wp, n, vp, dv, col, op),
                    (3..=5, 3) => wsum16::<3, 3>(wp, n, vp, dv, col, op),
                    (3..=5, 2) => wsum16::<3, 2>(wp, n, vp, dv, col, op),
                    (3..=5, _) => wsum16::<3, 1>(wp, n, vp, dv, col, op),
                    (_, 4) => wsum16::<1, 4>(wp, n, vp, dv, col, op),
                    (_, 3) => wsum16::<1, 3>(wp, n, vp, dv, col, op),
                    (_, 2) => wsum16::<1, 2>(wp, n, vp, dv, col, op),
                    (_, _) => wsum16::<1, 1>(wp, n, vp, dv, col, op),
                }
                r += match rows {
                    6 => 6,
                    3..=5 => 3,
                    _ => 1,
                };
            }
        }
        col += 16 * v;
    }
    weighted_sum_block_rest(w, n, values, out, whole);
}

/// `R` rows: `o[r][col..col + 16V] += w[r][i] * value i` for each `i` in
/// order, the sums held in registers across all `n` weights.
///
/// # Safety
/// `w` must hold `R` rows of `n`, `v` `n` rows of `dv >= col + 16V`, `o`
/// `R` rows of `dv`; AVX-512 F and FMA.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn wsum16<const R: usize, const V: usize>(w: *const f32, n: usize, v: *const f32, dv: usize, col: usize, o: *mut f32) {
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    for (r, acc) in acc.iter_mut().enumerate() {
        for (j, a) in acc.iter_mut().enumerate() {
            // SAFETY: row r of o, columns col + 16j.. < dv.
            *a = unsafe { _mm512_loadu_ps(o.add(r * dv + col + 16 * j)) };
        }
    }
    for i in 0..n {
        let mut x = [_mm512_setzero_ps(); V];
        for (j, x) in x.iter_mut().enumerate() {
            // SAFETY: value row i < n, columns col + 16j.. < dv.
            *x = unsafe { _mm512_loadu_ps(v.add(i * dv + col + 16 * j)) };
        }
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: row r < R of w, i < n.
            let a = _mm512_set1_ps(unsafe { *w.add(r * n + i) });
            for (s, x) in acc.iter_mut().zip(&x) {
                *s = _mm512_fmadd_ps(a, *x, *s);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (j, a) in acc.iter().enumerate() {
            // SAFETY: as the loads.
            unsafe { _mm512_storeu_ps(o.add(r * dv + col + 16 * j), *a) };
        }
    }
}

/// `exp_nonpositive` of eight lanes, widened to f64 in one register and
/// rounded back to f32, each step the AVX2 `exp4`'s (fused as the
/// reference's `mul_add`); lanes below EXP_MIN
/// (where 2^k could leave the exponent's range) are zeroed after the fact.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma,f16c")]
fn exp8(x: __m256) -> __m256 {
    let below = _mm256_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm256_set1_ps(EXP_MIN));
    let xd = _mm512_cvtps_pd(x);
    // Round to nearest, ties to even, as `_mm256_round_pd` there.
    let k = _mm512_roundscale_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_pd(xd, _mm512_set1_pd(std::f64::consts::LOG2_E)));
    let r = _mm512_fnmadd_pd(k, _mm512_set1_pd(std::f64::consts::LN_2), xd);
    let mut p = _mm512_set1_pd(EXP_TAYLOR[0]);
    for &c in &EXP_TAYLOR[1..] {
        p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(c));
    }
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
    // k + 1023 lands in the low mantissa bits of 2^52 + k + 1023; shifted
    // up by 52 it is the exponent of 2^k.
    let biased = _mm512_castpd_si512(_mm512_add_pd(k, _mm512_set1_pd(4503599627370496.0 + 1023.0)));
    let pow2k = _mm512_castsi512_pd(_mm512_slli_epi64::<52>(biased));
    _mm256_maskz_mov_ps(!below, _mm512_cvtpd_ps(_mm512_mul_pd(p, pow2k)))
}

/// # Safety
/// AVX-512 F/VL, AVX2, FMA and F16C.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma,f16c")]
unsafe fn exp_sum_avx512(s: &mut [f32], max: f32) -> f32 {
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
