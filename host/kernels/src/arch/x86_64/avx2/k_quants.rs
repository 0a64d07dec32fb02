//! AVX2 + FMA twins of the K-quant dots and the Q8_K quantize (reference:
//! `crate::k_quants::scalar`), ported from ggml-cpu/arch/x86/quants.c
//! (`ggml_vec_dot_q*_K_q8_K`, `__AVX2__` branches).
//!
//! Every `#[target_feature]` function here is reached only through the
//! `safe_fn!` wrappers [`install`] hands out (the AVX2 path: AVX2, FMA,
//! F16C). The wrappers check the slice contract (`crate::erased`) before
//! calling in, and the kernels only touch memory through references to fixed-size arrays
//! inside the blocks, so they cannot read out of bounds.
//!
//! Integer parts are exact (`maddubs` never saturates here: the unsigned
//! operand is at most 63, so a pair sums to at most 2 * 63 * 128), and they
//! are the reference's own integers (per block for Q2_K, Q4_K, Q5_K and
//! Q6_K, per block and index class mod 8 for Q3_K, see "exact per-class
//! sums" below); the f32 part then repeats the reference's operations in
//! its order, so every dot here is bit-identical to the scalar one. Like
//! the reference, Q4_K/Q5_K/Q2_K take the min terms from `bsums`, and Q6_K
//! its `- 32` offset, so they need Q8_K blocks whose `bsums` are consistent
//! (any quantize output is).

use core::arch::x86_64::*;

use crate::k_quants::blocks::{BlockQ2_K, BlockQ3_K, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K, QK_K};
use crate::k_quants::scalar::{k_term, q8k_bsums, unpack_scales_mins_k4, unpack_scales_q3k};
use crate::erased::{dot_args, from_float_args};
use crate::fp::f16_to_f32;
use crate::{GgmlType, KernelPath, TypeKernels};

/// Replaces the pointers of `k` that have AVX2 twins here.
pub(super) fn install(k: &mut TypeKernels) {
    match k.ty {
        GgmlType::Q2_K => k.vec_dot = dot_q2_k,
        GgmlType::Q3_K => k.vec_dot = dot_q3_k,
        GgmlType::Q4_K => k.vec_dot = dot_q4_k,
        GgmlType::Q5_K => k.vec_dot = dot_q5_k,
        GgmlType::Q6_K => k.vec_dot = dot_q6_k,
        GgmlType::Q8_K => k.from_float = from_float_q8_k,
        _ => {}
    }
}

// ---- safe wrappers (the only way in) ------------------------------------

safe_fn! {
    requires KernelPath::Avx2.is_available();
    fn dot_q2_k(n: usize, x: &[u8], y: &[u8]) -> f32 {
        checks { let (x, y) = dot_args::<BlockQ2_K>(n, x, y); }
        unsafe { vec_dot_q2_k(x, y) }
    }
    fn dot_q3_k(n: usize, x: &[u8], y: &[u8]) -> f32 {
        checks { let (x, y) = dot_args::<BlockQ3_K>(n, x, y); }
        unsafe { vec_dot_q3_k(x, y) }
    }
    fn dot_q4_k(n: usize, x: &[u8], y: &[u8]) -> f32 {
        checks { let (x, y) = dot_args::<BlockQ4_K>(n, x, y); }
        unsafe { vec_dot_q4_k(x, y) }
    }
    fn dot_q5_k(n: usize, x: &[u8], y: &[u8]) -> f32 {
        checks { let (x, y) = dot_args::<BlockQ5_K>(n, x, y); }
        unsafe { vec_dot_q5_k(x, y) }
    }
    fn dot_q6_k(n: usize, x: &[u8], y: &[u8]) -> f32 {
        checks { let (x, y) = dot_args::<BlockQ6_K>(n, x, y); }
        unsafe { vec_dot_q6_k(x, y) }
    }
    fn from_float_q8_k(src: &[f32], dst: &mut [u8]) {
        checks { let dst = from_float_args::<BlockQ8_K>(src, dst); }
        unsafe { quantize_q8_k(src, dst) }
    }
}

