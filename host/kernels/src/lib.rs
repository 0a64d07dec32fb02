//! Quantized CPU kernels for the ggml block formats.
//!
//! Every format has a `#[repr(C)]` block struct (with a compile-time size
//! check against [`GgmlType::type_size`]) implementing [`BlockFormat`]: a
//! reference quantize, a dequantize and a dot product against the activation
//! format ggml pairs it with ([`BlockFormat::Dot`]). Those scalar functions are
//! the ground truth. SIMD twins (AVX2+FMA, AVX-512, NEON, NEON dotprod) live in
//! `arch/<arch>/<isa>/` (see `arch`) and return bit-identical results: every
//! `vec_dot` gives the reference's exact f32 bits on every path and
//! architecture (see the README, "Determinism").
//!
//! The model does not call block functions directly: it asks [`kernels_for`]
//! for a [`TypeKernels`] table of function pointers, resolved once for the
//! active [`KernelPath`] (picked from CPU features at first use, or forced with
//! `EDGEWASM_KERNEL_PATH=scalar|avx2|avx512|neon|neon-dotprod`).
//!
//! Contract of the type-erased functions: byte slices hold whole blocks of the
//! named type and are aligned to that block's alignment (the GGUF reader and
//! the model's buffers guarantee both). A violated contract panics; it is a
//! bug in the caller, never reachable from file contents. Concretely:
//!
//! * `vec_dot(n, x, y)`: `x` is exactly `n` elements of `ty` (`n / BLOCK`
//!   blocks), `y` exactly `n` elements of `vec_dot_type`;
//! * `from_float(src, dst)`: `src.len()` is a multiple of the block size and
//!   `dst` is exactly `src.len() / BLOCK` blocks;
//! * `to_float(src, dst)`: `src` is whole blocks, `dst.len()` their element
//!   count;
//! * byte slices start at a multiple of the block struct's alignment
//!   (2 for the quantized blocks and f16/bf16, 4 for f32; [`AlignedBuf`]
//!   gives 64).
//!
//! These are asserted at the entry of every function pointer, before any
//! `unsafe` code, so a bad call panics and SIMD code never reads out of
//! bounds.
//!
//! Non-finite inputs (NaN, infinity) quantize to the same bytes on every path
//! and as ggml on x86_64 (ggml's C casts are undefined there; see
//! [`fp::c_cast_i32`]); dot products of non-finite data are unspecified
//! beyond being the same kind of garbage as ggml's.

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

mod aligned;
mod arch;
pub mod attn;
mod block;
pub mod blocks;
mod dispatch;
mod erased;
mod float;
pub mod fp;
pub mod gemm;
pub mod iq4;
mod k_quants;
pub mod recurrent;

pub use aligned::{AlignedBuf, BUF_ALIGN};
pub use attn::{attn_kernels, attn_kernels_for_path, AttnKernels};
pub use recurrent::{recurrent_kernels, recurrent_kernels_for_path, RecurrentKernels};
pub use block::BlockFormat;
pub use blocks::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1};
pub use dispatch::{
    active_path, available_paths, cpu_features, detect, resolve_path, KernelPath,
    UnknownKernelPath, KERNEL_PATH_ENV,
};

use std::sync::OnceLock;

use erased::scalar_kernels;

