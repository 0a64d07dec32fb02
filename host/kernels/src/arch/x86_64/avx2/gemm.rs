//! AVX2 tile kernels (`maddubs`, a tile as two halves of 8 rows), twins of
//! `crate::gemm::scalar`; also the tiles of AVX-512 CPUs without VNNI.
//!
//! Each kernel takes up to four activation rows at a time, so the weights of
//! a block are loaded and unpacked once for all of them. Per row and block
//! the lanes compute the reference's exact integer sum, then its f32 term
//! (same operations, same order, no FMA), then add it to the running sum.

use core::arch::x86_64::*;

use super::blocks::h;
use crate::blocks::{BlockQ8_0, BlockQ8_1};
use crate::gemm::{groups, quant_bytes, tile_args, tile_block_bytes, TileFn, TILE_ROWS};
use crate::iq4::scalar::KVALUES_IQ4NL;
use crate::{GgmlType, KernelPath};

pub(crate) fn tile_fn(ty: GgmlType) -> Option<TileFn> {
    Some(match ty {
        GgmlType::Q4_0 => q4_0,
        GgmlType::Q4_1 => q4_1,
        GgmlType::Q8_0 => q8_0,
        GgmlType::IQ4_NL => iq4_nl,
        GgmlType::Q5_0 => q5_0,
        _ => return None,
    })
}

safe_fn! {
    requires KernelPath::Avx2.is_available();
    fn q4_0(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_0>(GgmlType::Q4_0, tile, nb, act, n, out); }
        unsafe { by_columns!(k_q4_0(tile, nb, act, n, out)) }
    }
    fn q4_1(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_1>(GgmlType::Q4_1, tile, nb, act, n, out); }
        unsafe { by_columns!(k_q4_1(tile, nb, act, n, out)) }
    }
    fn q8_0(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_0>(GgmlType::Q8_0, tile, nb, act, n, out); }
        unsafe { by_columns!(k_q8_0(tile, nb, act, n, out)) }
    }
    fn q5_0(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_0>(GgmlType::Q5_0, tile, nb, act, n, out); }
        unsafe { by_columns!(k_q5_0(tile, nb, act, n, out)) }
    }
    fn iq4_nl(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_0>(GgmlType::IQ4_NL, tile, nb, act, n, out); }
        unsafe { by_columns!(k_iq4_nl(tile, nb, act, n, out)) }
    }
}

/// The exact sum of 32 signed bytes.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn ysum(qs: &[i8; 32]) -> i32 {
    // SAFETY: `qs` is 32 readable bytes; unaligned load.
    let v = unsafe { _mm256_loadu_si256(qs.as_ptr().cast()) };
    // |sum of (q + 128) as u8| via SAD against zero, four u64 partial sums.
    let s = _mm256_sad_epu8(_mm256_xor_si256(v, _mm256_set1_epi8(-128)), _mm256_setzero_si256());
    let s = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
    let s = _mm_add_epi64(s, _mm_unpackhi_epi64(s, s));
    _mm_cvtsi128_si32(s) - 32 * 128
}

// A tile is two halves of 8 rows: bytes 32h..32h + 32 of each 64-byte quant
// vector and f16s 8h..8h + 8 of the scales.

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(super) fn load32(tb: &[u8], off: usize) -> __m256i {
    let s = &tb[off..off + 32];
    // SAFETY: `s` is 32 readable bytes; unaligned load.
    unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(super) fn f16x8(tb: &[u8], off: usize) -> __m256 {
    let s = &tb[off..off + 16];
    // SAFETY: `s` is 16 readable bytes; unaligned load.
    _mm256_cvtph_ps(unsafe { _mm_loadu_si128(s.as_ptr().cast()) })
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(super) fn store8(out: &mut [f32], c: usize, half: usize, v: __m256) {
    let s = &mut out[c * TILE_ROWS + 8 * half..c * TILE_ROWS + 8 * half + 8];
    // SAFETY: `s` is 8 writable f32; unaligned store.
    unsafe { _mm256_storeu_ps(s.as_mut_ptr(), v) }
}

/// Per-lane `sum(code * y)` of 8 rows of 4-bit codes. `maddubs` products of
/// codes (<= 15) and bytes (|y| <= 128) are at most 3840 per pair, so the
/// eight i16 partial sums (<= 30720) add up without saturating.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn isum_nibbles8(lo: &[__m256i; 4], hi: &[__m256i; 4], q: [i32; 8]) -> __m256i {
    let mut s = _mm256_setzero_si256();
    for g in 0..4 {
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(lo[g], _mm256_set1_epi32(q[g])));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(hi[g], _mm256_set1_epi32(q[4 + g])));
    }
    _mm256_madd_epi16(s, _mm256_set1_epi16(1))
}

