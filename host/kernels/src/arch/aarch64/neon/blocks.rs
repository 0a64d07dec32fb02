//! NEON twins of the legacy block dots, the float dots and the Q8_0/Q8_1
//! quantize (references: `crate::blocks`, `crate::float`). The quantized
//! dots come in two builds: with the dot-product extension (`sdot`, the
//! neon-dotprod path) and without (`smull` + pairwise widening adds, ggml's
//! `ggml_vdotq_s32` fallback); the primitives are in `super`.
//!
//! Bit-identical to the scalar references: the quantized dots compute each
//! block's exact integer sum and then evaluate the reference's f32
//! expression (`crate::blocks::term_*`) block by block, in order; the float
//! dots use the fixed 32-lane order of `crate::float::dot_lanes`.
//!
//! Every `#[target_feature]` function is reached only through the
//! `safe_fn!` wrappers that [`install`] hands out.

use core::arch::aarch64::*;
use core::arch::asm;

use super::{dot_plain, dot_sdot};

use half::f16;

use crate::blocks;
use crate::blocks::{
    inv_or_zero, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1, QK,
};
use crate::erased::{dot_args, from_float_args};
use crate::fp::{fp16_bits_to_fp32, fp32_to_fp16_bits};
use crate::{GgmlType, KernelPath, TypeKernels};

