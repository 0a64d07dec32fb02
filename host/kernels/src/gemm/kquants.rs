//! The interleaved layout of the K-quants Q4_K, Q5_K and Q6_K and of IQ4_XS
//! (16 rows × one 256-element super-block per tile-block) and their
//! portable tile kernels, lane by lane the reference dots of
//! `crate::k_quants::scalar` and `crate::iq4::scalar` (edgewasm's order: one
//! exact integer and one f32 step per block).
//!
//! Q4_K tile-block, [`Q4K_TBB`] bytes:
//!
//! * `0..2048`: 32 quant vectors of 64 bytes; vector `g` holds bytes
//!   `4g..4g+4` of every row's `qs` (row `r` at `4r`). With `g = 8k + m`,
//!   the low nibbles are elements `64k + 4m..+4` (sub-block `2k`), the high
//!   nibbles elements `64k + 32 + 4m..+4` (sub-block `2k + 1`);
//! * `2048..2176`: the 6-bit scales unpacked, `sc[j][r]` at `16j + r`;
//! * `2176..2304`: the 6-bit mins unpacked in pairs, `m[2i][r]` at
//!   `32i + 2r`, `m[2i + 1][r]` next to it (one `madd` operand per pair);
//! * `2304..2336`: `d` of the 16 rows (f16), then `2336..2368`: `dmin`.
//!
//! Q5_K tile-block, [`Q5K_TBB`] bytes: Q4_K's with the fifth bits added.
//!
//! * `0..2048`: the `qs` vectors, as Q4_K's;
//! * `2048..2560`: 8 vectors of `qh` bytes (`4h..4h+4` of every row): the
//!   element of `qs` vector `8k + m` (low nibble) takes bit `2k` of `qh`
//!   vector `m`, its high nibble bit `2k + 1`;
//! * `2560..2880`: scales, mins, `d` and `dmin` as Q4_K's (offsets + 512).
//!
//! Q6_K tile-block, [`Q6K_TBB`] bytes (exactly 16 blocks):
//!
//! * `0..2048`: 32 vectors of `ql` bytes, as Q4_K's `qs`;
//! * `2048..3072`: 16 vectors of `qh` bytes (`4h..4h+4` of every row);
//! * `3072..3328`: the 16 scales, `sc[j][r]` at `16j + r` (i8);
//! * `3328..3360`: `d` of the 16 rows (f16).
//!
//! IQ4_XS tile-block, [`IQ4XS_TBB`] bytes (its 256-element super-blocks
//! follow the same scheme):
//!
//! * `0..2048`: 32 vectors of `qs` bytes; vector `g` is in sub-block
//!   `ib = g / 4`: low nibbles are the codes of elements
//!   `32ib + 4(g % 4)..+4`, high nibbles of `32ib + 16 + 4(g % 4)..+4`;
//! * `2048..2176`: the sub-block scales minus 32, `ls[ib][r] - 32` at
//!   `16ib + r` (i8);
//! * `2176..2208`: `d` of the 16 rows (f16).
//!
//! With `n` the 128-element half, `m < 8` and `l = 4m + 0..4`, element
//! `128n + l` is `ql` vector `16n + m` (low nibble) with bits 0-1 of `qh`
//! vector `8n + m`; `+32`: `ql` vector `16n + 8 + m`, `qh` bits 2-3; `+64`:
//! `ql` vector `16n + m` (high nibble), bits 4-5; `+96`: `ql` vector
//! `16n + 8 + m` (high nibble), bits 6-7.

use super::{f16s, TILE_ROWS};
use crate::fp::f16_to_f32;
use crate::k_quants::blocks::{BlockQ4_K, BlockQ5_K, BlockQ6_K, BlockQ8_K, QK_K};
use crate::iq4::scalar::{iq4_xs_scale, KVALUES_IQ4NL};
use crate::iq4::BlockIQ4_XS;
use crate::k_quants::scalar::{get_scale_min_k4, k_term};

/// Bytes of one Q4_K tile-block (16 rows; the source is 16 × 144 = 2304).
pub const Q4K_TBB: usize = 2368;
pub(crate) const Q4K_SC: usize = 2048;
pub(crate) const Q4K_MINS: usize = 2176;
pub(crate) const Q4K_D: usize = 2304;
pub(crate) const Q4K_DMIN: usize = 2336;

