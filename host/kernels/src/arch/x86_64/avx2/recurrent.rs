//! AVX2 build of the recurrent kernels: the references of
//! `crate::recurrent` (their shared `*_body` loops, always inlined)
//! compiled with `avx2` enabled, so the same operations in the same order
//! run on eight lanes. No FMA: Rust never fuses a multiply and an add.
//!
//! The delta rule has its own loop here ([`delta_rule_rows`]): the
//! reference's rows each carry two dots, one chain of dependent adds per
//! dot, so one row at a time waits on the adds' latency. Several rows at
//! once give as many independent chains, with each row's operations in the
//! reference's order.

use crate::attn::{dot_tail, lanes_sum};
use crate::recurrent::{delta_rule_args, delta_rule_groups, short_conv_args, short_conv_body, DeltaToken, RecurrentKernels};
use crate::KernelPath;

/// The Avx2 kernels.
pub(crate) fn kernels() -> RecurrentKernels {
    assert!(KernelPath::Avx2.is_available());
    RecurrentKernels { short_conv, delta_rule, path: KernelPath::Avx2 }
}

safe_fn! {
    requires KernelPath::Avx2.is_available();
    fn short_conv(d: usize, w: &[f32], state: &mut [f32], x: &[f32], out: &mut [f32]) {
        checks { short_conv_args(d, w, state, x, out); }
        unsafe { short_conv_avx2(d, w, state, x, out) }
    }
    fn delta_rule(state: &mut [f32], t: &DeltaToken<'_>, out: &mut [f32]) {
        checks { delta_rule_args(state, t, out); }
        unsafe { delta_rule_avx2(state, t, out) }
    }
}

/// # Safety
/// The CPU must support avx2.
#[target_feature(enable = "avx2")]
unsafe fn short_conv_avx2(d: usize, w: &[f32], state: &mut [f32], x: &[f32], out: &mut [f32]) {
    short_conv_body(d, w, state, x, out)
}

/// # Safety
/// The CPU must support avx2.
#[target_feature(enable = "avx2")]
unsafe fn delta_rule_avx2(state: &mut [f32], t: &DeltaToken<'_>, out: &mut [f32]) {
    // SAFETY: avx2 is enabled here; `delta_rule_args` checked the lengths.
    unsafe { delta_rule_rows::<4>(state, t, out) }
}

/// [`crate::recurrent::delta_rule`] on `R` state rows at a time: the same
/// operations on each row in the same order (decay, the eight-lane dot with
/// `k`, the update, the eight-lane dot with `q`), so the same bits, but `R`
/// rows' dots run as `R` independent chains. Heads whose size is not a
/// multiple of eight, and the last `s % R` rows, take the reference loop.
///
/// Four rows on AVX2 (16 registers); the AVX-512 build uses eight (32).
///
/// # Safety
/// The CPU must support avx2, and the lengths must satisfy
/// `delta_rule_args`.
#[target_feature(enable = "avx2")]
#[inline]
pub(crate) unsafe fn delta_rule_rows<const R: usize>(state: &mut [f32], t: &DeltaToken<'_>, out: &mut [f32]) {
    use core::arch::x86_64::*;
    let s = t.k.len();
    let (k, q) = (t.k.as_ptr(), t.q.as_ptr());
    let decay = _mm256_set1_ps(t.decay);
    delta_rule_groups::<R>(state, t, out, |rows, vs, outs| {
        let p = rows.as_mut_ptr();
        // Decay, and dot with `k`.
        let mut acc = [_mm256_setzero_ps(); R];
        for c in (0..s).step_by(8) {
            // SAFETY: `c + 8 <= s`, so `k[c..c + 8]` and each row's
            // `[r * s + c..r * s + c + 8]` (`r < R`) lie in their slices
            // (`rows` holds `R * s` values).
            unsafe {
                let kc = _mm256_loadu_ps(k.add(c));
                for (r, a) in acc.iter_mut().enumerate() {
                    let x = _mm256_mul_ps(_mm256_loadu_ps(p.add(r * s + c)), decay);
                    _mm256_storeu_ps(p.add(r * s + c), x);
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(x, kc));
                }
            }
        }
        let mut delta = [_mm256_setzero_ps(); R];
        for ((d, a), &vj) in delta.iter_mut().zip(&acc).zip(vs) {
            *d = _mm256_set1_ps((vj - dot_of(*a)) * t.beta);
        }
        // Update, and dot with `q`.
        let mut acc = [_mm256_setzero_ps(); R];
        for c in (0..s).step_by(8) {
            // SAFETY: as in the first loop, and `q.len() == s`
            // (`delta_rule_args`), so `q[c..c + 8]` lies in `q`.
            unsafe {
                let (kc, qc) = (_mm256_loadu_ps(k.add(c)), _mm256_loadu_ps(q.add(c)));
                for (r, a) in acc.iter_mut().enumerate() {
                    let x = _mm256_add_ps(_mm256_loadu_ps(p.add(r * s + c)), _mm256_mul_ps(kc, delta[r]));
                    _mm256_storeu_ps(p.add(r * s + c), x);
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(x, qc));
                }
            }
        }
        for (o, a) in outs.iter_mut().zip(&acc) {
            *o = dot_of(*a) * t.scale;
        }
    });
}

/// A finished eight-lane accumulator as `crate::attn::dot` ends: its lanes
/// summed in order, plus the (empty) tail's zero.
#[inline(always)]
fn dot_of(acc: core::arch::x86_64::__m256) -> f32 {
    // SAFETY: `__m256` and `[f32; 8]` have the same size, and every bit
    // pattern is a valid f32.
    let lanes: [f32; 8] = unsafe { core::mem::transmute(acc) };
    lanes_sum(&lanes) + dot_tail(&[], &[])
}
