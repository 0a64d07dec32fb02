//! `KernelPath::Avx512`: AVX-512 F/BW/VL (+ VNNI where present), installed
//! on top of the AVX2 kernels (types and functions without a 512-bit twin
//! keep the AVX2 one; the K-quants have none: the AVX2 twins are the
//! bit-identical ones).
//!
//! * `blocks`: the legacy block dots (two builds, with and without VNNI),
//!   the F32/F16 dots and the Q8_0/Q8_1 quantize; twins of `crate::blocks`
//!   and `crate::float`;
//! * `gemm`: the VNNI tile kernels (without VNNI the AVX2 tiles are used);
//!   twins of `crate::gemm::scalar`;
//! * `gemm_k`: the VNNI K-quant tile kernels; twins of `crate::gemm::kquants`;
//! * `attn`: `scaled_dots` on sixteen keys at a time, `weighted_sum` on 64
//!   outputs, `exp_sum` on eight f64 lanes per register; twins of
//!   `crate::attn`;
//! * `recurrent`: the short convolution on 16 lanes, the delta rule on
//!   eight state rows at a time; twins of `crate::recurrent`.

pub(crate) mod attn;
pub(crate) mod blocks;
pub(crate) mod gemm;
pub(crate) mod gemm_k;
pub(crate) mod recurrent;

use crate::{KernelPath, TypeKernels};

/// Replaces the pointers of `k` that have AVX-512 twins (after the AVX2
/// install).
pub(crate) fn install(k: &mut TypeKernels) {
    assert!(KernelPath::Avx512.is_available());
    blocks::install(k);
}
