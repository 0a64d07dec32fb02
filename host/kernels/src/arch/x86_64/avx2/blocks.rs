//! AVX2 + FMA + F16C twins of the legacy block dots, the float dots and the
//! Q8_0/Q8_1 quantize (references: `crate::blocks`, `crate::float`).
//!
//! Integer dot products use ggml's tricks: `maddubs` (u8 x i8 -> i16 pairs)
//! then `madd` with ones (-> i32), with the sign of one operand moved onto
//! the other (`sign_epi8`) when both are signed. Per-block sums are exact,
//! and the f32 part repeats the reference's operations in its order, so
//! every `vec_dot` here is bit-identical to `vec_dot_ref`.

use core::arch::x86_64::*;

use half::f16;

use crate::blocks;
use crate::blocks::{
    inv_or_zero, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1, QK,
};
use crate::erased::{dot_args, from_float_args};
use crate::fp::fp32_to_fp16_bits;
use crate::{GgmlType, KernelPath, TypeKernels};

/// Replaces the pointers of `k` that have AVX2 twins here.
pub(super) fn install(k: &mut TypeKernels) {
    match k.ty {
        GgmlType::F32 => k.vec_dot = dot_f32,
        GgmlType::F16 => k.vec_dot = dot_f16,
        GgmlType::Q4_0 => k.vec_dot = dot_q4_0,
        GgmlType::Q4_1 => k.vec_dot = dot_q4_1,
        GgmlType::Q5_0 => k.vec_dot = dot_q5_0,
        GgmlType::Q5_1 => k.vec_dot = dot_q5_1,
        GgmlType::Q8_0 => {
            k.vec_dot = dot_q8_0;
            k.from_float = from_float_q8_0;
        }
        GgmlType::Q8_1 => k.from_float = from_float_q8_1,
        _ => {}
    }
}

// ---- safe wrappers (the only way in) ------------------------------------

safe_fn! {
    requires KernelPath::Avx2.is_available();
    fn dot_f32(n: usize, x: &[u8], y: &[u8]) -> f32 {
        checks { let (x, y) = dot_args::<f32>(n, x, y); }
        unsafe { vec_dot_f32(x, y) }
    }
    fn dot_f16(n: usize, x: &[u8], y: &[u8]) -> f32 {
        checks { let (x, y) = dot_args::<f16>(n, x, y); }
        unsafe { vec_dot_f16(x, y) }
    }
    fn dot_q4_0(n: usize, x: &[u8], y: &[u8]) -> f32 {
        checks { let (x, y) = dot_args::<BlockQ4_0>(n, x, y); }
        unsafe { vec_dot_q4_0_q8_0(x, y) }
    }
    fn dot_q4_1(n: usize, x: &[u8], y: &[u8]) -> f32 {
        checks { let (x, y) = dot_args::<BlockQ4_1>(n, x, y); }
        unsafe { vec_dot_q4_1_q8_1(x, y) }
    }
    fn dot_q5_0(n: usize, x: &[u8], y: &[u8]) -> f32 {
        checks { let (x, y) = dot_args::<BlockQ5_0>(n, x, y); }
        unsafe { vec_dot_q5_0_q8_0(x, y) }
    }
    fn dot_q5_1(n: usize, x: &[u8], y: &[u8]) -> f32 {
        checks { let (x, y) = dot_args::<BlockQ5_1>(n, x, y); }
        unsafe { vec_dot_q5_1_q8_1(x, y) }
    }
    fn dot_q8_0(n: usize, x: &[u8], y: &[u8]) -> f32 {
        checks { let (x, y) = dot_args::<BlockQ8_0>(n, x, y); }
        unsafe { vec_dot_q8_0_q8_0(x, y) }
    }
    fn from_float_q8_0(src: &[f32], dst: &mut [u8]) {
        checks { let dst = from_float_args::<BlockQ8_0>(src, dst); }
        unsafe { quantize_q8_0(src, dst) }
    }
    fn from_float_q8_1(src: &[f32], dst: &mut [u8]) {
        checks { let dst = from_float_args::<BlockQ8_1>(src, dst); }
        unsafe { quantize_q8_1(src, dst) }
    }
}

