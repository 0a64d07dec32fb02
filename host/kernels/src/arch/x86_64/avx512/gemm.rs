//! AVX-512 VNNI tile kernels (`vpdpbusd`, 16 rows per register), twins of
//! `crate::gemm::scalar`. CPUs with AVX-512 but no VNNI use the AVX2 tiles.
//!
//! Each kernel takes up to eight activation rows at a time, so the weights
//! of a block are loaded and unpacked once for all of them. Per row and block
//! the lanes compute the reference's exact integer sum, then its f32 term
//! (same operations, same order, no FMA), then add it to the running sum.
//! The kernels of Q8_0 activations read each activation block's f32 scale
//! and `-128 × Σ qs` from `crate::gemm::Q8Prep`, worked out once per block
//! of activation rows instead of once per tile.

use core::arch::x86_64::*;

use super::super::avx2::blocks::h;
use crate::blocks::{BlockQ8_0, BlockQ8_1};
use crate::gemm::{groups, quant_bytes, tile_args, tile_block_bytes, PrepTileFn, Q8Prep, TileFn, TILE_ROWS};
use crate::GgmlType;

pub(crate) fn tile_fn(ty: GgmlType) -> Option<TileFn> {
    Some(match ty {
        GgmlType::Q4_1 => q4_1,
        _ => return None,
    })
}

/// The tile kernel of `ty` that takes prepared activations, if any.
pub(crate) fn prep_tile_fn(ty: GgmlType) -> Option<PrepTileFn> {
    Some(match ty {
        GgmlType::Q8_0 => q8_0,
        GgmlType::Q4_0 => q4_0,
        GgmlType::Q5_0 => q5_0,
        GgmlType::IQ4_NL => iq4_nl,
        _ => return None,
    })
}

/// [`by_columns8!`] for the kernels that also take `prep`.
macro_rules! by_columns_prep {
    ($kernel:ident($tile:expr, $nb:expr, $act:expr, $prep:expr, $n:expr, $out:expr)) => {{
        assert_eq!($prep.len(), $act.len(), "one Q8Prep per activation block");
        by_columns8!($kernel($tile, $nb, $act, $prep; $n, $out))
    }};
}

safe_fn! {
    requires crate::dispatch::has_avx512vnni();
    fn q8_0(tile: &[u8], nb: usize, act: &[u8], prep: &[Q8Prep], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_0>(GgmlType::Q8_0, tile, nb, act, n, out); }
        unsafe { by_columns_prep!(k_q8_0(tile, nb, act, prep, n, out)) }
    }
    fn q4_0(tile: &[u8], nb: usize, act: &[u8], prep: &[Q8Prep], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_0>(GgmlType::Q4_0, tile, nb, act, n, out); }
        unsafe { by_columns_prep!(k_q4_0(tile, nb, act, prep, n, out)) }
    }
    fn q5_0(tile: &[u8], nb: usize, act: &[u8], prep: &[Q8Prep], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_0>(GgmlType::Q5_0, tile, nb, act, n, out); }
        unsafe { by_columns_prep!(k_q5_0(tile, nb, act, prep, n, out)) }
    }
    fn iq4_nl(tile: &[u8], nb: usize, act: &[u8], prep: &[Q8Prep], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_0>(GgmlType::IQ4_NL, tile, nb, act, n, out); }
        unsafe { by_columns_prep!(k_iq4_nl(tile, nb, act, prep, n, out)) }
    }
}

safe_fn! {
    requires crate::dispatch::has_avx512vnni();
    fn q4_1(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
        checks { let act = tile_args::<BlockQ8_1>(GgmlType::Q4_1, tile, nb, act, n, out); }
        unsafe { by_columns8!(k_q4_1(tile, nb, act; n, out)) }
    }
}

/// Loads 64 bytes at `tb[off..]`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
#[inline]
pub(super) fn load64(tb: &[u8], off: usize) -> __m512i {
    let s = &tb[off..off + 64];
    // SAFETY: `s` is 64 readable bytes; unaligned load.
    unsafe { _mm512_loadu_si512(s.as_ptr().cast()) }
}

