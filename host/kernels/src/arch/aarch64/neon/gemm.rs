//! NEON twins of the tile kernels of `crate::gemm::scalar`, in two builds: `sdot` (dotprod extension) and plain
//! NEON (`smull` + pairwise adds). A tile is four quarters of 4 rows: bytes
//! `16i..16i + 16` of each 64-byte quant vector, one `int32x4` lane per row.
//!
//! `sdot` multiplies signed bytes, so 4-bit codes go in as they are (Q4_1)
//! or minus 8 (Q4_0, exactly the reference's `q - 8`), and Q8_0 as stored.
//! Per row and block the lanes compute the reference's exact integer sum,
//! then its f32 term (same operations, same order, no FMA), then add it to
//! the running sum, as the x86 kernels do.

use core::arch::aarch64::*;
use core::arch::asm;

use super::blocks::h2f;
use super::dot_sdot;
use crate::blocks::{BlockQ8_0, BlockQ8_1};
use crate::gemm::{groups, quant_bytes, tile_args, tile_block_bytes, TileFn, TILE_ROWS};
use crate::{GgmlType, KernelPath};

/// The tile kernel of `ty`: the `sdot` build if `dotprod`.
pub(crate) fn tile_fn(ty: GgmlType, dotprod: bool) -> Option<TileFn> {
    Some(match (ty, dotprod) {
        (GgmlType::Q4_0, true) => sdot::q4_0,
        (GgmlType::Q4_1, true) => sdot::q4_1,
        (GgmlType::Q8_0, true) => sdot::q8_0,
        (GgmlType::IQ4_NL, true) => sdot::iq4_nl,
        (GgmlType::Q5_0, true) => sdot::q5_0,
        (GgmlType::Q4_0, false) => plain::q4_0,
        (GgmlType::Q4_1, false) => plain::q4_1,
        (GgmlType::Q8_0, false) => plain::q8_0,
        (GgmlType::IQ4_NL, false) => plain::iq4_nl,
        (GgmlType::Q5_0, false) => plain::q5_0,
        _ => return None,
    })
}

/// Lane `k` += the dot of bytes `4k..4k + 4` of `a` and `b` (exact), without
/// the dotprod extension.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn dot4_plain(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let lo = vpaddlq_s16(vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    let hi = vpaddlq_s16(vmull_high_s8(a, b));
    vaddq_s32(acc, vpaddq_s32(lo, hi))
}

#[target_feature(enable = "neon")]
#[inline]
pub(super) fn load16(tb: &[u8], off: usize) -> uint8x16_t {
    let s = &tb[off..off + 16];
    // SAFETY: `s` is 16 readable bytes.
    unsafe { vld1q_u8(s.as_ptr()) }
}

