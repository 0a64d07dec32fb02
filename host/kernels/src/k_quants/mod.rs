//! The K-quant formats (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and the activation
//! format Q8_K): 256-element super-blocks with sub-block scales.
//!
//! * [`blocks`]: the `#[repr(C)]` block structs and their [`BlockFormat`]
//!   impls (`Dot = BlockQ8_K` for all);
//! * `scalar`: the reference kernels, ports of ggml's C code (bit-identical
//!   quantize/dequantize and generic dot products, checked against goldens);
//! * SIMD twins of the dot products and of the Q8_K quantize live in
//!   `crate::arch::x86_64::avx2::k_quants` and
//!   `crate::arch::aarch64::neon::k_quants`, installed by [`kernels`] on top
//!   of the scalar table (the AVX-512 path uses the AVX2 twins). Every twin
//!   is bit-identical to the reference.
//!
//! [`BlockFormat`]: crate::BlockFormat

pub mod blocks;
pub(crate) mod scalar;

#[cfg(test)]
mod tests;

pub use blocks::{BlockQ2_K, BlockQ3_K, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K};

use crate::erased::scalar_kernels;
use crate::{GgmlType, KernelPath, TypeKernels};

/// The K-quant kernels of `ty` on `path`: `None` if `ty` is not a K-quant or
/// this CPU cannot run `path`. Functions without a SIMD twin on `path` are
/// the scalar references; `path` is reported either way.
pub(crate) fn kernels(ty: GgmlType, path: KernelPath) -> Option<TypeKernels> {
    if !path.is_available() {
        return None;
    }
    let mut k = match ty {
        GgmlType::Q2_K => scalar_kernels::<BlockQ2_K>(path),
        GgmlType::Q3_K => scalar_kernels::<BlockQ3_K>(path),
        GgmlType::Q4_K => scalar_kernels::<BlockQ4_K>(path),
        GgmlType::Q5_K => scalar_kernels::<BlockQ5_K>(path),
        GgmlType::Q6_K => scalar_kernels::<BlockQ6_K>(path),
        GgmlType::Q8_K => scalar_kernels::<BlockQ8_K>(path),
        _ => return None,
    };
    // Sets `k.path`; the AVX-512 path keeps the AVX2 twins (the former
    // 512-bit Q4_K/Q6_K kernels summed in another order).
    crate::arch::install(&mut k, path);
    Some(k)
}