#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn nibbles8(tb: &[u8], half: usize) -> ([__m256i; 4], [__m256i; 4]) {
    let mask = _mm256_set1_epi8(0x0F);
    let w: [__m256i; 4] = core::array::from_fn(|g| load32(tb, 64 * g + 32 * half));
    (
        w.map(|v| _mm256_and_si256(v, mask)),
        w.map(|v| _mm256_and_si256(_mm256_srli_epi16::<4>(v), mask)),
    )
}

/// # Safety
/// AVX2, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k_q4_1<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_1], c0: usize, out: &mut [f32]) {
    const TBB: usize = tile_block_bytes(GgmlType::Q4_1);
    const QB: usize = quant_bytes(GgmlType::Q4_1);
    tile_passes!(NC, tile, nb, TBB, c0, out, |half, b, acc| {
        let tb = &tile[b * TBB..(b + 1) * TBB];
        let (lo, hi) = nibbles8(tb, half);
        let dx = f16x8(tb, QB + 16 * half);
        let mx = f16x8(tb, QB + 2 * TILE_ROWS + 16 * half);
        for (j, acc) in acc.iter_mut().enumerate() {
            let y = &act[(c0 + j) * nb + b];
            let sumi = _mm256_cvtepi32_ps(isum_nibbles8(&lo, &hi, groups(&y.qs)));
            let dd = _mm256_mul_ps(dx, _mm256_set1_ps(h(y.d)));
            let t = _mm256_add_ps(_mm256_mul_ps(dd, sumi), _mm256_mul_ps(mx, _mm256_set1_ps(h(y.s))));
            *acc = _mm256_add_ps(*acc, t);
        }
    });
}

/// # Safety
/// AVX2, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k_q4_0<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_0], c0: usize, out: &mut [f32]) {
    const TBB: usize = tile_block_bytes(GgmlType::Q4_0);
    const QB: usize = quant_bytes(GgmlType::Q4_0);
    tile_passes!(NC, tile, nb, TBB, c0, out, |half, b, acc| {
        let tb = &tile[b * TBB..(b + 1) * TBB];
        let (lo, hi) = nibbles8(tb, half);
        let dx = f16x8(tb, QB + 16 * half);
        for (j, acc) in acc.iter_mut().enumerate() {
            let y = &act[(c0 + j) * nb + b];
            let codes = isum_nibbles8(&lo, &hi, groups(&y.qs));
            let sumi = _mm256_sub_epi32(codes, _mm256_set1_epi32(8 * ysum(&y.qs)));
            let t = _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(sumi), dx), _mm256_set1_ps(h(y.d)));
            *acc = _mm256_add_ps(*acc, t);
        }
    });
}

/// Per-lane `sum(x * y)` of 8 rows of signed levels `w` (magnitudes `ax`)
/// and one activation block's eight 4-byte groups `q`: `|x|` times `y` with
/// `x`'s sign, as `maddubs` needs one unsigned operand. `|x| <= 128` and
/// `|y| <= 127` (the Q8 quantizers' range), so each pair is at most 32512.
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn isum_signed8(w: &[__m256i; 8], ax: &[__m256i; 8], q: [i32; 8]) -> __m256i {
    let ones = _mm256_set1_epi16(1);
    let mut s = _mm256_setzero_si256();
    for g in 0..8 {
        let sy = _mm256_sign_epi8(_mm256_set1_epi32(q[g]), w[g]);
        s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(ax[g], sy), ones));
    }
    s
}

/// # Safety
/// AVX2, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k_q8_0<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_0], c0: usize, out: &mut [f32]) {
    const TBB: usize = tile_block_bytes(GgmlType::Q8_0);
    const QB: usize = quant_bytes(GgmlType::Q8_0);
    tile_passes!(NC, tile, nb, TBB, c0, out, |half, b, acc| {
        let tb = &tile[b * TBB..(b + 1) * TBB];
        let w: [__m256i; 8] = core::array::from_fn(|g| load32(tb, 64 * g + 32 * half));
        let ax = w.map(|v| _mm256_abs_epi8(v));
        let dx = f16x8(tb, QB + 16 * half);
        for (j, acc) in acc.iter_mut().enumerate() {
            let y = &act[(c0 + j) * nb + b];
            let s = isum_signed8(&w, &ax, groups(&y.qs));
            let dd = _mm256_mul_ps(dx, _mm256_set1_ps(h(y.d)));
            *acc = _mm256_add_ps(*acc, _mm256_mul_ps(_mm256_cvtepi32_ps(s), dd));
        }
    });
}

