//! `KernelPath::Neon` and `KernelPath::NeonDotprod` (aarch64; NEON is part
//! of the baseline). Every file builds its quantized kernels twice, as a
//! `plain` module (NEON only, [`dot_plain`]) and an `sdot` module (with the
//! dot-product extension, [`dot_sdot`]); the rest is shared.
//!
//! * `blocks`: the legacy block dots (Q4_0..Q8_0), the F32/F16 dots and the
//!   Q8_0/Q8_1 quantize; twins of `crate::blocks` and `crate::float`;
//! * `k_quants`: the K-quant dots and the Q8_K quantize; twins of
//!   `crate::k_quants::scalar`;
//! * `gemm`: the interleaved tile kernels; twins of `crate::gemm::scalar`;
//! * `gemm_k`: the K-quant tile kernels; twins of `crate::gemm::kquants`.
//!
//! * `recurrent`: the delta rule on eight state rows at a time; twin of
//!   `crate::recurrent`.
//!
//! There is no attention twin: the scalar `crate::attn` is already NEON.

use core::arch::aarch64::*;

pub(crate) mod blocks;
pub(crate) mod gemm;
pub(crate) mod gemm_k;
mod k_quants;
pub(crate) mod recurrent;

use crate::{KernelPath, TypeKernels};

/// Replaces the pointers of `k` that have NEON twins; `dotprod` selects the
/// `sdot` builds.
pub(crate) fn install(k: &mut TypeKernels, dotprod: bool) {
    assert!(KernelPath::Neon.is_available());
    if dotprod {
        assert!(KernelPath::NeonDotprod.is_available());
    }
    blocks::install(k, dotprod);
    k_quants::install(k, dotprod);
}

/// `vdotq_s32` (`sdot`): lane i += the dot of bytes 4i..4i+4 of `a` and `b`.
/// Inline assembly: the intrinsic is not stable in Rust yet.
#[target_feature(enable = "neon,dotprod")]
#[inline]
pub(crate) fn dot_sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // SAFETY: `sdot` only reads and writes the named vector registers; the
    // dotprod feature is enabled on this function, so its callers have it.
    unsafe {
        core::arch::asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// ggml's `ggml_vdotq_s32` fallback without the extension: widening
/// multiplies and pairwise adds. The lane sum equals [`dot_sdot`]'s (the
/// products are exact), though not lane by lane; the tile kernels, which
/// need `sdot`'s lanes, use `gemm`'s own `dot4_plain`.
#[target_feature(enable = "neon")]
#[inline]
pub(crate) fn dot_plain(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let p0 = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    let p1 = vmull_s8(vget_high_s8(a), vget_high_s8(b));
    vaddq_s32(acc, vaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1)))
}
