//! AVX-512 (F/BW/VL, + VNNI where present) K-quant kernels for the formats
//! the target models use most (Q4_K, Q6_K). They process 64 quants per
//! instruction; with VNNI the scale multiply and accumulate fuse into
//! `vpdpwssd`. The other K-quants keep their AVX2 twins on this path.
//!
//! Every `#[target_feature]` function here is reached only through
//! [`install`], which asserts the AVX-512 path is available (it implies the
//! AVX2 path) and picks the VNNI variants only if VNNI was detected; that is
//! the feature half of every `// SAFETY:` argument below. Integer sums are
//! exact, as in the AVX2 kernels.

use core::arch::x86_64::*;

use super::avx2::{c32, ld_i16x16, ld_i8x16, ld_u8x32, mins_and_scales_k4, mins_dot_bsums};
use super::blocks::{BlockQ4_K, BlockQ6_K, BlockQ8_K};
use crate::dispatch::has_avx512vnni;
use crate::erased::dot_args;
use crate::fp::f16_to_f32;
use crate::{GgmlType, KernelPath, TypeKernels};

/// Replaces the pointers of `k` that have AVX-512 twins.
pub(crate) fn install(k: &mut TypeKernels) {
    assert!(KernelPath::Avx512.is_available());
    let vnni = has_avx512vnni();
    match k.ty {
        GgmlType::Q4_K => k.vec_dot = if vnni { dot_q4_k_vnni } else { dot_q4_k },
        GgmlType::Q6_K => k.vec_dot = if vnni { dot_q6_k_vnni } else { dot_q6_k },
        _ => {}
    }
}

macro_rules! dot_wrapper {
    ($name:ident, $x:ty, $inner:ident) => {
        fn $name(n: usize, x: &[u8], y: &[u8]) -> f32 {
            let (x, y) = dot_args::<$x>(n, x, y);
            // SAFETY: only installed by `install`, which asserted the
            // AVX-512 path (AVX2, FMA, F16C, AVX-512 F/BW/VL) and installs
            // the `_vnni` kernels only if VNNI was detected; `dot_args`
            // checked that `x` and `y` hold the same number of blocks.
            unsafe { $inner(x, y) }
        }
    };
}

dot_wrapper!(dot_q4_k, BlockQ4_K, vec_dot_q4_k);
dot_wrapper!(dot_q6_k, BlockQ6_K, vec_dot_q6_k);
dot_wrapper!(dot_q4_k_vnni, BlockQ4_K, vec_dot_q4_k_vnni);
dot_wrapper!(dot_q6_k_vnni, BlockQ6_K, vec_dot_q6_k_vnni);

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
#[inline]
fn ld_i8x64(p: &[i8; 64]) -> __m512i {
    // SAFETY: `p` is a reference to 64 readable bytes; unaligned load.
    unsafe { _mm512_loadu_si512(p.as_ptr().cast()) }
}

/// `acc + madd(a, b)` (pairs of i16 products summed into i32 lanes).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
#[inline]
fn dpwssd_plain(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
    _mm512_add_epi32(acc, _mm512_madd_epi16(a, b))
}

#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
#[inline]
fn dpwssd_vnni(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
    _mm512_dpwssd_epi32(acc, a, b)
}

/// `[lo | hi]` as one 512-bit vector.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
#[inline]
fn join(lo: __m256i, hi: __m256i) -> __m512i {
    _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1)
}

/// Index vector for `permutexvar_epi16`: lane `i` picks word `base + i / g`.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
#[inline]
fn group_index(base: i16, g: usize) -> __m512i {
    let mut idx = [0i16; 32];
    for (i, v) in idx.iter_mut().enumerate() {
        *v = base + (i / g) as i16;
    }
    // SAFETY: `idx` is 64 readable bytes; unaligned load.
    unsafe { _mm512_loadu_si512(idx.as_ptr().cast()) }
}

// ---- Q4_K -------------------------------------------------------------------