/// The 16 f16 at `tb[off..]` widened to f32 (exact).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
#[inline]
pub(super) fn f16x16(tb: &[u8], off: usize) -> __m512 {
    let s = &tb[off..off + 32];
    // SAFETY: `s` is 32 readable bytes; unaligned load.
    _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(s.as_ptr().cast()) })
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
#[inline]
pub(super) fn store16(out: &mut [f32], c: usize, v: __m512) {
    let s = &mut out[c * TILE_ROWS..(c + 1) * TILE_ROWS];
    // SAFETY: `s` is 16 writable f32; unaligned store.
    unsafe { _mm512_storeu_ps(s.as_mut_ptr(), v) }
}

/// Low and high nibbles of the four quant vectors of a 4-bit tile-block.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
#[inline]
fn nibbles16(tb: &[u8]) -> ([__m512i; 4], [__m512i; 4]) {
    let mask = _mm512_set1_epi8(0x0F);
    let w: [__m512i; 4] = core::array::from_fn(|g| load64(tb, 64 * g));
    (
        w.map(|v| _mm512_and_si512(v, mask)),
        w.map(|v| _mm512_and_si512(_mm512_srli_epi16::<4>(v), mask)),
    )
}

/// Per-lane `init + sum(code * y)` of a 4-bit tile-block (`init` is a
/// kernel's correction term, added first instead of subtracted last: the
/// sum is exact either way).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
#[inline]
fn isum_nibbles16(lo: &[__m512i; 4], hi: &[__m512i; 4], q: [i32; 8], init: i32) -> __m512i {
    let mut s0 = _mm512_set1_epi32(init);
    let mut s1 = _mm512_setzero_si512();
    for g in 0..4 {
        s0 = _mm512_dpbusd_epi32(s0, lo[g], _mm512_set1_epi32(q[g]));
        s1 = _mm512_dpbusd_epi32(s1, hi[g], _mm512_set1_epi32(q[4 + g]));
    }
    _mm512_add_epi32(s0, s1)
}

/// # Safety
/// AVX-512 F/BW/VL, VNNI, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
unsafe fn k_q4_1<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_1], c0: usize, out: &mut [f32]) {
    const TBB: usize = tile_block_bytes(GgmlType::Q4_1);
    const QB: usize = quant_bytes(GgmlType::Q4_1);
    let mut acc = [_mm512_setzero_ps(); NC];
    for b in 0..nb {
        super::super::prefetch_ahead(tile, b, TBB, true);
        let tb = &tile[b * TBB..(b + 1) * TBB];
        let (lo, hi) = nibbles16(tb);
        let dx = f16x16(tb, QB);
        let mx = f16x16(tb, QB + 2 * TILE_ROWS);
        for (j, acc) in acc.iter_mut().enumerate() {
            let y = &act[(c0 + j) * nb + b];
            let sumi = _mm512_cvtepi32_ps(isum_nibbles16(&lo, &hi, groups(&y.qs), 0));
            // (dx * dy) * sumi + m * s
            let dd = _mm512_mul_ps(dx, _mm512_set1_ps(h(y.d)));
            let t = _mm512_add_ps(_mm512_mul_ps(dd, sumi), _mm512_mul_ps(mx, _mm512_set1_ps(h(y.s))));
            *acc = _mm512_add_ps(*acc, t);
        }
    }
    for (j, a) in acc.into_iter().enumerate() {
        store16(out, c0 + j, a);
    }
}

/// # Safety
/// AVX-512 F/BW/VL, VNNI, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
unsafe fn k_q4_0<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_0], prep: &[Q8Prep], c0: usize, out: &mut [f32]) {
    const TBB: usize = tile_block_bytes(GgmlType::Q4_0);
    const QB: usize = quant_bytes(GgmlType::Q4_0);
    let mut acc = [_mm512_setzero_ps(); NC];
    for b in 0..nb {
        super::super::prefetch_ahead(tile, b, TBB, true);
        let tb = &tile[b * TBB..(b + 1) * TBB];
        let (lo, hi) = nibbles16(tb);
        let dx = f16x16(tb, QB);
        for (j, acc) in acc.iter_mut().enumerate() {
            let (y, p) = (&act[(c0 + j) * nb + b], prep[(c0 + j) * nb + b]);
            // sum((q - 8) * y) = sum(q * y) - 8 * sum(y), exactly (neg_bias
            // is -128 * sum(y)).
            let sumi = isum_nibbles16(&lo, &hi, groups(&y.qs), p.neg_bias >> 4);
            // sumi * dx * dy
            let t = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(sumi), dx), _mm512_set1_ps(p.d));
            *acc = _mm512_add_ps(*acc, t);
        }
    }
    for (j, a) in acc.into_iter().enumerate() {
        store16(out, c0 + j, a);
    }
}

