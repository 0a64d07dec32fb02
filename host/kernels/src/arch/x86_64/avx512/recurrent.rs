//! AVX512 build of the recurrent kernels: the references of
//! `crate::recurrent` (their shared `*_body` loops, always inlined)
//! compiled with `avx512f` enabled, so the same operations in the same order
//! run on sixteen lanes. No FMA: Rust never fuses a multiply and an add.

use crate::recurrent::{delta_rule_args, delta_rule_body, short_conv_args, short_conv_body, DeltaToken, RecurrentKernels};
use crate::KernelPath;

/// The Avx512 kernels.
pub(crate) fn kernels() -> RecurrentKernels {
    assert!(KernelPath::Avx512.is_available());
    RecurrentKernels { short_conv, delta_rule, path: KernelPath::Avx512 }
}

safe_fn! {
    requires KernelPath::Avx512.is_available();
    fn short_conv(d: usize, w: &[f32], state: &mut [f32], x: &[f32], out: &mut [f32]) {
        checks { short_conv_args(d, w, state, x, out); }
        unsafe { short_conv_avx512(d, w, state, x, out) }
    }
    fn delta_rule(state: &mut [f32], t: &DeltaToken<'_>, out: &mut [f32]) {
        checks { delta_rule_args(state, t, out); }
        unsafe { delta_rule_avx512(state, t, out) }
    }
}

/// # Safety
/// The CPU must support avx512f.
#[target_feature(enable = "avx512f")]
unsafe fn short_conv_avx512(d: usize, w: &[f32], state: &mut [f32], x: &[f32], out: &mut [f32]) {
    short_conv_body(d, w, state, x, out)
}

/// # Safety
/// The CPU must support avx512f.
#[target_feature(enable = "avx512f")]
unsafe fn delta_rule_avx512(state: &mut [f32], t: &DeltaToken<'_>, out: &mut [f32]) {
    delta_rule_body(state, t, out)
}
