//! AVX-512 (F/BW/VL) twins of the legacy block dots, the float dots and
//! the Q8_0/Q8_1 quantize (references: `crate::blocks`, `crate::float`).
//! The quantized dots come in two builds: with VNNI (`vpdpbusd`, one
//! instruction for 64 u8 x i8 products summed in fours) and without (`maddubs`
//! and `madd`, for Skylake-X-class CPUs). [`install`] picks the VNNI build
//! when `avx512vnni` was detected.
//!
//! The quantized dots take two 32-element blocks per 512-bit vector. The
//! signed formats are handled as `dot(u, y) - dot(offset, y)` with `u` the
//! unsigned codes (0..16 or 0..32) and `offset` 8 or 16, so only the u8 x i8
//! form is ever needed and nothing can saturate.
//!
//! Every `#[target_feature]` function is reached only through the
//! `safe_fn!` wrappers that [`install`] hands out.

use core::arch::x86_64::*;

use half::f16;

use super::super::avx2::blocks::{
    add_in_order, chunked_dot, h, hsum_epi32, term_q4_0, term_q4_1, term_q5_0, term_q5_1, term_q8_0,
};
use crate::blocks;
use crate::blocks::{
    inv_or_zero, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1, QK,
};
use crate::erased::{dot_args, from_float_args};
use crate::fp::fp32_to_fp16_bits;
use crate::{GgmlType, KernelPath, TypeKernels};

/// Replaces the pointers of `k` that have AVX-512 twins (call after the AVX2
/// install: types without a 512-bit kernel keep the AVX2 one).
pub(super) fn install(k: &mut TypeKernels) {
    if crate::dispatch::has_avx512vnni() {
        vnni::install(k);
    } else {
        bw::install(k);
    }
    match k.ty {
        GgmlType::F32 => k.vec_dot = dot_f32,
        GgmlType::F16 => k.vec_dot = dot_f16,
        GgmlType::Q8_0 => k.from_float = from_float_q8_0,
        GgmlType::Q8_1 => k.from_float = from_float_q8_1,
        _ => {}
    }
}

