//! Kernels of recurrent layers, which fold a sequence into a fixed-size
//! state instead of keeping keys and values.
//!
//! Element-wise over channels, in f32 with every product rounded before its
//! sum (no fused multiply-add), so every target computes the same bits; the
//! compiler vectorizes the channel loops on each ISA without changing them.

/// A causal depthwise convolution over channels (LFM2's `shortconv`,
/// ggml's `ssm_conv`), for `n` tokens at once (prefill) or one (decode).
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
    assert!(d > 0 && w.len() % d == 0 && w.len() >= d, "short_conv: {} weights for width {d}", w.len());
    let hist = w.len() / d - 1;
    assert_eq!(state.len(), hist * d, "short_conv: state length");
    assert!(x.len() % d == 0 && out.len() == x.len(), "short_conv: {} inputs, {} outputs, width {d}", x.len(), out.len());
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

#[cfg(test)]
mod tests {
    use super::short_conv;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        edgewasm_test_support::Rng::new(seed).f32s(n, 0.5)
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
}
