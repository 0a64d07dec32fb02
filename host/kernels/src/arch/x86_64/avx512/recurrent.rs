//! AVX512 build of the recurrent kernels: the short convolution is its
//! reference's shared `*_body` loop (always inlined) compiled with
//! `avx512f` enabled, so the same operations in the same order run on
//! sixteen lanes; the delta rule is AVX2's row-parallel loop on eight rows
//! (`avx2::recurrent::delta_rule_rows`). No FMA: Rust never fuses a
//! multiply and an add.

use crate::recurrent::{delta_rule_args, short_conv_args, short_conv_body, DeltaToken, RecurrentKernels};
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

/// Eight rows at a time on the AVX2 loop, inlined here: with `avx512vl`
/// it has 32 vector registers for the eight rows' chains (the compiled
/// loop uses `ymm16`–`ymm24`).
///
/// # Safety
/// The CPU must support avx2, avx512f and avx512vl.
#[target_feature(enable = "avx2,avx512f,avx512vl")]
unsafe fn delta_rule_avx512(state: &mut [f32], t: &DeltaToken<'_>, out: &mut [f32]) {
    // SAFETY: avx2 is enabled here; `delta_rule_args` checked the lengths.
    unsafe { crate::arch::x86_64::avx2::recurrent::delta_rule_rows::<8>(state, t, out) }
}
