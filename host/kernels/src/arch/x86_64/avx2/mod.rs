//! `KernelPath::Avx2`: AVX2 + FMA + F16C (also the base the AVX-512 path
//! installs on top of).
//!
//! * `blocks`: the legacy block dots (Q4_0..Q8_0), the F32/F16 dots and the
//!   Q8_0/Q8_1 quantize; twins of `crate::blocks` and `crate::float`;
//! * `k_quants`: the K-quant dots and the Q8_K quantize; twins of
//!   `crate::k_quants::scalar`;
//! * `gemm`: the interleaved tile kernels; twins of `crate::gemm::scalar`;
//! * `gemm_k`: the K-quant tile kernels; twins of `crate::gemm::kquants`;
//! * `attn`: the attention helpers; twins of `crate::attn`;
//! * `recurrent`: the short convolution and the delta rule; twins of
//!   `crate::recurrent`.
//!
//! Every `#[target_feature]` function here is reached only through the
//! `safe_fn!` wrappers these modules hand to `crate::arch`, which does so
//! only after AVX2, FMA and F16C were detected.

pub(crate) mod attn;
pub(crate) mod blocks;
pub(crate) mod gemm;
pub(crate) mod gemm_k;
mod k_quants;
pub(crate) mod recurrent;

use crate::{KernelPath, TypeKernels};

/// Replaces the pointers of `k` that have AVX2 twins.
pub(crate) fn install(k: &mut TypeKernels) {
    assert!(KernelPath::Avx2.is_available());
    blocks::install(k);
    k_quants::install(k);
}
