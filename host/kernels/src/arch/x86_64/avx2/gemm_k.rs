//! AVX2 tile kernels of the K-quants Q4_K and Q6_K (layout in
//! `crate::gemm::kquants`), twins of the portable tiles there; also the
//! K-quant tiles of AVX-512 CPUs without VNNI.
//!
//! A tile is two halves of 8 rows (bytes `32h..32h + 32` of each 64-byte
//! vector). `maddubs` multiplies four bytes of a row with the four
//! activation bytes broadcast to every row, so the lanes of the i16
//! accumulators hold each row's partial sums; a `madd` with the row's
//! scale in both halves of its dword turns a sub-block's pairs into
//! `scale * sum` in i32. Per row and block this is the reference's exact
//! `isum` and `msum`; the f32 step is `k_term`'s operations in its order.
//! Up to four activation rows share each unpacked block.

use core::arch::x86_64::*;

use super::gemm::{f16x8, iq4_table, load32, store8};
use crate::gemm::kquants::{IQ4XS_D, IQ4XS_SC, IQ4XS_TBB, Q4K_SC, Q4K_TBB, Q5K_QH, Q5K_SC, Q5K_TBB, Q6K_D, Q6K_QH, Q6K_SC, Q6K_TBB};
use crate::gemm::{tile_args, TileFn};
use crate::k_quants::blocks::{BlockQ8_K, QK_K};
use crate::{GgmlType, KernelPath};

pub(crate) fn tile_fn(ty: GgmlType) -> Option<TileFn> {
    Some(match ty {
        GgmlType::Q4_K => q4_k,
        GgmlType::Q5_K => q5_k,
        GgmlType::Q6_K => q6_k,
        GgmlType::IQ4_XS => iq4_xs,
        _ => return None,
    })
}

safe_fn! {
    requires KernelPath::Avx2.is_available();
    fn q4_k(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_K>(GgmlType::Q4_K, tile, nb, act, n, out); }
        unsafe { by_columns!(k_q4_k(tile, nb, act, n, out)) }
    }
    fn q5_k(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_K>(GgmlType::Q5_K, tile, nb, act, n, out); }
        unsafe { by_columns!(k_q5_k(tile, nb, act, n, out)) }
    }
    fn q6_k(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_K>(GgmlType::Q6_K, tile, nb, act, n, out); }
        unsafe { by_columns!(k_q6_k(tile, nb, act, n, out)) }
    }
    fn iq4_xs(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_K>(GgmlType::IQ4_XS, tile, nb, act, n, out); }
        unsafe { by_columns!(k_iq4_xs(tile, nb, act, n, out)) }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn load16(tb: &[u8], off: usize) -> __m128i {
    let s = &tb[off..off + 16];
    // SAFETY: `s` is 16 readable bytes; unaligned load.
    unsafe { _mm_loadu_si128(s.as_ptr().cast()) }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn load8(tb: &[u8], off: usize) -> __m128i {
    let s: [u8; 8] = tb[off..off + 8].try_into().expect("8 bytes");
    _mm_set_epi64x(0, i64::from_le_bytes(s))
}

/// Activation bytes `4g..4g + 4` in every dword.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn bcast4(qs: &[i8; QK_K], g: usize) -> __m256i {
    let b = &qs[4 * g..4 * g + 4];
    _mm256_set1_epi32(i32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]))
}

/// Two i16 in every dword: `lo` in the low half, `hi` in the high half.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn pair16(lo: i32, hi: i32) -> __m256i {
    _mm256_set1_epi32((lo & 0xFFFF) | (hi << 16))
}

/// The 8 rows' bytes at `tb[off..]` as i32 (`signed`: i8) with the value
/// in both i16 halves: the `madd` operand that scales one row's pairs.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn row_scales(tb: &[u8], off: usize, signed: bool) -> __m256i {
    let b = load8(tb, off);
    let v = if signed { _mm256_cvtepi8_epi32(b) } else { _mm256_cvtepu8_epi32(b) };
    _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32::<16>(v))
}

