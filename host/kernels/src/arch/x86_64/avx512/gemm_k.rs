//! AVX-512 VNNI tile kernels of the K-quants Q4_K and Q6_K (layout in
//! `crate::gemm::kquants`), twins of the portable tiles there. CPUs with
//! AVX-512 but no VNNI use the AVX2 ones.
//!
//! The 16 rows of a tile are the 16 i32 lanes of one register: `vpdpbusd`
//! adds four code × activation products per row, a sub-block's sum is
//! multiplied by the row's scale (`vpmulld`), and the per-row `isum` and
//! `msum` are the reference's exact integers. The f32 step is `k_term`'s
//! operations in its order. Up to eight activation rows share each block,
//! each weight vector unpacked once and used by every row before the next:
//! the vector operations that unpack the weights are spread over the rows,
//! and those, not `vpdpbusd` alone, bound the speed (both share two ports).

use core::arch::x86_64::*;

use super::gemm::{f16x16, iq4_table_u8, load64, store16};
use crate::gemm::kquants::{IQ4XS_D, IQ4XS_SC, IQ4XS_TBB, Q4K_SC, Q4K_TBB, Q5K_QH, Q5K_SC, Q5K_TBB, Q6K_D, Q6K_QH, Q6K_SC, Q6K_TBB};
use crate::gemm::{tile_args, TileFn};
use crate::k_quants::blocks::{BlockQ8_K, QK_K};
use crate::GgmlType;

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
    requires crate::dispatch::has_avx512vnni();
    fn q4_k(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_K>(GgmlType::Q4_K, tile, nb, act, n, out); }
        unsafe { by_columns8!(k_q4_k(tile, nb, act; n, out)) }
    }
    fn q5_k(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_K>(GgmlType::Q5_K, tile, nb, act, n, out); }
        unsafe { by_columns8!(k_q5_k(tile, nb, act; n, out)) }
    }
    fn q6_k(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_K>(GgmlType::Q6_K, tile, nb, act, n, out); }
        unsafe { by_columns8!(k_q6_k(tile, nb, act; n, out)) }
    }
    fn iq4_xs(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_K>(GgmlType::IQ4_XS, tile, nb, act, n, out); }
        unsafe { by_columns8!(k_iq4_xs(tile, nb, act; n, out)) }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
#[inline]
fn load32(tb: &[u8], off: usize) -> __m256i {
    let s = &tb[off..off + 32];
    // SAFETY: `s` is 32 readable bytes; unaligned load.
    unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
#[inline]
fn load16(tb: &[u8], off: usize) -> __m128i {
    let s = &tb[off..off + 16];
    // SAFETY: `s` is 16 readable bytes; unaligned load.
    unsafe { _mm_loadu_si128(s.as_ptr().cast()) }
}

/// Activation bytes `4g..4g + 4` in every dword.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
#[inline]
fn bcast4(qs: &[i8; QK_K], g: usize) -> __m512i {
    let b = &qs[4 * g..4 * g + 4];
    _mm512_set1_epi32(i32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]))
}

/// # Safety
/// AVX-512 F/BW/VL, VNNI, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
unsafe fn k_q4_k<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_K], c0: usize, out: &mut [f32]) {
    // SAFETY: the same features and contract as this function's.
    unsafe { k_k4::<NC, false>(tile, nb, act, c0, out) }
}

/// # Safety
/// AVX-512 F/BW/VL, VNNI, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
unsafe fn k_q5_k<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_K], c0: usize, out: &mut [f32]) {
    // SAFETY: the same features and contract as this function's.
    unsafe { k_k4::<NC, true>(tile, nb, act, c0, out) }
}

