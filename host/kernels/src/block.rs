//! The trait every block format implements.

use crate::GgmlType;

/// A ggml block format: `BLOCK` elements stored in `size_of::<Self>()` bytes.
///
/// The three functions are the scalar reference implementations. They are
/// the ground truth that every SIMD twin is tested against, and `quantize_ref`
/// reproduces ggml's `quantize_row_*_ref` (bit-identical for the legacy
/// formats and Q8_K).
pub trait BlockFormat: bytemuck::Pod + Send + Sync + 'static {
    const TYPE: GgmlType;
    /// Elements per block.
    const BLOCK: usize;
    /// The activation format ggml pairs this format with in `vec_dot`.
    type Dot: BlockFormat;

    /// Quantizes `src` (a multiple of `BLOCK` values) into `dst`
    /// (`src.len() / BLOCK` blocks).
    fn quantize_ref(src: &[f32], dst: &mut [Self]);
    /// Expands `src` into `dst` (`src.len() * BLOCK` values).
    fn dequantize_ref(src: &[Self], dst: &mut [f32]);
    /// Dot product of a weight row with an activation row of equal length.
    fn vec_dot_ref(x: &[Self], y: &[Self::Dot]) -> f32;
}