/// Bytes of one Q5_K tile-block (16 rows; the source is 16 × 176 = 2816).
pub const Q5K_TBB: usize = 2880;
pub(crate) const Q5K_QH: usize = 2048;
pub(crate) const Q5K_SC: usize = 2560;
pub(crate) const Q5K_MINS: usize = 2688;
pub(crate) const Q5K_D: usize = 2816;
pub(crate) const Q5K_DMIN: usize = 2848;

/// Bytes of one Q6_K tile-block (16 rows, as 16 blocks of 210).
pub const Q6K_TBB: usize = 3360;
pub(crate) const Q6K_QH: usize = 2048;
pub(crate) const Q6K_SC: usize = 3072;
pub(crate) const Q6K_D: usize = 3328;

const _: () = assert!(Q4K_DMIN + 2 * TILE_ROWS == Q4K_TBB && Q4K_MINS == Q4K_SC + 128 && Q4K_D == Q4K_SC + 256);
const _: () = assert!(Q6K_D + 2 * TILE_ROWS == Q6K_TBB);
const _: () = assert!(Q5K_DMIN + 2 * TILE_ROWS == Q5K_TBB && Q5K_SC == Q4K_SC + 512);
const _: () = assert!(Q5K_MINS == Q5K_SC + 128 && Q5K_D == Q5K_SC + 256 && Q5K_DMIN == Q5K_SC + 288);
const _: () = assert!(Q4K_DMIN == Q4K_SC + 288);
const _: () = assert!(Q6K_TBB == TILE_ROWS * size_of::<BlockQ6_K>());

/// Bytes of one IQ4_XS tile-block (16 rows; the source is 16 × 136 = 2176).
pub const IQ4XS_TBB: usize = 2208;
pub(crate) const IQ4XS_SC: usize = 2048;
pub(crate) const IQ4XS_D: usize = 2176;
const _: () = assert!(IQ4XS_D + 2 * TILE_ROWS == IQ4XS_TBB);

/// Row `r`'s `qs` (128 bytes) into the quant vectors at `tb[0..2048]`, and
/// its scales, mins, `d` and `dmin` into the areas from `tb[sc..]` (Q4_K's
/// `Q4K_SC`, or Q5_K's, 512 bytes later).
fn pack_k4_row(r: usize, qs: &[u8; 128], scales: &[u8; 12], d: [u8; 4], sc: usize, tb: &mut [u8]) {
    for g in 0..32 {
        tb[64 * g + 4 * r..64 * g + 4 * r + 4].copy_from_slice(&qs[4 * g..4 * g + 4]);
    }
    for j in 0..8 {
        let (s, m) = get_scale_min_k4(j, scales);
        tb[sc + 16 * j + r] = s;
        tb[sc + 128 + 32 * (j / 2) + 2 * r + j % 2] = m;
    }
    tb[sc + 256 + 2 * r..sc + 256 + 2 * r + 2].copy_from_slice(&d[..2]);
    tb[sc + 288 + 2 * r..sc + 288 + 2 * r + 2].copy_from_slice(&d[2..]);
}

/// The inverse of [`pack_k4_row`]: row `r`'s `qs`, packed scales and
/// `d`/`dmin` bytes.
fn unpack_k4_row(tb: &[u8], r: usize, sc: usize, qs: &mut [u8; 128], scales: &mut [u8; 12]) -> [u8; 4] {
    for g in 0..32 {
        qs[4 * g..4 * g + 4].copy_from_slice(&tb[64 * g + 4 * r..64 * g + 4 * r + 4]);
    }
    let s = |j: usize| tb[sc + 16 * j + r];
    let m = |j: usize| tb[sc + 128 + 32 * (j / 2) + 2 * r + j % 2];
    // ggml's packing of 8 six-bit scales and mins into 12 bytes (a
    // bijection: `get_scale_min_k4` reads it back).
    for j in 0..4 {
        scales[j] = s(j) | ((s(j + 4) >> 4) << 6);
        scales[j + 4] = m(j) | ((m(j + 4) >> 4) << 6);
        scales[j + 8] = (s(j + 4) & 0xF) | ((m(j + 4) & 0xF) << 4);
    }
    let (d, dmin) = (&tb[sc + 256 + 2 * r..][..2], &tb[sc + 288 + 2 * r..][..2]);
    [d[0], d[1], dmin[0], dmin[1]]
}