// ---- loads ----------------------------------------------------------------

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(super) fn ld_u8x32(p: &[u8; 32]) -> __m256i {
    // SAFETY: `p` is a reference to 32 readable bytes; unaligned load.
    unsafe { _mm256_loadu_si256(p.as_ptr().cast()) }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(super) fn ld_i8x32(p: &[i8; 32]) -> __m256i {
    // SAFETY: `p` is a reference to 32 readable bytes; unaligned load.
    unsafe { _mm256_loadu_si256(p.as_ptr().cast()) }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(super) fn ld_i16x16(p: &[i16; 16]) -> __m256i {
    // SAFETY: `p` is a reference to 32 readable bytes; unaligned load.
    unsafe { _mm256_loadu_si256(p.as_ptr().cast()) }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(super) fn ld_u8x16(p: &[u8; 16]) -> __m128i {
    // SAFETY: `p` is a reference to 16 readable bytes; unaligned load.
    unsafe { _mm_loadu_si128(p.as_ptr().cast()) }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(super) fn ld_i8x16(p: &[i8; 16]) -> __m128i {
    // SAFETY: `p` is a reference to 16 readable bytes; unaligned load.
    unsafe { _mm_loadu_si128(p.as_ptr().cast()) }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn ld_f32x8(p: &[f32; 8]) -> __m256 {
    // SAFETY: `p` is a reference to 8 readable floats; unaligned load.
    unsafe { _mm256_loadu_ps(p.as_ptr()) }
}

/// The 32-byte chunks of a block array.
#[inline(always)]
pub(super) fn c32<T>(a: &[T]) -> &[[T; 32]] {
    let (chunks, rest) = a.as_chunks::<32>();
    debug_assert!(rest.is_empty());
    chunks
}

// ---- helpers ----------------------------------------------------------------

/// `get_scale_shuffle_q3k(i)`: the low 128-bit lane picks word `2 i`, the
/// high one word `2 i + 1`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn shuffle_q3k(i: i32) -> __m256i {
    let w = |k: i32| (((2 * k + 1) << 8) | (2 * k)) as i16;
    _mm256_set_m128i(_mm_set1_epi16(w(2 * i + 1)), _mm_set1_epi16(w(2 * i)))
}

/// The 8 scales (low lane) and 8 mins (high lane) of a Q4_K/Q5_K block as
/// 16-bit integers.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(super) fn mins_and_scales_k4(scales: &[u8; 12]) -> __m256i {
    let u = unpack_scales_mins_k4(scales);
    _mm256_cvtepu8_epi16(_mm_set_epi32(
        u[3] as i32,
        u[2] as i32,
        u[1] as i32,
        u[0] as i32,
    ))
}

/// `sum_j bsums[2 j] + bsums[2 j + 1]` times the 8 mins, as 4 i32 lanes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(super) fn mins_dot_bsums(mins_and_scales: __m256i, bsums: &[i16; 16]) -> __m128i {
    let q8sums = ld_i16x16(bsums);
    let q8s = _mm_hadd_epi16(
        _mm256_castsi256_si128(q8sums),
        _mm256_extracti128_si256(q8sums, 1),
    );
    _mm_madd_epi16(_mm256_extracti128_si256(mins_and_scales, 1), q8s)
}

// ---- exact per-class sums --------------------------------------------------
//
// The reference dots (ggml's generic code) keep 8 integer lanes per block,
// `aux32[l]` = sum of `scale * q * y` over the elements with index `l` mod 8,
// then do `sums[l] += d * (aux32[l] as f32)` and finally add the 8 lanes in
// order. To give the same bits, the kernels below compute exactly those 8
// class sums: the bytes of `q` and `y` are permuted the same way (`PAIR`:
// within each 16-byte half, elements k and k + 8 side by side), so `maddubs`
// adds two elements of one class, and `unpack` + `madd` pair class k of two
// sub-blocks with their scales. The f32 part is the reference's, lane for
// lane (separate multiply and add).

/// Byte permutation of each 128-bit half: `[0, 8, 1, 9, .., 7, 15]`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn pair(v: __m256i) -> __m256i {
    let idx = _mm256_setr_epi8(
        0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5,
        13, 6, 14, 7, 15,
    );
    _mm256_shuffle_epi8(v, idx)
}

/// `pair` of 32 activations.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn ld_y(p: &[i8; 32]) -> __m256i {
    pair(ld_i8x32(p))
}

