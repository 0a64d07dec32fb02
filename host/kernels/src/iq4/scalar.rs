//! Scalar reference kernels of IQ4_NL and IQ4_XS: ports of ggml-quants.c
//! (`quantize_row_iq4_nl_impl` without importance weights, `best_index_int8`,
//! `dequantize_row_iq4_*`) and of ggml-cpu/quants.c
//! (`ggml_vec_dot_iq4_nl_q8_0_generic`), operation for operation, so the
//! bytes and floats are ggml's (checked against goldens in `tests.rs`).
//! The IQ4_XS dot is in edgewasm's order (see [`dot_iq4_xs`]).

#![allow(clippy::needless_range_loop)] // ports mirror the C loops

use super::blocks::{BlockIQ4_NL, BlockIQ4_XS};
use crate::blocks::{BlockQ8_0, QK};
use crate::fp::{f16_from_f32, f16_to_f32};
use crate::k_quants::blocks::{BlockQ8_K, QK_K};
use crate::k_quants::scalar::nearest_int;

/// ggml's `kvalues_iq4nl`: the 16 levels a code stands for.
pub const KVALUES_IQ4NL: [i8; 16] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// `GROUP_MAX_EPS` of ggml-quants.c.
const GROUP_MAX_EPS: f32 = 1e-15;

/// Scale trials of ggml's `quantize_row_iq4_nl_ref` (its `from_float`):
/// none. `quantize_iq4_nl`, which llama-quantize calls and edgewasm's
/// `from_float` follows, makes 7 each way; the ref variant is kept to check
/// the port against both goldens.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const NTRY_REF: i32 = -1;
/// Scale trials of `quantize_iq4_nl` / `quantize_iq4_xs` (llama-quantize).
pub(crate) const NTRY_FILE: i32 = 7;

