//! The legacy ggml block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1) with
//! their scalar reference kernels.
//!
//! Layouts follow `ggml-common.h` byte for byte. ggml declares the `d`/`m`
//! (or `d`/`s`) pair of Q4_1, Q5_1 and Q8_1 as a union with a 32-bit
//! `ggml_half2`, which makes those C structs 4-byte aligned; here every block
//! is 2-byte aligned (sizes are unchanged, and a 4-aligned buffer is also
//! 2-aligned, so anything laid out for ggml can be cast to these).
//!
//! `quantize_ref` reproduces `quantize_row_*_ref` of ggml-quants.c bit for bit
//! (checked against goldens made from ggml's C code, see
//! `tests/golden.rs`), `dequantize_ref` reproduces `dequantize_row_*`, and
//! `vec_dot_ref` follows `ggml_vec_dot_*_generic` of ggml-cpu/quants.c:
//! exact integer sums per block, then one f32 multiply-add per block in the
//! same order as the C code.

#![allow(non_camel_case_types)]

use bytemuck::{Pod, Zeroable};
use half::f16;

use crate::fp::{c_cast_i32, f16_from_f32, f16_to_f32, roundf_to_i8};
use crate::{BlockFormat, GgmlType};

/// Elements per legacy block (`QK4_0` = ... = `QK8_1` = 32).
pub const QK: usize = 32;

/// `block_q4_0`: `x = (q - 8) * d`, q in 0..16. Nibble j (low) is element j,
/// nibble j (high) is element j + 16.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Zeroable, Pod)]
pub struct BlockQ4_0 {
    pub d: f16,
    pub qs: [u8; QK / 2],
}

/// `block_q4_1`: `x = q * d + m`, q in 0..16.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Zeroable, Pod)]
pub struct BlockQ4_1 {
    pub d: f16,
    pub m: f16,
    pub qs: [u8; QK / 2],
}

/// `block_q5_0`: `x = (q - 16) * d`, q in 0..32; bit j of `qh` (little
/// endian u32) is the fifth bit of element j.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Zeroable, Pod)]
pub struct BlockQ5_0 {
    pub d: f16,
    pub qh: [u8; 4],
    pub qs: [u8; QK / 2],
}

/// `block_q5_1`: `x = q * d + m`, q in 0..32.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Zeroable, Pod)]
pub struct BlockQ5_1 {
    pub d: f16,
    pub m: f16,
    pub qh: [u8; 4],
    pub qs: [u8; QK / 2],
}

/// `block_q8_0`: `x = q * d`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Zeroable, Pod)]
pub struct BlockQ8_0 {
    pub d: f16,
    pub qs: [i8; QK],
}

/// `block_q8_1`: `x = q * d`, and `s = d * sum(qs)` (rounded to f16).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Zeroable, Pod)]
pub struct BlockQ8_1 {
    pub d: f16,
    pub s: f16,
    pub qs: [i8; QK],
}

const _: () = assert!(size_of::<BlockQ4_0>() == GgmlType::Q4_0.type_size());
const _: () = assert!(size_of::<BlockQ4_1>() == GgmlType::Q4_1.type_size());
const _: () = assert!(size_of::<BlockQ5_0>() == GgmlType::Q5_0.type_size());
const _: () = assert!(size_of::<BlockQ5_1>() == GgmlType::Q5_1.type_size());
const _: () = assert!(size_of::<BlockQ8_0>() == GgmlType::Q8_0.type_size());
const _: () = assert!(size_of::<BlockQ8_1>() == GgmlType::Q8_1.type_size());
const _: () = assert!(GgmlType::Q4_0.block_size() == QK && GgmlType::Q8_1.block_size() == QK);

impl BlockQ5_0 {
    /// The 32 fifth bits as one little-endian word.
    #[inline]
    pub fn qh(&self) -> u32 {
        u32::from_le_bytes(self.qh)
    }
}

impl BlockQ5_1 {
    /// The 32 fifth bits as one little-endian word.
    #[inline]
    pub fn qh(&self) -> u32 {
        u32::from_le_bytes(self.qh)
    }
}

#[inline]
fn assert_quant_lens(what: &str, src_len: usize, blocks: usize) {
    assert!(
        src_len == blocks * QK,
        "{what}: {src_len} floats for {blocks} blocks of {QK}"
    );
}