/// Class accumulators: `.0` holds classes 0..4, `.1` classes 4..8, each in
/// both 128-bit halves (summed by [`Classes::total`]).
#[derive(Clone, Copy)]
struct Classes(__m256i, __m256i);

impl Classes {
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn new() -> Self {
        Classes(_mm256_setzero_si256(), _mm256_setzero_si256())
    }

    /// Adds `scale * a + scale' * b`: `a`, `b` hold i16 class sums (word k
    /// of each half = class k) and `s` the i16 scale pair of `a` and `b` in
    /// every dword of each half.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn add(&mut self, a: __m256i, b: __m256i, s: __m256i) {
        self.0 = _mm256_add_epi32(self.0, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), s));
        self.1 = _mm256_add_epi32(self.1, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), s));
    }

    /// `aux32[0..8]`.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn total(self) -> __m256i {
        _mm256_add_epi32(
            _mm256_permute2x128_si256::<0x20>(self.0, self.1),
            _mm256_permute2x128_si256::<0x31>(self.0, self.1),
        )
    }
}

/// Dword `i` of each 128-bit half, broadcast within the half.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn dword(v: __m256i, i: usize) -> __m256i {
    let b = 4 * i as i32;
    _mm256_shuffle_epi8(
        v,
        _mm256_set1_epi32(b | (b + 1) << 8 | (b + 2) << 16 | (b + 3) << 24),
    )
}

/// 16 per-16-element scales (i8) as i16 pairs for [`Classes::add`] with
/// vectors of 32 elements: dword `d` of the low half is `(s[4d], s[4d+2])`,
/// of the high half `(s[4d+1], s[4d+3])`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn scales16_pairs(s: __m128i) -> __m256i {
    let evens_odds = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s, evens_odds))
}

/// `sums[l] += d * aux32[l]`, as the reference (no FMA).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn add_scaled(sums: __m256, d: f32, aux32: __m256i) -> __m256 {
    _mm256_add_ps(
        sums,
        _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(aux32)),
    )
}