safe_fn! {
    requires KernelPath::Avx512.is_available();
    fn dot_f32(n: usize, x: &[u8], y: &[u8]) -> f32 {
        checks { let (x, y) = dot_args::<f32>(n, x, y); }
        unsafe { vec_dot_f32(x, y) }
    }
    fn dot_f16(n: usize, x: &[u8], y: &[u8]) -> f32 {
        checks { let (x, y) = dot_args::<f16>(n, x, y); }
        unsafe { vec_dot_f16(x, y) }
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

/// The quantized dot products, generated twice: `$tf` is the feature list and
/// `$dot` the u8 x i8 -> i32x16 helper for that list, detected by
/// `$detected`.
macro_rules! quant_dots {
    ($module:ident, $tf:literal, $dot:ident, $detected:expr) => {
        mod $module {
            use super::*;

            pub(super) fn install(k: &mut TypeKernels) {
                match k.ty {
                    GgmlType::Q4_0 => k.vec_dot = dot_q4_0,
                    GgmlType::Q4_1 => k.vec_dot = dot_q4_1,
                    GgmlType::Q5_0 => k.vec_dot = dot_q5_0,
                    GgmlType::Q5_1 => k.vec_dot = dot_q5_1,
                    GgmlType::Q8_0 => k.vec_dot = dot_q8_0,
                    _ => {}
                }
            }

            safe_fn! {
                requires $detected;
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
            }

            /// Unpacked nibbles of two blocks: [lo A, hi A, lo B, hi B] (each
            /// 16 bytes), i.e. elements 0..32 of A then 0..32 of B.
            #[target_feature(enable = $tf)]
            #[inline]
            fn nibbles2(a: &[u8; 16], b: &[u8; 16]) -> __m512i {
                let va = _mm512_broadcast_i32x4(load16(a));
                let v = _mm512_mask_broadcast_i32x4(va, 0xFF00, load16(b));
                let v = _mm512_mask_srli_epi16::<4>(v, 0xFF00_FF00, v);
                _mm512_and_si512(v, _mm512_set1_epi8(0x0F))
            }

            /// 32 signed bytes of two blocks: A then B.
            #[target_feature(enable = $tf)]
            #[inline]
            fn bytes2(a: &[i8; 32], b: &[i8; 32]) -> __m512i {
                _mm512_inserti64x4::<1>(_mm512_castsi256_si512(load32(a)), load32(b))
            }

            /// The AVX2 driver with `$pair(xa, xb, ya, yb)`: the products of
            /// two blocks as 16 i32 lanes (A in lanes 0..8, B in 8..16); each
            /// block's exact sum is then scaled by the AVX2 kernels' `$term`
            /// (the reference's f32 expression) and the terms are added in
            /// block order.
            macro_rules! pair_dot {
                ($x:expr, $y:expr, $pair:expr, $term:path, $scalar:expr) => {
                    chunked_dot!(
                        $x,
                        $y,
                        |xc: &[_; 8], yc: &[_; 8]| {
                            let z: [__m512i; 4] = core::array::from_fn(|p| {
                                let (a, b) = (2 * p, 2 * p + 1);
                                $pair(&xc[a], &xc[b], &yc[a], &yc[b])
                            });
                            $term(_mm256_cvtepi32_ps(hsum8_blocks(&z)), xc, yc)
                        },
                        |xb, yb| {
                            // One block (paired with itself; the copy is dropped).
                            let z: __m512i = $pair(xb, xb, yb, yb);
                            $scalar(hsum_epi32(_mm512_castsi512_si256(z)), xb, yb)
                        }
                    )
                };
            }

            /// # Safety
            /// The CPU must support the features in `$tf`.
            #[target_feature(enable = $tf)]
            unsafe fn vec_dot_q4_0_q8_0(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
                let eight = _mm512_set1_epi8(8);
                pair_dot!(
                    x,
                    y,
                    |xa: &BlockQ4_0, xb: &BlockQ4_0, ya: &BlockQ8_0, yb: &BlockQ8_0| {
                        let qx = nibbles2(&xa.qs, &xb.qs);
                        let qy = bytes2(&ya.qs, &yb.qs);
                        _mm512_sub_epi32($dot(qx, qy), $dot(eight, qy))
                    },
                    term_q4_0,
                    |s, xb: &BlockQ4_0, yb: &BlockQ8_0| blocks::term_q4_0(s, h(xb.d), h(yb.d))
                )
            }

            /// # Safety
            /// The CPU must support the features in `$tf`.
            #[target_feature(enable = $tf)]
            unsafe fn vec_dot_q5_0_q8_0(x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
                let sixteen = _mm512_set1_epi8(16);
                pair_dot!(
                    x,
                    y,
                    |xa: &BlockQ5_0, xb: &BlockQ5_0, ya: &BlockQ8_0, yb: &BlockQ8_0| {
                        let hbits = xa.qh() as u64 | (xb.qh() as u64) << 32;
                        let nib = nibbles2(&xa.qs, &xb.qs);
                        let qx = _mm512_mask_add_epi8(nib, hbits, nib, sixteen);
                        let qy = bytes2(&ya.qs, &yb.qs);
                        _mm512_sub_epi32($dot(qx, qy), $dot(sixteen, qy))
                    },
                    term_q5_0,
                    |s, xb: &BlockQ5_0, yb: &BlockQ8_0| blocks::term_q5_0(s, h(xb.d), h(yb.d))
                )
            }

            /// # Safety
            /// The CPU must support the features in `$tf`.
            #[target_feature(enable = $tf)]
            unsafe fn vec_dot_q4_1_q8_1(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
                pair_dot!(
                    x,
                    y,
                    |xa: &BlockQ4_1, xb: &BlockQ4_1, ya: &BlockQ8_1, yb: &BlockQ8_1| {
                        $dot(nibbles2(&xa.qs, &xb.qs), bytes2(&ya.qs, &yb.qs))
                    },
                    term_q4_1,
                    |s, xb: &BlockQ4_1, yb: &BlockQ8_1| blocks::term_dm(
                        s,
                        h(xb.d),
                        h(yb.d),
                        h(xb.m),
                        h(yb.s)
                    )
                )
            }

            /// # Safety
            /// The CPU must support the features in `$tf`.
            #[target_feature(enable = $tf)]
            unsafe fn vec_dot_q5_1_q8_1(x: &[BlockQ5_1], y: &[BlockQ8_1]) -> f32 {
                let sixteen = _mm512_set1_epi8(16);
                pair_dot!(
                    x,
                    y,
                    |xa: &BlockQ5_1, xb: &BlockQ5_1, ya: &BlockQ8_1, yb: &BlockQ8_1| {
                        let hbits = xa.qh() as u64 | (xb.qh() as u64) << 32;
                        let nib = nibbles2(&xa.qs, &xb.qs);
                        let qx = _mm512_mask_add_epi8(nib, hbits, nib, sixteen);
                        $dot(qx, bytes2(&ya.qs, &yb.qs))
                    },
                    term_q5_1,
                    |s, xb: &BlockQ5_1, yb: &BlockQ8_1| blocks::term_dm(
                        s,
                        h(xb.d),
                        h(yb.d),
                        h(xb.m),
                        h(yb.s)
                    )
                )
            }

            /// # Safety
            /// The CPU must support the features in `$tf`.
            #[target_feature(enable = $tf)]
            unsafe fn vec_dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
                pair_dot!(
                    x,
                    y,
                    |xa: &BlockQ8_0, xb: &BlockQ8_0, ya: &BlockQ8_0, yb: &BlockQ8_0| {
                        let qx = bytes2(&xa.qs, &xb.qs);
                        let qy = bytes2(&ya.qs, &yb.qs);
                        // |x| (as u8, 0..=128) times y with x's sign.
                        let ax = _mm512_abs_epi8(qx);
                        let sy = _mm512_mask_sub_epi8(
                            qy,
                            _mm512_movepi8_mask(qx),
                            _mm512_setzero_si512(),
                            qy,
                        );
                        $dot(ax, sy)
                    },
                    term_q8_0,
                    |s, xb: &BlockQ8_0, yb: &BlockQ8_0| blocks::term_q8_0(s, h(xb.d), h(yb.d))
                )
            }
        }
    };
}

/// Lane `b` of the result = the sum of the 8 i32 lanes of block `b`, where
/// `z[p]` holds block `2p` in lanes 0..8 and block `2p + 1` in lanes 8..16.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
#[inline]
fn hsum8_blocks(z: &[__m512i; 4]) -> __m256i {
    // 128-bit quarters: z[p] = [A0, A1, B0, B1]. Fold each block's two
    // quarters: s01 = [blk0, blk1, blk2, blk3] (4 lanes each), s23 = 4..8.
    let fold = |a: __m512i, b: __m512i| {
        _mm512_add_epi32(
            _mm512_shuffle_i32x4::<0b10_00_10_00>(a, b),
            _mm512_shuffle_i32x4::<0b11_01_11_01>(a, b),
        )
    };
    let s01 = fold(z[0], z[1]);
    let s23 = fold(z[2], z[3]);
    // Quarter k: [k0 + k2, (k+4)0 + (k+4)2, k1 + k3, (k+4)1 + (k+4)3].
    let p = _mm512_add_epi32(
        _mm512_unpacklo_epi32(s01, s23),
        _mm512_unpackhi_epi32(s01, s23),
    );
    // Quarter k, lanes 0 and 1: the totals of blocks k and k + 4.
    let q = _mm512_add_epi32(p, _mm512_shuffle_epi32::<0b01_00_11_10>(p));
    let idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
    _mm512_castsi512_si256(_mm512_permutexvar_epi32(idx, q))
}

/// Loads 16 bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
#[inline]
fn load16(p: &[u8; 16]) -> __m128i {
    // SAFETY: `p` is a reference to 16 readable bytes; unaligned load.
    unsafe { _mm_loadu_si128(p.as_ptr().cast()) }
}

/// Loads 32 signed bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
#[inline]
fn load32(p: &[i8; 32]) -> __m256i {
    // SAFETY: `p` is a reference to 32 readable bytes; unaligned load.
    unsafe { _mm256_loadu_si256(p.as_ptr().cast()) }
}

/// u8 x i8 products summed in fours, with VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
#[inline]
fn dot_vnni(u: __m512i, s: __m512i) -> __m512i {
    _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s)
}

