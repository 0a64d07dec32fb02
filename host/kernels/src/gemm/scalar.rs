//! Portable tile kernels: the scalar twins of the SIMD ones, lane by lane the
//! reference `vec_dot` of each row (`blocks::term_*`, in block order).

use super::{f16s, quant_bytes, tile_block_bytes, TILE_ROWS};
use crate::blocks::{term_dm, term_q4_0, term_q5_0, term_q8_0, BlockQ8_0, BlockQ8_1};
use crate::fp::f16_to_f32;
use crate::iq4::scalar::KVALUES_IQ4NL;
use crate::GgmlType;

/// Integer block sum of row `r` for 4-bit codes (`q`, not `q - 8`).
#[inline]
fn isum_nibbles(qs: &[u8], r: usize, y: &[i8; 32]) -> i32 {
    let mut s = 0i32;
    for g in 0..4 {
        for j in 0..4 {
            let b = qs[g * 64 + r * 4 + j];
            s += (b & 0x0F) as i32 * y[4 * g + j] as i32;
            s += (b >> 4) as i32 * y[16 + 4 * g + j] as i32;
        }
    }
    s
}

fn ysum(y: &[i8; 32]) -> i32 {
    y.iter().map(|&v| v as i32).sum()
}

pub(super) fn tile_q4_0(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
    let tbb = tile_block_bytes(GgmlType::Q4_0);
    let act: &[BlockQ8_0] = bytemuck::cast_slice(act);
    for c in 0..n {
        let mut acc = [0.0f32; TILE_ROWS];
        for b in 0..nb {
            let tb = &tile[b * tbb..(b + 1) * tbb];
            let d = f16s(tb, quant_bytes(GgmlType::Q4_0));
            let y = &act[c * nb + b];
            let off = 8 * ysum(&y.qs);
            for r in 0..TILE_ROWS {
                let sumi = isum_nibbles(tb, r, &y.qs) - off;
                acc[r] += term_q4_0(sumi, f16_to_f32(d[r]), f16_to_f32(y.d));
            }
        }
        out[c * TILE_ROWS..(c + 1) * TILE_ROWS].copy_from_slice(&acc);
    }
}

pub(super) fn tile_q5_0(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
    let tbb = tile_block_bytes(GgmlType::Q5_0);
    let act: &[BlockQ8_0] = bytemuck::cast_slice(act);
    for c in 0..n {
        let mut acc = [0.0f32; TILE_ROWS];
        for b in 0..nb {
            let tb = &tile[b * tbb..(b + 1) * tbb];
            let d = f16s(tb, quant_bytes(GgmlType::Q5_0));
            let y = &act[c * nb + b];
            for r in 0..TILE_ROWS {
                let qh = u32::from_le_bytes([tb[4 * r], tb[4 * r + 1], tb[4 * r + 2], tb[4 * r + 3]]);
                let mut sumi = 0i32;
                for g in 0..4 {
                    for j in 0..4 {
                        let q = tb[64 * (1 + g) + 4 * r + j];
                        let (e0, e1) = (4 * g + j, 16 + 4 * g + j);
                        let l0 = (q & 0x0F) as i32 | (((qh >> e0) & 1) << 4) as i32;
                        let l1 = (q >> 4) as i32 | (((qh >> e1) & 1) << 4) as i32;
                        sumi += (l0 - 16) * y.qs[e0] as i32 + (l1 - 16) * y.qs[e1] as i32;
                    }
                }
                acc[r] += term_q5_0(sumi, f16_to_f32(d[r]), f16_to_f32(y.d));
            }
        }
        out[c * TILE_ROWS..(c + 1) * TILE_ROWS].copy_from_slice(&acc);
    }
}

pub(super) fn tile_iq4_nl(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
    let tbb = tile_block_bytes(GgmlType::IQ4_NL);
    let act: &[BlockQ8_0] = bytemuck::cast_slice(act);
    for c in 0..n {
        let mut acc = [0.0f32; TILE_ROWS];
        for b in 0..nb {
            let tb = &tile[b * tbb..(b + 1) * tbb];
            let d = f16s(tb, quant_bytes(GgmlType::IQ4_NL));
            let y = &act[c * nb + b];
            for r in 0..TILE_ROWS {
                let mut sumi = 0i32;
                for g in 0..4 {
                    for j in 0..4 {
                        let q = tb[g * 64 + r * 4 + j];
                        sumi += KVALUES_IQ4NL[(q & 0x0F) as usize] as i32 * y.qs[4 * g + j] as i32;
                        sumi += KVALUES_IQ4NL[(q >> 4) as usize] as i32 * y.qs[16 + 4 * g + j] as i32;
                    }
                }
                // `dot_iq4_nl`: (dy * dx) * sumi.
                acc[r] += (f16_to_f32(y.d) * f16_to_f32(d[r])) * sumi as f32;
            }
        }
        out[c * TILE_ROWS..(c + 1) * TILE_ROWS].copy_from_slice(&acc);
    }
}

pub(super) fn tile_q4_1(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
    let tbb = tile_block_bytes(GgmlType::Q4_1);
    let act: &[BlockQ8_1] = bytemuck::cast_slice(act);
    for c in 0..n {
        let mut acc = [0.0f32; TILE_ROWS];
        for b in 0..nb {
            let tb = &tile[b * tbb..(b + 1) * tbb];
            let d = f16s(tb, quant_bytes(GgmlType::Q4_1));
            let m = f16s(tb, quant_bytes(GgmlType::Q4_1) + 2 * TILE_ROWS);
            let y = &act[c * nb + b];
            for r in 0..TILE_ROWS {
                let sumi = isum_nibbles(tb, r, &y.qs);
                acc[r] += term_dm(
                    sumi,
                    f16_to_f32(d[r]),
                    f16_to_f32(y.d),
                    f16_to_f32(m[r]),
                    f16_to_f32(y.s),
                );
            }
        }
        out[c * TILE_ROWS..(c + 1) * TILE_ROWS].copy_from_slice(&acc);
    }
}

pub(super) fn tile_q8_0(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
    let tbb = tile_block_bytes(GgmlType::Q8_0);
    let act: &[BlockQ8_0] = bytemuck::cast_slice(act);
    for c in 0..n {
        let mut acc = [0.0f32; TILE_ROWS];
        for b in 0..nb {
            let tb = &tile[b * tbb..(b + 1) * tbb];
            let d = f16s(tb, quant_bytes(GgmlType::Q8_0));
            let y = &act[c * nb + b];
            for r in 0..TILE_ROWS {
                let mut sumi = 0i32;
                for g in 0..8 {
                    for j in 0..4 {
                        sumi += tb[g * 64 + r * 4 + j] as i8 as i32 * y.qs[4 * g + j] as i32;
                    }
                }
                acc[r] += term_q8_0(sumi, f16_to_f32(d[r]), f16_to_f32(y.d));
            }
        }
        out[c * TILE_ROWS..(c + 1) * TILE_ROWS].copy_from_slice(&acc);
    }
}