/// `sumf += sums[0]; ..; sumf += sums[7]`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn add_lanes(mut sumf: f32, sums: __m256) -> f32 {
    let mut a = [0.0f32; 8];
    // SAFETY: `a` is 8 writable f32; unaligned store.
    unsafe { _mm256_storeu_ps(a.as_mut_ptr(), sums) };
    for v in a {
        sumf += v;
    }
    sumf
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn hsum_i32x4(v: __m128i) -> i32 {
    let v = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
    let v = _mm_add_epi32(v, _mm_shuffle_epi32::<0b01>(v));
    _mm_cvtsi128_si32(v)
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn hsum_i32x8(v: __m256i) -> i32 {
    hsum_i32x4(_mm_add_epi32(
        _mm256_castsi256_si128(v),
        _mm256_extracti128_si256::<1>(v),
    ))
}

// ---- Q2_K -------------------------------------------------------------------

/// The reference keeps one exact integer per block here (`isum`, `summs`),
/// so only the f32 tail needs to follow it.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_q2_k(x: &[BlockQ2_K], y: &[BlockQ8_K]) -> f32 {
    let m3 = _mm256_set1_epi8(3);
    let m4 = _mm_set1_epi8(0xF);
    let mut sumf = 0.0f32;
    for (xb, yb) in x.iter().zip(y) {
        let mins_and_scales = ld_u8x16(&xb.scales);
        let scales8 = _mm_and_si128(mins_and_scales, m4);
        let mins8 = _mm_and_si128(_mm_srli_epi16(mins_and_scales, 4), m4);
        let mins = _mm256_cvtepi8_epi16(mins8);
        let summs = hsum_i32x8(_mm256_madd_epi16(mins, ld_i16x16(&yb.bsums)));

        let all_scales = _mm256_cvtepi8_epi16(scales8);
        let l_scales = _mm256_castsi256_si128(all_scales);
        let h_scales = _mm256_extracti128_si256(all_scales, 1);
        let scales = [
            _mm256_set_m128i(l_scales, l_scales),
            _mm256_set_m128i(h_scales, h_scales),
        ];

        let q8 = c32(&yb.qs);
        let mut sumi = _mm256_setzero_si256();
        for (j, q2) in c32(&xb.qs).iter().enumerate() {
            let q2bits = ld_u8x32(q2);
            let q8_0 = ld_i8x32(&q8[4 * j]);
            let q8_1 = ld_i8x32(&q8[4 * j + 1]);
            let q8_2 = ld_i8x32(&q8[4 * j + 2]);
            let q8_3 = ld_i8x32(&q8[4 * j + 3]);

            let q2_0 = _mm256_and_si256(q2bits, m3);
            let q2_1 = _mm256_and_si256(_mm256_srli_epi16(q2bits, 2), m3);
            let q2_2 = _mm256_and_si256(_mm256_srli_epi16(q2bits, 4), m3);
            let q2_3 = _mm256_and_si256(_mm256_srli_epi16(q2bits, 6), m3);

            let mut p0 = _mm256_maddubs_epi16(q2_0, q8_0);
            let mut p1 = _mm256_maddubs_epi16(q2_1, q8_1);
            let mut p2 = _mm256_maddubs_epi16(q2_2, q8_2);
            let mut p3 = _mm256_maddubs_epi16(q2_3, q8_3);

            p0 = _mm256_madd_epi16(_mm256_shuffle_epi8(scales[j], shuffle_q3k(0)), p0);
            p1 = _mm256_madd_epi16(_mm256_shuffle_epi8(scales[j], shuffle_q3k(1)), p1);
            p2 = _mm256_madd_epi16(_mm256_shuffle_epi8(scales[j], shuffle_q3k(2)), p2);
            p3 = _mm256_madd_epi16(_mm256_shuffle_epi8(scales[j], shuffle_q3k(3)), p3);

            p0 = _mm256_add_epi32(p0, p1);
            p2 = _mm256_add_epi32(p2, p3);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p2));
        }
        let isum = hsum_i32x8(sumi);
        let dall = yb.d * f16_to_f32(xb.d);
        let dmin = yb.d * f16_to_f32(xb.dmin);
        sumf += dall * isum as f32 - dmin * summs as f32;
    }
    sumf
}

