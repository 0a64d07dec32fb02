//! NEON twins of the K-quant tile kernels of `crate::gemm::kquants` (Q4_K,
//! Q6_K), in two builds: `sdot` (dotprod extension) and plain NEON (the
//! exact `dot4_plain` of `gemm`). A tile is four quarters of 4 rows: bytes
//! `16i..16i + 16` of each 64-byte vector, one `int32x4` lane per row.
//!
//! Levels go in unsigned (0..16, 0..64: valid signed bytes too); a
//! sub-block's four-byte dots are summed per row, multiplied by the row's
//! scale and added, giving the reference's exact `isum` (and `msum` from
//! the activation sums); the f32 step is `k_term`'s operations in order.

use core::arch::aarch64::*;

use super::dot_sdot;
use super::gemm::{dot4_plain, f16x4, iq4_table, load16, store4};
use crate::gemm::kquants::{IQ4XS_D, IQ4XS_SC, IQ4XS_TBB, Q4K_SC, Q4K_TBB, Q5K_QH, Q5K_SC, Q5K_TBB, Q6K_D, Q6K_QH, Q6K_SC, Q6K_TBB};
use crate::gemm::{tile_args, TileFn};
use crate::k_quants::blocks::{BlockQ8_K, QK_K};
use crate::{GgmlType, KernelPath};

/// The K-quant tile kernel of `ty`: the `sdot` build if `dotprod`.
pub(crate) fn tile_fn(ty: GgmlType, dotprod: bool) -> Option<TileFn> {
    Some(match (ty, dotprod) {
        (GgmlType::Q4_K, true) => sdot::q4_k,
        (GgmlType::Q5_K, true) => sdot::q5_k,
        (GgmlType::Q6_K, true) => sdot::q6_k,
        (GgmlType::IQ4_XS, true) => sdot::iq4_xs,
        (GgmlType::Q4_K, false) => plain::q4_k,
        (GgmlType::Q5_K, false) => plain::q5_k,
        (GgmlType::Q6_K, false) => plain::q6_k,
        (GgmlType::IQ4_XS, false) => plain::iq4_xs,
        _ => return None,
    })
}

/// Four i32 lanes.
#[target_feature(enable = "neon")]
#[inline]
fn i32x4(v: [i32; 4]) -> int32x4_t {
    // SAFETY: `v` is 4 readable i32.
    unsafe { vld1q_s32(v.as_ptr()) }
}

/// Bytes `off..off + 4` of `tb` (the 4 rows of a quarter), widened.
#[target_feature(enable = "neon")]
#[inline]
fn row_bytes(tb: &[u8], off: usize, signed: bool) -> int32x4_t {
    let b = &tb[off..off + 4];
    i32x4(core::array::from_fn(|r| if signed { b[r] as i8 as i32 } else { b[r] as i32 }))
}

/// Activation bytes `4g..4g + 4` in every lane.
#[target_feature(enable = "neon")]
#[inline]
fn bcast4(qs: &[i8; QK_K], g: usize) -> int8x16_t {
    let b = &qs[4 * g..4 * g + 4];
    vreinterpretq_s8_s32(vdupq_n_s32(i32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8])))
}