/// Replaces the pointers of `k` that have NEON twins; `dotprod` selects the
/// `sdot` build of the quantized dots.
pub(super) fn install(k: &mut TypeKernels, dotprod: bool) {
    if dotprod {
        sdot::install(k);
    } else {
        plain::install(k);
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
    requires KernelPath::Neon.is_available();
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

#[inline]
pub(crate) fn h2f(h: f16) -> f32 {
    fp16_bits_to_fp32(h.to_bits())
}

#[target_feature(enable = "neon")]
#[inline]
fn load_u8x16(p: &[u8; 16]) -> uint8x16_t {
    // SAFETY: `p` is a reference to 16 readable bytes.
    unsafe { vld1q_u8(p.as_ptr()) }
}

#[target_feature(enable = "neon")]
#[inline]
fn load_i8x16(p: &[i8]) -> int8x16_t {
    let p: &[i8; 16] = p.try_into().unwrap();
    // SAFETY: `p` is a reference to 16 readable bytes.
    unsafe { vld1q_s8(p.as_ptr()) }
}

#[target_feature(enable = "neon")]
#[inline]
fn load_f32x4(p: &[f32]) -> float32x4_t {
    let p: &[f32; 4] = p.try_into().unwrap();
    // SAFETY: `p` is a reference to 4 readable f32.
    unsafe { vld1q_f32(p.as_ptr()) }
}

/// Byte j (of 32, as two vectors) = 0x10 if bit j of `qh` is set.
#[target_feature(enable = "neon")]
#[inline]
fn fifth_bits(qh: [u8; 4]) -> (uint8x16_t, uint8x16_t) {
    let bit = {
        const B: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
        // SAFETY: `B` is 16 readable bytes.
        unsafe { vld1q_u8(B.as_ptr()) }
    };
    let lo = vcombine_u8(vdup_n_u8(qh[0]), vdup_n_u8(qh[1]));
    let hi = vcombine_u8(vdup_n_u8(qh[2]), vdup_n_u8(qh[3]));
    let m = vdupq_n_u8(0x10);
    (
        vandq_u8(vtstq_u8(lo, bit), m),
        vandq_u8(vtstq_u8(hi, bit), m),
    )
}

/// The quantized dots, generated twice: `$tf` is the feature list, `$dot`
/// the i8 x i8 -> i32x4 primitive for it, detected by `$detected`.
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

            /// Sum of products of 32 codes (as two i8 vectors) with a Q8 block.
            #[target_feature(enable = $tf)]
            #[inline]
            fn dot32(lo: int8x16_t, hi: int8x16_t, y: &[i8; 32]) -> int32x4_t {
                let p = $dot(vdupq_n_s32(0), lo, load_i8x16(&y[..16]));
                $dot(p, hi, load_i8x16(&y[16..]))
            }

            // Each block: its exact integer sum (`vaddvq_s32` of the lanes),
            // then the reference's f32 expression, added in block order.

            /// # Safety
            /// The CPU must support the features in `$tf`.
            #[target_feature(enable = $tf)]
            unsafe fn vec_dot_q4_0_q8_0(x: &[BlockQ4_0], y: &[BlockQ8_0]) -> f32 {
                assert_eq!(x.len(), y.len());
                let mut sumf = 0.0f32;
                let eight = vdupq_n_s8(8);
                for (xb, yb) in x.iter().zip(y) {
                    let v = load_u8x16(&xb.qs);
                    let lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F))), eight);
                    let hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(v)), eight);
                    let sumi = vaddvq_s32(dot32(lo, hi, &yb.qs));
                    sumf += blocks::term_q4_0(sumi, h2f(xb.d), h2f(yb.d));
                }
                sumf
            }

            /// # Safety
            /// The CPU must support the features in `$tf`.
            #[target_feature(enable = $tf)]
            unsafe fn vec_dot_q4_1_q8_1(x: &[BlockQ4_1], y: &[BlockQ8_1]) -> f32 {
                assert_eq!(x.len(), y.len());
                let mut sumf = 0.0f32;
                for (xb, yb) in x.iter().zip(y) {
                    let v = load_u8x16(&xb.qs);
                    let lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0x0F)));
                    let hi = vreinterpretq_s8_u8(vshrq_n_u8::<4>(v));
                    let sumi = vaddvq_s32(dot32(lo, hi, &yb.qs));
                    sumf += blocks::term_dm(sumi, h2f(xb.d), h2f(yb.d), h2f(xb.m), h2f(yb.s));
                }
                sumf
            }

            /// # Safety
            /// The CPU must support the features in `$tf`.
            #[target_feature(enable = $tf)]
            unsafe fn vec_dot_q5_0_q8_0(x: &[BlockQ5_0], y: &[BlockQ8_0]) -> f32 {
                assert_eq!(x.len(), y.len());
                let mut sumf = 0.0f32;
                let sixteen = vdupq_n_s8(16);
                for (xb, yb) in x.iter().zip(y) {
                    let (h0, h1) = fifth_bits(xb.qh);
                    let v = load_u8x16(&xb.qs);
                    let lo = vorrq_u8(vandq_u8(v, vdupq_n_u8(0x0F)), h0);
                    let hi = vorrq_u8(vshrq_n_u8::<4>(v), h1);
                    let lo = vsubq_s8(vreinterpretq_s8_u8(lo), sixteen);
                    let hi = vsubq_s8(vreinterpretq_s8_u8(hi), sixteen);
                    let sumi = vaddvq_s32(dot32(lo, hi, &yb.qs));
                    sumf += blocks::term_q5_0(sumi, h2f(xb.d), h2f(yb.d));
                }
                sumf
            }

            /// # Safety
            /// The CPU must support the features in `$tf`.
            #[target_feature(enable = $tf)]
            unsafe fn vec_dot_q5_1_q8_1(x: &[BlockQ5_1], y: &[BlockQ8_1]) -> f32 {
                assert_eq!(x.len(), y.len());
                let mut sumf = 0.0f32;
                for (xb, yb) in x.iter().zip(y) {
                    let (h0, h1) = fifth_bits(xb.qh);
                    let v = load_u8x16(&xb.qs);
                    let lo = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(v, vdupq_n_u8(0x0F)), h0));
                    let hi = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8::<4>(v), h1));
                    let sumi = vaddvq_s32(dot32(lo, hi, &yb.qs));
                    sumf += blocks::term_dm(sumi, h2f(xb.d), h2f(yb.d), h2f(xb.m), h2f(yb.s));
                }
                sumf
            }

            /// # Safety
            /// The CPU must support the features in `$tf`.
            #[target_feature(enable = $tf)]
            unsafe fn vec_dot_q8_0_q8_0(x: &[BlockQ8_0], y: &[BlockQ8_0]) -> f32 {
                assert_eq!(x.len(), y.len());
                let mut sumf = 0.0f32;
                for (xb, yb) in x.iter().zip(y) {
                    let p = dot32(load_i8x16(&xb.qs[..16]), load_i8x16(&xb.qs[16..]), &yb.qs);
                    sumf += blocks::term_q8_0(vaddvq_s32(p), h2f(xb.d), h2f(yb.d));
                }
                sumf
            }
        }
    };
}