// ---- helpers --------------------------------------------------------------

/// Loads 16 bytes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn load16(p: &[u8; 16]) -> __m128i {
    // SAFETY: `p` is a reference to 16 readable bytes; unaligned load.
    unsafe { _mm_loadu_si128(p.as_ptr().cast()) }
}

/// Loads 32 signed bytes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn load32(p: &[i8; 32]) -> __m256i {
    // SAFETY: `p` is a reference to 32 readable bytes; unaligned load.
    unsafe { _mm256_loadu_si256(p.as_ptr().cast()) }
}

/// Loads 8 floats.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn load8f(p: &[f32; 8]) -> __m256 {
    // SAFETY: `p` is a reference to 8 readable f32; unaligned load.
    unsafe { _mm256_loadu_ps(p.as_ptr()) }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn hsum_ps(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn hmax_ps(v: __m256) -> f32 {
    let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_max_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn hsum_epi32(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01>(s));
    _mm_cvtsi128_si32(s)
}

/// 32 nibbles -> 32 bytes: low nibbles (elements 0..16) then high nibbles
/// (elements 16..32), ggml's `bytes_from_nibbles_32`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn bytes_from_nibbles_32(qs: &[u8; 16]) -> __m256i {
    let tmp = load16(qs);
    let hi = _mm_srli_epi16::<4>(tmp);
    _mm256_and_si256(_mm256_set_m128i(hi, tmp), _mm256_set1_epi8(0x0F))
}

/// Byte j = 0xFF if bit j of `qh` is set (ggml's `bytes_from_bits_32`).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn bytes_from_bits_32(qh: u32) -> __m256i {
    let shuf = _mm256_set_epi64x(
        0x0303_0303_0303_0303,
        0x0202_0202_0202_0202,
        0x0101_0101_0101_0101,
        0x0000_0000_0000_0000,
    );
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(qh as i32), shuf);
    let bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe));
    _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1))
}

/// Sum of products of unsigned `ax` and signed `sy` bytes, as 8 i32 lanes
/// (each the sum of 4 adjacent products). No i16 saturation as long as
/// `ax <= 127` or `|sy| <= 127`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn mul_sum_us8_pairs(ax: __m256i, sy: __m256i) -> __m256i {
    let dot = _mm256_maddubs_epi16(ax, sy);
    _mm256_madd_epi16(_mm256_set1_epi16(1), dot)
}

/// Signed x signed bytes: moves the sign of `x` onto `y`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn mul_sum_i8_pairs(x: __m256i, y: __m256i) -> __m256i {
    let ax = _mm256_sign_epi8(x, x);
    let sy = _mm256_sign_epi8(y, x);
    mul_sum_us8_pairs(ax, sy)
}

// ---- vec_dot ----------------------------------------------------------------
//
// Bit-identical to `vec_dot_ref`: the SIMD code computes each block's exact
// integer sum, eight blocks at a time; the f32 part then does the
// reference's operations (convert, the same multiplies in the same order, no
// FMA) in eight lanes, one block per lane, and adds the eight terms to the
// running sum one after another, in block order, as the reference does.

/// Lane `b` = the (wrapping, here exact) sum of the 8 lanes of `v[b]`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn hsum8x8_epi32(v: &[__m256i; 8]) -> __m256i {
    let s01 = _mm256_hadd_epi32(v[0], v[1]);
    let s23 = _mm256_hadd_epi32(v[2], v[3]);
    let s45 = _mm256_hadd_epi32(v[4], v[5]);
    let s67 = _mm256_hadd_epi32(v[6], v[7]);
    // Per 128-bit half: [v0, v1, v2, v3] (resp. v4..v7) partial sums.
    let t0 = _mm256_hadd_epi32(s01, s23);
    let t1 = _mm256_hadd_epi32(s45, s67);
    _mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(t0, t1),
        _mm256_permute2x128_si256::<0x31>(t0, t1),
    )
}

