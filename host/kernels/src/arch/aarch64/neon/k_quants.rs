//! NEON twins of the K-quant dots and the Q8_K quantize (reference:
//! `crate::k_quants::scalar`), with and without the dot-product
//! extension (`sdot`; emulated with `smull` + pairwise adds otherwise, as
//! ggml's `ggml_vdotq_s32` fallback does).
//!
//! The weights of each 16- or 32-element sub-block are expanded to signed
//! bytes (their levels, offsets applied) and multiplied with the Q8_K quants
//! into the reference's exact integers: one per block for Q2_K (`sdot` or
//! its emulation) and for Q4_K..Q6_K (widening multiplies, both builds),
//! and the 8 per-class sums `aux32` for Q3_K. The f32 part then repeats the
//! reference's operations in its order, so every dot is bit-identical to the
//! scalar one. Nothing depends on `bsums` except the mins terms of
//! Q2_K/Q4_K/Q5_K (as in the reference).
//!
//! Every `#[target_feature]` function is reached only through the
//! `safe_fn!` wrappers [`install`] hands out (the `dotprod` variants only
//! for `NeonDotprod`). The `sdot` primitive and its emulation are in
//! `super`.

use core::arch::aarch64::*;

use super::{dot_plain, dot_sdot};
use crate::k_quants::blocks::{BlockQ2_K, BlockQ3_K, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K, QK_K};
use crate::k_quants::scalar::{k_term, q8k_bsums, unpack_scales_mins_k4, unpack_scales_q3k};
use crate::erased::{dot_args, from_float_args};
use crate::fp::f16_to_f32;
use crate::{GgmlType, KernelPath, TypeKernels};

/// Replaces the pointers of `k` that have NEON twins.
pub(super) fn install(k: &mut TypeKernels, dotprod: bool) {
    match (k.ty, dotprod) {
        (GgmlType::Q2_K, false) => k.vec_dot = plain::dot_q2_k,
        (GgmlType::Q2_K, true) => k.vec_dot = sdot::dot_q2_k,
        // Both builds: widening multiplies (Q3_K needs per-class sums).
        (GgmlType::Q3_K, _) => k.vec_dot = dot_q3_k,
        (GgmlType::Q4_K, _) => k.vec_dot = dot_q4_k,
        (GgmlType::Q5_K, _) => k.vec_dot = dot_q5_k,
        (GgmlType::Q6_K, _) => k.vec_dot = dot_q6_k,
        (GgmlType::Q8_K, _) => k.from_float = from_float_q8_k,
        _ => {}
    }
}

// ---- loads and the dot primitive ------------------------------------------------

#[target_feature(enable = "neon")]
#[inline]
fn ld_u8(p: &[u8; 16]) -> uint8x16_t {
    // SAFETY: `p` is a reference to 16 readable bytes.
    unsafe { vld1q_u8(p.as_ptr()) }
}

#[target_feature(enable = "neon")]
#[inline]
fn ld_i8(p: &[i8; 16]) -> int8x16_t {
    // SAFETY: `p` is a reference to 16 readable bytes.
    unsafe { vld1q_s8(p.as_ptr()) }
}

#[target_feature(enable = "neon")]
#[inline]
fn ld_i16(p: &[i16; 8]) -> int16x8_t {
    // SAFETY: `p` is a reference to 8 readable i16s.
    unsafe { vld1q_s16(p.as_ptr()) }
}

#[target_feature(enable = "neon")]
#[inline]
fn ld_f32(p: &[f32; 4]) -> float32x4_t {
    // SAFETY: `p` is a reference to 4 readable floats.
    unsafe { vld1q_f32(p.as_ptr()) }
}

/// `sum_j bsums[j] * mins[j / 2]` over the 16 bsums (mins as 8 bytes).
#[target_feature(enable = "neon")]
#[inline]
fn mins_dot_bsums(mins: u64, bsums: &[i16; 16]) -> i32 {
    let (b, _) = bsums.as_chunks::<8>();
    let q8sums = vpaddq_s16(ld_i16(&b[0]), ld_i16(&b[1]));
    let mins = vreinterpretq_s16_u16(vmovl_u8(vcreate_u8(mins)));
    let prod = vaddq_s32(
        vmull_s16(vget_low_s16(q8sums), vget_low_s16(mins)),
        vmull_s16(vget_high_s16(q8sums), vget_high_s16(mins)),
    );
    vaddvq_s32(prod)
}