// ---- Q3_K -------------------------------------------------------------------

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_q3_k(x: &[BlockQ3_K], y: &[BlockQ8_K]) -> f32 {
    let m3 = _mm256_set1_epi8(3);
    let mone = _mm256_set1_epi8(1);
    let m32 = _mm_set1_epi8(32);
    let mut sums = _mm256_setzero_ps();
    for (xb, yb) in x.iter().zip(y) {
        let aux = unpack_scales_q3k(&xb.scales);
        let scales128 = _mm_sub_epi8(
            _mm_set_epi32(aux[3] as i32, aux[2] as i32, aux[1] as i32, aux[0] as i32),
            m32,
        );
        let scales = scales16_pairs(scales128);

        let hbits = pair(ld_u8x32(&xb.hmask));
        let q8 = c32(&yb.qs);
        let mut cls = Classes::new();
        for (j, q3) in c32(&xb.qs).iter().enumerate() {
            let q3bits = pair(ld_u8x32(q3));
            // 4 where the high bit is clear, else 0 (the `- 4` of the level).
            let high = |bit: i32| {
                let m = _mm256_sll_epi16(mone, _mm_cvtsi32_si128(bit));
                let v = _mm256_srl_epi16(_mm256_andnot_si256(hbits, m), _mm_cvtsi32_si128(bit));
                _mm256_slli_epi16(v, 2)
            };
            let b = 4 * j as i32;
            let lev = |k: usize, shift: i32| {
                let ql = _mm256_and_si256(_mm256_srl_epi16(q3bits, _mm_cvtsi32_si128(shift)), m3);
                let qy = ld_y(&q8[4 * j + k]);
                _mm256_sub_epi16(
                    _mm256_maddubs_epi16(ql, qy),
                    _mm256_maddubs_epi16(high(b + k as i32), qy),
                )
            };
            let (p0, p1, p2, p3) = (lev(0, 0), lev(1, 2), lev(2, 4), lev(3, 6));
            cls.add(p0, p1, dword(scales, 2 * j));
            cls.add(p2, p3, dword(scales, 2 * j + 1));
        }
        let d = f16_to_f32(xb.d) * yb.d;
        sums = add_scaled(sums, d, cls.total());
    }
    add_lanes(0.0, sums)
}

// ---- Q4_K, Q5_K, Q6_K: edgewasm's order ---------------------------------------
//
// One exact integer `isum` (and `msum`) per block, then the reference's f32
// step `k_term` itself: the integer sums are order-free, so any lane layout
// gives the reference's bits.

/// Scale `j` (of the 8 i16 in each 128-bit half of `scales`) in every lane.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn bcast16(scales: __m256i, j: usize) -> __m256i {
    let b = 2 * j as i16;
    _mm256_shuffle_epi8(scales, _mm256_set1_epi16(((b + 1) << 8) | b))
}

