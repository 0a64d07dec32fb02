//! The float "formats" F32, F16 and BF16 (one element per block).
//!
//! ggml's vec_dot for these pairs a row with a row of the same type (the
//! activation row is converted first) and accumulates in double precision
//! (`ggml_float`) in its scalar code; the references here do the same.

use half::{bf16, f16};

use crate::fp::{bf16_bits_to_fp32, f16_to_f32, fp32_to_bf16_bits, fp32_to_fp16_bits};
use crate::{BlockFormat, GgmlType};

const _: () = assert!(size_of::<f32>() == GgmlType::F32.type_size());
const _: () = assert!(size_of::<f16>() == GgmlType::F16.type_size());
const _: () = assert!(size_of::<bf16>() == GgmlType::BF16.type_size());

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

    /// `ggml_vec_dot_f32` without SIMD: f32 products summed in f64.
    fn vec_dot_ref(x: &[f32], y: &[f32]) -> f32 {
        assert_same_len("f32 x f32", x.len(), y.len());
        let mut sum = 0.0f64;
        for (&a, &b) in x.iter().zip(y) {
            sum += (a * b) as f64;
        }
        sum as f32
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

    /// `ggml_vec_dot_f16` without SIMD: f32 products summed in f64.
    fn vec_dot_ref(x: &[f16], y: &[f16]) -> f32 {
        assert_same_len("f16 x f16", x.len(), y.len());
        let mut sum = 0.0f64;
        for (&a, &b) in x.iter().zip(y) {
            sum += (f16_to_f32(a) * f16_to_f32(b)) as f64;
        }
        sum as f32
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