macro_rules! neon_kernels {
    ($module:ident, $features:literal, $dot:ident, $detected:expr) => {
        mod $module {
            use super::*;

            safe_fn! {
                requires $detected;
                pub(super) fn dot_q2_k(n: usize, x: &[u8], y: &[u8]) -> f32 {
                    checks { let (x, y) = dot_args::<BlockQ2_K>(n, x, y); }
                    unsafe { vec_dot_q2_k(x, y) }
                }
            }

            /// Sum of `a . b` over 16 lanes.
            #[target_feature(enable = $features)]
            #[inline]
            fn dot16(a: int8x16_t, b: int8x16_t) -> i32 {
                vaddvq_s32($dot(vdupq_n_s32(0), a, b))
            }

            #[target_feature(enable = $features)]
            unsafe fn vec_dot_q2_k(x: &[BlockQ2_K], y: &[BlockQ8_K]) -> f32 {
                let m3 = vdupq_n_u8(3);
                let mut sumf = 0.0f32;
                for (xb, yb) in x.iter().zip(y) {
                    let sc = &xb.scales;
                    let mut summs = 0i32;
                    for (b, s) in yb.bsums.iter().zip(sc) {
                        summs += *b as i32 * (s >> 4) as i32;
                    }
                    let dall = yb.d * f16_to_f32(xb.d);
                    let dmin = yb.d * f16_to_f32(xb.dmin);

                    let (q2, _) = xb.qs.as_chunks::<16>();
                    let (q8, _) = yb.qs.as_chunks::<16>();
                    let mut isum = 0i32;
                    for k in 0..2 {
                        let b0 = ld_u8(&q2[2 * k]);
                        let b1 = ld_u8(&q2[2 * k + 1]);
                        for s in 0..4 {
                            let sh = vdupq_n_s8(-2 * s as i8);
                            let l0 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(b0, sh), m3));
                            let l1 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(b1, sh), m3));
                            // Sub-block (and 16-quant chunk of q8) index.
                            let sub = 8 * k + 2 * s;
                            isum += dot16(l0, ld_i8(&q8[sub])) * (sc[sub] & 0xF) as i32;
                            isum += dot16(l1, ld_i8(&q8[sub + 1])) * (sc[sub + 1] & 0xF) as i32;
                        }
                    }
                    sumf += dall * isum as f32 - dmin * summs as f32;
                }
                sumf
            }
        }
    };
}

neon_kernels!(plain, "neon", dot_plain, KernelPath::Neon.is_available());
neon_kernels!(sdot, "neon,dotprod", dot_sdot, KernelPath::NeonDotprod.is_available());

// ---- Q3_K: exact per-class sums; Q4_K..Q6_K: one integer per block ------------
//
// The reference dots (ggml's generic code) keep 8 integer lanes per block,
// `aux32[l]` = sum of `scale * q * y` over the elements with index `l` mod 8,
// then do `sums[l] += d * (aux32[l] as f32)` and add the 8 lanes in order at
// the end. A 16-element chunk starting at a multiple of 8 has, after
// `smull`/`smlal` of its two halves, exactly class k in i16 lane k; `smlal`
// by the scale widens it into the two i32x4 class accumulators. The f32 part
// is the reference's, lane for lane (separate multiply and add). Both NEON
// builds use these (`sdot` sums four neighbours, i.e. four classes).