/// `sum = sum + t[0]; ...; sum = sum + t[n - 1]`, in order.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn add_in_order(mut sum: f32, t: __m256, n: usize) -> f32 {
    let mut a = [0.0f32; 8];
    // SAFETY: `a` is 8 writable f32; unaligned store.
    unsafe { _mm256_storeu_ps(a.as_mut_ptr(), t) };
    for v in &a[..n] {
        // A load folded into each add is cheaper than the shuffles LLVM
        // would otherwise use to pull the lanes out of the register.
        // SAFETY: `v` is a reference to an initialized f32.
        sum += unsafe { core::ptr::read_volatile(v) };
    }
    sum
}

/// One f16 widened to f32 with F16C (exact; the same value as
/// `fp::f16_to_f32` for every non-NaN input).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn h(x: f16) -> f32 {
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(x.to_bits() as i32)))
}

/// Eight f16 (`h(0..8)`) widened to f32 (exact).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn f16x8(h: impl Fn(usize) -> f16) -> __m256 {
    let b = |i: usize| h(i).to_bits() as i16;
    _mm256_cvtph_ps(_mm_setr_epi16(
        b(0),
        b(1),
        b(2),
        b(3),
        b(4),
        b(5),
        b(6),
        b(7),
    ))
}

/// The shared driver, over chunks of 8 blocks: `$terms(xc, yc)` gives the
/// 8 per-block f32 terms of `&[X; 8]`, `&[Y; 8]` (exact integer sums, then
/// the reference's f32 expression per lane); they are added to the running
/// sum one by one, in block order. The last `n % 8` blocks go one at a time
/// through `$term1(xb, yb) -> f32` (the same expression, in scalar).
macro_rules! chunked_dot {
    ($x:expr, $y:expr, $terms:expr, $term1:expr) => {{
        let (x, y) = ($x, $y);
        assert_eq!(x.len(), y.len());
        let mut sumf = 0.0f32;
        let (x8, xr) = x.as_chunks::<8>();
        let (y8, yr) = y.as_chunks::<8>();
        for (xc, yc) in x8.iter().zip(y8) {
            sumf = add_in_order(sumf, $terms(xc, yc), 8);
        }
        for (xb, yb) in xr.iter().zip(yr) {
            sumf += $term1(xb, yb);
        }
        sumf
    }};
}
pub(crate) use chunked_dot;

/// [`chunked_dot`] with `$isum(xb, yb)`: one block's products as 8 i32
/// lanes (their sum is the block's exact integer sum).
macro_rules! legacy_dot {
    ($x:expr, $y:expr, $isum:expr, $term:path, $scalar:expr) => {
        chunked_dot!(
            $x,
            $y,
            |xc: &[_; 8], yc: &[_; 8]| {
                let v: [__m256i; 8] = core::array::from_fn(|b| $isum(&xc[b], &yc[b]));
                $term(_mm256_cvtepi32_ps(hsum8x8_epi32(&v)), xc, yc)
            },
            |xb, yb| $scalar(hsum_epi32($isum(xb, yb)), xb, yb)
        )
    };
}

// Per-block f32 terms of 8 blocks (lane b = block b) from their converted
// integer sums: the reference's expressions, lane by lane. Shared with the
// AVX-512 kernels.

/// Q4_0: `sumi * dx * dy`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn term_q4_0(s: __m256, xc: &[BlockQ4_0; 8], yc: &[BlockQ8_0; 8]) -> __m256 {
    let dx = f16x8(|i| xc[i].d);
    let dy = f16x8(|i| yc[i].d);
    _mm256_mul_ps(_mm256_mul_ps(s, dx), dy)
}