quant_dots!(sdot, "neon,dotprod", dot_sdot, KernelPath::NeonDotprod.is_available());
quant_dots!(plain, "neon", dot_plain, KernelPath::Neon.is_available());

// ---- float dots ---------------------------------------------------------------
//
// The fixed order of `crate::float::dot_lanes`: 32 lanes in eight registers
// (lanes 4k..4k+4 in register k), separate multiply and add (never `fmla`),
// a zero-padded last chunk, then the tree of `reduce_lanes`.

/// `reduce_lanes` on 32 lanes held as `a[k]` = lanes 4k..4k+4.
#[target_feature(enable = "neon")]
#[inline]
fn reduce32(a: [float32x4_t; 8]) -> f32 {
    let b: [float32x4_t; 4] = core::array::from_fn(|k| vaddq_f32(a[k], a[k + 4])); // w = 16
    let c0 = vaddq_f32(b[0], b[2]); // w = 8
    let c1 = vaddq_f32(b[1], b[3]);
    let d = vaddq_f32(c0, c1); // w = 4
    let e = vadd_f32(vget_low_f32(d), vget_high_f32(d)); // w = 2
    vget_lane_f32::<0>(e) + vget_lane_f32::<1>(e) // w = 1
}

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn vec_dot_f32(x: &[f32], y: &[f32]) -> f32 {
    assert_eq!(x.len(), y.len());
    let mut acc = [vdupq_n_f32(0.0); 8];
    let mut step = |xc: &[f32], yc: &[f32]| {
        for (k, a) in acc.iter_mut().enumerate() {
            let p = vmulq_f32(
                load_f32x4(&xc[4 * k..4 * k + 4]),
                load_f32x4(&yc[4 * k..4 * k + 4]),
            );
            *a = vaddq_f32(*a, p);
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

/// 8 f16 -> two f32x4 (`fcvtl`/`fcvtl2`, base ARMv8 floating point).
#[target_feature(enable = "neon")]
#[inline]
fn load_f16x8(p: &[f16]) -> (float32x4_t, float32x4_t) {
    let p: &[f16; 8] = p.try_into().unwrap();
    // SAFETY: `p` is a reference to 8 readable f16 (16 bytes).
    let h = unsafe { vld1q_u16(p.as_ptr().cast()) };
    let (lo, hi): (float32x4_t, float32x4_t);
    // SAFETY: register-only conversions of the loaded halves.
    unsafe {
        asm!(
            "fcvtl {lo:v}.4s, {h:v}.4h",
            "fcvtl2 {hi:v}.4s, {h:v}.8h",
            h = in(vreg) h,
            lo = out(vreg) lo,
            hi = out(vreg) hi,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    (lo, hi)
}

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn vec_dot_f16(x: &[f16], y: &[f16]) -> f32 {
    assert_eq!(x.len(), y.len());
    let mut acc = [vdupq_n_f32(0.0); 8];
    let mut step = |xc: &[f16], yc: &[f16]| {
        for k in 0..4 {
            let (x0, x1) = load_f16x8(&xc[8 * k..8 * k + 8]);
            let (y0, y1) = load_f16x8(&yc[8 * k..8 * k + 8]);
            // `fmla` is exact here: the f32 product of two f16 is exact.
            acc[2 * k] = vfmaq_f32(acc[2 * k], x0, y0);
            acc[2 * k + 1] = vfmaq_f32(acc[2 * k + 1], x1, y1);
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

/// `roundf` (FRINTA is exactly round-half-away) then the x86_64 C cast of
/// [`crate::fp::c_cast_i32`]: NaN and |r| >= 2^31 become `i32::MIN`.
#[target_feature(enable = "neon")]
#[inline]
fn roundf_s32(v: float32x4_t) -> int32x4_t {
    let r = vrndaq_f32(v);
    let in_range = vcltq_f32(vabsq_f32(r), vdupq_n_f32(2_147_483_648.0));
    vbslq_s32(in_range, vcvtq_s32_f32(r), vdupq_n_s32(i32::MIN))
}

/// One block like `quantize_row_q8_0_ref`; returns `d` and the sum of the
/// stored bytes.
#[target_feature(enable = "neon")]
#[inline]
fn quantize_q8_block(x: &[f32], qs: &mut [i8; QK]) -> (f32, i32) {
    let v: [float32x4_t; 8] = core::array::from_fn(|k| load_f32x4(&x[4 * k..4 * k + 4]));
    let mut m = vabsq_f32(v[0]);
    for vk in &v[1..] {
        m = vmaxq_f32(m, vabsq_f32(*vk));
    }
    let amax = vmaxvq_f32(m);
    let d = amax / 127.0;
    let id = vdupq_n_f32(inv_or_zero(d));
    let i: [int32x4_t; 8] = core::array::from_fn(|k| roundf_s32(vmulq_f32(v[k], id)));
    // Truncating narrows keep the low byte, as C's int8_t store does.
    let n16 = |a: int32x4_t, b: int32x4_t| vcombine_s16(vmovn_s32(a), vmovn_s32(b));
    let b0 = vcombine_s8(vmovn_s16(n16(i[0], i[1])), vmovn_s16(n16(i[2], i[3])));
    let b1 = vcombine_s8(vmovn_s16(n16(i[4], i[5])), vmovn_s16(n16(i[6], i[7])));
    // SAFETY: `qs` is a reference to 32 writable bytes: two 16-byte stores.
    unsafe {
        vst1q_s8(qs.as_mut_ptr(), b0);
        vst1q_s8(qs.as_mut_ptr().add(16), b1);
    }
    (d, vaddlvq_s8(b0) as i32 + vaddlvq_s8(b1) as i32)
}

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn quantize_q8_0(src: &[f32], dst: &mut [BlockQ8_0]) {
    assert_eq!(src.len(), dst.len() * QK);
    for (x, y) in src.chunks_exact(QK).zip(dst) {
        let (d, _) = quantize_q8_block(x, &mut y.qs);
        y.d = f16::from_bits(fp32_to_fp16_bits(d));
    }
}

/// # Safety
/// The CPU must support NEON.
#[target_feature(enable = "neon")]
unsafe fn quantize_q8_1(src: &[f32], dst: &mut [BlockQ8_1]) {
    assert_eq!(src.len(), dst.len() * QK);
    for (x, y) in src.chunks_exact(QK).zip(dst) {
        let (d, sum) = quantize_q8_block(x, &mut y.qs);
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
    fn build_without_dotprod_matches_scalar() {
        if !KernelPath::Neon.is_available() {
            eprintln!("no NEON: not run");
            return;
        }
        quantized_dots_match_scalar("neon plain", plain::install);
    }

    #[test]
    fn build_with_dotprod_matches_scalar() {
        if !KernelPath::NeonDotprod.is_available() {
            eprintln!("no dotprod: not run");
            return;
        }
        quantized_dots_match_scalar("neon sdot", sdot::install);
    }
}