/// `d` and `dmin` of a block as their four bytes.
fn dm_bytes(d: half::f16, dmin: half::f16) -> [u8; 4] {
    let (d, m) = (d.to_bits().to_le_bytes(), dmin.to_bits().to_le_bytes());
    [d[0], d[1], m[0], m[1]]
}

/// Interleaves one block of each of 16 Q4_K rows (`src[r]`).
pub(super) fn pack_q4_k(src: &[&[u8]; TILE_ROWS], dst: &mut [u8]) {
    for (r, s) in src.iter().enumerate() {
        let blk: BlockQ4_K = bytemuck::pod_read_unaligned(s);
        pack_k4_row(r, &blk.qs, &blk.scales, dm_bytes(blk.d, blk.dmin), Q4K_SC, dst);
    }
}

/// The inverse of [`pack_q4_k`] for row `r`: its original block bytes.
pub(super) fn unpack_q4_k(tb: &[u8], r: usize, dst: &mut [u8]) {
    let mut blk: BlockQ4_K = bytemuck::Zeroable::zeroed();
    let dm = unpack_k4_row(tb, r, Q4K_SC, &mut blk.qs, &mut blk.scales);
    (blk.d, blk.dmin) = (f16_from(dm[0], dm[1]), f16_from(dm[2], dm[3]));
    dst.copy_from_slice(bytemuck::bytes_of(&blk));
}

/// Interleaves one block of each of 16 Q5_K rows.
pub(super) fn pack_q5_k(src: &[&[u8]; TILE_ROWS], dst: &mut [u8]) {
    for (r, s) in src.iter().enumerate() {
        let blk: BlockQ5_K = bytemuck::pod_read_unaligned(s);
        pack_k4_row(r, &blk.qs, &blk.scales, dm_bytes(blk.d, blk.dmin), Q5K_SC, dst);
        for h in 0..8 {
            dst[Q5K_QH + 64 * h + 4 * r..Q5K_QH + 64 * h + 4 * r + 4].copy_from_slice(&blk.qh[4 * h..4 * h + 4]);
        }
    }
}

/// The inverse of [`pack_q5_k`] for row `r`.
pub(super) fn unpack_q5_k(tb: &[u8], r: usize, dst: &mut [u8]) {
    let mut blk: BlockQ5_K = bytemuck::Zeroable::zeroed();
    let dm = unpack_k4_row(tb, r, Q5K_SC, &mut blk.qs, &mut blk.scales);
    (blk.d, blk.dmin) = (f16_from(dm[0], dm[1]), f16_from(dm[2], dm[3]));
    for h in 0..8 {
        blk.qh[4 * h..4 * h + 4].copy_from_slice(&tb[Q5K_QH + 64 * h + 4 * r..Q5K_QH + 64 * h + 4 * r + 4]);
    }
    dst.copy_from_slice(bytemuck::bytes_of(&blk));
}

fn f16_from(lo: u8, hi: u8) -> half::f16 {
    half::f16::from_bits(u16::from_le_bytes([lo, hi]))
}

/// Interleaves one block of each of 16 Q6_K rows.
pub(super) fn pack_q6_k(src: &[&[u8]; TILE_ROWS], dst: &mut [u8]) {
    for (r, s) in src.iter().enumerate() {
        let blk: BlockQ6_K = bytemuck::pod_read_unaligned(s);
        for g in 0..32 {
            dst[64 * g + 4 * r..64 * g + 4 * r + 4].copy_from_slice(&blk.ql[4 * g..4 * g + 4]);
        }
        for h in 0..16 {
            dst[Q6K_QH + 64 * h + 4 * r..Q6K_QH + 64 * h + 4 * r + 4].copy_from_slice(&blk.qh[4 * h..4 * h + 4]);
        }
        for j in 0..16 {
            dst[Q6K_SC + 16 * j + r] = blk.scales[j] as u8;
        }
        dst[Q6K_D + 2 * r..Q6K_D + 2 * r + 2].copy_from_slice(bytemuck::bytes_of(&blk.d));
    }
}

