//! The 4-bit non-linear formats IQ4_NL (blocks of 32, Q8_0 activations) and
//! IQ4_XS (super-blocks of 256 with 6-bit sub-block scales, Q8_K
//! activations): each 4-bit code indexes ggml's 16-entry table
//! `kvalues_iq4nl`. Common in imatrix downloads.
//!
//! * [`blocks`]: the `#[repr(C)]` block structs and their [`BlockFormat`]
//!   impls;
//! * `scalar`: the reference kernels, ports of ggml's C code (quantize and
//!   dequantize bit-identical, checked against goldens). The IQ4_NL dot is
//!   ggml's generic one; the IQ4_XS dot sums in edgewasm's order (one exact
//!   integer and one f32 step per block, as the K-quants) so the tile
//!   kernels can follow it 16 rows at a time.
//!
//! Decode and prefill go through the interleaved tile kernels
//! (`crate::gemm`) where a path has them; `vec_dot` covers the rows past
//! the last whole tile.
//!
//! [`BlockFormat`]: crate::BlockFormat

pub mod blocks;
pub(crate) mod scalar;

#[cfg(test)]
mod tests;

pub use blocks::{BlockIQ4_NL, BlockIQ4_XS};