/// The Q8_0 tile kernel: per block and activation row, eight `vpdpbusd`
/// whose activation operand is a broadcast from memory, started at the
/// correction from `prep`, then the reference's f32 operations.
/// Counting vector operations per block and row (see `by_columns8!`):
/// eight `vpdpbusd`, four f32 steps and an eighth of the weights' flips;
/// the correction as the chain's start saves two more.
///
/// # Safety
/// AVX-512 F/BW/VL, VNNI, FMA and F16C; `act` and `prep` hold columns
/// `c0..c0 + NC`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
unsafe fn k_q8_0<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_0], prep: &[Q8Prep], c0: usize, out: &mut [f32]) {
    const TBB: usize = tile_block_bytes(GgmlType::Q8_0);
    const QB: usize = quant_bytes(GgmlType::Q8_0);
    let flip = _mm512_set1_epi8(-128);
    let mut acc = [_mm512_setzero_ps(); NC];
    // Each row's blocks and preps, sliced once (`b < nb` then needs no
    // bounds check in the loop).
    let (mut ys, mut ps): ([&[BlockQ8_0]; NC], [&[Q8Prep]; NC]) = ([&[]; NC], [&[]; NC]);
    for j in 0..NC {
        ys[j] = &act[(c0 + j) * nb..(c0 + j + 1) * nb];
        ps[j] = &prep[(c0 + j) * nb..(c0 + j + 1) * nb];
    }
    for b in 0..nb {
        super::super::prefetch_ahead(tile, b, TBB, true);
        let tb = &tile[b * TBB..(b + 1) * TBB];
        // x + 128 as u8, so vpdpbusd (u8 x i8) applies.
        let w: [__m512i; 8] = core::array::from_fn(|g| _mm512_xor_si512(load64(tb, 64 * g), flip));
        let dx = f16x16(tb, QB);
        // -128 * sum(y) + sum((x + 128) * y) = sum(x * y), exactly: each
        // row's sum is one chain of eight started at the correction, the
        // rows' chains interleaved so the core always has independent ones.
        let mut sumi = [_mm512_setzero_si512(); NC];
        for (s, p) in sumi.iter_mut().zip(ps) {
            *s = _mm512_set1_epi32(p[b].neg_bias);
        }
        for g in 0..8 {
            for (j, s) in sumi.iter_mut().enumerate() {
                let q = &ys[j][b].qs;
                let y = i32::from_le_bytes([q[4 * g] as u8, q[4 * g + 1] as u8, q[4 * g + 2] as u8, q[4 * g + 3] as u8]);
                *s = _mm512_dpbusd_epi32(*s, w[g], _mm512_set1_epi32(y));
            }
        }
        for (j, (acc, s)) in acc.iter_mut().zip(sumi).enumerate() {
            // sumi * (dx * dy)
            let dd = _mm512_mul_ps(dx, _mm512_set1_ps(ps[j][b].d));
            *acc = _mm512_add_ps(*acc, _mm512_mul_ps(_mm512_cvtepi32_ps(s), dd));
        }
    }
    for (j, a) in acc.into_iter().enumerate() {
        store16(out, c0 + j, a);
    }
}

/// `kvalues_iq4nl + 128` (unsigned, for `vpdpbusd`) in every 128-bit lane.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
#[inline]
pub(crate) fn iq4_table_u8() -> __m512i {
    let t = crate::iq4::scalar::KVALUES_IQ4NL.map(|v| (v as i32 + 128) as u8 as i8);
    let lane = _mm_setr_epi8(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13], t[14], t[15]);
    _mm512_broadcast_i32x4(lane)
}