/// Q4_K, or Q5_K (`QH`: levels get their fifth bit from the `qh` vectors).
///
/// # Safety
/// AVX-512 F/BW/VL, VNNI, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
#[inline]
unsafe fn k_k4<const NC: usize, const QH: bool>(tile: &[u8], nb: usize, act: &[BlockQ8_K], c0: usize, out: &mut [f32]) {
    let (tbb, sco) = if QH { (Q5K_TBB, Q5K_SC) } else { (Q4K_TBB, Q4K_SC) };
    let m4 = _mm512_set1_epi8(0x0F);
    let m16 = _mm512_set1_epi8(16);
    let mut acc = [_mm512_setzero_ps(); NC];
    for b in 0..nb {
        if NC == 1 {
            // SAFETY: the same features and contract as this function's.
            unsafe { k4_matvec_block::<QH>(&tile[b * tbb..(b + 1) * tbb], b, &act[c0 * nb + b], &mut acc[0], tile) };
            continue;
        }
        super::super::prefetch_ahead(tile, b, tbb, true);
        let tb = &tile[b * tbb..(b + 1) * tbb];
        let mut isum = [_mm512_setzero_si512(); NC];
        for k in 0..4 {
            // Vector m's levels serve every row before the next vector's
            // are made: two registers of levels, 2 * NC of sums.
            let mut sl = [_mm512_setzero_si512(); NC];
            let mut sh = [_mm512_setzero_si512(); NC];
            for m in 0..8 {
                let w = load64(tb, 64 * (8 * k + m));
                let mut lo = _mm512_and_si512(w, m4);
                let mut hi = _mm512_and_si512(_mm512_srli_epi16::<4>(w), m4);
                if QH {
                    // 16 where bit 2k (2k + 1) of the element's qh byte is set.
                    let qh = load64(tb, Q5K_QH + 64 * m);
                    let (bl, bh) = (_mm512_set1_epi8(1 << (2 * k)), _mm512_set1_epi8(1 << (2 * k + 1)));
                    lo = _mm512_or_si512(lo, _mm512_maskz_mov_epi8(_mm512_test_epi8_mask(qh, bl), m16));
                    hi = _mm512_or_si512(hi, _mm512_maskz_mov_epi8(_mm512_test_epi8_mask(qh, bh), m16));
                }
                for j in 0..NC {
                    let y = &act[(c0 + j) * nb + b].qs;
                    sl[j] = _mm512_dpbusd_epi32(sl[j], lo, bcast4(y, 16 * k + m));
                    sh[j] = _mm512_dpbusd_epi32(sh[j], hi, bcast4(y, 16 * k + 8 + m));
                }
            }
            let (sc_lo, sc_hi) = (_mm512_cvtepu8_epi32(load16(tb, sco + 32 * k)), _mm512_cvtepu8_epi32(load16(tb, sco + 32 * k + 16)));
            for j in 0..NC {
                let s = _mm512_add_epi32(_mm512_mullo_epi32(sl[j], sc_lo), _mm512_mullo_epi32(sh[j], sc_hi));
                isum[j] = _mm512_add_epi32(isum[j], s);
            }
        }
        // Row r's min pairs (m[2i], m[2i + 1]) as i16 in dword r.
        let mins: [__m512i; 4] = core::array::from_fn(|i| _mm512_cvtepu8_epi16(load32(tb, sco + 128 + 32 * i)));
        let dx = f16x16(tb, sco + 256);
        let mx = f16x16(tb, sco + 288);
        for (j, (acc, isum)) in acc.iter_mut().zip(isum).enumerate() {
            let y = &act[(c0 + j) * nb + b];
            let bs = |j: usize| y.bsums[2 * j] as i32 + y.bsums[2 * j + 1] as i32;
            let mut msum = _mm512_setzero_si512();
            for (i, m) in mins.iter().enumerate() {
                // m[2i] * bs[2i] + m[2i + 1] * bs[2i + 1] added to each dword
                // (`vpdpwssd`; exact, as `vpmaddwd` then add).
                let pair = (bs(2 * i) & 0xFFFF) | (bs(2 * i + 1) << 16);
                msum = _mm512_dpwssd_epi32(msum, *m, _mm512_set1_epi32(pair));
            }
            let yd = _mm512_set1_ps(y.d);
            let t = _mm512_add_ps(*acc, _mm512_mul_ps(_mm512_mul_ps(dx, yd), _mm512_cvtepi32_ps(isum)));
            *acc = _mm512_sub_ps(t, _mm512_mul_ps(_mm512_mul_ps(mx, yd), _mm512_cvtepi32_ps(msum)));
        }
    }
    for (j, a) in acc.into_iter().enumerate() {
        store16(out, c0 + j, a);
    }
}