/// The kernels of `ty` on `path`, or `None` if this CPU cannot run `path` or
/// there are no kernels for `ty` (the IQ formats but IQ4_NL and IQ4_XS, the
/// TQ, MXFP4, NVFP4, Q1_0 and Q2_0 formats, the integer types and F64: a file may hold them, and the model
/// refuses it by this `None`).
///
/// Every type has a full table on every available path: where a path has no
/// SIMD twin for one of the three functions, the scalar reference is used.
pub fn kernels_for_path(ty: GgmlType, path: KernelPath) -> Option<TypeKernels> {
    if !path.is_available() {
        return None;
    }
    let mut k = match ty {
        GgmlType::F32 => scalar_kernels::<f32>(path),
        GgmlType::F16 => scalar_kernels::<half::f16>(path),
        GgmlType::BF16 => scalar_kernels::<half::bf16>(path),
        GgmlType::Q4_0 => scalar_kernels::<BlockQ4_0>(path),
        GgmlType::Q4_1 => scalar_kernels::<BlockQ4_1>(path),
        GgmlType::Q5_0 => scalar_kernels::<BlockQ5_0>(path),
        GgmlType::Q5_1 => scalar_kernels::<BlockQ5_1>(path),
        GgmlType::Q8_0 => scalar_kernels::<BlockQ8_0>(path),
        GgmlType::Q8_1 => scalar_kernels::<BlockQ8_1>(path),
        GgmlType::Q2_K
        | GgmlType::Q3_K
        | GgmlType::Q4_K
        | GgmlType::Q5_K
        | GgmlType::Q6_K
        | GgmlType::Q8_K => return k_quants::kernels(ty, path),
        GgmlType::IQ4_NL => scalar_kernels::<iq4::BlockIQ4_NL>(path),
        GgmlType::IQ4_XS => scalar_kernels::<iq4::BlockIQ4_XS>(path),
        GgmlType::IQ2_XXS
        | GgmlType::IQ2_XS
        | GgmlType::IQ3_XXS
        | GgmlType::IQ1_S
        | GgmlType::IQ3_S
        | GgmlType::IQ2_S
        | GgmlType::I8
        | GgmlType::I16
        | GgmlType::I32
        | GgmlType::I64
        | GgmlType::F64
        | GgmlType::IQ1_M
        | GgmlType::TQ1_0
        | GgmlType::TQ2_0
        | GgmlType::MXFP4
        | GgmlType::NVFP4
        | GgmlType::Q1_0
        | GgmlType::Q2_0 => return None,
    };
    arch::install(&mut k, path);
    Some(k)
}

fn table() -> &'static [Option<TypeKernels>; GgmlType::ALL.len()] {
    static TABLE: OnceLock<[Option<TypeKernels>; GgmlType::ALL.len()]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let path = active_path();
        GgmlType::ALL.map(|ty| kernels_for_path(ty, path))
    })
}

fn type_index(ty: GgmlType) -> usize {
    GgmlType::ALL
        .iter()
        .position(|&t| t == ty)
        .expect("GgmlType::ALL lists every type")
}

/// The kernels of `ty` on the [`active_path`], or `None` if there are none.
pub fn try_kernels_for(ty: GgmlType) -> Option<&'static TypeKernels> {
    table()[type_index(ty)].as_ref()
}

/// The kernels of `ty` on the [`active_path`] (resolved once per process).
///
/// # Panics
/// If there are no kernels for `ty` (see [`try_kernels_for`]).
pub fn kernels_for(ty: GgmlType) -> &'static TypeKernels {
    try_kernels_for(ty)
        .unwrap_or_else(|| panic!("edgewasm-kernels: no kernels for {ty} on {}", active_path()))
}

/// Quantizes (or converts) a row of f32 into `ty` with the active path's
/// `from_float` (bit-identical to the reference). `src.len()` must be a
/// multiple of the block size and `dst` exactly the row's bytes.
pub fn quantize_row(ty: GgmlType, src: &[f32], dst: &mut [u8]) {
    (kernels_for(ty).from_float)(src, dst)
}

/// Expands a row of whole `ty` blocks into `dst` (its element count).
pub fn dequantize_row(ty: GgmlType, src: &[u8], dst: &mut [f32]) {
    (kernels_for(ty).to_float)(src, dst)
}

/// `sum(a[i] * b[i])` on the active path (the F32 `vec_dot`).
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    (kernels_for(GgmlType::F32).vec_dot)(a.len(), bytemuck::cast_slice(a), bytemuck::cast_slice(b))
}