/// u8 x i8 products summed in fours, without VNNI (exact when `u <= 127` or
/// `|s| <= 127`: the i16 pair sums cannot saturate).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
#[inline]
fn dot_bw(u: __m512i, s: __m512i) -> __m512i {
    _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1))
}

quant_dots!(
    vnni,
    "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c",
    dot_vnni,
    crate::dispatch::has_avx512vnni()
);
quant_dots!(
    bw,
    "avx512f,avx512bw,avx512vl,fma,f16c",
    dot_bw,
    KernelPath::Avx512.is_available()
);

// ---- float dots ---------------------------------------------------------------
//
// The fixed order of `crate::float::dot_lanes`: 32 lanes in two registers
// (lanes 0..16, 16..32), separate multiply and add, a zero-padded (masked)
// last chunk, then the tree of `reduce_lanes`.

/// `reduce_lanes` on lanes 0..16 in `a`, 16..32 in `b`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
#[inline]
fn reduce32(a: __m512, b: __m512) -> f32 {
    let s = _mm512_add_ps(a, b); // w = 16
    let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(s)));
    let s = _mm256_add_ps(_mm512_castps512_ps256(s), hi); // w = 8
    let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s)); // w = 4
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s)); // w = 2
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s))) // w = 1
}

/// # Safety
/// The CPU must support AVX-512 F/BW/VL, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
unsafe fn vec_dot_f32(x: &[f32], y: &[f32]) -> f32 {
    assert_eq!(x.len(), y.len());
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
    #[inline]
    fn load(p: &[f32]) -> __m512 {
        let p: &[f32; 16] = p.try_into().unwrap();
        // SAFETY: `p` is a reference to 16 readable f32.
        unsafe { _mm512_loadu_ps(p.as_ptr()) }
    }
    let (mut a0, mut a1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut xs = x.chunks_exact(32);
    let mut ys = y.chunks_exact(32);
    for (xc, yc) in (&mut xs).zip(&mut ys) {
        a0 = _mm512_add_ps(a0, _mm512_mul_ps(load(&xc[..16]), load(&yc[..16])));
        a1 = _mm512_add_ps(a1, _mm512_mul_ps(load(&xc[16..]), load(&yc[16..])));
    }
    // Masked tail: lanes past the end are neither read nor changed (they
    // get +0.0 * +0.0, and a lane is never -0.0).
    let (xr, yr) = (xs.remainder(), ys.remainder());
    let rest = xr.len();
    if rest > 0 {
        let m: u32 = (1u32 << rest) - 1;
        let (m0, m1) = (m as __mmask16, (m >> 16) as __mmask16);
        // SAFETY: the masks have only the low `rest` of 32 lanes set and
        // both remainders hold `rest` f32 (lanes 16.. start at offset 16,
        // touched only if `rest > 16`), so no lane outside them is read.
        let (x0, y0, x1, y1) = unsafe {
            (
                _mm512_maskz_loadu_ps(m0, xr.as_ptr()),
                _mm512_maskz_loadu_ps(m0, yr.as_ptr()),
                _mm512_maskz_loadu_ps(m1, xr.as_ptr().wrapping_add(16)),
                _mm512_maskz_loadu_ps(m1, yr.as_ptr().wrapping_add(16)),
            )
        };
        a0 = _mm512_add_ps(a0, _mm512_mul_ps(x0, y0));
        a1 = _mm512_add_ps(a1, _mm512_mul_ps(x1, y1));
    }
    reduce32(a0, a1)
}

/// # Safety
/// The CPU must support AVX-512 F/BW/VL, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
unsafe fn vec_dot_f16(x: &[f16], y: &[f16]) -> f32 {
    assert_eq!(x.len(), y.len());
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
    #[inline]
    fn load(p: &[f16]) -> __m512 {
        let p: &[f16; 16] = p.try_into().unwrap();
        // SAFETY: `p` is a reference to 16 readable f16 (32 bytes).
        _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(p.as_ptr().cast()) })
    }
    let (mut a0, mut a1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let mut xs = x.chunks_exact(32);
    let mut ys = y.chunks_exact(32);
    for (xc, yc) in (&mut xs).zip(&mut ys) {
        // FMA is exact here (the f32 product of two f16 is exact).
        a0 = _mm512_fmadd_ps(load(&xc[..16]), load(&yc[..16]), a0);
        a1 = _mm512_fmadd_ps(load(&xc[16..]), load(&yc[16..]), a1);
    }
    let (xr, yr) = (xs.remainder(), ys.remainder());
    let rest = xr.len();
    if rest > 0 {
        // Zero-padded copy of the tail (f16 +0.0 widens to +0.0).
        let (mut xt, mut yt) = ([f16::ZERO; 32], [f16::ZERO; 32]);
        xt[..rest].copy_from_slice(xr);
        yt[..rest].copy_from_slice(yr);
        a0 = _mm512_add_ps(a0, _mm512_mul_ps(load(&xt[..16]), load(&yt[..16])));
        a1 = _mm512_add_ps(a1, _mm512_mul_ps(load(&xt[16..]), load(&yt[16..])));
    }
    reduce32(a0, a1)
}

