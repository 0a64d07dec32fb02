//! Kernels of recurrent layers, which fold a sequence into a fixed-size
//! state instead of keeping keys and values: LFM2's short convolution and
//! Qwen 3.5's gated delta rule.
//!
//! The functions here are the scalar references: plain f32 with every
//! product rounded before its sum (Rust never fuses them into FMAs) and
//! every reduction in a fixed order, so any vector width gives the same
//! bits. The SIMD twins (`crate::arch::*::recurrent`) are the short
//! convolution's loop compiled for AVX2 and AVX-512 (on aarch64 the
//! reference is already NEON), and a delta rule that runs several state
//! rows side by side with each row's operations in the reference's order.
//! Each twin is tested against the reference, bit for bit, on the machines
//! that have it (aarch64 under qemu).

use std::sync::OnceLock;

use crate::attn::dot;
use crate::{active_path, KernelPath};

/// [`short_conv`]'s signature.
pub type ShortConvFn = fn(d: usize, w: &[f32], state: &mut [f32], x: &[f32], out: &mut [f32]);
/// [`delta_rule`]'s signature.
pub type DeltaRuleFn = fn(state: &mut [f32], t: &DeltaToken<'_>, out: &mut [f32]);

/// The recurrent kernels of one kernel path.
#[derive(Clone, Copy, Debug)]
pub struct RecurrentKernels {
    pub short_conv: ShortConvFn,
    pub delta_rule: DeltaRuleFn,
    /// The path these pointers were resolved for.
    pub path: KernelPath,
}

/// The kernels on `path`, or `None` if this CPU cannot run it.
pub fn recurrent_kernels_for_path(path: KernelPath) -> Option<RecurrentKernels> {
    if !path.is_available() {
        return None;
    }
    Some(crate::arch::recurrent(path).unwrap_or(RecurrentKernels { short_conv, delta_rule, path }))
}

/// The kernels on the [`active_path`] (resolved once per process).
pub fn recurrent_kernels() -> &'static RecurrentKernels {
    static TABLE: OnceLock<RecurrentKernels> = OnceLock::new();
    TABLE.get_or_init(|| recurrent_kernels_for_path(active_path()).expect("the active path is available"))
}

/// A causal depthwise convolution over channels (LFM2's `shortconv`,
/// ggml's `ssm_conv`, Qwen 3.5's `ssm_conv1d`), for `n` tokens at once
/// (prefill) or one (decode).
///
/// * `w`: `taps` rows of `d` weights, tap-major (row `k` multiplies the
///   input `taps - 1 - k` tokens back; the last row the current token);
/// * `state`: the `taps - 1` inputs before `x`, oldest first, `d` each;
///   replaced by the last `taps - 1` inputs of `state ++ x`;
/// * `x`: `n` rows of `d` inputs; `out`: their `n` rows of outputs.
///
/// `out[t][c] = Σ_k w[k][c] · in[t + k][c]` over the sequence
/// `in = state ++ x`, summed from tap 0 up, as ggml's `ssm_conv` does.
///
/// Panics when the lengths disagree (a caller bug).
pub fn short_conv(d: usize, w: &[f32], state: &mut [f32], x: &[f32], out: &mut [f32]) {
    short_conv_args(d, w, state, x, out);
    short_conv_body(d, w, state, x, out)
}

/// Checks the shapes of [`ShortConvFn`] (panics on a caller's bug).
#[track_caller]
#[inline]
pub(crate) fn short_conv_args(d: usize, w: &[f32], state: &[f32], x: &[f32], out: &[f32]) {
    assert!(d > 0 && w.len() % d == 0 && w.len() >= d, "short_conv: {} weights for width {d}", w.len());
    assert_eq!(state.len(), w.len() - d, "short_conv: state length");
    assert!(x.len() % d == 0 && out.len() == x.len(), "short_conv: {} inputs, {} outputs, width {d}", x.len(), out.len());
}

/// The loops, shared with the SIMD builds (always inlined into them).
#[inline(always)]
pub(crate) fn short_conv_body(d: usize, w: &[f32], state: &mut [f32], x: &[f32], out: &mut [f32]) {
    let hist = w.len() / d - 1;
    let n = x.len() / d;
    for (t, o) in out.chunks_exact_mut(d).enumerate() {
        o.fill(0.0);
        for (k, wk) in w.chunks_exact(d).enumerate() {
            let i = t + k; // position in `state ++ x`
            let src = if i < hist { &state[i * d..(i + 1) * d] } else { &x[(i - hist) * d..(i - hist + 1) * d] };
            for ((o, &wv), &sv) in o.iter_mut().zip(wk).zip(src) {
                *o += wv * sv;
            }
        }
    }
    if n >= hist {
        state.copy_from_slice(&x[(n - hist) * d..]);
    } else {
        state.copy_within(n * d.., 0);
        state[(hist - n) * d..].copy_from_slice(x);
    }
}