/// One Q4_K (Q5_K) tile-block of [`k_k4`] against one activation row
/// (decode), adding its f32 step to `acc`.
///
/// With one activation row, `k_k4`'s form (two sums of eight `vpdpbusd`
/// per sub-block pair, one pair after the other) is a chain of dependent
/// multiply-adds: the core waits on their latency, not their throughput.
/// Here the eight sub-blocks' sums are eight independent chains, interleaved,
/// so the multiply-adds issue back to back. Integer sums are exact, so the
/// order changes no bit. For Q4_K the high nibbles are multiplied in place
/// (`w & 0xF0` is 16 × the nibble; u8 × i8 products stay exact) and the sum
/// shifted back, which saves a shift per vector.
///
/// # Safety
/// AVX-512 F/BW/VL, VNNI, FMA and F16C; `tb` is one tile-block of `tile`
/// (block `b`, for the prefetch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
#[inline]
unsafe fn k4_matvec_block<const QH: bool>(tb: &[u8], b: usize, y: &BlockQ8_K, acc: &mut __m512, tile: &[u8]) {
    let (tbb, sco) = if QH { (Q5K_TBB, Q5K_SC) } else { (Q4K_TBB, Q4K_SC) };
    super::super::prefetch_ahead(tile, b, tbb, true);
    let m4 = _mm512_set1_epi8(0x0F);
    let mf0 = _mm512_set1_epi8(-0x10);
    let m16 = _mm512_set1_epi8(16);
    // s[2k]: sub-block 2k (low nibbles of vectors 8k..8k + 8), s[2k + 1]:
    // sub-block 2k + 1 (their high nibbles; 16 × the sum for Q4_K).
    let mut s = [_mm512_setzero_si512(); 8];
    for m in 0..8 {
        let qh = if QH { load64(tb, Q5K_QH + 64 * m) } else { m4 };
        for k in 0..4 {
            let w = load64(tb, 64 * (8 * k + m));
            let (lo, hi) = if QH {
                let (bl, bh) = (_mm512_set1_epi8(1 << (2 * k)), _mm512_set1_epi8(1 << (2 * k + 1)));
                let lo = _mm512_or_si512(_mm512_and_si512(w, m4), _mm512_maskz_mov_epi8(_mm512_test_epi8_mask(qh, bl), m16));
                let hi = _mm512_and_si512(_mm512_srli_epi16::<4>(w), m4);
                (lo, _mm512_or_si512(hi, _mm512_maskz_mov_epi8(_mm512_test_epi8_mask(qh, bh), m16)))
            } else {
                (_mm512_and_si512(w, m4), _mm512_and_si512(w, mf0))
            };
            s[2 * k] = _mm512_dpbusd_epi32(s[2 * k], lo, bcast4(&y.qs, 16 * k + m));
            s[2 * k + 1] = _mm512_dpbusd_epi32(s[2 * k + 1], hi, bcast4(&y.qs, 16 * k + 8 + m));
        }
    }
    let mut isum = _mm512_setzero_si512();
    for (j, s) in s.into_iter().enumerate() {
        // Exact: for Q4_K the high sums are multiples of 16.
        let s = if !QH && j % 2 == 1 { _mm512_srai_epi32::<4>(s) } else { s };
        isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(s, _mm512_cvtepu8_epi32(load16(tb, sco + 16 * j))));
    }
    let bs = |j: usize| y.bsums[2 * j] as i32 + y.bsums[2 * j + 1] as i32;
    let mut msum = _mm512_setzero_si512();
    for i in 0..4 {
        let m = _mm512_cvtepu8_epi16(load32(tb, sco + 128 + 32 * i));
        let pair = (bs(2 * i) & 0xFFFF) | (bs(2 * i + 1) << 16);
        msum = _mm512_dpwssd_epi32(msum, m, _mm512_set1_epi32(pair));
    }
    let yd = _mm512_set1_ps(y.d);
    let t = _mm512_add_ps(*acc, _mm512_mul_ps(_mm512_mul_ps(f16x16(tb, sco + 256), yd), _mm512_cvtepi32_ps(isum)));
    *acc = _mm512_sub_ps(t, _mm512_mul_ps(_mm512_mul_ps(f16x16(tb, sco + 288), yd), _mm512_cvtepi32_ps(msum)));
}