// ---- from_float -------------------------------------------------------------

/// C `roundf` (half away from zero) then `cvttps2dq` (i32::MIN for NaN/out
/// of range, as [`crate::fp::c_cast_i32`]).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
#[inline]
fn roundf_epi32(v: __m512) -> __m512i {
    let t = _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v);
    // Exact: v and trunc(v) are within a factor of two (or trunc(v) = 0).
    let frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
    let up = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(frac, _mm512_set1_ps(0.5));
    let one = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(i32::MIN)),
        _mm512_castps_si512(_mm512_set1_ps(1.0)),
    ));
    _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, one))
}

/// One block like `quantize_row_q8_0_ref`; returns `d` and the sum of the
/// stored bytes.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
#[inline]
fn quantize_q8_block(x: &[f32; QK], qs: &mut [i8; QK]) -> (f32, i32) {
    // SAFETY: `x` is a reference to 32 readable f32: two 16-lane loads.
    let (v0, v1) = unsafe {
        (
            _mm512_loadu_ps(x.as_ptr()),
            _mm512_loadu_ps(x.as_ptr().add(16)),
        )
    };
    let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    let d = amax / 127.0;
    let id = _mm512_set1_ps(inv_or_zero(d));
    let i0 = roundf_epi32(_mm512_mul_ps(v0, id));
    let i1 = roundf_epi32(_mm512_mul_ps(v1, id));
    // vpmovdb keeps the low byte of each lane, as C's int8_t store does.
    let b0 = _mm512_cvtepi32_epi8(i0);
    let b1 = _mm512_cvtepi32_epi8(i1);
    // SAFETY: `qs` is a reference to 32 writable bytes: two 16-byte stores.
    unsafe {
        _mm_storeu_si128(qs.as_mut_ptr().cast(), b0);
        _mm_storeu_si128(qs.as_mut_ptr().add(16).cast(), b1);
    }
    let s = _mm512_add_epi32(_mm512_cvtepi8_epi32(b0), _mm512_cvtepi8_epi32(b1));
    (d, _mm512_reduce_add_epi32(s))
}