/// # Safety
/// AVX-512 F/BW/VL, VNNI, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
unsafe fn k_iq4_nl<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_0], prep: &[Q8Prep], c0: usize, out: &mut [f32]) {
    const TBB: usize = tile_block_bytes(GgmlType::IQ4_NL);
    const QB: usize = quant_bytes(GgmlType::IQ4_NL);
    let table = iq4_table_u8();
    let mut acc = [_mm512_setzero_ps(); NC];
    for b in 0..nb {
        super::super::prefetch_ahead(tile, b, TBB, true);
        let tb = &tile[b * TBB..(b + 1) * TBB];
        let (lo, hi) = nibbles16(tb);
        // Levels + 128 as u8, so vpdpbusd (u8 x i8) applies.
        let (lo, hi) = (lo.map(|v| _mm512_shuffle_epi8(table, v)), hi.map(|v| _mm512_shuffle_epi8(table, v)));
        let dx = f16x16(tb, QB);
        for (j, acc) in acc.iter_mut().enumerate() {
            let (y, p) = (&act[(c0 + j) * nb + b], prep[(c0 + j) * nb + b]);
            // -128 * sum(y) + sum((x + 128) * y) = sum(x * y), exactly.
            let s = isum_nibbles16(&lo, &hi, groups(&y.qs), p.neg_bias);
            // `dot_iq4_nl`: (dy * dx) * sumi.
            let dd = _mm512_mul_ps(dx, _mm512_set1_ps(p.d));
            *acc = _mm512_add_ps(*acc, _mm512_mul_ps(dd, _mm512_cvtepi32_ps(s)));
        }
    }
    for (j, a) in acc.into_iter().enumerate() {
        store16(out, c0 + j, a);
    }
}

/// 0x10 in byte `k` of each dword where bit `k` of `x`'s dword is set
/// (k < 4): `(x & 15) * 0x00204081` puts bit `k` of the nibble at bit `8k`
/// (the four copies do not overlap).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
#[inline]
fn fifth_bits(x: __m512i) -> __m512i {
    let spread = _mm512_mullo_epi32(_mm512_and_si512(x, _mm512_set1_epi32(15)), _mm512_set1_epi32(0x0020_4081));
    _mm512_slli_epi32::<4>(_mm512_and_si512(spread, _mm512_set1_epi32(0x0101_0101)))
}

/// # Safety
/// AVX-512 F/BW/VL, VNNI, FMA and F16C; `act` holds columns `c0..c0 + NC`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,fma,f16c")]
unsafe fn k_q5_0<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_0], prep: &[Q8Prep], c0: usize, out: &mut [f32]) {
    const TBB: usize = tile_block_bytes(GgmlType::Q5_0);
    const QB: usize = quant_bytes(GgmlType::Q5_0);
    let m4 = _mm512_set1_epi8(0x0F);
    let mut acc = [_mm512_setzero_ps(); NC];
    for b in 0..nb {
        super::super::prefetch_ahead(tile, b, TBB, true);
        let tb = &tile[b * TBB..(b + 1) * TBB];
        let qh = load64(tb, 0);
        let w: [__m512i; 4] = core::array::from_fn(|g| load64(tb, 64 * (1 + g)));
        // Levels 0..32 (unsigned, for vpdpbusd): nibble | fifth bit << 4.
        let lo: [__m512i; 4] = core::array::from_fn(|g| {
            _mm512_or_si512(_mm512_and_si512(w[g], m4), fifth_bits(_mm512_srl_epi32(qh, _mm_cvtsi32_si128(4 * g as i32))))
        });
        let hi: [__m512i; 4] = core::array::from_fn(|g| {
            let nib = _mm512_and_si512(_mm512_srli_epi16::<4>(w[g]), m4);
            _mm512_or_si512(nib, fifth_bits(_mm512_srl_epi32(qh, _mm_cvtsi32_si128(16 + 4 * g as i32))))
        });
        let dx = f16x16(tb, QB);
        for (j, acc) in acc.iter_mut().enumerate() {
            let (y, p) = (&act[(c0 + j) * nb + b], prep[(c0 + j) * nb + b]);
            // sum((q - 16) * y) = sum(q * y) - 16 * sum(y), exactly
            // (neg_bias is -128 * sum(y)).
            let s = isum_nibbles16(&lo, &hi, groups(&y.qs), p.neg_bias >> 3);
            // `term_q5_0`: (dx * dy) * sumi.
            let dd = _mm512_mul_ps(dx, _mm512_set1_ps(p.d));
            *acc = _mm512_add_ps(*acc, _mm512_mul_ps(dd, _mm512_cvtepi32_ps(s)));
        }
    }
    for (j, a) in acc.into_iter().enumerate() {
        store16(out, c0 + j, a);
    }
}