/// Level vector `q` (0..63, unsigned, for `vpdpbusd`) of the four that
/// Q6_K's `ql` vectors `16n + m` and `16n + 8 + m` and `qh` vector `8n + m`
/// make: it belongs to sub-block `8n + 2q + m / 4`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
#[inline]
fn q6_level(tb: &[u8], n: usize, m: usize, q: usize) -> __m512i {
    let m4 = _mm512_set1_epi8(0x0F);
    let bits = |h: __m512i, mask: i8| _mm512_and_si512(h, _mm512_set1_epi8(mask));
    // Low nibbles of `ql` vector 16n + m (q = 0, 2) or 16n + 8 + m (1, 3)...
    let l = load64(tb, 64 * (16 * n + 8 * (q & 1) + m));
    let h = load64(tb, Q6K_QH + 64 * (8 * n + m));
    match q {
        0 => _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_slli_epi16::<4>(bits(h, 0x03))),
        1 => _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_slli_epi16::<2>(bits(h, 0x0C))),
        // ... or their high nibbles.
        2 => _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16::<4>(l), m4), bits(h, 0x30)),
        _ => _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16::<4>(l), m4), _mm512_srli_epi16::<2>(bits(h, -0x40))),
    }
}

/// All four of [`q6_level`]'s vectors.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
#[inline]
fn q6_levels(tb: &[u8], n: usize, m: usize) -> [__m512i; 4] {
    [q6_level(tb, n, m, 0), q6_level(tb, n, m, 1), q6_level(tb, n, m, 2), q6_level(tb, n, m, 3)]
}

/// # Safety
/// AVX-512 F/BW/VL, VNNI, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
unsafe fn k_q6_k<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_K], c0: usize, out: &mut [f32]) {
    let mut acc = [_mm512_setzero_ps(); NC];
    for b in 0..nb {
        if NC == 1 {
            // SAFETY: the same features and contract as this function's.
            unsafe { k6_matvec_block(&tile[b * Q6K_TBB..(b + 1) * Q6K_TBB], b, &act[c0 * nb + b], &mut acc[0], tile) };
            continue;
        }
        super::super::prefetch_ahead(tile, b, Q6K_TBB, true);
        let tb = &tile[b * Q6K_TBB..(b + 1) * Q6K_TBB];
        let mut isum = [_mm512_setzero_si512(); NC];
        for n in 0..2 {
            for s in 0..2 {
                for q in 0..4 {
                    // Sub-block 8n + 2q + s: the elements 128n + 32q + 4m..
                    // for m = 4s..4s + 4. Each level vector serves every
                    // row before the next is made: one register of levels,
                    // NC of sums, each started at its correction:
                    // sum((q - 32) * y) = -32 * bsum + sum(q * y), exactly.
                    let sub = 8 * n + 2 * q + s;
                    let mut sq = [_mm512_setzero_si512(); NC];
                    for (j, sq) in sq.iter_mut().enumerate() {
                        *sq = _mm512_set1_epi32(-32 * act[(c0 + j) * nb + b].bsums[sub] as i32);
                    }
                    for i in 0..4 {
                        let lv = q6_level(tb, n, 4 * s + i, q);
                        for (j, sq) in sq.iter_mut().enumerate() {
                            let y = &act[(c0 + j) * nb + b].qs;
                            *sq = _mm512_dpbusd_epi32(*sq, lv, bcast4(y, 32 * n + 8 * q + 4 * s + i));
                        }
                    }
                    let sc = _mm512_cvtepi8_epi32(load16(tb, Q6K_SC + 16 * sub));
                    for (isum, sq) in isum.iter_mut().zip(sq) {
                        *isum = _mm512_add_epi32(*isum, _mm512_mullo_epi32(sq, sc));
                    }
                }
            }
        }
        let dx = f16x16(tb, Q6K_D);
        for (j, (acc, isum)) in acc.iter_mut().zip(isum).enumerate() {
            let d = _mm512_mul_ps(dx, _mm512_set1_ps(act[(c0 + j) * nb + b].d));
            *acc = _mm512_add_ps(*acc, _mm512_mul_ps(d, _mm512_cvtepi32_ps(isum)));
        }
    }
    for (j, a) in acc.into_iter().enumerate() {
        store16(out, c0 + j, a);
    }
}