/// `kvalues_iq4nl` in both 128-bit lanes (a `vpshufb` table).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
pub(crate) fn iq4_table() -> __m256i {
    let t = KVALUES_IQ4NL;
    let lane = _mm_setr_epi8(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13], t[14], t[15]);
    _mm256_set_m128i(lane, lane)
}

/// # Safety
/// AVX2, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k_iq4_nl<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_0], c0: usize, out: &mut [f32]) {
    const TBB: usize = tile_block_bytes(GgmlType::IQ4_NL);
    const QB: usize = quant_bytes(GgmlType::IQ4_NL);
    let table = iq4_table();
    tile_passes!(NC, tile, nb, TBB, c0, out, |half, b, acc| {
        let tb = &tile[b * TBB..(b + 1) * TBB];
        let (lo, hi) = nibbles8(tb, half);
        // The levels (signed bytes), and their magnitudes for maddubs.
        let w: [__m256i; 8] = core::array::from_fn(|g| _mm256_shuffle_epi8(table, if g < 4 { lo[g] } else { hi[g - 4] }));
        let ax = w.map(|v| _mm256_abs_epi8(v));
        let dx = f16x8(tb, QB + 16 * half);
        for (j, acc) in acc.iter_mut().enumerate() {
            let y = &act[(c0 + j) * nb + b];
            let s = isum_signed8(&w, &ax, groups(&y.qs));
            // `dot_iq4_nl`: (dy * dx) * sumi.
            let dd = _mm256_mul_ps(dx, _mm256_set1_ps(h(y.d)));
            *acc = _mm256_add_ps(*acc, _mm256_mul_ps(dd, _mm256_cvtepi32_ps(s)));
        }
    });
}

/// 0x10 in byte `k` of each dword where bit `k` of `x`'s dword is set
/// (k < 4): `(x & 15) * 0x00204081` puts bit `k` of the nibble at bit `8k`
/// (the four copies do not overlap).
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn fifth_bits(x: __m256i) -> __m256i {
    let spread = _mm256_mullo_epi32(_mm256_and_si256(x, _mm256_set1_epi32(15)), _mm256_set1_epi32(0x0020_4081));
    _mm256_slli_epi32::<4>(_mm256_and_si256(spread, _mm256_set1_epi32(0x0101_0101)))
}

/// # Safety
/// AVX2, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k_q5_0<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_0], c0: usize, out: &mut [f32]) {
    const TBB: usize = tile_block_bytes(GgmlType::Q5_0);
    const QB: usize = quant_bytes(GgmlType::Q5_0);
    let m4 = _mm256_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    tile_passes!(NC, tile, nb, TBB, c0, out, |half, b, acc| {
        let tb = &tile[b * TBB..(b + 1) * TBB];
        let qh = load32(tb, 32 * half);
        let w: [__m256i; 4] = core::array::from_fn(|g| load32(tb, 64 * (1 + g) + 32 * half));
        // Levels 0..32: nibble | fifth bit << 4; groups 0..4 low nibbles
        // (elements 4g..), 4..8 high (16 + 4g..).
        let lv: [__m256i; 8] = core::array::from_fn(|i| {
            let (g, shift) = if i < 4 { (i, 4 * i) } else { (i - 4, 16 + 4 * (i - 4)) };
            let nib = if i < 4 { _mm256_and_si256(w[g], m4) } else { _mm256_and_si256(_mm256_srli_epi16::<4>(w[g]), m4) };
            _mm256_or_si256(nib, fifth_bits(_mm256_srl_epi32(qh, _mm_cvtsi32_si128(shift as i32))))
        });
        let dx = f16x8(tb, QB + 16 * half);
        for (j, acc) in acc.iter_mut().enumerate() {
            let y = &act[(c0 + j) * nb + b];
            let q = groups(&y.qs);
            let mut s = _mm256_setzero_si256();
            for g in 0..8 {
                // Pairs of levels (<= 31) and bytes: at most 7936.
                s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(lv[g], _mm256_set1_epi32(q[g])), ones));
            }
            // sum((q - 16) * y) = sum(q * y) - 16 * sum(y), exactly.
            let s = _mm256_sub_epi32(s, _mm256_set1_epi32(16 * ysum(&y.qs)));
            // `term_q5_0`: (dx * dy) * sumi.
            let dd = _mm256_mul_ps(dx, _mm256_set1_ps(h(y.d)));
            *acc = _mm256_add_ps(*acc, _mm256_mul_ps(dd, _mm256_cvtepi32_ps(s)));
        }
    });
}
