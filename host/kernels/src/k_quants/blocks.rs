//! The K-quant super-block formats (256 elements per block), laid out byte
//! for byte as `ggml-common.h`, with their [`BlockFormat`] impls.
//!
//! ggml declares the `d`/`dmin` pair of Q2_K, Q4_K and Q5_K as a union with a
//! 32-bit `ggml_half2`, which makes those C structs 4-byte aligned; here they
//! are 2-byte aligned (sizes unchanged, so anything laid out for ggml casts to
//! these). `BlockQ8_K` starts with an `f32` and is 4-byte aligned, as in C.

#![allow(non_camel_case_types)]

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::scalar;
use crate::{BlockFormat, GgmlType};

/// Elements per super-block (`QK_K`).
pub const QK_K: usize = 256;
/// Bytes of packed 6-bit scales and mins in Q4_K/Q5_K (`K_SCALE_SIZE`).
pub const K_SCALE_SIZE: usize = 12;

/// `block_q2_K`: 16 sub-blocks of 16; `x = d * (sc & 15) * q - dmin * (sc >> 4)`,
/// q in 0..4.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Zeroable, Pod)]
pub struct BlockQ2_K {
    /// Low nibble: scale, high nibble: min, per sub-block of 16.
    pub scales: [u8; QK_K / 16],
    /// 2-bit quants: byte `l` of each 32-byte group holds 4 elements 32 apart.
    pub qs: [u8; QK_K / 4],
    pub d: f16,
    pub dmin: f16,
}

/// `block_q3_K`: 16 sub-blocks of 16; `x = d * (sc - 32) * (q - 4)`, q in
/// 0..8 (2 low bits in `qs`, the high bit in `hmask`), sc 6-bit.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Zeroable, Pod)]
pub struct BlockQ3_K {
    pub hmask: [u8; QK_K / 8],
    pub qs: [u8; QK_K / 4],
    /// 16 6-bit scales, packed.
    pub scales: [u8; 12],
    pub d: f16,
}

/// `block_q4_K`: 8 sub-blocks of 32; `x = d * sc * q - dmin * m`, q in 0..16,
/// sc and m 6-bit (packed as `get_scale_min_k4`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Zeroable, Pod)]
pub struct BlockQ4_K {
    pub d: f16,
    pub dmin: f16,
    pub scales: [u8; K_SCALE_SIZE],
    pub qs: [u8; QK_K / 2],
}

/// `block_q5_K`: as Q4_K with a fifth bit per element in `qh`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Zeroable, Pod)]
pub struct BlockQ5_K {
    pub d: f16,
    pub dmin: f16,
    pub scales: [u8; K_SCALE_SIZE],
    pub qh: [u8; QK_K / 8],
    pub qs: [u8; QK_K / 2],
}

/// `block_q6_K`: 16 sub-blocks of 16; `x = d * sc * (q - 32)`, q in 0..64
/// (low 4 bits in `ql`, high 2 in `qh`), sc a signed byte.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Zeroable, Pod)]
pub struct BlockQ6_K {
    pub ql: [u8; QK_K / 2],
    pub qh: [u8; QK_K / 4],
    pub scales: [i8; QK_K / 16],
    pub d: f16,
}

/// `block_q8_K`: the activation format of every K-quant `vec_dot`;
/// `x = d * q`, and `bsums[j]` is the sum of `qs[16 j..16 j + 16]` (the SIMD
/// dot products rely on it, so blocks must come from a quantize).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Zeroable, Pod)]
pub struct BlockQ8_K {
    pub d: f32,
    pub qs: [i8; QK_K],
    pub bsums: [i16; QK_K / 16],
}

const _: () = {
    assert!(size_of::<BlockQ2_K>() == GgmlType::Q2_K.type_size());
    assert!(size_of::<BlockQ3_K>() == GgmlType::Q3_K.type_size());
    assert!(size_of::<BlockQ4_K>() == GgmlType::Q4_K.type_size());
    assert!(size_of::<BlockQ5_K>() == GgmlType::Q5_K.type_size());
    assert!(size_of::<BlockQ6_K>() == GgmlType::Q6_K.type_size());
    assert!(size_of::<BlockQ8_K>() == GgmlType::Q8_K.type_size());
    assert!(GgmlType::Q2_K.block_size() == QK_K);
    assert!(GgmlType::Q3_K.block_size() == QK_K);
    assert!(GgmlType::Q4_K.block_size() == QK_K);
    assert!(GgmlType::Q5_K.block_size() == QK_K);
    assert!(GgmlType::Q6_K.block_size() == QK_K);
    assert!(GgmlType::Q8_K.block_size() == QK_K);
    assert!(align_of::<BlockQ2_K>() == 2);
    assert!(align_of::<BlockQ3_K>() == 2);
    assert!(align_of::<BlockQ4_K>() == 2);
    assert!(align_of::<BlockQ5_K>() == 2);
    assert!(align_of::<BlockQ6_K>() == 2);
    assert!(align_of::<BlockQ8_K>() == 4);
};

macro_rules! k_format {
    ($block:ty, $ty:ident, $q:path, $dq:path, $dot:path) => {
        impl BlockFormat for $block {
            const TYPE: GgmlType = GgmlType::$ty;
            const BLOCK: usize = QK_K;
            type Dot = BlockQ8_K;

            fn quantize_ref(src: &[f32], dst: &mut [Self]) {
                scalar::assert_quant_lens(GgmlType::$ty, src.len(), dst.len());
                $q(src, dst)
            }
            fn dequantize_ref(src: &[Self], dst: &mut [f32]) {
                scalar::assert_quant_lens(GgmlType::$ty, dst.len(), src.len());
                $dq(src, dst)
            }
            fn vec_dot_ref(x: &[Self], y: &[BlockQ8_K]) -> f32 {
                assert_eq!(
                    x.len(),
                    y.len(),
                    "{} vec_dot_ref: block counts differ",
                    GgmlType::$ty
                );
                $dot(x, y)
            }
        }
    };
}

k_format!(
    BlockQ2_K,
    Q2_K,
    scalar::quantize_q2_k,
    scalar::dequantize_q2_k,
    scalar::dot_q2_k
);
k_format!(
    BlockQ3_K,
    Q3_K,
    scalar::quantize_q3_k,
    scalar::dequantize_q3_k,
    scalar::dot_q3_k
);
k_format!(
    BlockQ4_K,
    Q4_K,
    scalar::quantize_q4_k,
    scalar::dequantize_q4_k,
    scalar::dot_q4_k
);
k_format!(
    BlockQ5_K,
    Q5_K,
    scalar::quantize_q5_k,
    scalar::dequantize_q5_k,
    scalar::dot_q5_k
);
k_format!(
    BlockQ6_K,
    Q6_K,
    scalar::quantize_q6_k,
    scalar::dequantize_q6_k,
    scalar::dot_q6_k
);
k_format!(
    BlockQ8_K,
    Q8_K,
    scalar::quantize_q8_k,
    scalar::dequantize_q8_k,
    scalar::dot_q8_k
);