macro_rules! tiles_k {
    ($module:ident, $tf:literal, $dot:ident, $detected:expr) => {
        pub(super) mod $module {
            use super::*;

            safe_fn! {
                requires $detected;
                pub(in super::super) fn q4_k(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
                    checks { let act = tile_args::<BlockQ8_K>(GgmlType::Q4_K, tile, nb, act, n, out); }
                    unsafe { by_columns!(k_q4_k(tile, nb, act, n, out)) }
                }
                pub(in super::super) fn q5_k(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
                    checks { let act = tile_args::<BlockQ8_K>(GgmlType::Q5_K, tile, nb, act, n, out); }
                    unsafe { by_columns!(k_q5_k(tile, nb, act, n, out)) }
                }
                pub(in super::super) fn q6_k(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
                    checks { let act = tile_args::<BlockQ8_K>(GgmlType::Q6_K, tile, nb, act, n, out); }
                    unsafe { by_columns!(k_q6_k(tile, nb, act, n, out)) }
                }
                pub(in super::super) fn iq4_xs(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
                    checks { let act = tile_args::<BlockQ8_K>(GgmlType::IQ4_XS, tile, nb, act, n, out); }
                    unsafe { by_columns!(k_iq4_xs(tile, nb, act, n, out)) }
                }
            }

            /// # Safety
            /// The CPU must have `$tf`; `act` holds columns `c0..c0 + NC`.
            #[target_feature(enable = $tf)]
            unsafe fn k_q4_k<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_K], c0: usize, out: &mut [f32]) {
                // SAFETY: the same features and contract as this function's.
                unsafe { k_k4::<NC, false>(tile, nb, act, c0, out) }
            }

            /// # Safety
            /// The CPU must have `$tf`; `act` holds columns `c0..c0 + NC`.
            #[target_feature(enable = $tf)]
            unsafe fn k_q5_k<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_K], c0: usize, out: &mut [f32]) {
                // SAFETY: the same features and contract as this function's.
                unsafe { k_k4::<NC, true>(tile, nb, act, c0, out) }
            }

            /// Q4_K, or Q5_K (`QH`: levels get their fifth bit from `qh`).
            ///
            /// # Safety
            /// The CPU must have `$tf`; `act` holds columns `c0..c0 + NC`.
            #[target_feature(enable = $tf)]
            #[inline]
            unsafe fn k_k4<const NC: usize, const QH: bool>(tile: &[u8], nb: usize, act: &[BlockQ8_K], c0: usize, out: &mut [f32]) {
                let (tbb, sco) = if QH { (Q5K_TBB, Q5K_SC) } else { (Q4K_TBB, Q4K_SC) };
                let m4 = vdupq_n_u8(0x0F);
                let m16 = vdupq_n_u8(16);
                for quarter in 0..4 {
                    let mut acc = [vdupq_n_f32(0.0); NC];
                    for b in 0..nb {
                        let tb = &tile[b * tbb..(b + 1) * tbb];
                        let sc: [int32x4_t; 8] = core::array::from_fn(|j| row_bytes(tb, sco + 16 * j + 4 * quarter, false));
                        let qh: [uint8x16_t; 8] = core::array::from_fn(|m| if QH { load16(tb, Q5K_QH + 64 * m + 16 * quarter) } else { m4 });
                        let mut isum = [vdupq_n_s32(0); NC];
                        for k in 0..4 {
                            let w: [uint8x16_t; 8] = core::array::from_fn(|m| load16(tb, 64 * (8 * k + m) + 16 * quarter));
                            let mut lo = w.map(|v| vandq_u8(v, m4));
                            let mut hi = w.map(|v| vshrq_n_u8::<4>(v));
                            if QH {
                                // 16 where bit 2k (2k + 1) of the element's qh byte is set.
                                let (bl, bh) = (vdupq_n_u8(1 << (2 * k)), vdupq_n_u8(1 << (2 * k + 1)));
                                for m in 0..8 {
                                    lo[m] = vorrq_u8(lo[m], vandq_u8(vtstq_u8(qh[m], bl), m16));
                                    hi[m] = vorrq_u8(hi[m], vandq_u8(vtstq_u8(qh[m], bh), m16));
                                }
                            }
                            let lo = lo.map(|v| vreinterpretq_s8_u8(v));
                            let hi = hi.map(|v| vreinterpretq_s8_u8(v));
                            for (j, isum) in isum.iter_mut().enumerate() {
                                let y = &act[(c0 + j) * nb + b].qs;
                                let (mut sl, mut sh) = (vdupq_n_s32(0), vdupq_n_s32(0));
                                for m in 0..8 {
                                    sl = $dot(sl, lo[m], bcast4(y, 16 * k + m));
                                    sh = $dot(sh, hi[m], bcast4(y, 16 * k + 8 + m));
                                }
                                *isum = vmlaq_s32(vmlaq_s32(*isum, sl, sc[2 * k]), sh, sc[2 * k + 1]);
                            }
                        }
                        // The quarter's 4 rows of min pairs (m[2i], m[2i + 1]).
                        let mins: [int16x8_t; 4] = core::array::from_fn(|i| {
                            let s = &tb[sco + 128 + 32 * i + 8 * quarter..][..8];
                            vreinterpretq_s16_u16(vmovl_u8(vcreate_u8(u64::from_le_bytes(s.try_into().expect("8 bytes")))))
                        });
                        let dx = f16x4(tb, sco + 256 + 8 * quarter);
                        let mx = f16x4(tb, sco + 288 + 8 * quarter);
                        for (j, (acc, isum)) in acc.iter_mut().zip(isum).enumerate() {
                            let y = &act[(c0 + j) * nb + b];
                            let bs = |j: usize| (y.bsums[2 * j] as i32 + y.bsums[2 * j + 1] as i32) as i16;
                            let mut msum = vdupq_n_s32(0);
                            for (i, m) in mins.iter().enumerate() {
                                let pair = (bs(2 * i) as u16 as i32) | ((bs(2 * i + 1) as i32) << 16);
                                let p = vreinterpretq_s16_s32(vdupq_n_s32(pair));
                                let lo = vmull_s16(vget_low_s16(*m), vget_low_s16(p));
                                let hi = vmull_high_s16(*m, p);
                                msum = vaddq_s32(msum, vpaddq_s32(lo, hi));
                            }
                            let yd = vdupq_n_f32(y.d);
                            let t = vaddq_f32(*acc, vmulq_f32(vmulq_f32(dx, yd), vcvtq_f32_s32(isum)));
                            *acc = vsubq_f32(t, vmulq_f32(vmulq_f32(mx, yd), vcvtq_f32_s32(msum)));
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
            unsafe fn k_iq4_xs<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_K], c0: usize, out: &mut [f32]) {
                let m4 = vdupq_n_u8(0x0F);
                let table = iq4_table();
                for quarter in 0..4 {
                    let mut acc = [vdupq_n_f32(0.0); NC];
                    for b in 0..nb {
                        let tb = &tile[b * IQ4XS_TBB..(b + 1) * IQ4XS_TBB];
                        let mut isum = [vdupq_n_s32(0); NC];
                        for ib in 0..8 {
                            let sc = row_bytes(tb, IQ4XS_SC + 16 * ib + 4 * quarter, true);
                            let w: [uint8x16_t; 4] = core::array::from_fn(|m| load16(tb, 64 * (4 * ib + m) + 16 * quarter));
                            let lo = w.map(|v| vqtbl1q_s8(table, vandq_u8(v, m4)));
                            let hi = w.map(|v| vqtbl1q_s8(table, vshrq_n_u8::<4>(v)));
                            for (j, isum) in isum.iter_mut().enumerate() {
                                let y = &act[(c0 + j) * nb + b].qs;
                                let mut s = vdupq_n_s32(0);
                                for m in 0..4 {
                                    s = $dot(s, lo[m], bcast4(y, 8 * ib + m));
                                    s = $dot(s, hi[m], bcast4(y, 8 * ib + 4 + m));
                                }
                                *isum = vmlaq_s32(*isum, s, sc);
                            }
                        }
                        let dx = f16x4(tb, IQ4XS_D + 8 * quarter);
                        for (j, (acc, isum)) in acc.iter_mut().zip(isum).enumerate() {
                            // `dot_iq4_xs`: (d * yd) * isum.
                            let d = vmulq_f32(dx, vdupq_n_f32(act[(c0 + j) * nb + b].d));
                            *acc = vaddq_f32(*acc, vmulq_f32(d, vcvtq_f32_s32(isum)));
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
            unsafe fn k_q6_k<const NC: usize>(tile: &[u8], nb: usize, act: &[BlockQ8_K], c0: usize, out: &mut [f32]) {
                let m4 = vdupq_n_u8(0x0F);
                let m3 = vdupq_n_u8(0x03);
                for quarter in 0..4 {
                    let mut acc = [vdupq_n_f32(0.0); NC];
                    for b in 0..nb {
                        let tb = &tile[b * Q6K_TBB..(b + 1) * Q6K_TBB];
                        let mut isum = [vdupq_n_s32(0); NC];
                        for n in 0..2 {
                            for s in 0..2 {
                                // Levels of elements 128n + 32q + 4m.. for the
                                // quarters q and m = 4s..4s + 4: sub-blocks 8n + 2q + s.
                                let lv: [[int8x16_t; 4]; 4] = core::array::from_fn(|i| {
                                    let m = 4 * s + i;
                                    let a = load16(tb, 64 * (16 * n + m) + 16 * quarter);
                                    let bb = load16(tb, 64 * (16 * n + 8 + m) + 16 * quarter);
                                    let h = load16(tb, Q6K_QH + 64 * (8 * n + m) + 16 * quarter);
                                    [
                                        vorrq_u8(vandq_u8(a, m4), vshlq_n_u8::<4>(vandq_u8(h, m3))),
                                        vorrq_u8(vandq_u8(bb, m4), vshlq_n_u8::<4>(vandq_u8(vshrq_n_u8::<2>(h), m3))),
                                        vorrq_u8(vshrq_n_u8::<4>(a), vshlq_n_u8::<4>(vandq_u8(vshrq_n_u8::<4>(h), m3))),
                                        vorrq_u8(vshrq_n_u8::<4>(bb), vshlq_n_u8::<4>(vshrq_n_u8::<6>(h))),
                                    ]
                                    .map(|v| vreinterpretq_s8_u8(v))
                                });
                                for q in 0..4 {
                                    let sub = 8 * n + 2 * q + s;
                                    let sc = row_bytes(tb, Q6K_SC + 16 * sub + 4 * quarter, true);
                                    for (j, isum) in isum.iter_mut().enumerate() {
                                        let y = &act[(c0 + j) * nb + b];
                                        let mut sq = vdupq_n_s32(0);
                                        for (i, lv) in lv.iter().enumerate() {
                                            sq = $dot(sq, lv[q], bcast4(&y.qs, 32 * n + 8 * q + 4 * s + i));
                                        }
                                        // sum((q - 32) * y) = sum(q * y) - 32 * bsum, exactly.
                                        let sq = vsubq_s32(sq, vdupq_n_s32(32 * y.bsums[sub] as i32));
                                        *isum = vmlaq_s32(*isum, sq, sc);
                                    }
                                }
                            }
                        }
                        let dx = f16x4(tb, Q6K_D + 8 * quarter);
                        for (j, (acc, isum)) in acc.iter_mut().zip(isum).enumerate() {
                            let d = vmulq_f32(dx, vdupq_n_f32(act[(c0 + j) * nb + b].d));
                            *acc = vaddq_f32(*acc, vmulq_f32(d, vcvtq_f32_s32(isum)));
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

tiles_k!(sdot, "neon,dotprod", dot_sdot, KernelPath::NeonDotprod.is_available());
tiles_k!(plain, "neon", dot4_plain, KernelPath::Neon.is_available());