/// One Q6_K tile-block of [`k_q6_k`] against one activation row (decode),
/// adding its f32 step to `acc`: the 16 sub-block sums are 16 independent
/// `vpdpbusd` chains of four, interleaved (see [`k4_matvec_block`]).
///
/// # Safety
/// AVX-512 F/BW/VL, VNNI, FMA and F16C; `tb` is one tile-block of `tile`
/// (block `b`, for the prefetch).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
#[inline]
unsafe fn k6_matvec_block(tb: &[u8], b: usize, y: &BlockQ8_K, acc: &mut __m512, tile: &[u8]) {
    super::super::prefetch_ahead(tile, b, Q6K_TBB, true);
    // sq[sub]: sub-block sub = 8n + 2q + s, the elements 128n + 32q + 4m..
    // for m = 4s..4s + 4, as in `k_q6_k`.
    // Each sum starts at its correction: sum((q - 32) * y) = -32 * bsum +
    // sum(q * y), exactly.
    let mut sq = [_mm512_setzero_si512(); 16];
    for (sub, sq) in sq.iter_mut().enumerate() {
        *sq = _mm512_set1_epi32(-32 * y.bsums[sub] as i32);
    }
    for i in 0..4 {
        for n in 0..2 {
            for s in 0..2 {
                let lv = q6_levels(tb, n, 4 * s + i);
                for (q, lv) in lv.into_iter().enumerate() {
                    let sub = 8 * n + 2 * q + s;
                    sq[sub] = _mm512_dpbusd_epi32(sq[sub], lv, bcast4(&y.qs, 32 * n + 8 * q + 4 * s + i));
                }
            }
        }
    }
    let mut isum = _mm512_setzero_si512();
    for (sub, sq) in sq.into_iter().enumerate() {
        isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(sq, _mm512_cvtepi8_epi32(load16(tb, Q6K_SC + 16 * sub))));
    }
    let d = _mm512_mul_ps(f16x16(tb, Q6K_D), _mm512_set1_ps(y.d));
    *acc = _mm512_add_ps(*acc, _mm512_mul_ps(d, _mm512_cvtepi32_ps(isum)));
}

/// # Safety
/// AVX-512 F/BW/VL, VNNI, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
unsafe fn k_iq4_xs<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_K], c0: usize, out: &mut [f32]) {
    let m4 = _mm512_set1_epi8(0x0F);
    let table = iq4_table_u8();
    let mut acc = [_mm512_setzero_ps(); NC];
    for b in 0..nb {
        super::super::prefetch_ahead(tile, b, IQ4XS_TBB, true);
        let tb = &tile[b * IQ4XS_TBB..(b + 1) * IQ4XS_TBB];
        let mut isum = [_mm512_setzero_si512(); NC];
        for ib in 0..8 {
            let sc = _mm512_cvtepi8_epi32(load16(tb, IQ4XS_SC + 16 * ib));
            let w: [__m512i; 4] = core::array::from_fn(|m| load64(tb, 64 * (4 * ib + m)));
            // Levels + 128 as u8, so vpdpbusd (u8 x i8) applies.
            let lo = w.map(|v| _mm512_shuffle_epi8(table, _mm512_and_si512(v, m4)));
            let hi = w.map(|v| _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16::<4>(v), m4)));
            for (j, isum) in isum.iter_mut().enumerate() {
                let y = &act[(c0 + j) * nb + b];
                // -128 * sum(y) + sum((x + 128) * y) = sum(x * y), exactly.
                let ysum = y.bsums[2 * ib] as i32 + y.bsums[2 * ib + 1] as i32;
                let mut s = _mm512_set1_epi32(-128 * ysum);
                for m in 0..4 {
                    s = _mm512_dpbusd_epi32(s, lo[m], bcast4(&y.qs, 8 * ib + m));
                    s = _mm512_dpbusd_epi32(s, hi[m], bcast4(&y.qs, 8 * ib + 4 + m));
                }
                *isum = _mm512_add_epi32(*isum, _mm512_mullo_epi32(s, sc));
            }
        }
        let dx = f16x16(tb, IQ4XS_D);
        for (j, (acc, isum)) in acc.iter_mut().zip(isum).enumerate() {
            // `dot_iq4_xs`: (d * yd) * isum.
            let d = _mm512_mul_ps(dx, _mm512_set1_ps(act[(c0 + j) * nb + b].d));
            *acc = _mm512_add_ps(*acc, _mm512_mul_ps(d, _mm512_cvtepi32_ps(isum)));
        }
    }
    for (j, a) in acc.into_iter().enumerate() {
        store16(out, c0 + j, a);
    }
}
