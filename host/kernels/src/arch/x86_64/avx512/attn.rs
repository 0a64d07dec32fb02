//! AVX-512 twins of the attention helpers `scaled_dots` and `weighted_sum`
//! (f32 and f16 keys and values), with the reference's exact bits:
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
//! No FMA: the reference multiplies and adds separately.

use std::arch::x86_64::*;

use half::f16;

use super::super::avx2::attn::{scaled_dots_avx2, tail, transpose8, weighted_sum_avx2, Elem};
use crate::attn::{exp_sum_tail, lanes_sum, scaled_dots_args, weighted_sum_args, AttnKernels, F16Kernels};
use crate::attn::{EXP_MIN, EXP_TAYLOR};
use crate::KernelPath;

/// The AVX-512 helpers.
pub(crate) fn kernels() -> AttnKernels {
    assert!(KernelPath::Avx512.is_available());
    AttnKernels {
        scaled_dots,
        weighted_sum,
        exp_sum,
        f16: Some(F16Kernels { scaled_dots: scaled_dots_f16, weighted_sum: weighted_sum_f16 }),
        ..super::super::avx2::attn::kernels(KernelPath::Avx512)
    }
}

safe_fn! {
    requires KernelPath::Avx512.is_available();
    fn scaled_dots(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
        checks { scaled_dots_args(q, keys, out); }
        unsafe { scaled_dots_avx512(q, keys, scale, out) }
    }
    fn weighted_sum(w: &[f32], scale: f32, values: &[f32], out: &mut [f32]) {
        checks { weighted_sum_args(w, values, out); }
        unsafe { weighted_sum_avx512(w, scale, values, out) }
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
/// AVX-512 F/VL, AVX2 and F16C; the shapes are those `scaled_dots_args`
/// checks.
#[target_feature(enable = "avx512f,avx512vl,avx2,f16c")]
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
                *a = _mm512_add_ps(*a, _mm512_mul_ps(qv, kv));
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
    // SAFETY: AVX-512 implies AVX2 and F16C here; the rest of the keys
    // and outputs keep the checked shapes.
    unsafe { scaled_dots_avx2(q, &keys[key0 * d..], scale, groups.into_remainder()) }
}

/// # Safety
/// AVX-512 F/VL, AVX2 and F16C; the shapes are those
/// `weighted_sum_args` checks.
#[target_feature(enable = "avx512f,avx512vl,avx2,f16c")]
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
                *acc = _mm512_add_ps(*acc, _mm512_mul_ps(a, unsafe { T::load16(v.add(16 * j)) }));
            }
        }
        for (j, acc) in acc.iter().enumerate() {
            // SAFETY: as the loads above.
            unsafe { _mm512_storeu_ps(o.add(16 * j), *acc) };
        }
        c += 64;
    }
}

/// `exp_nonpositive` of eight lanes, widened to f64 in one register and
/// rounded back to f32, each step the AVX2 `exp4`'s; lanes below EXP_MIN
/// (where 2^k could leave the exponent's range) are zeroed after the fact.
#[target_feature(enable = "avx512f,avx512vl,avx2,f16c")]
fn exp8(x: __m256) -> __m256 {
    let below = _mm256_cmp_ps_mask::<_CMP_LT_OQ>(x, _mm256_set1_ps(EXP_MIN));
    let xd = _mm512_cvtps_pd(x);
    // Round to nearest, ties to even, as `_mm256_round_pd` there.
    let k = _mm512_roundscale_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_pd(xd, _mm512_set1_pd(std::f64::consts::LOG2_E)));
    let r = _mm512_sub_pd(xd, _mm512_mul_pd(k, _mm512_set1_pd(std::f64::consts::LN_2)));
    let mut p = _mm512_set1_pd(EXP_TAYLOR[0]);
    for &c in &EXP_TAYLOR[1..] {
        p = _mm512_add_pd(_mm512_mul_pd(p, r), _mm512_set1_pd(c));
    }
    p = _mm512_add_pd(_mm512_mul_pd(p, r), _mm512_set1_pd(1.0));
    // k + 1023 lands in the low mantissa bits of 2^52 + k + 1023; shifted
    // up by 52 it is the exponent of 2^k.
    let biased = _mm512_castpd_si512(_mm512_add_pd(k, _mm512_set1_pd(4503599627370496.0 + 1023.0)));
    let pow2k = _mm512_castsi512_pd(_mm512_slli_epi64::<52>(biased));
    _mm256_maskz_mov_ps(!below, _mm512_cvtpd_ps(_mm512_mul_pd(p, pow2k)))
}

/// # Safety
/// AVX-512 F/VL, AVX2 and F16C.
#[target_feature(enable = "avx512f,avx512vl,avx2,f16c")]
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