/// ggml's `amax`/signed `max` search of Q4_0/Q5_0 (`if (amax < fabsf(v))`).
#[inline]
fn signed_absmax(x: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    max
}

/// ggml's min/max search of Q4_1/Q5_1.
#[inline]
fn min_max(x: &[f32]) -> (f32, f32) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// `amax = MAX(amax, fabsf(v))` of Q8_0/Q8_1, `MAX(a, b) = a > b ? a : b`.
#[inline]
pub(crate) fn q8_absmax(x: &[f32]) -> f32 {
    let mut amax = 0.0f32;
    for &v in x {
        let a = v.abs();
        amax = if amax > a { amax } else { a };
    }
    amax
}

// The f32 part of one block's term in the `vec_dot_ref`s (after the exact
// integer sum `sumi`), in ggml's expression order. The SIMD kernels evaluate
// the same expressions (lane-wise or through these functions), so every path
// gives the reference's bits.

/// Q4_0: `sumi * dx * dy`.
#[inline(always)]
pub(crate) fn term_q4_0(sumi: i32, dx: f32, dy: f32) -> f32 {
    sumi as f32 * dx * dy
}

/// Q4_1 and Q5_1: `(dx * dy) * sumi + m * s`.
#[inline(always)]
pub(crate) fn term_dm(sumi: i32, dx: f32, dy: f32, m: f32, s: f32) -> f32 {
    (dx * dy) * sumi as f32 + m * s
}

/// Q5_0: `(dx * dy) * sumi`.
#[inline(always)]
pub(crate) fn term_q5_0(sumi: i32, dx: f32, dy: f32) -> f32 {
    (dx * dy) * sumi as f32
}

/// Q8_0 (and Q8_1 x Q8_1): `sumi * (dx * dy)`.
#[inline(always)]
pub(crate) fn term_q8_0(sumi: i32, dx: f32, dy: f32) -> f32 {
    sumi as f32 * (dx * dy)
}

/// `d ? 1.0f/d : 0.0f`.
#[inline]
pub(crate) fn inv_or_zero(d: f32) -> f32 {
    if d != 0.0 {
        1.0 / d
    } else {
        0.0
    }
}

impl BlockFormat for BlockQ4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;
    const BLOCK: usize = QK;
    type Dot = BlockQ8_0;

    fn quantize_ref(src: &[f32], dst: &mut [Self]) {
        assert_quant_lens("q4_0", src.len(), dst.len());
        for (x, y) in src.chunks_exact(QK).zip(dst) {
            let max = signed_absmax(x);
            let d = max / -8.0;
            let id = inv_or_zero(d);
            y.d = f16_from_f32(d);
            for j in 0..QK / 2 {
                let x0 = x[j] * id;
                let x1 = x[QK / 2 + j] * id;
                // MIN(15, (int8_t)(x0 + 8.5f)) stored in a uint8_t.
                let xi0 = (c_cast_i32(x0 + 8.5) as i8).min(15) as u8;
                let xi1 = (c_cast_i32(x1 + 8.5) as i8).min(15) as u8;
                y.qs[j] = xi0 | (xi1 << 4);
            }
        }
    }

    fn dequantize_ref(src: &[Self], dst: &mut [f32]) {
        assert_quant_lens("q4_0", dst.len(), src.len());
        for (x, y) in src.iter().zip(dst.chunks_exact_mut(QK)) {
            let d = f16_to_f32(x.d);
            for j in 0..QK / 2 {
                let x0 = (x.qs[j] & 0x0F) as i32 - 8;
                let x1 = (x.qs[j] >> 4) as i32 - 8;
                y[j] = x0 as f32 * d;
                y[j + QK / 2] = x1 as f32 * d;
            }
        }
    }

    fn vec_dot_ref(x: &[Self], y: &[BlockQ8_0]) -> f32 {
        assert_eq!(x.len(), y.len(), "q4_0 x q8_0: block counts differ");
        let mut sumf = 0.0f32;
        for (x, y) in x.iter().zip(y) {
            let mut sumi0 = 0i32;
            let mut sumi1 = 0i32;
            for j in 0..QK / 2 {
                let v0 = (x.qs[j] & 0x0F) as i32 - 8;
                let v1 = (x.qs[j] >> 4) as i32 - 8;
                sumi0 += v0 * y.qs[j] as i32;
                sumi1 += v1 * y.qs[j + QK / 2] as i32;
            }
            let sumi = sumi0 + sumi1;
            sumf += term_q4_0(sumi, f16_to_f32(x.d), f16_to_f32(y.d));
        }
        sumf
    }
}