/// Q4_1 and Q5_1: `(dx * dy) * sumi + m * s`, from the blocks' `(d, m)`
/// and `(d, s)` f16 pairs read as `u32`s (one insert per block and side).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn term_dm(s: __m256, xh: impl Fn(usize) -> u32, yh: impl Fn(usize) -> u32) -> __m256 {
    let g = |h: &dyn Fn(usize) -> u32| {
        let v = |i: usize| h(i) as i32;
        _mm256_setr_epi32(v(0), v(1), v(2), v(3), v(4), v(5), v(6), v(7))
    };
    let (gx, gy) = (g(&xh), g(&yh));
    // [dd0, ms0, dd1, ms1, dd2, ms2, dd3, ms3] and the same for blocks 4..8.
    let pa = _mm256_mul_ps(
        _mm256_cvtph_ps(_mm256_castsi256_si128(gx)),
        _mm256_cvtph_ps(_mm256_castsi256_si128(gy)),
    );
    let pb = _mm256_mul_ps(
        _mm256_cvtph_ps(_mm256_extracti128_si256::<1>(gx)),
        _mm256_cvtph_ps(_mm256_extracti128_si256::<1>(gy)),
    );
    // The shuffles give blocks [0, 1, 4, 5, 2, 3, 6, 7]; the permutation is
    // its own inverse.
    let order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
    let dd = _mm256_permutevar8x32_ps(_mm256_shuffle_ps::<0b10_00_10_00>(pa, pb), order);
    let ms = _mm256_permutevar8x32_ps(_mm256_shuffle_ps::<0b11_01_11_01>(pa, pb), order);
    _mm256_add_ps(_mm256_mul_ps(dd, s), ms)
}