/// `sum_j scale_j * sum(q * y)` over the 8 sub-blocks of 32 of a Q4_K/Q5_K
/// block, `q` given as 4 vectors of 32 low levels (sub-blocks 2k) and 4 of
/// high levels (sub-blocks 2k + 1). `maddubs` pairs are at most 2 * 31 * 128.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn isum_k4(lo: [__m256i; 4], hi: [__m256i; 4], scales: __m256i, q8: &[[i8; 32]]) -> i32 {
    let mut acc = _mm256_setzero_si256();
    for k in 0..4 {
        let pl = _mm256_madd_epi16(_mm256_maddubs_epi16(lo[k], ld_i8x32(&q8[2 * k])), bcast16(scales, 2 * k));
        let ph = _mm256_madd_epi16(_mm256_maddubs_epi16(hi[k], ld_i8x32(&q8[2 * k + 1])), bcast16(scales, 2 * k + 1));
        acc = _mm256_add_epi32(acc, _mm256_add_epi32(pl, ph));
    }
    hsum_i32x8(acc)
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_q4_k(x: &[BlockQ4_K], y: &[BlockQ8_K]) -> f32 {
    let m4 = _mm256_set1_epi8(0xF);
    let mut sumf = 0.0f32;
    for (xb, yb) in x.iter().zip(y) {
        let mins_and_scales = mins_and_scales_k4(&xb.scales);
        let msum = hsum_i32x4(mins_dot_bsums(mins_and_scales, &yb.bsums));
        let sc128 = _mm256_castsi256_si128(mins_and_scales);
        let q4: [__m256i; 4] = core::array::from_fn(|k| ld_u8x32(&c32(&xb.qs)[k]));
        let lo = q4.map(|v| _mm256_and_si256(v, m4));
        let hi = q4.map(|v| _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
        let isum = isum_k4(lo, hi, _mm256_set_m128i(sc128, sc128), c32(&yb.qs));
        sumf = k_term(sumf, f16_to_f32(xb.d), f16_to_f32(xb.dmin), yb.d, isum, msum);
    }
    sumf
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_q5_k(x: &[BlockQ5_K], y: &[BlockQ8_K]) -> f32 {
    let m4 = _mm256_set1_epi8(0xF);
    let m16 = _mm256_set1_epi8(16);
    let mut sumf = 0.0f32;
    for (xb, yb) in x.iter().zip(y) {
        let mins_and_scales = mins_and_scales_k4(&xb.scales);
        let msum = hsum_i32x4(mins_dot_bsums(mins_and_scales, &yb.bsums));
        let sc128 = _mm256_castsi256_si128(mins_and_scales);
        let hbits = ld_u8x32(&xb.qh);
        // 16 where bit `k` of the element's qh byte is set.
        let bit = |k: usize| {
            let m = _mm256_set1_epi8(1 << k);
            _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hbits, m), m), m16)
        };
        let q5: [__m256i; 4] = core::array::from_fn(|k| ld_u8x32(&c32(&xb.qs)[k]));
        let lo: [__m256i; 4] = core::array::from_fn(|k| _mm256_or_si256(_mm256_and_si256(q5[k], m4), bit(2 * k)));
        let hi: [__m256i; 4] =
            core::array::from_fn(|k| _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q5[k], 4), m4), bit(2 * k + 1)));
        let isum = isum_k4(lo, hi, _mm256_set_m128i(sc128, sc128), c32(&yb.qs));
        sumf = k_term(sumf, f16_to_f32(xb.d), f16_to_f32(xb.dmin), yb.d, isum, msum);
    }
    sumf
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_q6_k(x: &[BlockQ6_K], y: &[BlockQ8_K]) -> f32 {
    let m3 = _mm256_set1_epi8(3);
    let m15 = _mm256_set1_epi8(15);
    let mut sumf = 0.0f32;
    for (xb, yb) in x.iter().zip(y) {
        let sc8 = ld_i8x16(&xb.scales);
        // Sub-block `i` in the low half, `i + 1` in the high half, as i16.
        let pair_scales = |i: i8| {
            _mm256_cvtepi8_epi16(_mm_shuffle_epi8(
                sc8,
                _mm_setr_epi8(i, i, i, i, i, i, i, i, i + 1, i + 1, i + 1, i + 1, i + 1, i + 1, i + 1, i + 1),
            ))
        };
        let ql = c32(&xb.ql);
        let qh = c32(&xb.qh);
        let q8 = c32(&yb.qs);
        let mut acc = _mm256_setzero_si256();
        for j in 0..QK_K / 128 {
            let q4bits1 = ld_u8x32(&ql[2 * j]);
            let q4bits2 = ld_u8x32(&ql[2 * j + 1]);
            let q4bits_h = ld_u8x32(&qh[j]);
            let q4h_0 = _mm256_slli_epi16(_mm256_and_si256(q4bits_h, m3), 4);
            let q4h_1 = _mm256_slli_epi16(_mm256_and_si256(q4bits_h, _mm256_set1_epi8(12)), 2);
            let q4h_2 = _mm256_and_si256(q4bits_h, _mm256_set1_epi8(48));
            let q4h_3 = _mm256_srli_epi16(_mm256_and_si256(q4bits_h, _mm256_set1_epi8(-64)), 2);
            let q = [
                _mm256_or_si256(_mm256_and_si256(q4bits1, m15), q4h_0),
                _mm256_or_si256(_mm256_and_si256(q4bits2, m15), q4h_1),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4bits1, 4), m15), q4h_2),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q4bits2, 4), m15), q4h_3),
            ];
            // Unsigned levels 0..64 (the `- 32` comes from `bsums` below):
            // maddubs pairs are at most 2 * 63 * 128.
            for (k, q) in q.into_iter().enumerate() {
                let p = _mm256_maddubs_epi16(q, ld_i8x32(&q8[4 * j + k]));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, pair_scales((8 * j + 2 * k) as i8)));
            }
        }
        // isum = sum scale * q * y - 32 * sum scale * bsum.
        let sb = _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc8), ld_i16x16(&yb.bsums));
        let isum = hsum_i32x8(acc) - 32 * hsum_i32x8(sb);
        sumf += (f16_to_f32(xb.d) * yb.d) * isum as f32;
    }
    sumf
}