/// # Safety
/// The CPU must support AVX-512 F/BW/VL, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
unsafe fn quantize_q8_0(src: &[f32], dst: &mut [BlockQ8_0]) {
    assert_eq!(src.len(), dst.len() * QK);
    for (x, y) in src.chunks_exact(QK).zip(dst) {
        let (d, _) = quantize_q8_block(x.try_into().unwrap(), &mut y.qs);
        y.d = f16::from_bits(fp32_to_fp16_bits(d));
    }
}

/// # Safety
/// The CPU must support AVX-512 F/BW/VL, FMA and F16C.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,fma,f16c")]
unsafe fn quantize_q8_1(src: &[f32], dst: &mut [BlockQ8_1]) {
    assert_eq!(src.len(), dst.len() * QK);
    for (x, y) in src.chunks_exact(QK).zip(dst) {
        let (d, sum) = quantize_q8_block(x.try_into().unwrap(), &mut y.qs);
        y.d = f16::from_bits(fp32_to_fp16_bits(d));
        y.s = f16::from_bits(fp32_to_fp16_bits(sum as f32 * d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::tests::quantized_dots_match_scalar;

    // Both builds, though a path table only ever holds one of them.

    #[test]
    fn build_without_vnni_matches_scalar() {
        if !KernelPath::Avx512.is_available() {
            eprintln!("no AVX-512: not run");
            return;
        }
        quantized_dots_match_scalar("avx512 bw", bw::install);
    }

    #[test]
    fn build_with_vnni_matches_scalar() {
        if !crate::dispatch::has_avx512vnni() {
            eprintln!("no AVX-512 VNNI: not run");
            return;
        }
        quantized_dots_match_scalar("avx512 vnni", vnni::install);
    }
}