/// One token's inputs to one head of the gated delta rule.
#[derive(Clone, Copy, Debug)]
pub struct DeltaToken<'a> {
    /// Query and key (`s` values each, L2-normalized by the caller).
    pub q: &'a [f32],
    pub k: &'a [f32],
    /// Value (`s` values).
    pub v: &'a [f32],
    /// `exp(g)`: the state's decay for this token.
    pub decay: f32,
    /// The write strength, `sigmoid(·)`.
    pub beta: f32,
    /// Multiplier of the output (`1/√s`).
    pub scale: f32,
}

/// One token of one head of the gated delta rule (Qwen 3.5's linear
/// attention; ggml's `gated_delta_net` with one gate per head), as its
/// step form: with the state `S` (`s × s`, stored transposed: row `j` of
/// `state` is column `j` of `S`),
///
/// ```text
/// S ← decay · S
/// S ← S + k ⊗ (β · (v − Sᵀk))
/// out = scale · Sᵀq
/// ```
///
/// Rows of `state` are independent, so each is decayed, read, written and
/// read again in one pass (the same bits as three passes). Dots are
/// [`crate::attn`]'s eight-lane order.
///
/// Panics when the lengths disagree (a caller bug).
pub fn delta_rule(state: &mut [f32], t: &DeltaToken<'_>, out: &mut [f32]) {
    delta_rule_args(state, t, out);
    delta_rule_body(state, t, out)
}

/// Checks the shapes of [`DeltaRuleFn`] (panics on a caller's bug).
#[track_caller]
#[inline]
pub(crate) fn delta_rule_args(state: &[f32], t: &DeltaToken<'_>, out: &[f32]) {
    let s = t.k.len();
    assert!(s > 0 && t.q.len() == s && t.v.len() == s && out.len() == s, "delta_rule: q {}, k {s}, v {}, out {}", t.q.len(), t.v.len(), out.len());
    assert_eq!(Some(state.len()), s.checked_mul(s), "delta_rule: state length for heads of {s}");
}

/// The loop, shared with the SIMD builds (always inlined into them).
#[inline(always)]
pub(crate) fn delta_rule_body(state: &mut [f32], t: &DeltaToken<'_>, out: &mut [f32]) {
    let s = t.k.len();
    for ((row, &vj), o) in state.chunks_exact_mut(s).zip(t.v).zip(out.iter_mut()) {
        for x in row.iter_mut() {
            *x *= t.decay;
        }
        let delta = (vj - dot(row, t.k)) * t.beta;
        for (x, &kk) in row.iter_mut().zip(t.k) {
            *x += kk * delta;
        }
        *o = dot(row, t.q) * t.scale;
    }
}