/// The inverse of [`pack_q6_k`] for row `r`.
pub(super) fn unpack_q6_k(tb: &[u8], r: usize, dst: &mut [u8]) {
    let mut blk: BlockQ6_K = bytemuck::Zeroable::zeroed();
    for g in 0..32 {
        blk.ql[4 * g..4 * g + 4].copy_from_slice(&tb[64 * g + 4 * r..64 * g + 4 * r + 4]);
    }
    for h in 0..16 {
        blk.qh[4 * h..4 * h + 4].copy_from_slice(&tb[Q6K_QH + 64 * h + 4 * r..Q6K_QH + 64 * h + 4 * r + 4]);
    }
    for j in 0..16 {
        blk.scales[j] = tb[Q6K_SC + 16 * j + r] as i8;
    }
    blk.d = f16s(tb, Q6K_D)[r];
    dst.copy_from_slice(bytemuck::bytes_of(&blk));
}

/// Interleaves one block of each of 16 IQ4_XS rows.
pub(super) fn pack_iq4_xs(src: &[&[u8]; TILE_ROWS], dst: &mut [u8]) {
    for (r, s) in src.iter().enumerate() {
        let blk: BlockIQ4_XS = bytemuck::pod_read_unaligned(s);
        for g in 0..32 {
            dst[64 * g + 4 * r..64 * g + 4 * r + 4].copy_from_slice(&blk.qs[4 * g..4 * g + 4]);
        }
        for ib in 0..8 {
            dst[IQ4XS_SC + 16 * ib + r] = iq4_xs_scale(&blk, ib) as i8 as u8;
        }
        dst[IQ4XS_D + 2 * r..IQ4XS_D + 2 * r + 2].copy_from_slice(bytemuck::bytes_of(&blk.d));
    }
}

/// The inverse of [`pack_iq4_xs`] for row `r`.
pub(super) fn unpack_iq4_xs(tb: &[u8], r: usize, dst: &mut [u8]) {
    let mut blk: BlockIQ4_XS = bytemuck::Zeroable::zeroed();
    for g in 0..32 {
        blk.qs[4 * g..4 * g + 4].copy_from_slice(&tb[64 * g + 4 * r..64 * g + 4 * r + 4]);
    }
    for ib in 0..8 {
        let ls = (tb[IQ4XS_SC + 16 * ib + r] as i8 as i32 + 32) as u8;
        blk.scales_l[ib / 2] |= (ls & 0xF) << (4 * (ib % 2));
        blk.scales_h |= ((ls >> 4) as u16) << (2 * ib);
    }
    blk.d = f16s(tb, IQ4XS_D)[r];
    dst.copy_from_slice(bytemuck::bytes_of(&blk));
}

pub(super) fn tile_iq4_xs(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
    let act: &[BlockQ8_K] = bytemuck::cast_slice(act);
    for c in 0..n {
        let mut acc = [0.0f32; TILE_ROWS];
        for b in 0..nb {
            let tb = &tile[b * IQ4XS_TBB..(b + 1) * IQ4XS_TBB];
            let y = &act[c * nb + b];
            for (r, acc) in acc.iter_mut().enumerate() {
                let mut isum = 0i32;
                for ib in 0..8 {
                    let mut s = 0i32;
                    for j in 0..16 {
                        let byte = qbyte(tb, r, 16 * ib + j);
                        s += KVALUES_IQ4NL[(byte & 0xF) as usize] as i32 * y.qs[32 * ib + j] as i32;
                        s += KVALUES_IQ4NL[(byte >> 4) as usize] as i32 * y.qs[32 * ib + 16 + j] as i32;
                    }
                    isum += tb[IQ4XS_SC + 16 * ib + r] as i8 as i32 * s;
                }
                // `dot_iq4_xs`: (d * yd) * isum.
                *acc += (f16_to_f32(f16s(tb, IQ4XS_D)[r]) * y.d) * isum as f32;
            }
        }
        out[c * TILE_ROWS..(c + 1) * TILE_ROWS].copy_from_slice(&acc);
    }
}