/// # Safety
/// AVX2, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k_q4_k<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_K], c0: usize, out: &mut [f32]) {
    // SAFETY: the same features and contract as this function's.
    unsafe { k_k4::<NC, false>(tile, nb, act, c0, out) }
}

/// # Safety
/// AVX2, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k_q5_k<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_K], c0: usize, out: &mut [f32]) {
    // SAFETY: the same features and contract as this function's.
    unsafe { k_k4::<NC, true>(tile, nb, act, c0, out) }
}

/// Q4_K, or Q5_K (`QH`: levels get their fifth bit from the `qh` vectors).
///
/// # Safety
/// AVX2, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
unsafe fn k_k4<const NC: usize, const QH: bool>(tile: &[u8], nb: usize, act: &[BlockQ8_K], c0: usize, out: &mut [f32]) {
    let (tbb, sco) = if QH { (Q5K_TBB, Q5K_SC) } else { (Q4K_TBB, Q4K_SC) };
    let m4 = _mm256_set1_epi8(0x0F);
    let m16 = _mm256_set1_epi8(16);
    // Pairs of levels (<= 15, or <= 31 with the fifth bit) and bytes
    // (|y| <= 128) per i16 lane: 8 sums of at most 3840 for Q4_K, 4 of at
    // most 7936 for Q5_K, before the `madd` to i32. No saturation.
    let run = if QH { 4 } else { 8 };
    tile_passes!(NC, tile, nb, tbb, c0, out, |half, b, acc| {
        let tb = &tile[b * tbb..(b + 1) * tbb];
        let sc: [__m256i; 8] = core::array::from_fn(|j| row_scales(tb, sco + 16 * j + 8 * half, false));
        let qh: [__m256i; 8] = core::array::from_fn(|m| if QH { load32(tb, Q5K_QH + 64 * m + 32 * half) } else { m4 });
        let mut isum = [_mm256_setzero_si256(); NC];
        for k in 0..4 {
            let w: [__m256i; 8] = core::array::from_fn(|m| load32(tb, 64 * (8 * k + m) + 32 * half));
            let mut lo = w.map(|v| _mm256_and_si256(v, m4));
            let mut hi = w.map(|v| _mm256_and_si256(_mm256_srli_epi16::<4>(v), m4));
            if QH {
                // 16 where bit 2k (2k + 1) of the element's qh byte is set.
                let (bl, bh) = (_mm256_set1_epi8(1 << (2 * k)), _mm256_set1_epi8(1 << (2 * k + 1)));
                let bit = |h: __m256i, b: __m256i| _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(h, b), b), m16);
                for m in 0..8 {
                    lo[m] = _mm256_or_si256(lo[m], bit(qh[m], bl));
                    hi[m] = _mm256_or_si256(hi[m], bit(qh[m], bh));
                }
            }
            for (j, isum) in isum.iter_mut().enumerate() {
                let y = &act[(c0 + j) * nb + b].qs;
                for m0 in (0..8).step_by(run) {
                    let (mut pl, mut ph) = (_mm256_setzero_si256(), _mm256_setzero_si256());
                    for m in m0..m0 + run {
                        pl = _mm256_add_epi16(pl, _mm256_maddubs_epi16(lo[m], bcast4(y, 16 * k + m)));
                        ph = _mm256_add_epi16(ph, _mm256_maddubs_epi16(hi[m], bcast4(y, 16 * k + 8 + m)));
                    }
                    let s = _mm256_add_epi32(_mm256_madd_epi16(pl, sc[2 * k]), _mm256_madd_epi16(ph, sc[2 * k + 1]));
                    *isum = _mm256_add_epi32(*isum, s);
                }
            }
        }
        // Row r's min pairs (m[2i], m[2i + 1]) in dword r.
        let mins: [__m256i; 4] = core::array::from_fn(|i| _mm256_cvtepu8_epi16(load16(tb, sco + 128 + 32 * i + 16 * half)));
        let dx = f16x8(tb, sco + 256 + 16 * half);
        let mx = f16x8(tb, sco + 288 + 16 * half);
        for (j, (acc, isum)) in acc.iter_mut().zip(isum).enumerate() {
            let y = &act[(c0 + j) * nb + b];
            let bs = |j: usize| y.bsums[2 * j] as i32 + y.bsums[2 * j + 1] as i32;
            let mut msum = _mm256_setzero_si256();
            for (i, m) in mins.iter().enumerate() {
                msum = _mm256_add_epi32(msum, _mm256_madd_epi16(*m, pair16(bs(2 * i), bs(2 * i + 1))));
            }
            let yd = _mm256_set1_ps(y.d);
            let t = _mm256_add_ps(*acc, _mm256_mul_ps(_mm256_mul_ps(dx, yd), _mm256_cvtepi32_ps(isum)));
            *acc = _mm256_sub_ps(t, _mm256_mul_ps(_mm256_mul_ps(mx, yd), _mm256_cvtepi32_ps(msum)));
        }
    });
}

