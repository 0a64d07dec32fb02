//! Scalar reference kernels of the K-quants: ports of ggml-quants.c
//! (`quantize_row_q*_K_ref`, `dequantize_row_q*_K` and their helpers
//! `nearest_int`, `make_qx_quants`, `make_q3_quants`, `make_qkx2_quants`,
//! `get_scale_min_k4`) and of ggml-cpu/quants.c
//! (`ggml_vec_dot_q*_K_q8_K_generic`), operation for operation, so that the
//! bytes and floats are those of ggml's C code compiled without FMA
//! contraction (checked against goldens in `tests.rs`).
//!
//! The Q4_K, Q5_K and Q6_K dots are the exception: they sum in edgewasm's
//! order (one exact integer and one f32 step per block, see [`k_term`]),
//! which the interleaved tile kernels can follow 16 rows at a time. They
//! agree with ggml's dots to rounding (checked in `tests.rs`).
//!
//! C's implicit conversions are spelled out: `int -> uint8_t/int8_t` stores
//! keep the low byte (`as u8`/`as i8`), `int -> float` is `as f32`.

#![allow(clippy::needless_range_loop, clippy::too_many_arguments)] // ports mirror the C loops

use super::blocks::{BlockQ2_K, BlockQ3_K, BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K, QK_K};
use crate::fp::{f16_from_f32, f16_to_f32};
use crate::GgmlType;

/// `GROUP_MAX_EPS` of ggml-quants.c.
const GROUP_MAX_EPS: f32 = 1e-15;

#[track_caller]
pub(crate) fn assert_quant_lens(ty: GgmlType, floats: usize, blocks: usize) {
    assert!(
        floats.is_multiple_of(QK_K) && floats / QK_K == blocks,
        "{ty}: {floats} floats do not match {blocks} blocks of {QK_K}"
    );
}

