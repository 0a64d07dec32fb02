//! NEON build of the delta rule: [`crate::recurrent::delta_rule`] on eight
//! state rows at a time. The reference (which aarch64's baseline already
//! compiles to NEON) works one row at a time, and each row's two dots are
//! chains of dependent adds; eight rows give eight independent chains, with
//! each row's operations in the reference's order, so the same bits. The
//! short convolution has no twin: its reference loop is already NEON.
//! No FMA: Rust never fuses a multiply and an add, and neither do these
//! intrinsics (`vmulq_f32`, then `vaddq_f32`).

use core::arch::aarch64::*;

use crate::attn::{dot_tail, lanes_sum};
use crate::recurrent::{delta_rule_args, delta_rule_groups, short_conv, DeltaToken, RecurrentKernels};
use crate::KernelPath;

/// The NEON kernels, for `path` (`Neon` or `NeonDotprod`: the same code).
pub(crate) fn kernels(path: KernelPath) -> RecurrentKernels {
    assert!(KernelPath::Neon.is_available() && path.is_available());
    RecurrentKernels { short_conv, delta_rule, path }
}

safe_fn! {
    requires KernelPath::Neon.is_available();
    fn delta_rule(state: &mut [f32], t: &DeltaToken<'_>, out: &mut [f32]) {
        checks { delta_rule_args(state, t, out); }
        unsafe { delta_rule_rows::<8>(state, t, out) }
    }
}

/// An eight-lane accumulator of `crate::attn::dot`: lanes 0–3 and 4–7.
#[derive(Clone, Copy)]
struct Acc(float32x4_t, float32x4_t);

/// `R` rows at a time; heads whose size is not a multiple of eight, and
/// the last `s % R` rows, take the reference loop.
///
/// # Safety
/// The CPU must support NEON, and the lengths must satisfy
/// `delta_rule_args`.
#[target_feature(enable = "neon")]
unsafe fn delta_rule_rows<const R: usize>(state: &mut [f32], t: &DeltaToken<'_>, out: &mut [f32]) {
    let s = t.k.len();
    let (k, q) = (t.k.as_ptr(), t.q.as_ptr());
    let decay = vdupq_n_f32(t.decay);
    let zero = Acc(vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    delta_rule_groups::<R>(state, t, out, |rows, vs, outs| {
        let p = rows.as_mut_ptr();
        // Decay, and dot with `k`.
        let mut acc = [zero; R];
        for c in (0..s).step_by(8) {
            // SAFETY: `c + 8 <= s`, so `k[c..c + 8]` and each row's
            // `[r * s + c..r * s + c + 8]` (`r < R`) lie in their slices
            // (`rows` holds `R * s` values).
            unsafe {
                let (k0, k1) = (vld1q_f32(k.add(c)), vld1q_f32(k.add(c + 4)));
                for (r, a) in acc.iter_mut().enumerate() {
                    let x = p.add(r * s + c);
                    let (x0, x1) = (vmulq_f32(vld1q_f32(x), decay), vmulq_f32(vld1q_f32(x.add(4)), decay));
                    vst1q_f32(x, x0);
                    vst1q_f32(x.add(4), x1);
                    *a = Acc(vaddq_f32(a.0, vmulq_f32(x0, k0)), vaddq_f32(a.1, vmulq_f32(x1, k1)));
                }
            }
        }
        let mut delta = [vdupq_n_f32(0.0); R];
        for ((d, a), &vj) in delta.iter_mut().zip(&acc).zip(vs) {
            *d = vdupq_n_f32((vj - dot_of(*a)) * t.beta);
        }
        // Update, and dot with `q`.
        let mut acc = [zero; R];
        for c in (0..s).step_by(8) {
            // SAFETY: as in the first loop, and `q.len() == s`
            // (`delta_rule_args`), so `q[c..c + 8]` lies in `q`.
            unsafe {
                let (k0, k1) = (vld1q_f32(k.add(c)), vld1q_f32(k.add(c + 4)));
                let (q0, q1) = (vld1q_f32(q.add(c)), vld1q_f32(q.add(c + 4)));
                for (r, a) in acc.iter_mut().enumerate() {
                    let x = p.add(r * s + c);
                    let x0 = vaddq_f32(vld1q_f32(x), vmulq_f32(k0, delta[r]));
                    let x1 = vaddq_f32(vld1q_f32(x.add(4)), vmulq_f32(k1, delta[r]));
                    vst1q_f32(x, x0);
                    vst1q_f32(x.add(4), x1);
                    *a = Acc(vaddq_f32(a.0, vmulq_f32(x0, q0)), vaddq_f32(a.1, vmulq_f32(x1, q1)));
                }
            }
        }
        for (o, a) in outs.iter_mut().zip(&acc) {
            *o = dot_of(*a) * t.scale;
        }
    });
}

/// A finished accumulator as `crate::attn::dot` ends: its eight lanes
/// summed in order, plus the (empty) tail's zero.
#[inline(always)]
fn dot_of(acc: Acc) -> f32 {
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds eight f32s, four per store.
    unsafe {
        vst1q_f32(lanes.as_mut_ptr(), acc.0);
        vst1q_f32(lanes.as_mut_ptr().add(4), acc.1);
    }
    lanes_sum(&lanes) + dot_tail(&[], &[])
}