/// # Safety
/// AVX2, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k_q6_k<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_K], c0: usize, out: &mut [f32]) {
    let m4 = _mm256_set1_epi8(0x0F);
    let bits = |h: __m256i, mask: i8| _mm256_and_si256(h, _mm256_set1_epi8(mask));
    tile_passes!(NC, tile, nb, Q6K_TBB, c0, out, |half, b, acc| {
        let tb = &tile[b * Q6K_TBB..(b + 1) * Q6K_TBB];
        // The 16 sub-block scales of the half's rows as `madd` operands,
        // built once per block: each serves two pairs of m and the `- 32`
        // term below. More than the 16 vector registers hold, so they live
        // on the stack and are read as memory operands.
        let scm: [__m256i; 16] = core::array::from_fn(|j| row_scales(tb, Q6K_SC + 16 * j + 8 * half, true));
        let mut isum = [_mm256_setzero_si256(); NC];
        for n in 0..2 {
            for s in 0..2 {
                // Levels (0..64) of elements 128n + 32q + 4m.. for the
                // quarters q and m = 4s..4s + 4, in pairs of m.
                for p in 0..2 {
                    let mut lv = [[_mm256_setzero_si256(); 4]; 2];
                    for (i, lv) in lv.iter_mut().enumerate() {
                        let m = 4 * s + 2 * p + i;
                        let a = load32(tb, 64 * (16 * n + m) + 32 * half);
                        let bb = load32(tb, 64 * (16 * n + 8 + m) + 32 * half);
                        let h = load32(tb, Q6K_QH + 64 * (8 * n + m) + 32 * half);
                        *lv = [
                            _mm256_or_si256(_mm256_and_si256(a, m4), _mm256_slli_epi16::<4>(bits(h, 0x03))),
                            _mm256_or_si256(_mm256_and_si256(bb, m4), _mm256_slli_epi16::<2>(bits(h, 0x0C))),
                            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(a), m4), bits(h, 0x30)),
                            _mm256_or_si256(
                                _mm256_and_si256(_mm256_srli_epi16::<4>(bb), m4),
                                _mm256_srli_epi16::<2>(bits(h, -0x40)),
                            ),
                        ];
                    }
                    for q in 0..4 {
                        let sc = scm[8 * n + 2 * q + s];
                        let g = 32 * n + 8 * q + 4 * s + 2 * p;
                        for (j, isum) in isum.iter_mut().enumerate() {
                            let y = &act[(c0 + j) * nb + b].qs;
                            // Two pairs of levels (<= 63) and bytes
                            // (|y| <= 128) per i16 lane: at most 32256.
                            let p16 = _mm256_add_epi16(
                                _mm256_maddubs_epi16(lv[0][q], bcast4(y, g)),
                                _mm256_maddubs_epi16(lv[1][q], bcast4(y, g + 1)),
                            );
                            *isum = _mm256_add_epi32(*isum, _mm256_madd_epi16(p16, sc));
                        }
                    }
                }
            }
        }
        let dx = f16x8(tb, Q6K_D + 16 * half);
        for (j, (acc, isum)) in acc.iter_mut().zip(isum).enumerate() {
            let y = &act[(c0 + j) * nb + b];
            // The `- 32` of every level: 32 * sum over sub-blocks of
            // scale * bsum, with scale pairs (sc[2i], sc[2i + 1]) of each
            // row in one `madd` operand.
            let mut corr = _mm256_setzero_si256();
            for i in 0..8 {
                let sc2 = _mm256_blend_epi16::<0b1010_1010>(scm[2 * i], scm[2 * i + 1]);
                corr = _mm256_add_epi32(corr, _mm256_madd_epi16(sc2, pair16(y.bsums[2 * i] as i32, y.bsums[2 * i + 1] as i32)));
            }
            let isum = _mm256_sub_epi32(isum, _mm256_slli_epi32::<5>(corr));
            let d = _mm256_mul_ps(dx, _mm256_set1_ps(y.d));
            *acc = _mm256_add_ps(*acc, _mm256_mul_ps(d, _mm256_cvtepi32_ps(isum)));
        }
    });
}