macro_rules! q4k_kernel {
    ($name:ident, $features:literal, $dp:ident) => {
        #[target_feature(enable = $features)]
        unsafe fn $name(x: &[BlockQ4_K], y: &[BlockQ8_K]) -> f32 {
            let m4 = _mm256_set1_epi8(0xF);
            // Scale-broadcast indices: q4 chunk j covers sub-blocks 2j, 2j+1.
            let idx = [
                group_index(0, 16),
                group_index(2, 16),
                group_index(4, 16),
                group_index(6, 16),
            ];
            let mut acc = _mm512_setzero_ps();
            let mut acc_m = _mm_setzero_ps();
            for (xb, yb) in x.iter().zip(y) {
                let d = yb.d * f16_to_f32(xb.d);
                let dmin = -yb.d * f16_to_f32(xb.dmin);

                let mins_and_scales = mins_and_scales_k4(&xb.scales);
                let prod = mins_dot_bsums(mins_and_scales, &yb.bsums);
                acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m);
                let scales = _mm512_zextsi256_si512(mins_and_scales);

                let (q8, _) = yb.qs.as_chunks::<64>();
                let mut sumi = _mm512_setzero_si512();
                for (j, q4) in c32(&xb.qs).iter().enumerate() {
                    let q4bits = ld_u8x32(q4);
                    let q4lh = join(
                        _mm256_and_si256(q4bits, m4),
                        _mm256_and_si256(_mm256_srli_epi16(q4bits, 4), m4),
                    );
                    let p16 = _mm512_maddubs_epi16(q4lh, ld_i8x64(&q8[j]));
                    let sc = _mm512_permutexvar_epi16(idx[j], scales);
                    sumi = $dp(sumi, sc, p16);
                }
                acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
            }
            acc_m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
            acc_m = _mm_add_ss(acc_m, _mm_movehdup_ps(acc_m));
            _mm512_reduce_add_ps(acc) + _mm_cvtss_f32(acc_m)
        }
    };
}

q4k_kernel!(
    vec_dot_q4_k,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl",
    dpwssd_plain
);
q4k_kernel!(
    vec_dot_q4_k_vnni,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    dpwssd_vnni
);

// ---- Q6_K -------------------------------------------------------------------

macro_rules! q6k_kernel {
    ($name:ident, $features:literal, $dp:ident) => {
        #[target_feature(enable = $features)]
        unsafe fn $name(x: &[BlockQ6_K], y: &[BlockQ8_K]) -> f32 {
            let m3 = _mm512_set1_epi8(3);
            let m15 = _mm512_set1_epi8(15);
            // 128 elements per half: the low nibbles are elements 0..64
            // (sub-blocks is..is+4), the high nibbles 64..128 (is+4..is+8).
            let idx = [
                group_index(0, 8),
                group_index(4, 8),
                group_index(8, 8),
                group_index(12, 8),
            ];
            let mut acc = _mm512_setzero_ps();
            for (xb, yb) in x.iter().zip(y) {
                let d = yb.d * f16_to_f32(xb.d);
                let scales_16 = _mm256_cvtepi8_epi16(ld_i8x16(&xb.scales));
                let q8sclsub =
                    _mm256_slli_epi32(_mm256_madd_epi16(ld_i16x16(&yb.bsums), scales_16), 5);
                let scales = _mm512_zextsi256_si512(scales_16);

                let (ql, _) = xb.ql.as_chunks::<32>();
                let qh = c32(&xb.qh);
                let (q8, _) = yb.qs.as_chunks::<64>();
                let mut sumi = _mm512_setzero_si512();
                for j in 0..2 {
                    let qlz = join(ld_u8x32(&ql[2 * j]), ld_u8x32(&ql[2 * j + 1]));
                    let h = ld_u8x32(&qh[j]);
                    // Bits 0-1 of `qhz` are the high bits of elements 0..64,
                    // bits 4-5 those of elements 64..128.
                    let qhz = join(h, _mm256_srli_epi16(h, 2));
                    let q6_lo = _mm512_or_si512(
                        _mm512_and_si512(qlz, m15),
                        _mm512_slli_epi16(_mm512_and_si512(qhz, m3), 4),
                    );
                    let q6_hi = _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi16(qlz, 4), m15),
                        _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qhz, 4), m3), 4),
                    );
                    let p_lo = _mm512_maddubs_epi16(q6_lo, ld_i8x64(&q8[2 * j]));
                    let p_hi = _mm512_maddubs_epi16(q6_hi, ld_i8x64(&q8[2 * j + 1]));
                    sumi = $dp(sumi, _mm512_permutexvar_epi16(idx[2 * j], scales), p_lo);
                    sumi = $dp(sumi, _mm512_permutexvar_epi16(idx[2 * j + 1], scales), p_hi);
                }
                // The `- 32` of every level, from the bsums (lanes 8..16 zero).
                sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(q8sclsub));
                acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
            }
            _mm512_reduce_add_ps(acc)
        }
    };
}

q6k_kernel!(
    vec_dot_q6_k,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl",
    dpwssd_plain
);
q6k_kernel!(
    vec_dot_q6_k_vnni,
    "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
    dpwssd_vnni
);
