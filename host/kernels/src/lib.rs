//! Quantized CPU kernels for the ggml block formats.
//!
//! Every format has a `#[repr(C)]` block struct (with a compile-time size
//! check against [`GgmlType::type_size`]) implementing [`BlockFormat`]: a
//! reference quantize, a dequantize and a dot product against the activation
//! format ggml pairs it with ([`BlockFormat::Dot`]). Those scalar functions are
//! the ground truth. SIMD twins (AVX2+FMA, AVX-512, NEON, NEON dotprod) live in
//! `arch/` and are tested against them.
//!
//! The model does not call block functions directly: it asks [`kernels_for`]
//! for a [`TypeKernels`] table of function pointers, resolved once for the
//! active [`KernelPath`] (picked from CPU features at first use, or forced with
//! `EDGEWASM_KERNEL_PATH=scalar|avx2|avx512|neon|neon-dotprod`).
//!
//! Contract of the type-erased functions: byte slices hold whole blocks of the
//! named type and are aligned to that block's alignment (the GGUF reader and
//! the model's buffers guarantee both). A violated contract panics; it is a
//! bug in the caller, never reachable from file contents.

pub use edgewasm_gguf::GgmlType;

/// `dot(n, x, y)`: `x` is a row of `n` elements in the weight type, `y` the
/// same `n` elements in its `vec_dot_type`. Returns the f32 dot product.
pub type VecDotFn = fn(n: usize, x: &[u8], y: &[u8]) -> f32;
/// Quantizes `src.len()` f32 values into whole blocks in `dst`.
pub type FromFloatFn = fn(src: &[f32], dst: &mut [u8]);
/// Dequantizes whole blocks in `src` into `dst.len()` f32 values.
pub type ToFloatFn = fn(src: &[u8], dst: &mut [f32]);

/// The kernels for one weight type on one kernel path.
#[derive(Clone, Copy, Debug)]
pub struct TypeKernels {
    pub ty: GgmlType,
    /// The format activations are quantized to before `vec_dot`.
    pub vec_dot_type: GgmlType,
    pub vec_dot: VecDotFn,
    /// Quantize into `ty` (the fast path where one exists; it must give the
    /// same bytes as the reference quantize).
    pub from_float: FromFloatFn,
    pub to_float: ToFloatFn,
    /// The path these pointers were resolved for.
    pub path: KernelPath,
}

mod block;
pub use block::BlockFormat;
mod dispatch;
pub use dispatch::KernelPath;