/// `best_index_int8(16, kvalues_iq4nl, x)`: the nearest level (ties to the
/// upper one, as the C comparison).
#[inline]
fn best_index(x: f32) -> u8 {
    let val = &KVALUES_IQ4NL;
    if x <= val[0] as f32 {
        return 0;
    }
    if x >= val[15] as f32 {
        return 15;
    }
    let (mut ml, mut mu) = (0usize, 15usize);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < val[mav] as f32 {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - (val[mu - 1] as f32) < (val[mu] as f32) - x { (mu - 1) as u8 } else { mu as u8 }
}

/// A scale as ggml computes it on x86_64, where its goldens are made: huge
/// inputs overflow the weighted sums (`inf - inf`), and the NaN an x86 SSE
/// operation creates from non-NaN operands has the sign bit set, while
/// aarch64's is positive; a NaN from the input propagates with its own sign
/// on both. So a NaN scale takes the first input NaN's sign if the block
/// has one, else x86's: IQ4_NL stores it in `d`, and both architectures
/// write the same bytes.
fn x86_nan(d: f32, x: &[f32]) -> f32 {
    if !d.is_nan() {
        return d;
    }
    let sign = x.iter().find(|v| v.is_nan()).map_or(0x8000_0000, |v| v.to_bits() & 0x8000_0000);
    f32::from_bits(0x7FC0_0000 | sign)
}

/// Where `quantize_row_iq4_nl_impl` writes: one IQ4_NL block (no sub-block
/// scales) or one IQ4_XS super-block.
enum Target<'a> {
    Nl(&'a mut BlockIQ4_NL),
    Xs(&'a mut BlockIQ4_XS),
}

/// `quantize_row_iq4_nl_impl(n, 32, x, ...)` with `quant_weights == NULL`
/// (weights `x²`), `n` = 32 (IQ4_NL) or 256 (IQ4_XS). `levels` carries the
/// codes between calls as ggml's caller-owned `L` does: a block whose
/// values are all below `GROUP_MAX_EPS` keeps the previous block's codes in
/// IQ4_NL (ggml leaves them as they were; its `d` is 0).
fn quantize_impl(x: &[f32], target: Target<'_>, levels: &mut [u8; QK_K], ntry: i32) {
    let n = x.len();
    let nsub = n / 32;
    let values = &KVALUES_IQ4NL;
    let mut scales = [0.0f32; QK_K / 32];
    let mut weight = [0.0f32; 32];
    let (mut max_scale, mut amax_scale) = (0.0f32, 0.0f32);
    for ib in 0..nsub {
        let xb = &x[32 * ib..32 * ib + 32];
        let lb = &mut levels[32 * ib..32 * ib + 32];
        for j in 0..32 {
            weight[j] = xb[j] * xb[j];
        }
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in xb {
            let ax = v.abs();
            if ax > amax {
                amax = ax;
                max = v;
            }
        }
        if amax < GROUP_MAX_EPS {
            scales[ib] = 0.0;
            continue;
        }
        let mut d = if ntry > 0 { -max / values[0] as f32 } else { max / values[0] as f32 };
        let mut id = 1.0 / d;
        let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
        for j in 0..32 {
            let al = id * xb[j];
            let l = best_index(al);
            lb[j] = l;
            let q = values[l as usize] as f32;
            let w = weight[j];
            sumqx += w * q * xb[j];
            sumq2 += w * q * q;
        }
        d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
        let mut best = d * sumqx;
        for itry in -ntry..=ntry {
            id = (itry + values[0] as i32) as f32 / max;
            sumqx = 0.0;
            sumq2 = 0.0;
            for j in 0..32 {
                let al = id * xb[j];
                let l = best_index(al);
                let q = values[l as usize] as f32;
                let w = weight[j];
                sumqx += w * q * xb[j];
                sumq2 += w * q * q;
            }
            if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = x86_nan(d, xb);
        let abs_d = d.abs();
        if abs_d > amax_scale {
            amax_scale = abs_d;
            max_scale = d;
        }
    }

    let qs: &mut [u8] = match target {
        Target::Xs(y) => {
            y.scales_h = 0;
            y.scales_l = [0; QK_K / 64];
            let d = -max_scale / 32.0;
            y.d = f16_from_f32(d);
            let id = if d != 0.0 { 1.0 / d } else { 0.0 };
            for ib in 0..nsub {
                let mut l = nearest_int(id * scales[ib]);
                l = (-32).max(31.min(l));
                let dl = d * l as f32;
                let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
                for j in 0..32 {
                    levels[32 * ib + j] = best_index(idl * x[32 * ib + j]);
                }
                let l = (l + 32) as u8;
                let (l_l, l_h) = (l & 0xF, l >> 4);
                if ib % 2 == 0 {
                    y.scales_l[ib / 2] = l_l;
                } else {
                    y.scales_l[ib / 2] |= l_l << 4;
                }
                y.scales_h |= (l_h as u16) << (2 * (ib % 8));
            }
            &mut y.qs
        }
        Target::Nl(y) => {
            y.d = f16_from_f32(scales[0]);
            if ntry > 0 {
                let id = if scales[0] != 0.0 { 1.0 / scales[0] } else { 0.0 };
                for j in 0..n {
                    levels[j] = best_index(id * x[j]);
                }
            }
            &mut y.qs
        }
    };
    for i in 0..nsub {
        for j in 0..16 {
            qs[16 * i + j] = levels[32 * i + j] | (levels[32 * i + 16 + j] << 4);
        }
    }
}

/// `quantize_row_iq4_nl_ref` (`ntry` = [`NTRY_REF`]) or `quantize_iq4_nl`
/// without importance weights ([`NTRY_FILE`]).
pub(crate) fn quantize_iq4_nl(x: &[f32], y: &mut [BlockIQ4_NL], ntry: i32) {
    let mut levels = [0u8; QK_K];
    for (x, y) in x.chunks_exact(QK).zip(y) {
        quantize_impl(x, Target::Nl(y), &mut levels, ntry);
    }
}

/// `quantize_row_iq4_xs_ref` (= `quantize_iq4_xs` without weights).
pub(crate) fn quantize_iq4_xs(x: &[f32], y: &mut [BlockIQ4_XS]) {
    let mut levels = [0u8; QK_K];
    for (x, y) in x.chunks_exact(QK_K).zip(y) {
        quantize_impl(x, Target::Xs(y), &mut levels, NTRY_FILE);
    }
}

pub(crate) fn dequantize_iq4_nl(x: &[BlockIQ4_NL], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK)) {
        let d = f16_to_f32(b.d);
        for j in 0..QK / 2 {
            y[j] = d * KVALUES_IQ4NL[(b.qs[j] & 0xF) as usize] as f32;
            y[j + QK / 2] = d * KVALUES_IQ4NL[(b.qs[j] >> 4) as usize] as f32;
        }
    }
}

/// The 6-bit scale of sub-block `ib` of an IQ4_XS block, minus 32.
#[inline]
pub(crate) fn iq4_xs_scale(b: &BlockIQ4_XS, ib: usize) -> i32 {
    let ls = ((b.scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) as u16 | (((b.scales_h >> (2 * ib)) & 3) << 4);
    ls as i32 - 32
}

pub(crate) fn dequantize_iq4_xs(x: &[BlockIQ4_XS], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let d = f16_to_f32(b.d);
        for (ib, y) in y.chunks_exact_mut(32).enumerate() {
            let dl = d * iq4_xs_scale(b, ib) as f32;
            let qs = &b.qs[16 * ib..16 * ib + 16];
            for j in 0..16 {
                y[j] = dl * KVALUES_IQ4NL[(qs[j] & 0xF) as usize] as f32;
                y[j + 16] = dl * KVALUES_IQ4NL[(qs[j] >> 4) as usize] as f32;
            }
        }
    }
}

/// The exact `sum(kvalues[q] * y)` of one 32-element group (16 code bytes).
#[inline]
fn isum32(qs: &[u8], y: &[i8]) -> i32 {
    let mut s = 0i32;
    for j in 0..16 {
        s += y[j] as i32 * KVALUES_IQ4NL[(qs[j] & 0xF) as usize] as i32;
        s += y[j + 16] as i32 * KVALUES_IQ4NL[(qs[j] >> 4) as usize] as i32;
    }
    s
}

/// `ggml_vec_dot_iq4_nl_q8_0_generic`: per block `sumf += (dy * dx) * sumi`.
pub(crate) fn dot_iq4_nl(x: &[BlockIQ4_NL], y: &[BlockQ8_0]) -> f32 {
    let mut sumf = 0.0f32;
    for (xb, yb) in x.iter().zip(y) {
        let d = f16_to_f32(yb.d) * f16_to_f32(xb.d);
        sumf += d * isum32(&xb.qs, &yb.qs) as f32;
    }
    sumf
}

/// IQ4_XS in edgewasm's order: `isum = sum (ls - 32) * sumi` over the 8
/// sub-blocks (exact), then `sumf += (d * yd) * isum` per block. ggml's
/// generic code adds one f32 term per sub-block instead; the integers are
/// the same (checked against its goldens to rounding in `tests.rs`).
pub(crate) fn dot_iq4_xs(x: &[BlockIQ4_XS], y: &[BlockQ8_K]) -> f32 {
    let mut sumf = 0.0f32;
    for (xb, yb) in x.iter().zip(y) {
        let mut isum = 0i32;
        for ib in 0..QK_K / 32 {
            isum += iq4_xs_scale(xb, ib) * isum32(&xb.qs[16 * ib..], &yb.qs[32 * ib..]);
        }
        sumf += (f16_to_f32(xb.d) * yb.d) * isum as f32;
    }
    sumf
}