#[inline]
fn pair_bits(lo: f16, hi: f16) -> u32 {
    lo.to_bits() as u32 | (hi.to_bits() as u32) << 16
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn term_q4_1(s: __m256, xc: &[BlockQ4_1; 8], yc: &[BlockQ8_1; 8]) -> __m256 {
    term_dm(
        s,
        |i| pair_bits(xc[i].d, xc[i].m),
        |i| pair_bits(yc[i].d, yc[i].s),
    )
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn term_q5_1(s: __m256, xc: &[BlockQ5_1; 8], yc: &[BlockQ8_1; 8]) -> __m256 {
    term_dm(
        s,
        |i| pair_bits(xc[i].d, xc[i].m),
        |i| pair_bits(yc[i].d, yc[i].s),
    )
}

/// Q5_0: `(dx * dy) * sumi`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn term_q5_0(s: __m256, xc: &[BlockQ5_0; 8], yc: &[BlockQ8_0; 8]) -> __m256 {
    let dd = _mm256_mul_ps(f16x8(|i| xc[i].d), f16x8(|i| yc[i].d));
    _mm256_mul_ps(dd, s)
}

/// Q8_0: `sumi * (dx * dy)`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn term_q8_0(s: __m256, xc: &[BlockQ8_0; 8], yc: &[BlockQ8_0; 8]) -> __m256 {
    let dd = _mm256_mul_ps(f16x8(|i| xc[i].d), f16x8(|i| yc[i].d));
    _mm256_mul_ps(s, dd)
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_q4_0_q8_0(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
    legacy_dot!(
        x,
        y,
        |xb: &BlockQ4_0, yb: &BlockQ8_0| {
            let qx = _mm256_sub_epi8(bytes_from_nibbles_32(&xb.qs), _mm256_set1_epi8(8));
            mul_sum_i8_pairs(qx, load32(&yb.qs))
        },
        term_q4_0,
        |s, xb: &BlockQ4_0, yb: &BlockQ8_0| blocks::term_q4_0(s, h(xb.d), h(yb.d))
    )
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_q4_1_q8_1(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
    legacy_dot!(
        x,
        y,
        |xb: &BlockQ4_1, yb: &BlockQ8_1| mul_sum_us8_pairs(
            bytes_from_nibbles_32(&xb.qs),
            load32(&yb.qs)
        ),
        term_q4_1,
        |s, xb: &BlockQ4_1, yb: &BlockQ8_1| blocks::term_dm(s, h(xb.d), h(yb.d), h(xb.m), h(yb.s))
    )
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_q5_0_q8_0(x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
    legacy_dot!(
        x,
        y,
        |xb: &BlockQ5_0, yb: &BlockQ8_0| {
            let qx = bytes_from_nibbles_32(&xb.qs);
            // 0xF0 (i.e. -16 once or-ed in) where the fifth bit is clear.
            let bxhi =
                _mm256_andnot_si256(bytes_from_bits_32(xb.qh()), _mm256_set1_epi8(0xF0u8 as i8));
            mul_sum_i8_pairs(_mm256_or_si256(qx, bxhi), load32(&yb.qs))
        },
        term_q5_0,
        |s, xb: &BlockQ5_0, yb: &BlockQ8_0| blocks::term_q5_0(s, h(xb.d), h(yb.d))
    )
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_q5_1_q8_1(x: &[BlockQ5_1], y: &[BlockQ8_1]) -> f32 {
    legacy_dot!(
        x,
        y,
        |xb: &BlockQ5_1, yb: &BlockQ8_1| {
            let qx = bytes_from_nibbles_32(&xb.qs);
            let bxhi = _mm256_and_si256(bytes_from_bits_32(xb.qh()), _mm256_set1_epi8(0x10));
            mul_sum_us8_pairs(_mm256_or_si256(qx, bxhi), load32(&yb.qs))
        },
        term_q5_1,
        |s, xb: &BlockQ5_1, yb: &BlockQ8_1| blocks::term_dm(s, h(xb.d), h(yb.d), h(xb.m), h(yb.s))
    )
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
    legacy_dot!(
        x,
        y,
        |xb: &BlockQ8_0, yb: &BlockQ8_0| mul_sum_i8_pairs(load32(&xb.qs), load32(&yb.qs)),
        term_q8_0,
        |s, xb: &BlockQ8_0, yb: &BlockQ8_0| blocks::term_q8_0(s, h(xb.d), h(yb.d))
    )
}

// ---- float dots ---------------------------------------------------------------
//
// The fixed order of `crate::float::dot_lanes`: 32 lanes in four registers
// (lane 8k + i = register k, element i), separate multiply and add, a
// zero-padded last chunk, then the tree `reduce_lanes` in registers.

/// `reduce_lanes` on lanes held as `a[k]` = lanes 8k..8k+8.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn reduce32(a: [__m256; 4]) -> f32 {
    let s = _mm256_add_ps(
        _mm256_add_ps(a[0], a[2]), // w = 16
        _mm256_add_ps(a[1], a[3]),
    ); // w = 8: (a0 + a2) + (a1 + a3)
    hsum_ps(s) // w = 4, 2, 1
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_f32(x: &[f32], y: &[f32]) -> f32 {
    assert_eq!(x.len(), y.len());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut step = |xc: &[f32], yc: &[f32]| {
        for (k, a) in acc.iter_mut().enumerate() {
            let xv = load8f(xc[8 * k..8 * k + 8].try_into().unwrap());
            let yv = load8f(yc[8 * k..8 * k + 8].try_into().unwrap());
            *a = _mm256_add_ps(*a, _mm256_mul_ps(xv, yv));
        }
    };
    let mut xs = x.chunks_exact(32);
    let mut ys = y.chunks_exact(32);
    for (xc, yc) in (&mut xs).zip(&mut ys) {
        step(xc, yc);
    }
    if !xs.remainder().is_empty() {
        let (mut xt, mut yt) = ([0.0f32; 32], [0.0f32; 32]);
        xt[..xs.remainder().len()].copy_from_slice(xs.remainder());
        yt[..ys.remainder().len()].copy_from_slice(ys.remainder());
        step(&xt, &yt);
    }
    reduce32(acc)
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn vec_dot_f16(x: &[f16], y: &[f16]) -> f32 {
    assert_eq!(x.len(), y.len());
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn load8h(p: &[f16]) -> __m256 {
        let p: &[f16; 8] = p.try_into().unwrap();
        // SAFETY: `p` is a reference to 8 readable f16 (16 bytes).
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(p.as_ptr().cast()) })
    }
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut step = |xc: &[f16], yc: &[f16]| {
        for (k, a) in acc.iter_mut().enumerate() {
            // FMA is exact here: the f32 product of two f16 is exact, so
            // fma(x, y, a) rounds once, like the reference's a + x * y.
            *a = _mm256_fmadd_ps(
                load8h(&xc[8 * k..8 * k + 8]),
                load8h(&yc[8 * k..8 * k + 8]),
                *a,
            );
        }
    };
    let mut xs = x.chunks_exact(32);
    let mut ys = y.chunks_exact(32);
    for (xc, yc) in (&mut xs).zip(&mut ys) {
        step(xc, yc);
    }
    if !xs.remainder().is_empty() {
        let (mut xt, mut yt) = ([f16::ZERO; 32], [f16::ZERO; 32]);
        xt[..xs.remainder().len()].copy_from_slice(xs.remainder());
        yt[..ys.remainder().len()].copy_from_slice(ys.remainder());
        step(&xt, &yt);
    }
    reduce32(acc)
}

// ---- from_float -------------------------------------------------------------

/// C `roundf` on 8 lanes (half away from zero), then `cvttps2dq` (which gives
/// `i32::MIN` for NaN/out of range, like [`crate::fp::c_cast_i32`]).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn roundf_epi32(v: __m256) -> __m256i {
    let sign = _mm256_set1_ps(-0.0);
    let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v);
    // Exact: v and trunc(v) are within a factor of two (or trunc(v) = 0).
    let frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    let up = _mm256_cmp_ps::<_CMP_GE_OQ>(frac, _mm256_set1_ps(0.5));
    let one = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0));
    _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, one)))
}