impl BlockFormat for BlockQ4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;
    const BLOCK: usize = QK;
    type Dot = BlockQ8_1;

    fn quantize_ref(src: &[f32], dst: &mut [Self]) {
        assert_quant_lens("q4_1", src.len(), dst.len());
        for (x, y) in src.chunks_exact(QK).zip(dst) {
            let (min, max) = min_max(x);
            let d = (max - min) / 15.0;
            let id = inv_or_zero(d);
            y.d = f16_from_f32(d);
            y.m = f16_from_f32(min);
            for j in 0..QK / 2 {
                let x0 = (x[j] - min) * id;
                let x1 = (x[QK / 2 + j] - min) * id;
                let xi0 = (c_cast_i32(x0 + 0.5) as i8).min(15) as u8;
                let xi1 = (c_cast_i32(x1 + 0.5) as i8).min(15) as u8;
                y.qs[j] = xi0 | (xi1 << 4);
            }
        }
    }

    fn dequantize_ref(src: &[Self], dst: &mut [f32]) {
        assert_quant_lens("q4_1", dst.len(), src.len());
        for (x, y) in src.iter().zip(dst.chunks_exact_mut(QK)) {
            let d = f16_to_f32(x.d);
            let m = f16_to_f32(x.m);
            for j in 0..QK / 2 {
                let x0 = (x.qs[j] & 0x0F) as i32;
                let x1 = (x.qs[j] >> 4) as i32;
                y[j] = x0 as f32 * d + m;
                y[j + QK / 2] = x1 as f32 * d + m;
            }
        }
    }

    fn vec_dot_ref(x: &[Self], y: &[BlockQ8_1]) -> f32 {
        assert_eq!(x.len(), y.len(), "q4_1 x q8_1: block counts differ");
        let mut sumf = 0.0f32;
        for (x, y) in x.iter().zip(y) {
            let mut sumi0 = 0i32;
            let mut sumi1 = 0i32;
            for j in 0..QK / 2 {
                let v0 = (x.qs[j] & 0x0F) as i32;
                let v1 = (x.qs[j] >> 4) as i32;
                sumi0 += v0 * y.qs[j] as i32;
                sumi1 += v1 * y.qs[j + QK / 2] as i32;
            }
            let sumi = sumi0 + sumi1;
            sumf += term_dm(
                sumi,
                f16_to_f32(x.d),
                f16_to_f32(y.d),
                f16_to_f32(x.m),
                f16_to_f32(y.s),
            );
        }
        sumf
    }
}

impl BlockFormat for BlockQ5_0 {
    const TYPE: GgmlType = GgmlType::Q5_0;
    const BLOCK: usize = QK;
    type Dot = BlockQ8_0;

    fn quantize_ref(src: &[f32], dst: &mut [Self]) {
        assert_quant_lens("q5_0", src.len(), dst.len());
        for (x, y) in src.chunks_exact(QK).zip(dst) {
            let max = signed_absmax(x);
            let d = max / -16.0;
            let id = inv_or_zero(d);
            y.d = f16_from_f32(d);
            let mut qh = 0u32;
            for j in 0..QK / 2 {
                let x0 = x[j] * id;
                let x1 = x[QK / 2 + j] * id;
                let xi0 = (c_cast_i32(x0 + 16.5) as i8).min(31) as u8;
                let xi1 = (c_cast_i32(x1 + 16.5) as i8).min(31) as u8;
                y.qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
                qh |= (((xi0 & 0x10) >> 4) as u32) << j;
                qh |= (((xi1 & 0x10) >> 4) as u32) << (j + QK / 2);
            }
            y.qh = qh.to_le_bytes();
        }
    }