/// The 4 f16 at `tb[off..]` widened to f32 (`fcvtl`, exact).
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn f16x4(tb: &[u8], off: usize) -> float32x4_t {
    let s = &tb[off..off + 8];
    // SAFETY: `s` is 8 readable bytes.
    let h = unsafe { vld1_u16(s.as_ptr().cast()) };
    let out: float32x4_t;
    // SAFETY: a register-only conversion of the loaded half vector.
    unsafe {
        asm!(
            "fcvtl {out:v}.4s, {h:v}.4h",
            h = in(vreg) h,
            out = out(vreg) out,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    out
}

#[target_feature(enable = "neon")]
#[inline]
pub(super) fn store4(out: &mut [f32], c: usize, quarter: usize, v: float32x4_t) {
    let s = &mut out[c * TILE_ROWS + 4 * quarter..c * TILE_ROWS + 4 * quarter + 4];
    // SAFETY: `s` is 4 writable f32.
    unsafe { vst1q_f32(s.as_mut_ptr(), v) }
}

/// 0x10 in byte `k` of each lane where bit `k` of the lane is set (k < 4):
/// `(x & 15) * 0x00204081` puts bit `k` of the nibble at bit `8k`.
#[target_feature(enable = "neon")]
#[inline]
fn fifth_bits(x: uint32x4_t) -> uint8x16_t {
    let spread = vmulq_u32(vandq_u32(x, vdupq_n_u32(15)), vdupq_n_u32(0x0020_4081));
    vshlq_n_u8::<4>(vreinterpretq_u8_u32(vandq_u32(spread, vdupq_n_u32(0x0101_0101))))
}

/// `kvalues_iq4nl` as a `tbl` table.
#[target_feature(enable = "neon")]
#[inline]
pub(super) fn iq4_table() -> int8x16_t {
    let t = crate::iq4::scalar::KVALUES_IQ4NL;
    // SAFETY: `t` is 16 readable bytes.
    unsafe { vld1q_s8(t.as_ptr()) }
}

macro_rules! tiles {
    ($module:ident, $tf:literal, $dot:ident, $detected:expr) => {
        pub(super) mod $module {
            use super::*;

            safe_fn! {
                requires $detected;
                pub(in super::super) fn q4_0(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
                    checks { let act = tile_args::<BlockQ8_0>(GgmlType::Q4_0, tile, nb, act, n, out); }
                    unsafe { by_columns!(k_q4_0(tile, nb, act, n, out)) }
                }
                pub(in super::super) fn q4_1(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
                    checks { let act = tile_args::<BlockQ8_1>(GgmlType::Q4_1, tile, nb, act, n, out); }
                    unsafe { by_columns!(k_q4_1(tile, nb, act, n, out)) }
                }
                pub(in super::super) fn q8_0(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
                    checks { let act = tile_args::<BlockQ8_0>(GgmlType::Q8_0, tile, nb, act, n, out); }
                    unsafe { by_columns!(k_q8_0(tile, nb, act, n, out)) }
                }
                pub(in super::super) fn q5_0(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
                    checks { let act = tile_args::<BlockQ8_0>(GgmlType::Q5_0, tile, nb, act, n, out); }
                    unsafe { by_columns!(k_q5_0(tile, nb, act, n, out)) }
                }
                pub(in super::super) fn iq4_nl(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
                    checks { let act = tile_args::<BlockQ8_0>(GgmlType::IQ4_NL, tile, nb, act, n, out); }
                    unsafe { by_columns!(k_iq4_nl(tile, nb, act, n, out)) }
                }
            }

            /// Per-lane block sums of 4 rows of 4-bit codes (`off` = 0 or
            /// 8 is subtracted from every code first).
            #[target_feature(enable = $tf)]
            #[inline]
            fn isum_nibbles(lo: &[int8x16_t; 4], hi: &[int8x16_t; 4], q: [i32; 8]) -> int32x4_t {
                let mut s0 = vdupq_n_s32(0);
                let mut s1 = vdupq_n_s32(0);
                for g in 0..4 {
                    s0 = $dot(s0, lo[g], vreinterpretq_s8_s32(vdupq_n_s32(q[g])));
                    s1 = $dot(s1, hi[g], vreinterpretq_s8_s32(vdupq_n_s32(q[4 + g])));
                }
                vaddq_s32(s0, s1)
            }

            #[target_feature(enable = $tf)]
            #[inline]
            fn nibbles(tb: &[u8], quarter: usize, off: i8) -> ([int8x16_t; 4], [int8x16_t; 4]) {
                let mask = vdupq_n_u8(0x0F);
                let o = vdupq_n_s8(off);
                let w: [uint8x16_t; 4] = core::array::from_fn(|g| load16(tb, 64 * g + 16 * quarter));
                (
                    w.map(|v| vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, mask)), o)),
                    w.map(|v| vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(v)), o)),
                )
            }

            /// # Safety
            /// The CPU must have `$tf`; `act` holds columns `c0..c0 + NC`.
            #[target_feature(enable = $tf)]
            unsafe fn k_q4_1<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_1], c0: usize, out: &mut [f32]) {
                const TBB: usize = tile_block_bytes(GgmlType::Q4_1);
                const QB: usize = quant_bytes(GgmlType::Q4_1);
                for quarter in 0..4 {
                    let mut acc = [vdupq_n_f32(0.0); NC];
                    for b in 0..nb {
                        let tb = &tile[b * TBB..(b + 1) * TBB];
                        let (lo, hi) = nibbles(tb, quarter, 0);
                        let dx = f16x4(tb, QB + 8 * quarter);
                        let mx = f16x4(tb, QB + 2 * TILE_ROWS + 8 * quarter);
                        for (j, acc) in acc.iter_mut().enumerate() {
                            let y = &act[(c0 + j) * nb + b];
                            let sumi = vcvtq_f32_s32(isum_nibbles(&lo, &hi, groups(&y.qs)));
                            // (dx * dy) * sumi + m * s
                            let dd = vmulq_f32(dx, vdupq_n_f32(h2f(y.d)));
                            let t = vaddq_f32(vmulq_f32(dd, sumi), vmulq_f32(mx, vdupq_n_f32(h2f(y.s))));
                            *acc = vaddq_f32(*acc, t);
                        }
                    }
                    for (j, a) in acc.into_iter().enumerate() {
                        store4(out, c0 + j, quarter, a);
                    }
                }
            }

            /// # Safety
            /// The CPU must have `$tf`; `act` holds columns `c0..c0 + NC`.
            #[target_feature(enable = $tf)]
            unsafe fn k_q5_0<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_0], c0: usize, out: &mut [f32]) {
                const TBB: usize = tile_block_bytes(GgmlType::Q5_0);
                const QB: usize = quant_bytes(GgmlType::Q5_0);
                let mask = vdupq_n_u8(0x0F);
                let sixteen = vdupq_n_s8(16);
                for quarter in 0..4 {
                    let mut acc = [vdupq_n_f32(0.0); NC];
                    for b in 0..nb {
                        let tb = &tile[b * TBB..(b + 1) * TBB];
                        let qh = vreinterpretq_u32_u8(load16(tb, 16 * quarter));
                        let w: [uint8x16_t; 4] = core::array::from_fn(|g| load16(tb, 64 * (1 + g) + 16 * quarter));
                        // Levels minus 16 (signed, as the reference's `q - 16`).
                        let level = |nib: uint8x16_t, shift: i32| {
                            vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(nib, fifth_bits(vshlq_u32(qh, vdupq_n_s32(-shift))))), sixteen)
                        };
                        let lo: [int8x16_t; 4] = core::array::from_fn(|g| level(vandq_u8(w[g], mask), 4 * g as i32));
                        let hi: [int8x16_t; 4] = core::array::from_fn(|g| level(vshrq_n_u8::<4>(w[g]), 16 + 4 * g as i32));
                        let dx = f16x4(tb, QB + 8 * quarter);
                        for (j, acc) in acc.iter_mut().enumerate() {
                            let y = &act[(c0 + j) * nb + b];
                            let sumi = vcvtq_f32_s32(isum_nibbles(&lo, &hi, groups(&y.qs)));
                            // `term_q5_0`: (dx * dy) * sumi.
                            let dd = vmulq_f32(dx, vdupq_n_f32(h2f(y.d)));
                            *acc = vaddq_f32(*acc, vmulq_f32(dd, sumi));
                        }
                    }
                    for (j, a) in acc.into_iter().enumerate() {
                        store4(out, c0 + j, quarter, a);
                    }
                }
            }

            /// # Safety
            /// The CPU must have `$tf`; `act` holds columns `c0..c0 + NC`.
            #[target_feature(enable = $tf)]
            unsafe fn k_iq4_nl<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_0], c0: usize, out: &mut [f32]) {
                const TBB: usize = tile_block_bytes(GgmlType::IQ4_NL);
                const QB: usize = quant_bytes(GgmlType::IQ4_NL);
                let table = iq4_table();
                let mask = vdupq_n_u8(0x0F);
                for quarter in 0..4 {
                    let mut acc = [vdupq_n_f32(0.0); NC];
                    for b in 0..nb {
                        let tb = &tile[b * TBB..(b + 1) * TBB];
                        let w: [uint8x16_t; 4] = core::array::from_fn(|g| load16(tb, 64 * g + 16 * quarter));
                        // The levels, signed bytes: `sdot` takes them as they are.
                        let lo = w.map(|v| vqtbl1q_s8(table, vandq_u8(v, mask)));
                        let hi = w.map(|v| vqtbl1q_s8(table, vshrq_n_u8::<4>(v)));
                        let dx = f16x4(tb, QB + 8 * quarter);
                        for (j, acc) in acc.iter_mut().enumerate() {
                            let y = &act[(c0 + j) * nb + b];
                            let sumi = vcvtq_f32_s32(isum_nibbles(&lo, &hi, groups(&y.qs)));
                            // `dot_iq4_nl`: (dy * dx) * sumi.
                            let dd = vmulq_f32(dx, vdupq_n_f32(h2f(y.d)));
                            *acc = vaddq_f32(*acc, vmulq_f32(dd, sumi));
                        }
                    }
                    for (j, a) in acc.into_iter().enumerate() {
                        store4(out, c0 + j, quarter, a);
                    }
                }
            }

            /// # Safety
            /// The CPU must have `$tf`; `act` holds columns `c0..c0 + NC`.
            #[target_feature(enable = $tf)]
            unsafe fn k_q4_0<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_0], c0: usize, out: &mut [f32]) {
                const TBB: usize = tile_block_bytes(GgmlType::Q4_0);
                const QB: usize = quant_bytes(GgmlType::Q4_0);
                for quarter in 0..4 {
                    let mut acc = [vdupq_n_f32(0.0); NC];
                    for b in 0..nb {
                        let tb = &tile[b * TBB..(b + 1) * TBB];
                        // q - 8, as the reference.
                        let (lo, hi) = nibbles(tb, quarter, 8);
                        let dx = f16x4(tb, QB + 8 * quarter);
                        for (j, acc) in acc.iter_mut().enumerate() {
                            let y = &act[(c0 + j) * nb + b];
                            let sumi = vcvtq_f32_s32(isum_nibbles(&lo, &hi, groups(&y.qs)));
                            // sumi * dx * dy
                            let t = vmulq_f32(vmulq_f32(sumi, dx), vdupq_n_f32(h2f(y.d)));
                            *acc = vaddq_f32(*acc, t);
                        }
                    }
                    for (j, a) in acc.into_iter().enumerate() {
                        store4(out, c0 + j, quarter, a);
                    }
                }
            }

            /// # Safety
            /// The CPU must have `$tf`; `act` holds columns `c0..c0 + NC`.
            #[target_feature(enable = $tf)]
            unsafe fn k_q8_0<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_0], c0: usize, out: &mut [f32]) {
                const TBB: usize = tile_block_bytes(GgmlType::Q8_0);
                const QB: usize = quant_bytes(GgmlType::Q8_0);
                for quarter in 0..4 {
                    let mut acc = [vdupq_n_f32(0.0); NC];
                    for b in 0..nb {
                        let tb = &tile[b * TBB..(b + 1) * TBB];
                        let w: [int8x16_t; 8] =
                            core::array::from_fn(|g| vreinterpretq_s8_u8(load16(tb, 64 * g + 16 * quarter)));
                        let dx = f16x4(tb, QB + 8 * quarter);
                        for (j, acc) in acc.iter_mut().enumerate() {
                            let y = &act[(c0 + j) * nb + b];
                            let q = groups(&y.qs);
                            let mut s0 = vdupq_n_s32(0);
                            let mut s1 = vdupq_n_s32(0);
                            for g in 0..4 {
                                s0 = $dot(s0, w[g], vreinterpretq_s8_s32(vdupq_n_s32(q[g])));
                                s1 = $dot(s1, w[4 + g], vreinterpretq_s8_s32(vdupq_n_s32(q[4 + g])));
                            }
                            let sumi = vcvtq_f32_s32(vaddq_s32(s0, s1));
                            // sumi * (dx * dy)
                            let dd = vmulq_f32(dx, vdupq_n_f32(h2f(y.d)));
                            *acc = vaddq_f32(*acc, vmulq_f32(sumi, dd));
                        }
                    }
                    for (j, a) in acc.into_iter().enumerate() {
                        store4(out, c0 + j, quarter, a);
                    }
                }
            }
        }
    };
}

tiles!(sdot, "neon,dotprod", dot_sdot, KernelPath::NeonDotprod.is_available());
tiles!(plain, "neon", dot4_plain, KernelPath::Neon.is_available());
