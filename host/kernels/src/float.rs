//! The float "formats" F32, F16 and BF16 (one element per block).
//!
//! ggml's vec_dot for these pairs a row with a row of the same type (the
//! activation row is converted first). ggml accumulates in double precision
//! (`ggml_float`) in its scalar code and in lane-parallel f32 in its SIMD
//! code, so its result depends on the CPU. Ours does not: the F32 and F16
//! dots use one fixed f32 order ([`dot_lanes`]) on every path, so scalar,
//! AVX2, AVX-512 and NEON give bit-identical results. BF16 (scalar on every
//! path) keeps ggml's f64 accumulation.

use half::{bf16, f16};

use crate::fp::{bf16_bits_to_fp32, f16_to_f32, fp32_to_bf16_bits, fp32_to_fp16_bits};
use crate::{BlockFormat, GgmlType};

const _: () = assert!(size_of::<f32>() == GgmlType::F32.type_size());
const _: () = assert!(size_of::<f16>() == GgmlType::F16.type_size());
const _: () = assert!(size_of::<bf16>() == GgmlType::BF16.type_size());

/// Lanes of the fixed F32/F16 dot order.
pub(crate) const DOT_LANES: usize = 32;

/// The F32/F16 dot order shared by every path: element `i` goes to lane
/// `i % 32` as `lane = lane + x[i] * y[i]` (a rounded f32 multiply, then a
/// rounded f32 add: never a fused multiply-add), lanes start at +0.0, and the
/// 32 lanes are summed by [`reduce_lanes`]. A SIMD path keeps the 32 lanes in
/// 4 (AVX2), 2 (AVX-512) or 8 (NEON) registers and reduces them with the same
/// tree. Zero-padding a tail is exact: a lane is never -0.0 (it starts at
/// +0.0, and an f32 add only gives -0.0 for two -0.0 operands), so adding
/// `+0.0 * +0.0` leaves it unchanged.
#[inline(always)]
pub(crate) fn dot_lanes(x: &[f32], y: &[f32]) -> f32 {
    debug_assert_eq!(x.len(), y.len());
    let mut acc = [0.0f32; DOT_LANES];
    let mut xs = x.chunks_exact(DOT_LANES);
    let mut ys = y.chunks_exact(DOT_LANES);
    for (xc, yc) in (&mut xs).zip(&mut ys) {
        for l in 0..DOT_LANES {
            acc[l] += xc[l] * yc[l];
        }
    }
    for (l, (&a, &b)) in xs.remainder().iter().zip(ys.remainder()).enumerate() {
        acc[l] += a * b;
    }
    reduce_lanes(&mut acc)
}

/// The fixed pairwise tree over the 32 lanes: `acc[i] += acc[i + w]` for
/// `w = 16, 8, 4, 2, 1` (i < w), result `acc[0]`.
#[inline(always)]
pub(crate) fn reduce_lanes(acc: &mut [f32; DOT_LANES]) -> f32 {
    let mut w = DOT_LANES / 2;
    while w > 0 {
        for i in 0..w {
            acc[i] += acc[i + w];
        }
        w /= 2;
    }
    acc[0]
}

fn assert_same_len(what: &str, a: usize, b: usize) {
    assert!(a == b, "{what}: lengths differ ({a} vs {b})");
}

impl BlockFormat for f32 {
    const TYPE: GgmlType = GgmlType::F32;
    const BLOCK: usize = 1;
    type Dot = f32;

    fn quantize_ref(src: &[f32], dst: &mut [f32]) {
        assert_same_len("f32", src.len(), dst.len());
        dst.copy_from_slice(src);
    }

    fn dequantize_ref(src: &[f32], dst: &mut [f32]) {
        assert_same_len("f32", src.len(), dst.len());
        dst.copy_from_slice(src);
    }

    /// The fixed 32-lane order of [`dot_lanes`] (not ggml's f64 sum: ggml's
    /// own result differs between its scalar and SIMD builds).
    fn vec_dot_ref(x: &[f32], y: &[f32]) -> f32 {
        assert_same_len("f32 x f32", x.len(), y.len());
        dot_lanes(x, y)
    }
}

impl BlockFormat for f16 {
    const TYPE: GgmlType = GgmlType::F16;
    const BLOCK: usize = 1;
    type Dot = f16;

    /// `ggml_fp32_to_fp16_row` (round to nearest even).
    fn quantize_ref(src: &[f32], dst: &mut [f16]) {
        assert_same_len("f16", src.len(), dst.len());
        for (o, &v) in dst.iter_mut().zip(src) {
            *o = f16::from_bits(fp32_to_fp16_bits(v));
        }
    }

    fn dequantize_ref(src: &[f16], dst: &mut [f32]) {
        assert_same_len("f16", src.len(), dst.len());
        for (o, &v) in dst.iter_mut().zip(src) {
            *o = f16_to_f32(v);
        }
    }

    /// The order of [`dot_lanes`] on the widened values. The f32 product of
    /// two f16 is exact (22 significant bits, no overflow or underflow), so
    /// SIMD paths may fuse it into an FMA and still round like `a + x * y`.
    fn vec_dot_ref(x: &[f16], y: &[f16]) -> f32 {
        assert_same_len("f16 x f16", x.len(), y.len());
        let mut acc = [0.0f32; DOT_LANES];
        for (xc, yc) in x.chunks(DOT_LANES).zip(y.chunks(DOT_LANES)) {
            for (l, (&a, &b)) in xc.iter().zip(yc).enumerate() {
                acc[l] += f16_to_f32(a) * f16_to_f32(b);
            }
        }
        reduce_lanes(&mut acc)
    }
}

impl BlockFormat for bf16 {
    const TYPE: GgmlType = GgmlType::BF16;
    const BLOCK: usize = 1;
    type Dot = bf16;

    /// `ggml_fp32_to_bf16_row_ref` (round to nearest even, quiet NaNs).
    fn quantize_ref(src: &[f32], dst: &mut [bf16]) {
        assert_same_len("bf16", src.len(), dst.len());
        for (o, &v) in dst.iter_mut().zip(src) {
            *o = bf16::from_bits(fp32_to_bf16_bits(v));
        }
    }

    fn dequantize_ref(src: &[bf16], dst: &mut [f32]) {
        assert_same_len("bf16", src.len(), dst.len());
        for (o, &v) in dst.iter_mut().zip(src) {
            *o = bf16_bits_to_fp32(v.to_bits());
        }
    }

    /// `ggml_vec_dot_bf16` without SIMD: f32 products summed in f64.
    fn vec_dot_ref(x: &[bf16], y: &[bf16]) -> f32 {
        assert_same_len("bf16 x bf16", x.len(), y.len());
        let mut sum = 0.0f64;
        for (&a, &b) in x.iter().zip(y) {
            sum += (bf16_bits_to_fp32(a.to_bits()) * bf16_bits_to_fp32(b.to_bits())) as f64;
        }
        sum as f32
    }
}