// ---- Q8_K quantize ----------------------------------------------------------

/// `quantize_row_q8_K_ref`: `src` is `dst.len()` blocks of floats.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_q8_k(src: &[f32], dst: &mut [BlockQ8_K]) {
    let (xs, rest) = src.as_chunks::<QK_K>();
    assert!(rest.is_empty() && xs.len() == dst.len());
    for (x, y) in xs.iter().zip(dst) {
        quantize_q8_k_block(x, y);
    }
}

/// `quantize_row_q8_K_ref` for one block, bit for bit: the signed value of
/// largest magnitude is the first one reaching `amax` (as the scalar scan
/// picks it), NaNs are skipped by the max as by `ax > amax`, and
/// `nearest_int(iscale * x)` is the same multiply, add and bit extraction.
/// Results are stored as the low byte of `min(127, v)` (C's `int8_t` store).
#[target_feature(enable = "avx2,fma,f16c")]
fn quantize_q8_k_block(x: &[f32; QK_K], y: &mut BlockQ8_K) {
    let (xs, _) = x.as_chunks::<8>();
    let sign = _mm256_set1_ps(-0.0);
    // `max_ps(a, acc)` returns `acc` when `a` is NaN: NaNs never win.
    let mut vmax = _mm256_setzero_ps();
    for c in xs {
        vmax = _mm256_max_ps(_mm256_andnot_ps(sign, ld_f32x8(c)), vmax);
    }
    let mut m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    let amax = _mm_cvtss_f32(m);
    if amax == 0.0 {
        *y = bytemuck::Zeroable::zeroed();
        return;
    }
    // The first element whose magnitude is `amax`.
    let max = x
        .iter()
        .copied()
        .find(|v| v.abs() == amax)
        .expect("amax is the magnitude of an element");

    let iscale = -127.0f32 / max;
    let vscale = _mm256_set1_ps(iscale);
    let magic = _mm256_set1_ps(12_582_912.0);
    let mant = _mm256_set1_epi32(0x007f_ffff);
    let off = _mm256_set1_epi32(0x0040_0000);
    let max127 = _mm256_set1_epi32(127);
    let lowbyte = _mm256_set1_epi32(0xff);
    let perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let q = |c: &[f32; 8]| {
        let v = _mm256_add_ps(_mm256_mul_ps(vscale, ld_f32x8(c)), magic);
        let i = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(v), mant), off);
        _mm256_and_si256(_mm256_min_epi32(i, max127), lowbyte)
    };
    let (out, _) = y.qs.as_chunks_mut::<32>();
    for (o, c) in out.iter_mut().zip(xs.chunks_exact(4)) {
        // Lanes hold 0..=255, so the unsigned packs cannot saturate.
        let ab = _mm256_packus_epi32(q(&c[0]), q(&c[1]));
        let cd = _mm256_packus_epi32(q(&c[2]), q(&c[3]));
        let bytes = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ab, cd), perm);
        // SAFETY: `o` is a reference to 32 writable bytes; unaligned store.
        unsafe { _mm256_storeu_si256(o.as_mut_ptr().cast(), bytes) };
    }
    q8k_bsums(y);
    y.d = 1.0 / iscale;
}