/// ggml's `nearest_int`: round to nearest (ties to even) through the
/// 1.5 * 2^23 magic number. Exact for |x| <= 2^22 - 1 (ggml asserts that);
/// beyond, it returns the same garbage as the C code.
#[inline(always)]
pub(crate) fn nearest_int(fval: f32) -> i32 {
    let val = fval + 12_582_912.0;
    (val.to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` of Q4_K/Q5_K.
#[inline(always)]
pub(crate) fn get_scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// The 8 scales and 8 mins of a Q4_K/Q5_K block, unpacked as the `utmp`
/// shuffle of the dot products does (equal to `get_scale_min_k4`).
#[inline(always)]
pub(crate) fn unpack_scales_mins_k4(scales: &[u8; 12]) -> [u32; 4] {
    const KMASK1: u32 = 0x3f3f_3f3f;
    const KMASK2: u32 = 0x0f0f_0f0f;
    const KMASK3: u32 = 0x0303_0303;
    let mut utmp = [
        u32::from_le_bytes([scales[0], scales[1], scales[2], scales[3]]),
        u32::from_le_bytes([scales[4], scales[5], scales[6], scales[7]]),
        u32::from_le_bytes([scales[8], scales[9], scales[10], scales[11]]),
        0,
    ];
    utmp[3] = ((utmp[2] >> 4) & KMASK2) | (((utmp[1] >> 6) & KMASK3) << 4);
    let uaux = utmp[1] & KMASK1;
    utmp[1] = (utmp[2] & KMASK2) | (((utmp[0] >> 6) & KMASK3) << 4);
    utmp[2] = uaux;
    utmp[0] &= KMASK1;
    utmp
}

/// The 16 6-bit scales of a Q3_K block as bytes 0..64 (before `- 32`).
#[inline(always)]
pub(crate) fn unpack_scales_q3k(scales: &[u8; 12]) -> [u32; 4] {
    const KMASK1: u32 = 0x0303_0303;
    const KMASK2: u32 = 0x0f0f_0f0f;
    let mut aux = [
        u32::from_le_bytes([scales[0], scales[1], scales[2], scales[3]]),
        u32::from_le_bytes([scales[4], scales[5], scales[6], scales[7]]),
        u32::from_le_bytes([scales[8], scales[9], scales[10], scales[11]]),
        0,
    ];
    let tmp = aux[2];
    aux[2] = ((aux[0] >> 4) & KMASK2) | (((tmp >> 4) & KMASK1) << 4);
    aux[3] = ((aux[1] >> 4) & KMASK2) | (((tmp >> 6) & KMASK1) << 4);
    aux[0] = (aux[0] & KMASK2) | ((tmp & KMASK1) << 4);
    aux[1] = (aux[1] & KMASK2) | (((tmp >> 2) & KMASK1) << 4);
    aux
}

#[inline(always)]
fn u32s_to_bytes(v: [u32; 4]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, w) in out.chunks_exact_mut(4).zip(v) {
        o.copy_from_slice(&w.to_le_bytes());
    }
    out
}

/// `make_qx_quants` with `qw == NULL`; `l` gets values in `0..2 nmax`.
fn make_qx_quants(nmax: i32, x: &[f32], l_out: &mut [i8], rmse_type: i32) -> f32 {
    let n = x.len();
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out[..n].fill(0);
        return 0.0;
    }
    let mut iscale = -(nmax as f32) / max;
    if rmse_type == 0 {
        for (li, &xi) in l_out.iter_mut().zip(x) {
            let l = nearest_int(iscale * xi);
            *li = (nmax + (-nmax).max((nmax - 1).min(l))) as i8;
        }
        return 1.0 / iscale;
    }
    let (rmse_type, return_early) = if rmse_type < 0 {
        (-rmse_type, true)
    } else {
        (rmse_type, false)
    };
    let weight = |xi: f32| -> f32 {
        match rmse_type {
            1 => xi * xi,
            2 => 1.0,
            3 => xi.abs(),
            _ => xi.abs().sqrt(),
        }
    };
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for (li, &xi) in l_out.iter_mut().zip(x) {
        let mut l = nearest_int(iscale * xi);
        l = (-nmax).max((nmax - 1).min(l));
        *li = (l + nmax) as i8;
        let w = weight(xi);
        let lf = l as f32;
        sumlx += w * xi * lf;
        suml2 += w * lf * lf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    if return_early {
        return if suml2 > 0.0 {
            0.5 * (scale + 1.0 / iscale)
        } else {
            1.0 / iscale
        };
    }
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmax as f32 + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &xi in x {
            let mut l = nearest_int(iscale * xi);
            l = (-nmax).max((nmax - 1).min(l));
            let w = weight(xi);
            let lf = l as f32;
            sumlx += w * xi * lf;
            suml2 += w * lf * lf;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for (li, &xi) in l_out.iter_mut().zip(x) {
                let l = nearest_int(iscale * xi);
                *li = (nmax + (-nmax).max((nmax - 1).min(l))) as i8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// `make_q3_quants`; `l` gets values in `0..2 nmax`.
fn make_q3_quants(nmax: i32, x: &[f32], l_out: &mut [i8], do_rmse: bool) -> f32 {
    let n = x.len();
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out[..n].fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    if do_rmse {
        let mut sumlx = 0.0f32;
        let mut suml2 = 0.0f32;
        for (li, &xi) in l_out.iter_mut().zip(x) {
            let mut l = nearest_int(iscale * xi);
            l = (-nmax).max((nmax - 1).min(l));
            *li = l as i8;
            let w = xi * xi;
            let lf = l as f32;
            sumlx += w * xi * lf;
            suml2 += w * lf * lf;
        }
        for _itry in 0..5 {
            let mut n_changed = 0;
            for i in 0..n {
                let xi = x[i];
                let w = xi * xi;
                let li = l_out[i] as i32;
                let lf = li as f32;
                let mut slx = sumlx - w * xi * lf;
                if slx > 0.0 {
                    let mut sl2 = suml2 - w * lf * lf;
                    let mut new_l = nearest_int(xi * sl2 / slx);
                    new_l = (-nmax).max((nmax - 1).min(new_l));
                    if new_l != li {
                        let nf = new_l as f32;
                        slx += w * xi * nf;
                        sl2 += w * nf * nf;
                        if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                            l_out[i] = new_l as i8;
                            sumlx = slx;
                            suml2 = sl2;
                            n_changed += 1;
                        }
                    }
                }
            }
            if n_changed == 0 {
                break;
            }
        }
        for li in l_out[..n].iter_mut() {
            *li = (*li as i32 + nmax) as i8;
        }
        return if suml2 > 0.0 { sumlx / suml2 } else { 0.0 };
    }
    for (li, &xi) in l_out.iter_mut().zip(x) {
        let mut l = nearest_int(iscale * xi);
        l = (-nmax).max((nmax - 1).min(l));
        *li = (l + nmax) as i8;
    }
    1.0 / iscale
}

/// `make_qkx2_quants`: returns `(scale, the_min)`; `l` gets `0..=nmax`.
#[allow(clippy::too_many_arguments)]
fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l_out: &mut [u8],
    laux: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l_out[..n].fill(0);
        return (0.0, -min);
    }
    let nmaxf = nmax as f32;
    let mut iscale = nmaxf / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min));
        l_out[i] = 0.max(nmax.min(l)) as u8;
        let mut diff = scale * l_out[i] as f32 + min - x[i];
        diff = if use_mad { diff.abs() } else { diff * diff };
        best_error += weights[i] * diff;
    }
    if nstep < 1 {
        return (scale, -min);
    }
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmaxf) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0.0f32, 0.0f32, 0.0f32);
        for i in 0..n {
            let mut l = nearest_int(iscale * (x[i] - min));
            l = 0.max(nmax.min(l));
            laux[i] = l as u8;
            let w = weights[i];
            let lf = l as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let d = sum_w * sum_l2 - sum_l * sum_l;
        if d > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / d;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / d;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0.0f32;
            for i in 0..n {
                let mut diff = this_scale * laux[i] as f32 + this_min - x[i];
                diff = if use_mad { diff.abs() } else { diff * diff };
                cur_error += weights[i] * diff;
            }
            if cur_error < best_error {
                l_out[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Packs 2-bit values: byte `l` of each 32-byte group holds elements
/// `l, l + 32, l + 64, l + 96` of its 128 (Q2_K and Q3_K `qs`).
fn pack_2bit(l: &[u8; QK_K], qs: &mut [u8; QK_K / 4]) {
    for j in (0..QK_K).step_by(128) {
        for i in 0..32 {
            qs[j / 4 + i] =
                l[j + i] | (l[j + i + 32] << 2) | (l[j + i + 64] << 4) | (l[j + i + 96] << 6);
        }
    }
}

// ---------------------------------------------------------------- Q2_K

pub(crate) fn quantize_q2_k(x: &[f32], y: &mut [BlockQ2_K]) {
    const Q4SCALE: f32 = 15.0;
    let mut l = [0u8; QK_K];
    let mut laux = [0u8; 16];
    let mut weights = [0.0f32; 16];
    let mut mins = [0.0f32; QK_K / 16];
    let mut scales = [0.0f32; QK_K / 16];
    for (x, y) in x.chunks_exact(QK_K).zip(y.iter_mut()) {
        let mut max_scale = 0.0f32;
        let mut max_min = 0.0f32;
        for j in 0..QK_K / 16 {
            let xs = &x[16 * j..16 * j + 16];
            for (w, v) in weights.iter_mut().zip(xs) {
                *w = v.abs();
            }
            let (s, m) = make_qkx2_quants(
                3,
                xs,
                &weights,
                &mut l[16 * j..16 * j + 16],
                &mut laux,
                -0.5,
                0.1,
                15,
                true,
            );
            scales[j] = s;
            mins[j] = m;
            if s > max_scale {
                max_scale = s;
            }
            if m > max_min {
                max_min = m;
            }
        }
        if max_scale > 0.0 {
            let iscale = Q4SCALE / max_scale;
            for j in 0..QK_K / 16 {
                y.scales[j] = nearest_int(iscale * scales[j]) as u8;
            }
            y.d = f16_from_f32(max_scale / Q4SCALE);
        } else {
            y.scales = [0; QK_K / 16];
            y.d = f16_from_f32(0.0);
        }
        if max_min > 0.0 {
            let iscale = Q4SCALE / max_min;
            for j in 0..QK_K / 16 {
                let li = nearest_int(iscale * mins[j]);
                y.scales[j] |= (li << 4) as u8;
            }
            y.dmin = f16_from_f32(max_min / Q4SCALE);
        } else {
            y.dmin = f16_from_f32(0.0);
        }
        for j in 0..QK_K / 16 {
            let d = f16_to_f32(y.d) * (y.scales[j] & 0xF) as f32;
            if d == 0.0 {
                continue;
            }
            let dm = f16_to_f32(y.dmin) * (y.scales[j] >> 4) as f32;
            for ii in 0..16 {
                let li = nearest_int((x[16 * j + ii] + dm) / d);
                l[16 * j + ii] = 0.max(3.min(li)) as u8;
            }
        }
        pack_2bit(&l, &mut y.qs);
    }
}

pub(crate) fn dequantize_q2_k(x: &[BlockQ2_K], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let d = f16_to_f32(b.d);
        let min = f16_to_f32(b.dmin);
        let mut out = 0;
        let mut is = 0;
        for q in b.qs.chunks_exact(32) {
            for shift in [0, 2, 4, 6] {
                for half in [&q[..16], &q[16..]] {
                    let sc = b.scales[is];
                    is += 1;
                    let dl = d * (sc & 0xF) as f32;
                    let ml = min * (sc >> 4) as f32;
                    for &v in half {
                        y[out] = dl * ((v >> shift) & 3) as f32 - ml;
                        out += 1;
                    }
                }
            }
        }
    }
}

pub(crate) fn dot_q2_k(x: &[BlockQ2_K], y: &[BlockQ8_K]) -> f32 {
    let mut sumf = 0.0f32;
    for (xb, yb) in x.iter().zip(y) {
        let sc = &xb.scales;
        let mut summs = 0i32;
        for j in 0..16 {
            summs += yb.bsums[j] as i32 * (sc[j] >> 4) as i32;
        }
        let dall = yb.d * f16_to_f32(xb.d);
        let dmin = yb.d * f16_to_f32(xb.dmin);
        let mut isum = 0i32;
        let mut is = 0;
        let mut q8 = &yb.qs[..];
        for q2 in xb.qs.chunks_exact(32) {
            for shift in [0, 2, 4, 6] {
                let d = (sc[is] & 0xF) as i32;
                is += 1;
                let mut isuml = 0i32;
                for l in 0..16 {
                    isuml += q8[l] as i32 * ((q2[l] >> shift) & 3) as i32;
                }
                isum += d * isuml;
                let d = (sc[is] & 0xF) as i32;
                is += 1;
                let mut isuml = 0i32;
                for l in 16..32 {
                    isuml += q8[l] as i32 * ((q2[l] >> shift) & 3) as i32;
                }
                isum += d * isuml;
                q8 = &q8[32..];
            }
        }
        sumf += dall * isum as f32 - dmin * summs as f32;
    }
    sumf
}

// ---------------------------------------------------------------- Q3_K

pub(crate) fn quantize_q3_k(x: &[f32], y: &mut [BlockQ3_K]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; QK_K / 16];
    for (x, y) in x.chunks_exact(QK_K).zip(y.iter_mut()) {
        let mut max_scale = 0.0f32;
        let mut amax = 0.0f32;
        for j in 0..QK_K / 16 {
            scales[j] = make_q3_quants(
                4,
                &x[16 * j..16 * j + 16],
                &mut l[16 * j..16 * j + 16],
                true,
            );
            let scale = scales[j].abs();
            if scale > amax {
                amax = scale;
                max_scale = scales[j];
            }
        }
        y.scales = [0; 12];
        if max_scale != 0.0 {
            let iscale = -32.0 / max_scale;
            for j in 0..QK_K / 16 {
                let mut li = nearest_int(iscale * scales[j]) as i8;
                li = (-32i8).max(31i8.min(li)) + 32;
                if j < 8 {
                    y.scales[j] = (li & 0xF) as u8;
                } else {
                    y.scales[j - 8] |= ((li & 0xF) << 4) as u8;
                }
                li >>= 4;
                y.scales[j % 4 + 8] |= (li << (2 * (j / 4))) as u8;
            }
            y.d = f16_from_f32(1.0 / iscale);
        } else {
            y.d = f16_from_f32(0.0);
        }
        for j in 0..QK_K / 16 {
            let sc = if j < 8 {
                y.scales[j] & 0xF
            } else {
                y.scales[j - 8] >> 4
            };
            let sc = (sc | (((y.scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) as i8 - 32;
            let d = f16_to_f32(y.d) * sc as f32;
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                let li = nearest_int(x[16 * j + ii] / d);
                l[16 * j + ii] = ((-4).max(3.min(li)) + 4) as i8;
            }
        }
        y.hmask = [0; QK_K / 8];
        let mut m = 0;
        let mut hm = 1u8;
        for lj in l.iter_mut() {
            if *lj > 3 {
                y.hmask[m] |= hm;
                *lj -= 4;
            }
            m += 1;
            if m == QK_K / 8 {
                m = 0;
                hm <<= 1;
            }
        }
        let lu: [u8; QK_K] = bytemuck::cast(l);
        pack_2bit(&lu, &mut y.qs);
    }
}

pub(crate) fn dequantize_q3_k(x: &[BlockQ3_K], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let d_all = f16_to_f32(b.d);
        let scales = u32s_to_bytes(unpack_scales_q3k(&b.scales));
        let hm = &b.hmask;
        let mut m = 1u8;
        let mut out = 0;
        let mut is = 0;
        for q in b.qs.chunks_exact(32) {
            for shift in [0, 2, 4, 6] {
                for off in [0, 16] {
                    let dl = d_all * (scales[is] as i8 as i32 - 32) as f32;
                    is += 1;
                    for l in off..off + 16 {
                        let v = ((q[l] >> shift) & 3) as i32 - if hm[l] & m != 0 { 0 } else { 4 };
                        y[out] = dl * v as f32;
                        out += 1;
                    }
                }
                m = m.wrapping_shl(1);
            }
        }
    }
}

pub(crate) fn dot_q3_k(x: &[BlockQ3_K], y: &[BlockQ8_K]) -> f32 {
    let mut aux8 = [0i8; QK_K];
    let mut sums = [0.0f32; 8];
    for (xb, yb) in x.iter().zip(y) {
        let mut aux32 = [0i32; 8];
        let mut a = 0;
        let mut m = 1u8;
        for q3 in xb.qs.chunks_exact(32) {
            for shift in [0, 2, 4, 6] {
                for l in 0..32 {
                    let v = ((q3[l] >> shift) & 3) as i8;
                    aux8[a + l] = v - if xb.hmask[l] & m != 0 { 0 } else { 4 };
                }
                a += 32;
                m = m.wrapping_shl(1);
            }
        }
        let scales = u32s_to_bytes(unpack_scales_q3k(&xb.scales));
        let q8 = &yb.qs;
        for j in 0..QK_K / 16 {
            let sc = scales[j] as i8 as i32 - 32;
            for h in 0..2 {
                let base = 16 * j + 8 * h;
                for l in 0..8 {
                    let aux16 = (q8[base + l] as i16 * aux8[base + l] as i16) as i32;
                    aux32[l] += sc * aux16;
                }
            }
        }
        let d = f16_to_f32(xb.d) * yb.d;
        for l in 0..8 {
            sums[l] += d * aux32[l] as f32;
        }
    }
    let mut sumf = 0.0f32;
    for s in sums {
        sumf += s;
    }
    sumf
}

// ---------------------------------------------------------------- Q4_K / Q5_K

/// The shared first half of `quantize_row_q4_K_ref`/`q5_K_ref`: sub-block
/// scales and mins, packed; returns the 5/4-bit levels in `l`.
fn quantize_scales_mins_k4(
    x: &[f32],
    nmax: i32,
    rmin: f32,
    nstep: i32,
    l: &mut [u8; QK_K],
    scales_out: &mut [u8; 12],
    d_out: &mut half::f16,
    dmin_out: &mut half::f16,
) {
    let mut laux = [0u8; 32];
    let mut weights = [0.0f32; 32];
    let mut mins = [0.0f32; QK_K / 32];
    let mut scales = [0.0f32; QK_K / 32];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..QK_K / 32 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        let (s, m) = make_qkx2_quants(
            nmax,
            xs,
            &weights,
            &mut l[32 * j..32 * j + 32],
            &mut laux,
            rmin,
            0.1,
            nstep,
            false,
        );
        scales[j] = s;
        mins[j] = m;
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    for j in 0..QK_K / 32 {
        let ls = (nearest_int(inv_scale * scales[j]) as u8).min(63);
        let lm = (nearest_int(inv_min * mins[j]) as u8).min(63);
        if j < 4 {
            scales_out[j] = ls;
            scales_out[j + 4] = lm;
        } else {
            scales_out[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            scales_out[j - 4] |= (ls >> 4) << 6;
            scales_out[j] |= (lm >> 4) << 6;
        }
    }
    *d_out = f16_from_f32(max_scale / 63.0);
    *dmin_out = f16_from_f32(max_min / 63.0);
    for j in 0..QK_K / 32 {
        let (sc, m) = get_scale_min_k4(j, scales_out);
        let d = f16_to_f32(*d_out) * sc as f32;
        if d == 0.0 {
            continue;
        }
        let dm = f16_to_f32(*dmin_out) * m as f32;
        for ii in 0..32 {
            let li = nearest_int((x[32 * j + ii] + dm) / d);
            l[32 * j + ii] = 0.max(nmax.min(li)) as u8;
        }
    }
}

pub(crate) fn quantize_q4_k(x: &[f32], y: &mut [BlockQ4_K]) {
    let mut l = [0u8; QK_K];
    for (x, y) in x.chunks_exact(QK_K).zip(y.iter_mut()) {
        // The scales bytes are built with `|=`: start from zero (the C code
        // assigns every byte before or-ing into it, so this changes nothing).
        y.scales = [0; 12];
        quantize_scales_mins_k4(
            x,
            15,
            -1.0,
            20,
            &mut l,
            &mut y.scales,
            &mut y.d,
            &mut y.dmin,
        );
        for (j, q) in (0..QK_K).step_by(64).zip(y.qs.chunks_exact_mut(32)) {
            for i in 0..32 {
                q[i] = l[j + i] | (l[j + i + 32] << 4);
            }
        }
    }
}

pub(crate) fn dequantize_q4_k(x: &[BlockQ4_K], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let d = f16_to_f32(b.d);
        let min = f16_to_f32(b.dmin);
        for (j, (q, y)) in
            b.qs.chunks_exact(32)
                .zip(y.chunks_exact_mut(64))
                .enumerate()
        {
            let (sc, m) = get_scale_min_k4(2 * j, &b.scales);
            let (d1, m1) = (d * sc as f32, min * m as f32);
            let (sc, m) = get_scale_min_k4(2 * j + 1, &b.scales);
            let (d2, m2) = (d * sc as f32, min * m as f32);
            for l in 0..32 {
                y[l] = d1 * (q[l] & 0xF) as f32 - m1;
                y[l + 32] = d2 * (q[l] >> 4) as f32 - m2;
            }
        }
    }
}

/// The f32 part of one Q4_K/Q5_K/Q6_K block in the dot products:
/// `sumf + (d·yd)·isum − (dmin·yd)·msum`, each product and sum rounded
/// separately (no FMA), in this order. `isum` (scales times quants times
/// activations) and `msum` (mins times activation sums) are exact integers.
///
/// This is edgewasm's order, not ggml's generic one (which keeps eight f32
/// class sums per row): one f32 step per block lets the interleaved tile
/// kernels (`crate::gemm`) keep 16 rows in the lanes of one register with
/// no horizontal folding, and every path follows it bit for bit.
#[inline(always)]
pub(crate) fn k_term(sumf: f32, d: f32, dmin: f32, yd: f32, isum: i32, msum: i32) -> f32 {
    let sumf = sumf + (d * yd) * isum as f32;
    sumf - (dmin * yd) * msum as f32
}

/// `msum` of a Q4_K/Q5_K block: the 8 mins times the activation sums of
/// their 32 elements (two `bsums` each).
#[inline(always)]
pub(crate) fn k4_msum(mins: &[u8], yb: &BlockQ8_K) -> i32 {
    let mut msum = 0i32;
    for j in 0..QK_K / 32 {
        msum += mins[j] as i32 * (yb.bsums[2 * j] as i32 + yb.bsums[2 * j + 1] as i32);
    }
    msum
}

/// The Q4_K/Q5_K block dot: `levels` holds the 256 unsigned levels.
#[inline(always)]
fn dot_k4_block(levels: &[u8; QK_K], scales: &[u8; 12], d: half::f16, dmin: half::f16, yb: &BlockQ8_K, sumf: f32) -> f32 {
    let utmp = u32s_to_bytes(unpack_scales_mins_k4(scales));
    let (sc, mins) = (&utmp[..8], &utmp[8..]);
    let mut isum = 0i32;
    for (j, (q, y)) in levels.chunks_exact(32).zip(yb.qs.chunks_exact(32)).enumerate() {
        let mut s = 0i32;
        for l in 0..32 {
            s += q[l] as i32 * y[l] as i32;
        }
        isum += sc[j] as i32 * s;
    }
    k_term(sumf, f16_to_f32(d), f16_to_f32(dmin), yb.d, isum, k4_msum(mins, yb))
}

pub(crate) fn dot_q4_k(x: &[BlockQ4_K], y: &[BlockQ8_K]) -> f32 {
    let mut levels = [0u8; QK_K];
    let mut sumf = 0.0f32;
    for (xb, yb) in x.iter().zip(y) {
        for (q4, a) in xb.qs.chunks_exact(32).zip(levels.chunks_exact_mut(64)) {
            for l in 0..32 {
                a[l] = q4[l] & 0xF;
                a[l + 32] = q4[l] >> 4;
            }
        }
        sumf = dot_k4_block(&levels, &xb.scales, xb.d, xb.dmin, yb, sumf);
    }
    sumf
}

pub(crate) fn quantize_q5_k(x: &[f32], y: &mut [BlockQ5_K]) {
    let mut l = [0u8; QK_K];
    for (x, y) in x.chunks_exact(QK_K).zip(y.iter_mut()) {
        y.scales = [0; 12];
        quantize_scales_mins_k4(
            x,
            31,
            -0.5,
            15,
            &mut l,
            &mut y.scales,
            &mut y.d,
            &mut y.dmin,
        );
        y.qh = [0; QK_K / 8];
        let (mut m1, mut m2) = (1u8, 2u8);
        for (n, ql) in (0..QK_K).step_by(64).zip(y.qs.chunks_exact_mut(32)) {
            for j in 0..32 {
                let mut l1 = l[n + j];
                if l1 > 15 {
                    l1 -= 16;
                    y.qh[j] |= m1;
                }
                let mut l2 = l[n + j + 32];
                if l2 > 15 {
                    l2 -= 16;
                    y.qh[j] |= m2;
                }
                ql[j] = l1 | (l2 << 4);
            }
            m1 = m1.wrapping_shl(2);
            m2 = m2.wrapping_shl(2);
        }
    }
}

pub(crate) fn dequantize_q5_k(x: &[BlockQ5_K], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let d = f16_to_f32(b.d);
        let min = f16_to_f32(b.dmin);
        let (mut u1, mut u2) = (1u8, 2u8);
        for (j, (ql, y)) in
            b.qs.chunks_exact(32)
                .zip(y.chunks_exact_mut(64))
                .enumerate()
        {
            let (sc, m) = get_scale_min_k4(2 * j, &b.scales);
            let (d1, m1) = (d * sc as f32, min * m as f32);
            let (sc, m) = get_scale_min_k4(2 * j + 1, &b.scales);
            let (d2, m2) = (d * sc as f32, min * m as f32);
            for l in 0..32 {
                let h1 = if b.qh[l] & u1 != 0 { 16 } else { 0 };
                let h2 = if b.qh[l] & u2 != 0 { 16 } else { 0 };
                y[l] = d1 * ((ql[l] & 0xF) + h1) as f32 - m1;
                y[l + 32] = d2 * ((ql[l] >> 4) + h2) as f32 - m2;
            }
            u1 = u1.wrapping_shl(2);
            u2 = u2.wrapping_shl(2);
        }
    }
}

pub(crate) fn dot_q5_k(x: &[BlockQ5_K], y: &[BlockQ8_K]) -> f32 {
    let mut levels = [0u8; QK_K];
    let mut sumf = 0.0f32;
    for (xb, yb) in x.iter().zip(y) {
        let mut m = 1u8;
        for (q4, a) in xb.qs.chunks_exact(32).zip(levels.chunks_exact_mut(64)) {
            for l in 0..32 {
                a[l] = (q4[l] & 0xF) + if xb.qh[l] & m != 0 { 16 } else { 0 };
            }
            m = m.wrapping_shl(1);
            for l in 0..32 {
                a[l + 32] = (q4[l] >> 4) + if xb.qh[l] & m != 0 { 16 } else { 0 };
            }
            m = m.wrapping_shl(1);
        }
        sumf = dot_k4_block(&levels, &xb.scales, xb.d, xb.dmin, yb, sumf);
    }
    sumf
}

// ---------------------------------------------------------------- Q6_K

pub(crate) fn quantize_q6_k(x: &[f32], y: &mut [BlockQ6_K]) {
    let mut l = [0i8; QK_K];
    let mut scales = [0.0f32; QK_K / 16];
    for (x, y) in x.chunks_exact(QK_K).zip(y.iter_mut()) {
        let mut max_scale = 0.0f32;
        let mut max_abs_scale = 0.0f32;
        for ib in 0..QK_K / 16 {
            let scale = make_qx_quants(
                32,
                &x[16 * ib..16 * ib + 16],
                &mut l[16 * ib..16 * ib + 16],
                1,
            );
            scales[ib] = scale;
            let abs_scale = scale.abs();
            if abs_scale > max_abs_scale {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }
        if max_abs_scale < GROUP_MAX_EPS {
            *y = BlockQ6_K::zeroed();
            y.d = f16_from_f32(0.0);
            continue;
        }
        let iscale = -128.0 / max_scale;
        y.d = f16_from_f32(1.0 / iscale);
        for ib in 0..QK_K / 16 {
            y.scales[ib] = 127.min(nearest_int(iscale * scales[ib])) as i8;
        }
        for j in 0..QK_K / 16 {
            let d = f16_to_f32(y.d) * y.scales[j] as f32;
            if d == 0.0 {
                continue;
            }
            for ii in 0..16 {
                let li = nearest_int(x[16 * j + ii] / d);
                l[16 * j + ii] = ((-32).max(31.min(li)) + 32) as i8;
            }
        }
        let l: [u8; QK_K] = bytemuck::cast(l);
        for (j, (ql, qh)) in (0..QK_K)
            .step_by(128)
            .zip(y.ql.chunks_exact_mut(64).zip(y.qh.chunks_exact_mut(32)))
        {
            for i in 0..32 {
                let q1 = l[j + i] & 0xF;
                let q2 = l[j + i + 32] & 0xF;
                let q3 = l[j + i + 64] & 0xF;
                let q4 = l[j + i + 96] & 0xF;
                ql[i] = q1 | (q3 << 4);
                ql[i + 32] = q2 | (q4 << 4);
                qh[i] = (l[j + i] >> 4)
                    | ((l[j + i + 32] >> 4) << 2)
                    | ((l[j + i + 64] >> 4) << 4)
                    | ((l[j + i + 96] >> 4) << 6);
            }
        }
    }
}

/// The four 6-bit levels (minus 32) at position `l` of a 128-element half.
#[inline(always)]
fn q6_levels(ql: &[u8], qh: &[u8], l: usize) -> [i8; 4] {
    [
        ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i8 - 32,
        ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i8 - 32,
        ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i8 - 32,
        ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i8 - 32,
    ]
}

pub(crate) fn dequantize_q6_k(x: &[BlockQ6_K], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        let d = f16_to_f32(b.d);
        for (n, y) in y.chunks_exact_mut(128).enumerate() {
            let ql = &b.ql[64 * n..];
            let qh = &b.qh[32 * n..];
            let sc = &b.scales[8 * n..];
            for l in 0..32 {
                let is = l / 16;
                let q = q6_levels(ql, qh, l);
                y[l] = d * sc[is] as f32 * q[0] as f32;
                y[l + 32] = d * sc[is + 2] as f32 * q[1] as f32;
                y[l + 64] = d * sc[is + 4] as f32 * q[2] as f32;
                y[l + 96] = d * sc[is + 6] as f32 * q[3] as f32;
            }
        }
    }
}

/// Q6_K in edgewasm's order (as [`k_term`], with no min part): `isum` sums
/// `scale * (q - 32) * y` over the 16 sub-blocks of 16.
pub(crate) fn dot_q6_k(x: &[BlockQ6_K], y: &[BlockQ8_K]) -> f32 {
    let mut levels = [0i8; QK_K];
    let mut sumf = 0.0f32;
    for (xb, yb) in x.iter().zip(y) {
        for (n, a) in levels.chunks_exact_mut(128).enumerate() {
            let ql = &xb.ql[64 * n..];
            let qh = &xb.qh[32 * n..];
            for l in 0..32 {
                let q = q6_levels(ql, qh, l);
                a[l] = q[0];
                a[l + 32] = q[1];
                a[l + 64] = q[2];
                a[l + 96] = q[3];
            }
        }
        let mut isum = 0i32;
        for (j, (q, y)) in levels.chunks_exact(16).zip(yb.qs.chunks_exact(16)).enumerate() {
            let mut s = 0i32;
            for l in 0..16 {
                s += q[l] as i32 * y[l] as i32;
            }
            isum += xb.scales[j] as i32 * s;
        }
        sumf += (f16_to_f32(xb.d) * yb.d) * isum as f32;
    }
    sumf
}

// ---------------------------------------------------------------- Q8_K

/// `quantize_row_q8_K_ref`, one block. For an all-zero block ggml leaves
/// `bsums` untouched; here they are zeroed (what they sum to).
#[inline]
pub(crate) fn quantize_q8_k_block(x: &[f32], y: &mut BlockQ8_K) {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax == 0.0 {
        y.d = 0.0;
        y.qs = [0; QK_K];
        y.bsums = [0; QK_K / 16];
        return;
    }
    let iscale = -127.0 / max;
    for (q, &v) in y.qs.iter_mut().zip(x) {
        *q = nearest_int(iscale * v).min(127) as i8;
    }
    q8k_bsums(y);
    y.d = 1.0 / iscale;
}

/// `bsums[j] = sum(qs[16 j..16 j + 16])`.
#[inline(always)]
pub(crate) fn q8k_bsums(y: &mut BlockQ8_K) {
    for (s, q) in y.bsums.iter_mut().zip(y.qs.chunks_exact(16)) {
        let mut sum = 0i32;
        for &v in q {
            sum += v as i32;
        }
        *s = sum as i16;
    }
}

pub(crate) fn quantize_q8_k(x: &[f32], y: &mut [BlockQ8_K]) {
    for (x, y) in x.chunks_exact(QK_K).zip(y.iter_mut()) {
        quantize_q8_k_block(x, y);
    }
}

pub(crate) fn dequantize_q8_k(x: &[BlockQ8_K], y: &mut [f32]) {
    for (b, y) in x.iter().zip(y.chunks_exact_mut(QK_K)) {
        for (o, &q) in y.iter_mut().zip(&b.qs) {
            *o = b.d * q as f32;
        }
    }
}

/// Q8_K · Q8_K (ggml has none; exact integer sum per block, then `d`s).
pub(crate) fn dot_q8_k(x: &[BlockQ8_K], y: &[BlockQ8_K]) -> f32 {
    let mut sumf = 0.0f32;
    for (xb, yb) in x.iter().zip(y) {
        let mut sumi = 0i32;
        for (&a, &b) in xb.qs.iter().zip(&yb.qs) {
            sumi += a as i32 * b as i32;
        }
        sumf += xb.d * yb.d * sumi as f32;
    }
    sumf
}

use bytemuck::Zeroable;