    fn dequantize_ref(src: &[Self], dst: &mut [f32]) {
        assert_quant_lens("q5_0", dst.len(), src.len());
        for (x, y) in src.iter().zip(dst.chunks_exact_mut(QK)) {
            let d = f16_to_f32(x.d);
            let qh = x.qh();
            for j in 0..QK / 2 {
                let xh_0 = (((qh >> j) << 4) & 0x10) as u8;
                let xh_1 = ((qh >> (j + 12)) & 0x10) as u8;
                let x0 = ((x.qs[j] & 0x0F) | xh_0) as i32 - 16;
                let x1 = ((x.qs[j] >> 4) | xh_1) as i32 - 16;
                y[j] = x0 as f32 * d;
                y[j + QK / 2] = x1 as f32 * d;
            }
        }
    }

    fn vec_dot_ref(x: &[Self], y: &[BlockQ8_0]) -> f32 {
        assert_eq!(x.len(), y.len(), "q5_0 x q8_0: block counts differ");
        let mut sumf = 0.0f32;
        for (x, y) in x.iter().zip(y) {
            let qh = x.qh();
            let mut sumi0 = 0i32;
            let mut sumi1 = 0i32;
            for j in 0..QK / 2 {
                let xh_0 = (((qh >> j) & 1) << 4) as u8;
                let xh_1 = (((qh >> (j + 16)) & 1) << 4) as u8;
                let x0 = ((x.qs[j] & 0x0F) | xh_0) as i32 - 16;
                let x1 = ((x.qs[j] >> 4) | xh_1) as i32 - 16;
                sumi0 += x0 * y.qs[j] as i32;
                sumi1 += x1 * y.qs[j + QK / 2] as i32;
            }
            let sumi = sumi0 + sumi1;
            sumf += term_q5_0(sumi, f16_to_f32(x.d), f16_to_f32(y.d));
        }
        sumf
    }
}

impl BlockFormat for BlockQ5_1 {
    const TYPE: GgmlType = GgmlType::Q5_1;
    const BLOCK: usize = QK;
    type Dot = BlockQ8_1;

    fn quantize_ref(src: &[f32], dst: &mut [Self]) {
        assert_quant_lens("q5_1", src.len(), dst.len());
        for (x, y) in src.chunks_exact(QK).zip(dst) {
            let (min, max) = min_max(x);
            let d = (max - min) / 31.0;
            let id = inv_or_zero(d);
            y.d = f16_from_f32(d);
            y.m = f16_from_f32(min);
            let mut qh = 0u32;
            for j in 0..QK / 2 {
                let x0 = (x[j] - min) * id;
                let x1 = (x[QK / 2 + j] - min) * id;
                // (uint8_t)(x0 + 0.5f): no clamp in ggml for Q5_1.
                let xi0 = c_cast_i32(x0 + 0.5) as u8;
                let xi1 = c_cast_i32(x1 + 0.5) as u8;
                y.qs[j] = (xi0 & 0x0F) | ((xi1 & 0x0F) << 4);
                qh |= (((xi0 & 0x10) >> 4) as u32) << j;
                qh |= (((xi1 & 0x10) >> 4) as u32) << (j + QK / 2);
            }
            y.qh = qh.to_le_bytes();
        }
    }

    fn dequantize_ref(src: &[Self], dst: &mut [f32]) {
        assert_quant_lens("q5_1", dst.len(), src.len());
        for (x, y) in src.iter().zip(dst.chunks_exact_mut(QK)) {
            let d = f16_to_f32(x.d);
            let m = f16_to_f32(x.m);
            let qh = x.qh();
            for j in 0..QK / 2 {
                let xh_0 = (((qh >> j) << 4) & 0x10) as u8;
                let xh_1 = ((qh >> (j + 12)) & 0x10) as u8;
                let x0 = ((x.qs[j] & 0x0F) | xh_0) as i32;
                let x1 = ((x.qs[j] >> 4) | xh_1) as i32;
                y[j] = x0 as f32 * d + m;
                y[j + QK / 2] = x1 as f32 * d + m;
            }
        }
    }

    fn vec_dot_ref(x: &[Self], y: &[BlockQ8_1]) -> f32 {
        assert_eq!(x.len(), y.len(), "q5_1 x q8_1: block counts differ");
        let mut sumf = 0.0f32;
        for (x, y) in x.iter().zip(y) {
            let qh = x.qh();
            let mut sumi0 = 0i32;
            let mut sumi1 = 0i32;
            for j in 0..QK / 2 {
                let xh_0 = (((qh >> j) << 4) & 0x10) as u8;
                let xh_1 = ((qh >> (j + 12)) & 0x10) as u8;
                let x0 = ((x.qs[j] & 0x0F) | xh_0) as i32;
                let x1 = ((x.qs[j] >> 4) | xh_1) as i32;
                sumi0 += x0 * y.qs[j] as i32;
                sumi1 += x1 * y.qs[j + QK / 2] as i32;
            }
            let sumi = sumi0 + sumi1;
            sumf += term_dm(
                sumi,
                f16_to_f32(x.d),
                f16_to_f32(y.d),
                f16_to_f32(x.m),
                f16_to_f32(y.s),
            );
        }
        sumf
    }
}

