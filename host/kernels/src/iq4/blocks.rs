//! The IQ4 block formats, laid out byte for byte as `ggml-common.h`.

#![allow(non_camel_case_types)]

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::scalar;
use crate::blocks::{BlockQ8_0, QK};
use crate::k_quants::blocks::{BlockQ8_K, QK_K};
use crate::{BlockFormat, GgmlType};

/// `block_iq4_nl`: 32 codes; `x = d * kvalues_iq4nl[q]`. Byte `j` holds
/// element `j` (low nibble) and `j + 16` (high nibble).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Zeroable, Pod)]
pub struct BlockIQ4_NL {
    pub d: f16,
    pub qs: [u8; QK / 2],
}

/// `block_iq4_xs`: 8 sub-blocks of 32; `x = d * (ls - 32) * kvalues_iq4nl[q]`
/// with the 6-bit `ls` split into `scales_l` (low 4 bits) and `scales_h`
/// (2 bits each). Byte `16 ib + j` of `qs` holds element `32 ib + j` (low
/// nibble) and `32 ib + 16 + j` (high nibble).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Zeroable, Pod)]
pub struct BlockIQ4_XS {
    pub d: f16,
    pub scales_h: u16,
    pub scales_l: [u8; QK_K / 64],
    pub qs: [u8; QK_K / 2],
}

const _: () = {
    assert!(size_of::<BlockIQ4_NL>() == GgmlType::IQ4_NL.type_size());
    assert!(size_of::<BlockIQ4_XS>() == GgmlType::IQ4_XS.type_size());
    assert!(GgmlType::IQ4_NL.block_size() == QK);
    assert!(GgmlType::IQ4_XS.block_size() == QK_K);
    assert!(align_of::<BlockIQ4_NL>() == 2);
    assert!(align_of::<BlockIQ4_XS>() == 2);
};

impl BlockFormat for BlockIQ4_NL {
    const TYPE: GgmlType = GgmlType::IQ4_NL;
    const BLOCK: usize = QK;
    type Dot = BlockQ8_0;

    fn quantize_ref(src: &[f32], dst: &mut [Self]) {
        assert_eq!(src.len(), dst.len() * QK, "iq4_nl quantize: lengths");
        // llama-quantize's variant (`quantize_iq4_nl`, 7 scale trials), so
        // `edgewasm quantize` writes its bytes; activations are never IQ4.
        scalar::quantize_iq4_nl(src, dst, scalar::NTRY_FILE)
    }
    fn dequantize_ref(src: &[Self], dst: &mut [f32]) {
        assert_eq!(dst.len(), src.len() * QK, "iq4_nl dequantize: lengths");
        scalar::dequantize_iq4_nl(src, dst)
    }
    fn vec_dot_ref(x: &[Self], y: &[BlockQ8_0]) -> f32 {
        assert_eq!(x.len(), y.len(), "iq4_nl vec_dot_ref: block counts differ");
        scalar::dot_iq4_nl(x, y)
    }
}

impl BlockFormat for BlockIQ4_XS {
    const TYPE: GgmlType = GgmlType::IQ4_XS;
    const BLOCK: usize = QK_K;
    type Dot = BlockQ8_K;

    fn quantize_ref(src: &[f32], dst: &mut [Self]) {
        assert_eq!(src.len(), dst.len() * QK_K, "iq4_xs quantize: lengths");
        scalar::quantize_iq4_xs(src, dst)
    }
    fn dequantize_ref(src: &[Self], dst: &mut [f32]) {
        assert_eq!(dst.len(), src.len() * QK_K, "iq4_xs dequantize: lengths");
        scalar::dequantize_iq4_xs(src, dst)
    }
    fn vec_dot_ref(x: &[Self], y: &[BlockQ8_K]) -> f32 {
        assert_eq!(x.len(), y.len(), "iq4_xs vec_dot_ref: block counts differ");
        scalar::dot_iq4_xs(x, y)
    }
}