/// Quantizes one block of 32 floats like `quantize_row_q8_0_ref`, returning
/// `d` (f32) and the sum of the stored bytes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn quantize_q8_block(x: &[f32; QK], qs: &mut [i8; QK]) -> (f32, i32) {
    let v: [__m256; 4] = core::array::from_fn(|k| load8f(x[8 * k..8 * k + 8].try_into().unwrap()));
    let sign = _mm256_set1_ps(-0.0);
    let m01 = _mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1]));
    let m23 = _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3]));
    let amax = hmax_ps(_mm256_max_ps(m01, m23));
    let d = amax / 127.0;
    let id = _mm256_set1_ps(inv_or_zero(d));
    let i: [__m256i; 4] = core::array::from_fn(|k| roundf_epi32(_mm256_mul_ps(v[k], id)));
    // Keep the low byte of each i32 (as C's int8_t store does), then pack.
    let lo = _mm256_set1_epi32(0xFF);
    let p01 = _mm256_packus_epi32(_mm256_and_si256(i[0], lo), _mm256_and_si256(i[1], lo));
    let p23 = _mm256_packus_epi32(_mm256_and_si256(i[2], lo), _mm256_and_si256(i[3], lo));
    let p = _mm256_packus_epi16(p01, p23);
    // Undo the per-128-bit-lane interleaving of the packs.
    let p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    // SAFETY: `qs` is a reference to 32 writable bytes; unaligned store.
    unsafe { _mm256_storeu_si256(qs.as_mut_ptr().cast(), p) };
    // Sum of the stored (sign-extended low byte) values.
    let sx = |v: __m256i| _mm256_srai_epi32::<24>(_mm256_slli_epi32::<24>(v));
    let s = _mm256_add_epi32(
        _mm256_add_epi32(sx(i[0]), sx(i[1])),
        _mm256_add_epi32(sx(i[2]), sx(i[3])),
    );
    (d, hsum_epi32(s))
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_q8_0(src: &[f32], dst: &mut [BlockQ8_0]) {
    assert_eq!(src.len(), dst.len() * QK);
    for (x, y) in src.chunks_exact(QK).zip(dst) {
        let (d, _) = quantize_q8_block(x.try_into().unwrap(), &mut y.qs);
        y.d = f16::from_bits(fp32_to_fp16_bits(d));
    }
}

/// # Safety
/// The CPU must support AVX2, FMA and F16C.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_q8_1(src: &[f32], dst: &mut [BlockQ8_1]) {
    assert_eq!(src.len(), dst.len() * QK);
    for (x, y) in src.chunks_exact(QK).zip(dst) {
        let (d, sum) = quantize_q8_block(x.try_into().unwrap(), &mut y.qs);
        y.d = f16::from_bits(fp32_to_fp16_bits(d));
        y.s = f16::from_bits(fp32_to_fp16_bits(sum as f32 * d));
    }
}