/// One Q8_0 block: `quantize_row_q8_0_ref` for 32 values. Returns the
/// scale `d` (as f32, before rounding to f16) for Q8_1's `s`.
#[inline]
pub(crate) fn quantize_q8_block(x: &[f32], qs: &mut [i8; QK]) -> f32 {
    let amax = q8_absmax(x);
    let d = amax / 127.0;
    let id = inv_or_zero(d);
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = roundf_to_i8(v * id);
    }
    d
}

impl BlockFormat for BlockQ8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;
    const BLOCK: usize = QK;
    type Dot = BlockQ8_0;

    fn quantize_ref(src: &[f32], dst: &mut [Self]) {
        assert_quant_lens("q8_0", src.len(), dst.len());
        for (x, y) in src.chunks_exact(QK).zip(dst) {
            let d = quantize_q8_block(x, &mut y.qs);
            y.d = f16_from_f32(d);
        }
    }

    fn dequantize_ref(src: &[Self], dst: &mut [f32]) {
        assert_quant_lens("q8_0", dst.len(), src.len());
        for (x, y) in src.iter().zip(dst.chunks_exact_mut(QK)) {
            let d = f16_to_f32(x.d);
            for (o, &q) in y.iter_mut().zip(&x.qs) {
                *o = q as f32 * d;
            }
        }
    }

    fn vec_dot_ref(x: &[Self], y: &[BlockQ8_0]) -> f32 {
        assert_eq!(x.len(), y.len(), "q8_0 x q8_0: block counts differ");
        let mut sumf = 0.0f32;
        for (x, y) in x.iter().zip(y) {
            let sumi: i32 =
                x.qs.iter()
                    .zip(&y.qs)
                    .map(|(&a, &b)| a as i32 * b as i32)
                    .sum();
            sumf += term_q8_0(sumi, f16_to_f32(x.d), f16_to_f32(y.d));
        }
        sumf
    }
}

impl BlockFormat for BlockQ8_1 {
    const TYPE: GgmlType = GgmlType::Q8_1;
    const BLOCK: usize = QK;
    type Dot = BlockQ8_1;

    fn quantize_ref(src: &[f32], dst: &mut [Self]) {
        assert_quant_lens("q8_1", src.len(), dst.len());
        for (x, y) in src.chunks_exact(QK).zip(dst) {
            let d = quantize_q8_block(x, &mut y.qs);
            y.d = f16_from_f32(d);
            let sum: i32 = y.qs.iter().map(|&q| q as i32).sum();
            y.s = f16_from_f32(sum as f32 * d);
        }
    }

    /// `q * d` (ggml has no `dequantize_row_q8_1`; this is the obvious one).
    fn dequantize_ref(src: &[Self], dst: &mut [f32]) {
        assert_quant_lens("q8_1", dst.len(), src.len());
        for (x, y) in src.iter().zip(dst.chunks_exact_mut(QK)) {
            let d = f16_to_f32(x.d);
            for (o, &q) in y.iter_mut().zip(&x.qs) {
                *o = q as f32 * d;
            }
        }
    }

    /// Like Q8_0 x Q8_0 (ggml has no Q8_1 x Q8_1 kernel; `s` is unused).
    fn vec_dot_ref(x: &[Self], y: &[BlockQ8_1]) -> f32 {
        assert_eq!(x.len(), y.len(), "q8_1 x q8_1: block counts differ");
        let mut sumf = 0.0f32;
        for (x, y) in x.iter().zip(y) {
            let sumi: i32 =
                x.qs.iter()
                    .zip(&y.qs)
                    .map(|(&a, &b)| a as i32 * b as i32)
                    .sum();
            sumf += term_q8_0(sumi, f16_to_f32(x.d), f16_to_f32(y.d));
        }
        sumf
    }
}
