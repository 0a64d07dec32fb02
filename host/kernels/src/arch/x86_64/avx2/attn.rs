//! AVX2 build of the attention helpers: the references of `crate::attn`
//! (their shared `*_body` loops, always inlined) compiled with AVX2 enabled,
//! so the same operations in the same order run on eight lanes instead of
//! the baseline's four. No FMA: Rust never fuses a multiply and an add.

use crate::attn::{scaled_dots_args, scaled_dots_body, weighted_sum_args, weighted_sum_body, AttnKernels};
use crate::KernelPath;

/// The AVX2 helpers, reported as `path` (AVX2 or AVX-512).
pub(crate) fn kernels(path: KernelPath) -> AttnKernels {
    assert!(KernelPath::Avx2.is_available());
    AttnKernels { scaled_dots, weighted_sum, path }
}

safe_fn! {
    requires KernelPath::Avx2.is_available();
    fn scaled_dots(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
        checks { scaled_dots_args(q, keys, out); }
        unsafe { scaled_dots_avx2(q, keys, scale, out) }
    }
    fn weighted_sum(w: &[f32], scale: f32, values: &[f32], out: &mut [f32]) {
        checks { weighted_sum_args(w, values, out); }
        unsafe { weighted_sum_avx2(w, scale, values, out) }
    }
}

/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn scaled_dots_avx2(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
    scaled_dots_body(q, keys, scale, out)
}

/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn weighted_sum_avx2(w: &[f32], scale: f32, values: &[f32], out: &mut [f32]) {
    weighted_sum_body(w, scale, values, out)
}
