//! Type-erased (byte-slice) entry points and their contract checks.
//!
//! Every function pointer in a [`TypeKernels`] starts with one of the
//! `*_args` checks below: they turn byte slices into block slices with
//! `bytemuck` (which panics on misaligned or partial blocks) and assert the
//! element counts, before any SIMD or `unsafe` code runs.

use crate::{BlockFormat, GgmlType, KernelPath, TypeKernels};

#[track_caller]
fn cast<'a, B: bytemuck::Pod>(bytes: &'a [u8], ty: GgmlType, what: &str) -> &'a [B] {
    match bytemuck::try_cast_slice(bytes) {
        Ok(s) => s,
        Err(e) => panic!(
            "{ty} {what}: {} bytes at {:p} are not whole blocks of {} bytes aligned to {} ({e:?})",
            bytes.len(),
            bytes.as_ptr(),
            size_of::<B>(),
            align_of::<B>()
        ),
    }
}

#[track_caller]
fn cast_mut<'a, B: bytemuck::Pod>(bytes: &'a mut [u8], ty: GgmlType, what: &str) -> &'a mut [B] {
    let (len, ptr) = (bytes.len(), bytes.as_ptr());
    match bytemuck::try_cast_slice_mut(bytes) {
        Ok(s) => s,
        Err(e) => panic!(
            "{ty} {what}: {len} bytes at {ptr:p} are not whole blocks of {} bytes aligned to {} ({e:?})",
            size_of::<B>(),
            align_of::<B>()
        ),
    }
}

/// Checks and casts the arguments of a `vec_dot`: `x` holds exactly `n`
/// elements of `B`, `y` exactly `n` elements of `B::Dot`.
#[track_caller]
#[inline]
pub(crate) fn dot_args<'a, B: BlockFormat>(
    n: usize,
    x: &'a [u8],
    y: &'a [u8],
) -> (&'a [B], &'a [B::Dot]) {
    let xb: &[B] = cast(x, B::TYPE, "vec_dot x");
    let yb: &[B::Dot] = cast(y, <B::Dot as BlockFormat>::TYPE, "vec_dot y");
    assert!(
        n.is_multiple_of(B::BLOCK)
            && n.is_multiple_of(<B::Dot as BlockFormat>::BLOCK)
            && xb.len() == n / B::BLOCK
            && yb.len() == n / <B::Dot as BlockFormat>::BLOCK,
        "{} vec_dot: n = {n} does not match {} x blocks and {} y blocks",
        B::TYPE,
        xb.len(),
        yb.len()
    );
    (xb, yb)
}

/// Checks and casts the arguments of a `from_float`: `src.len()` is a
/// multiple of the block size and `dst` holds exactly that many blocks.
#[track_caller]
#[inline]
pub(crate) fn from_float_args<'a, B: BlockFormat>(src: &[f32], dst: &'a mut [u8]) -> &'a mut [B] {
    let out: &mut [B] = cast_mut(dst, B::TYPE, "from_float dst");
    assert!(
        src.len().is_multiple_of(B::BLOCK) && out.len() == src.len() / B::BLOCK,
        "{} from_float: {} floats do not fill {} blocks of {}",
        B::TYPE,
        src.len(),
        out.len(),
        B::BLOCK
    );
    out
}

/// Checks and casts the arguments of a `to_float`.
#[track_caller]
#[inline]
pub(crate) fn to_float_args<'a, B: BlockFormat>(src: &'a [u8], dst: &[f32]) -> &'a [B] {
    let blocks: &[B] = cast(src, B::TYPE, "to_float src");
    assert!(
        dst.len() == blocks.len() * B::BLOCK,
        "{} to_float: {} blocks of {} do not fill {} floats",
        B::TYPE,
        blocks.len(),
        B::BLOCK,
        dst.len()
    );
    blocks
}

fn vec_dot_scalar<B: BlockFormat>(n: usize, x: &[u8], y: &[u8]) -> f32 {
    let (x, y) = dot_args::<B>(n, x, y);
    B::vec_dot_ref(x, y)
}

fn from_float_scalar<B: BlockFormat>(src: &[f32], dst: &mut [u8]) {
    let dst = from_float_args::<B>(src, dst);
    B::quantize_ref(src, dst);
}

fn to_float_scalar<B: BlockFormat>(src: &[u8], dst: &mut [f32]) {
    let src = to_float_args::<B>(src, dst);
    B::dequantize_ref(src, dst);
}

/// The reference kernels of `B`, labelled with `path` (SIMD paths start from
/// this table and replace the pointers they have twins for).
pub(crate) fn scalar_kernels<B: BlockFormat>(path: KernelPath) -> TypeKernels {
    TypeKernels {
        ty: B::TYPE,
        vec_dot_type: <B::Dot as BlockFormat>::TYPE,
        vec_dot: vec_dot_scalar::<B>,
        from_float: from_float_scalar::<B>,
        to_float: to_float_scalar::<B>,
        path,
    }
}