/// The scaffold of the row-parallel delta-rule twins: `group(rows, v, out)`
/// for each run of `R` state rows (`R × s` values) with their `R` values
/// and outputs; heads whose size is not a multiple of eight, and the last
/// `s % R` rows, take the reference loop. Always inlined, so `group` runs
/// with the calling kernel's target features.
#[inline(always)]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
pub(crate) fn delta_rule_groups<const R: usize>(
    state: &mut [f32],
    t: &DeltaToken<'_>,
    out: &mut [f32],
    mut group: impl FnMut(&mut [f32], &[f32], &mut [f32]),
) {
    let s = t.k.len();
    if s % 8 != 0 {
        return delta_rule_body(state, t, out);
    }
    let whole = s / R * R;
    let (grouped, rest) = state.split_at_mut(whole * s);
    for ((rows, vs), outs) in grouped.chunks_exact_mut(R * s).zip(t.v.chunks_exact(R)).zip(out.chunks_exact_mut(R)) {
        group(rows, vs, outs);
    }
    let tail = DeltaToken { v: &t.v[whole..], ..*t };
    delta_rule_body(rest, &tail, &mut out[whole..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::available_paths;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        edgewasm_test_support::Rng::new(seed).f32s(n, 0.5)
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// The definition, one output at a time over the whole sequence.
    fn direct(d: usize, taps: usize, w: &[f32], seq: &[f32], t: usize, c: usize) -> f32 {
        (0..taps).fold(0.0, |acc, k| acc + w[k * d + c] * seq[(t + k) * d + c])
    }

    /// A prefill of any length, then token-by-token decoding, match the
    /// definition over `zeros ++ tokens` bit for bit, whatever the split.
    #[test]
    fn chunks_and_steps_match_the_definition() {
        for (d, taps) in [(5, 3), (8, 1), (3, 4), (16, 2)] {
            let hist = taps - 1;
            let w = values(taps * d, 7);
            let n = 9;
            let x = values(n * d, 11);
            let mut seq = vec![0.0; hist * d];
            seq.extend_from_slice(&x);
            for split in 0..=n {
                let mut state = vec![0.0; hist * d];
                let mut out = vec![0.0; n * d];
                if split > 0 {
                    short_conv(d, &w, &mut state, &x[..split * d], &mut out[..split * d]);
                }
                for t in split..n {
                    short_conv(d, &w, &mut state, &x[t * d..(t + 1) * d], &mut out[t * d..(t + 1) * d]);
                }
                for t in 0..n {
                    for c in 0..d {
                        let want = direct(d, taps, &w, &seq, t, c);
                        assert_eq!(out[t * d + c].to_bits(), want.to_bits(), "d {d} taps {taps} split {split} t {t} c {c}");
                    }
                }
                assert_eq!(state[..], seq[(seq.len() / d - hist) * d..], "final state, split {split}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "state length")]
    fn a_wrong_state_is_a_caller_bug() {
        short_conv(4, &[0.0; 12], &mut [0.0; 4], &[0.0; 4], &mut [0.0; 4]);
    }

    /// The delta rule against the matrix form in f64: the state keeps the
    /// last value written under a key (a unit key, β = 1, no decay: the
    /// state recalls `v` exactly), and decays as told.
    #[test]
    fn delta_rule_is_the_matrix_recurrence() {
        let s = 19;
        let mut state = vec![0.0f32; s * s];
        let mut want = vec![0.0f64; s * s]; // S[i][j] at i * s + j
        let mut out = vec![0.0; s];
        for step in 0..6u64 {
            let (q, mut k, v) = (values(s, 100 + step), values(s, 200 + step), values(s, 300 + step));
            let norm = k.iter().map(|x| x * x).sum::<f32>().sqrt();
            k.iter_mut().for_each(|x| *x /= norm);
            let (decay, beta, scale) = (0.9 - 0.1 * step as f32, 0.3 + 0.1 * step as f32, 0.25);
            delta_rule(&mut state, &DeltaToken { q: &q, k: &k, v: &v, decay, beta, scale }, &mut out);
            want.iter_mut().for_each(|x| *x *= decay as f64);
            let sk: Vec<f64> = (0..s).map(|j| (0..s).map(|i| want[i * s + j] * k[i] as f64).sum()).collect();
            for i in 0..s {
                for j in 0..s {
                    want[i * s + j] += k[i] as f64 * beta as f64 * (v[j] as f64 - sk[j]);
                }
            }
            for j in 0..s {
                let o: f64 = (0..s).map(|i| want[i * s + j] * q[i] as f64).sum::<f64>() * scale as f64;
                assert!((out[j] as f64 - o).abs() < 1e-5, "step {step} j {j}: {} vs {o}", out[j]);
            }
        }
        // Recall: with β = 1 and no decay, reading with the key written
        // last gives its value back.
        let (k, v) = (vec![0.0f32; s].into_iter().enumerate().map(|(i, _)| if i == 3 { 1.0 } else { 0.0 }).collect::<Vec<_>>(), values(s, 9));
        delta_rule(&mut state, &DeltaToken { q: &k, k: &k, v: &v, decay: 1.0, beta: 1.0, scale: 1.0 }, &mut out);
        for j in 0..s {
            assert!((out[j] - v[j]).abs() < 1e-6, "{j}: {} vs {}", out[j], v[j]);
        }
    }

    /// Every path's kernels give the reference's bits.
    #[test]
    fn every_path_matches_the_reference() {
        for path in available_paths() {
            let k = recurrent_kernels_for_path(path).unwrap();
            for (d, taps, n) in [(37, 4, 5), (256, 4, 1), (1024, 3, 7)] {
                let w = values(taps * d, 1);
                let x = values(n * d, 2);
                let (mut s0, mut s1) = (values((taps - 1) * d, 3), values((taps - 1) * d, 3));
                let (mut o0, mut o1) = (vec![0.0; n * d], vec![0.0; n * d]);
                short_conv(d, &w, &mut s0, &x, &mut o0);
                (k.short_conv)(d, &w, &mut s1, &x, &mut o1);
                assert_eq!(bits(&o0), bits(&o1), "{path} short_conv d {d}");
                assert_eq!(bits(&s0), bits(&s1), "{path} short_conv state d {d}");
            }
            for s in [5, 16, 64, 128, 131] {
                let (mut s0, mut s1) = (values(s * s, 4), values(s * s, 4));
                let (mut o0, mut o1) = (vec![0.0; s], vec![0.0; s]);
                for step in 0..3 {
                    let (q, kk, v) = (values(s, 10 + step), values(s, 20 + step), values(s, 30 + step));
                    let t = DeltaToken { q: &q, k: &kk, v: &v, decay: 0.97, beta: 0.6, scale: 1.0 / (s as f32).sqrt() };
                    delta_rule(&mut s0, &t, &mut o0);
                    (k.delta_rule)(&mut s1, &t, &mut o1);
                    assert_eq!(bits(&o0), bits(&o1), "{path} delta_rule s {s} step {step}");
                    assert_eq!(bits(&s0), bits(&s1), "{path} delta_rule state s {s} step {step}");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "state length")]
    fn a_wrong_delta_state_is_a_caller_bug() {
        let x = [0.0; 4];
        delta_rule(&mut [0.0; 15], &DeltaToken { q: &x, k: &x, v: &x, decay: 1.0, beta: 1.0, scale: 1.0 }, &mut [0.0; 4]);
    }
}