/// # Safety
/// AVX2, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k_iq4_xs<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_K], c0: usize, out: &mut [f32]) {
    let m4 = _mm256_set1_epi8(0x0F);
    let table = iq4_table();
    tile_passes!(NC, tile, nb, IQ4XS_TBB, c0, out, |half, b, acc| {
        let tb = &tile[b * IQ4XS_TBB..(b + 1) * IQ4XS_TBB];
        let mut isum = [_mm256_setzero_si256(); NC];
        for ib in 0..8 {
            let sc = row_scales(tb, IQ4XS_SC + 16 * ib + 8 * half, true);
            let w: [__m256i; 4] = core::array::from_fn(|m| load32(tb, 64 * (4 * ib + m) + 32 * half));
            // Levels (signed bytes) of the low and high nibbles.
            let lo = w.map(|v| _mm256_shuffle_epi8(table, _mm256_and_si256(v, m4)));
            let hi = w.map(|v| _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16::<4>(v), m4)));
            let (alo, ahi) = (lo.map(|v| _mm256_abs_epi8(v)), hi.map(|v| _mm256_abs_epi8(v)));
            for (j, isum) in isum.iter_mut().enumerate() {
                let y = &act[(c0 + j) * nb + b].qs;
                let mut s = _mm256_setzero_si256();
                for m in 0..4 {
                    // |x| * (y with x's sign): |x|, |y| <= 127 (the Q8_K
                    // quantizer's range), each pair at most 32258; the
                    // madd by the row's scale makes it i32.
                    let pl = _mm256_maddubs_epi16(alo[m], _mm256_sign_epi8(bcast4(y, 8 * ib + m), lo[m]));
                    let ph = _mm256_maddubs_epi16(ahi[m], _mm256_sign_epi8(bcast4(y, 8 * ib + 4 + m), hi[m]));
                    s = _mm256_add_epi32(s, _mm256_add_epi32(_mm256_madd_epi16(pl, sc), _mm256_madd_epi16(ph, sc)));
                }
                *isum = _mm256_add_epi32(*isum, s);
            }
        }
        let dx = f16x8(tb, IQ4XS_D + 16 * half);
        for (j, (acc, isum)) in acc.iter_mut().zip(isum).enumerate() {
            // `dot_iq4_xs`: (d * yd) * isum.
            let d = _mm256_mul_ps(dx, _mm256_set1_ps(act[(c0 + j) * nb + b].d));
            *acc = _mm256_add_ps(*acc, _mm256_mul_ps(d, _mm256_cvtepi32_ps(isum)));
        }
    });
}