/// Byte `i` (`< 128`) of row `r`'s `qs`/`ql` in a tile-block.
#[inline]
fn qbyte(tb: &[u8], r: usize, i: usize) -> u8 {
    tb[64 * (i / 4) + 4 * r + i % 4]
}

/// The Q4_K (`QH = false`) or Q5_K tile kernel.
fn tile_k4<const QH: bool>(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
    let (tbb, sc) = if QH { (Q5K_TBB, Q5K_SC) } else { (Q4K_TBB, Q4K_SC) };
    let act: &[BlockQ8_K] = bytemuck::cast_slice(act);
    for c in 0..n {
        let mut acc = [0.0f32; TILE_ROWS];
        for b in 0..nb {
            let tb = &tile[b * tbb..(b + 1) * tbb];
            let y = &act[c * nb + b];
            for (r, acc) in acc.iter_mut().enumerate() {
                let mut isum = 0i32;
                let mut msum = 0i32;
                for j in 0..8 {
                    let (k, hi) = (j / 2, j % 2 == 1);
                    let mut s = 0i32;
                    for l in 0..32 {
                        let byte = qbyte(tb, r, 32 * k + l);
                        let mut q = if hi { byte >> 4 } else { byte & 0xF };
                        if QH {
                            let h = tb[Q5K_QH + 64 * (l / 4) + 4 * r + l % 4];
                            q |= ((h >> j) & 1) << 4;
                        }
                        s += q as i32 * y.qs[32 * j + l] as i32;
                    }
                    isum += tb[sc + 16 * j + r] as i32 * s;
                    let m = tb[sc + 128 + 32 * (j / 2) + 2 * r + j % 2] as i32;
                    msum += m * (y.bsums[2 * j] as i32 + y.bsums[2 * j + 1] as i32);
                }
                let (d, dmin) = (f16_to_f32(f16s(tb, sc + 256)[r]), f16_to_f32(f16s(tb, sc + 288)[r]));
                *acc = k_term(*acc, d, dmin, y.d, isum, msum);
            }
        }
        out[c * TILE_ROWS..(c + 1) * TILE_ROWS].copy_from_slice(&acc);
    }
}

pub(super) fn tile_q4_k(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
    tile_k4::<false>(tile, nb, act, n, out)
}

pub(super) fn tile_q5_k(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
    tile_k4::<true>(tile, nb, act, n, out)
}

/// Level (0..64) of element `e` of row `r` in a Q6_K tile-block.
#[inline]
fn q6_level(tb: &[u8], r: usize, e: usize) -> i32 {
    let (n, rest) = (e / 128, e % 128);
    let (quarter, l) = (rest / 32, rest % 32);
    let ql = qbyte(tb, r, 64 * n + 32 * (quarter % 2) + l);
    let qh = tb[Q6K_QH + 64 * ((32 * n + l) / 4) + 4 * r + l % 4];
    let low = if quarter < 2 { ql & 0xF } else { ql >> 4 };
    (low | (((qh >> (2 * quarter)) & 3) << 4)) as i32
}

pub(super) fn tile_q6_k(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]) {
    let act: &[BlockQ8_K] = bytemuck::cast_slice(act);
    for c in 0..n {
        let mut acc = [0.0f32; TILE_ROWS];
        for b in 0..nb {
            let tb = &tile[b * Q6K_TBB..(b + 1) * Q6K_TBB];
            let y = &act[c * nb + b];
            for (r, acc) in acc.iter_mut().enumerate() {
                let mut isum = 0i32;
                for j in 0..QK_K / 16 {
                    let mut s = 0i32;
                    for l in 16 * j..16 * j + 16 {
                        s += (q6_level(tb, r, l) - 32) * y.qs[l] as i32;
                    }
                    isum += tb[Q6K_SC + 16 * j + r] as i8 as i32 * s;
                }
                *acc += (f16_to_f32(f16s(tb, Q6K_D)[r]) * y.d) * isum as f32;
            }
        }
        out[c * TILE_ROWS..(c + 1) * TILE_ROWS].copy_from_slice(&acc);
    }
}