safe_fn! {
    requires KernelPath::Neon.is_available();
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

/// Class sums of 16 levels `q` with 16 activations (i16 lane k = elements k
/// and k + 8), added to `acc`.
#[target_feature(enable = "neon")]
#[inline]
fn classes16(acc: int16x8_t, q: int8x16_t, y: int8x16_t) -> int16x8_t {
    let acc = vmlal_s8(acc, vget_low_s8(q), vget_low_s8(y));
    vmlal_high_s8(acc, q, y)
}

/// The 8 class accumulators (`aux32`), as classes 0..4 and 4..8.
#[derive(Clone, Copy)]
struct Aux32(int32x4_t, int32x4_t);

impl Aux32 {
    #[target_feature(enable = "neon")]
    #[inline]
    fn new() -> Self {
        Aux32(vdupq_n_s32(0), vdupq_n_s32(0))
    }

    /// `aux32[l] += scale * c[l]`.
    #[target_feature(enable = "neon")]
    #[inline]
    fn add(&mut self, c: int16x8_t, scale: i16) {
        self.0 = vmlal_n_s16(self.0, vget_low_s16(c), scale);
        self.1 = vmlal_high_n_s16(self.1, c, scale);
    }
}

/// `sums[l] += d * aux32[l]` (no FMA, as the reference).
#[target_feature(enable = "neon")]
#[inline]
fn add_scaled(sums: &mut [float32x4_t; 2], d: f32, a: Aux32) {
    let dv = vdupq_n_f32(d);
    sums[0] = vaddq_f32(sums[0], vmulq_f32(dv, vcvtq_f32_s32(a.0)));
    sums[1] = vaddq_f32(sums[1], vmulq_f32(dv, vcvtq_f32_s32(a.1)));
}

/// `sumf += sums[0]; ..; sumf += sums[7]`.
#[target_feature(enable = "neon")]
#[inline]
fn add_lanes(mut sumf: f32, sums: [float32x4_t; 2]) -> f32 {
    let mut a = [0.0f32; 8];
    // SAFETY: `a` is 8 writable f32: two 4-lane stores.
    unsafe {
        vst1q_f32(a.as_mut_ptr(), sums[0]);
        vst1q_f32(a.as_mut_ptr().add(4), sums[1]);
    }
    for v in a {
        sumf += v;
    }
    sumf
}

#[target_feature(enable = "neon")]
unsafe fn vec_dot_q3_k(x: &[BlockQ3_K], y: &[BlockQ8_K]) -> f32 {
    let m3 = vdupq_n_u8(3);
    let four = vdupq_n_u8(4);
    let mut sums = [vdupq_n_f32(0.0); 2];
    for (xb, yb) in x.iter().zip(y) {
        let scales: [u8; 16] = bytemuck::cast(unpack_scales_q3k(&xb.scales).map(u32::to_le));
        let (q3, _) = xb.qs.as_chunks::<16>();
        let (hm, _) = xb.hmask.as_chunks::<16>();
        let (q8, _) = yb.qs.as_chunks::<16>();
        let h = [ld_u8(&hm[0]), ld_u8(&hm[1])];
        let mut aux = Aux32::new();
        for k in 0..2 {
            let b = [ld_u8(&q3[2 * k]), ld_u8(&q3[2 * k + 1])];
            for s in 0..4 {
                let sh = vdupq_n_s8(-2 * s as i8);
                let bit = vdupq_n_u8(1u8 << (4 * k + s));
                for half in 0..2 {
                    let low = vandq_u8(vshlq_u8(b[half], sh), m3);
                    // - 4 where the high bit is clear.
                    let off = vbicq_u8(four, vtstq_u8(h[half], bit));
                    let lv = vreinterpretq_s8_u8(vsubq_u8(low, off));
                    let sub = 8 * k + 2 * s + half;
                    let c = classes16(vdupq_n_s16(0), lv, ld_i8(&q8[sub]));
                    aux.add(c, scales[sub] as i8 as i16 - 32);
                }
            }
        }
        add_scaled(&mut sums, f16_to_f32(xb.d) * yb.d, aux);
    }
    add_lanes(0.0, sums)
}

/// Sum of the 8 i16 lanes of `c`, widened.
#[target_feature(enable = "neon")]
#[inline]
fn sum16(c: int16x8_t) -> i32 {
    vaddlvq_s16(c)
}

#[target_feature(enable = "neon")]
unsafe fn vec_dot_q4_k(x: &[BlockQ4_K], y: &[BlockQ8_K]) -> f32 {
    let m4 = vdupq_n_u8(0xF);
    let mut sumf = 0.0f32;
    for (xb, yb) in x.iter().zip(y) {
        let u = unpack_scales_mins_k4(&xb.scales);
        let scales: [u8; 16] = bytemuck::cast(u.map(u32::to_le));
        let mins = (u[2] as u64) | ((u[3] as u64) << 32);
        let msum = mins_dot_bsums(mins, &yb.bsums);

        let (q4, _) = xb.qs.as_chunks::<16>();
        let (q8, _) = yb.qs.as_chunks::<16>();
        let mut isum = 0i32;
        for j in 0..QK_K / 64 {
            let b0 = ld_u8(&q4[2 * j]);
            let b1 = ld_u8(&q4[2 * j + 1]);
            let lo0 = vreinterpretq_s8_u8(vandq_u8(b0, m4));
            let lo1 = vreinterpretq_s8_u8(vandq_u8(b1, m4));
            let hi0 = vreinterpretq_s8_u8(vshrq_n_u8::<4>(b0));
            let hi1 = vreinterpretq_s8_u8(vshrq_n_u8::<4>(b1));
            // 4 products per i16 lane and sub-block: |sum| <= 4 * 15 * 128.
            let c1 = classes16(classes16(vdupq_n_s16(0), lo0, ld_i8(&q8[4 * j])), lo1, ld_i8(&q8[4 * j + 1]));
            let c2 = classes16(classes16(vdupq_n_s16(0), hi0, ld_i8(&q8[4 * j + 2])), hi1, ld_i8(&q8[4 * j + 3]));
            isum += scales[2 * j] as i32 * sum16(c1) + scales[2 * j + 1] as i32 * sum16(c2);
        }
        sumf = k_term(sumf, f16_to_f32(xb.d), f16_to_f32(xb.dmin), yb.d, isum, msum);
    }
    sumf
}

#[target_feature(enable = "neon")]
unsafe fn vec_dot_q5_k(x: &[BlockQ5_K], y: &[BlockQ8_K]) -> f32 {
    let m4 = vdupq_n_u8(0xF);
    let one = vdupq_n_u8(1);
    let two = vdupq_n_u8(2);
    let mut sumf = 0.0f32;
    for (xb, yb) in x.iter().zip(y) {
        let u = unpack_scales_mins_k4(&xb.scales);
        let scales: [u8; 16] = bytemuck::cast(u.map(u32::to_le));
        let mins = (u[2] as u64) | ((u[3] as u64) << 32);
        let msum = mins_dot_bsums(mins, &yb.bsums);

        let (q5, _) = xb.qs.as_chunks::<16>();
        let (qh, _) = xb.qh.as_chunks::<16>();
        let (q8, _) = yb.qs.as_chunks::<16>();
        let mut h0 = ld_u8(&qh[0]);
        let mut h1 = ld_u8(&qh[1]);
        let mut isum = 0i32;
        for j in 0..QK_K / 64 {
            let b0 = ld_u8(&q5[2 * j]);
            let b1 = ld_u8(&q5[2 * j + 1]);
            let lo0 = vorrq_u8(vandq_u8(b0, m4), vshlq_n_u8::<4>(vandq_u8(h0, one)));
            let lo1 = vorrq_u8(vandq_u8(b1, m4), vshlq_n_u8::<4>(vandq_u8(h1, one)));
            let hi0 = vorrq_u8(vshrq_n_u8::<4>(b0), vshlq_n_u8::<3>(vandq_u8(h0, two)));
            let hi1 = vorrq_u8(vshrq_n_u8::<4>(b1), vshlq_n_u8::<3>(vandq_u8(h1, two)));
            h0 = vshrq_n_u8::<2>(h0);
            h1 = vshrq_n_u8::<2>(h1);
            let s = vreinterpretq_s8_u8;
            // 4 products per i16 lane and sub-block: |sum| <= 4 * 31 * 128.
            let c1 = classes16(classes16(vdupq_n_s16(0), s(lo0), ld_i8(&q8[4 * j])), s(lo1), ld_i8(&q8[4 * j + 1]));
            let c2 = classes16(classes16(vdupq_n_s16(0), s(hi0), ld_i8(&q8[4 * j + 2])), s(hi1), ld_i8(&q8[4 * j + 3]));
            isum += scales[2 * j] as i32 * sum16(c1) + scales[2 * j + 1] as i32 * sum16(c2);
        }
        sumf = k_term(sumf, f16_to_f32(xb.d), f16_to_f32(xb.dmin), yb.d, isum, msum);
    }
    sumf
}

#[target_feature(enable = "neon")]
unsafe fn vec_dot_q6_k(x: &[BlockQ6_K], y: &[BlockQ8_K]) -> f32 {
    let m4 = vdupq_n_u8(0xF);
    let m3 = vdupq_n_u8(3);
    let m32 = vdupq_n_s8(32);
    let mut sumf = 0.0f32;
    for (xb, yb) in x.iter().zip(y) {
        let (ql, _) = xb.ql.as_chunks::<16>();
        let (qh, _) = xb.qh.as_chunks::<16>();
        let (q8, _) = yb.qs.as_chunks::<16>();
        let sc = &xb.scales;
        let mut isum = 0i32;
        for j in 0..2 {
            for half in 0..2 {
                // Elements 128 j + 16 half + {0, 32, 64, 96} + 0..16.
                let a = ld_u8(&ql[4 * j + half]);
                let b = ld_u8(&ql[4 * j + 2 + half]);
                let h = ld_u8(&qh[2 * j + half]);
                let lv = [
                    vorrq_u8(vandq_u8(a, m4), vshlq_n_u8::<4>(vandq_u8(h, m3))),
                    vorrq_u8(vandq_u8(b, m4), vshlq_n_u8::<4>(vandq_u8(vshrq_n_u8::<2>(h), m3))),
                    vorrq_u8(vshrq_n_u8::<4>(a), vshlq_n_u8::<4>(vandq_u8(vshrq_n_u8::<4>(h), m3))),
                    vorrq_u8(vshrq_n_u8::<4>(b), vshlq_n_u8::<4>(vshrq_n_u8::<6>(h))),
                ];
                for (g, l) in lv.into_iter().enumerate() {
                    let sub = 8 * j + 2 * g + half;
                    // 2 products per i16 lane: |sum| <= 2 * 32 * 128.
                    let q = vsubq_s8(vreinterpretq_s8_u8(l), m32);
                    isum += sc[sub] as i32 * sum16(classes16(vdupq_n_s16(0), q, ld_i8(&q8[sub])));
                }
            }
        }
        sumf += (f16_to_f32(xb.d) * yb.d) * isum as f32;
    }
    sumf
}

// ---- Q8_K quantize ----------------------------------------------------------

/// `quantize_row_q8_K_ref`: `src` is `dst.len()` blocks of floats.
///
/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn quantize_q8_k(src: &[f32], dst: &mut [BlockQ8_K]) {
    let (xs, rest) = src.as_chunks::<QK_K>();
    assert!(rest.is_empty() && xs.len() == dst.len());
    for (x, y) in xs.iter().zip(dst) {
        quantize_q8_k_block(x, y);
    }
}

/// `quantize_row_q8_K_ref` for one block, bit for bit (see the AVX2 twin):
/// `fmaxnm` skips NaNs as `ax > amax` does, the multiply and the magic-number
/// add are separate (unfused) operations, and the narrowing keeps low bytes.
#[target_feature(enable = "neon")]
fn quantize_q8_k_block(x: &[f32; QK_K], y: &mut BlockQ8_K) {
    let (xs, _) = x.as_chunks::<4>();
    let mut vmax = vdupq_n_f32(0.0);
    for c in xs {
        vmax = vmaxnmq_f32(vmax, vabsq_f32(ld_f32(c)));
    }
    let amax = vmaxnmvq_f32(vmax);
    if amax == 0.0 {
        *y = bytemuck::Zeroable::zeroed();
        return;
    }
    let max = x
        .iter()
        .copied()
        .find(|v| v.abs() == amax)
        .expect("amax is the magnitude of an element");
    let iscale = -127.0f32 / max;
    let vscale = vdupq_n_f32(iscale);
    let magic = vdupq_n_f32(12_582_912.0);
    let mant = vdupq_n_s32(0x007f_ffff);
    let off = vdupq_n_s32(0x0040_0000);
    let max127 = vdupq_n_s32(127);
    let q = |c: &[f32; 4]| {
        let v = vaddq_f32(vmulq_f32(vscale, ld_f32(c)), magic);
        let i = vsubq_s32(vandq_s32(vreinterpretq_s32_f32(v), mant), off);
        vmovn_u32(vreinterpretq_u32_s32(vminq_s32(i, max127)))
    };
    let (out, _) = y.qs.as_chunks_mut::<8>();
    for (o, c) in out.iter_mut().zip(xs.chunks_exact(2)) {
        let bytes = vmovn_u16(vcombine_u16(q(&c[0]), q(&c[1])));
        // SAFETY: `o` is a reference to 8 writable bytes.
        unsafe { vst1_s8(o.as_mut_ptr(), vreinterpret_s8_u8(bytes)) };
    }
    q8k_bsums(y);
    y.d = 1.0 / iscale;
}
