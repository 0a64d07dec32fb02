//! One tensor's data in another type: expanded to f32 with the source
//! type's dequantize (ggml's `dequantize_row_*`) and quantized with the
//! target's scalar reference (ggml's `quantize_row_*_ref`, which is what
//! `ggml_quantize_chunk` runs without an imatrix). The scalar path is used
//! on purpose: it is the one that matches ggml bit for bit, whatever the CPU.

use std::num::NonZeroUsize;

use edgewasm_gguf::{GgmlType, GgufFile, TensorInfo};
use edgewasm_kernels::{kernels_for_path, AlignedBuf, KernelPath, TypeKernels};

/// Rows converted at a time per thread (bounds the f32 scratch memory).
const SLAB_ELEMENTS: usize = 1 << 20;

/// Why one tensor could not be converted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConvertError {
    #[error("tensor data is truncated")]
    Truncated,
    #[error("{0} is an activation format, not a weight type")]
    ActivationType(GgmlType),
    #[error("row length {row_len} is not a multiple of the {ty} block size {}", ty.block_size())]
    RowLength { row_len: u64, ty: GgmlType },
    #[error("no {0} kernels")]
    NoKernels(GgmlType),
    #[error("output size overflows")]
    TooLarge,
    #[error("row {row} element {index} is {value} (non-finite values cannot be quantized)")]
    NonFinite { row: usize, index: usize, value: f32 },
    #[error("a quantization thread panicked")]
    ThreadPanicked,
}

/// The scalar reference kernels of `ty` (its `to_float` is ggml's
/// `dequantize_row_*`, its `from_float` ggml's `quantize_row_*_ref`).
fn reference_kernels(ty: GgmlType) -> Result<TypeKernels, ConvertError> {
    kernels_for_path(ty, KernelPath::Scalar).ok_or(ConvertError::NoKernels(ty))
}

fn to_usize(n: u64) -> Result<usize, ConvertError> {
    usize::try_from(n).map_err(|_| ConvertError::TooLarge)
}

/// The tensor's data in type `to`: a copy when the type is unchanged, else
/// dequantized and requantized row by row, in slabs, on `threads` threads.
/// The bytes do not depend on `threads`: every row is converted alone.
pub(super) fn convert_tensor(
    src: &GgufFile,
    t: &TensorInfo,
    to: GgmlType,
    threads: NonZeroUsize,
) -> Result<Vec<u8>, ConvertError> {
    let data = src.tensor_data(t);
    if data.len() as u64 != t.size_bytes {
        return Err(ConvertError::Truncated);
    }
    if to == t.ty {
        return Ok(data.to_vec());
    }
    if matches!(to, GgmlType::Q8_1 | GgmlType::Q8_K) {
        return Err(ConvertError::ActivationType(to));
    }
    let n_per_row = to_usize(t.row_len())?;
    let n_rows = to_usize(t.n_rows())?;
    let row_in = to_usize(t.row_bytes())?;
    let row_out = to.row_bytes(t.row_len()).ok_or(ConvertError::RowLength { row_len: t.row_len(), ty: to })?;
    let row_out = to_usize(row_out)?;
    let dequant = reference_kernels(t.ty)?;
    let quant = reference_kernels(to)?;
    let mut out = vec![0u8; n_rows.checked_mul(row_out).ok_or(ConvertError::TooLarge)?];
    if n_rows == 0 || row_out == 0 {
        return Ok(out);
    }
    let threads = threads.get();
    let slab_rows = (SLAB_ELEMENTS / n_per_row.max(1)).max(1);
    let rows_per_thread = n_rows.div_ceil(threads).max(1);
    let work = |first_row: usize, dst: &mut [u8]| -> Result<(), ConvertError> {
        let mut f32_buf = vec![0f32; slab_rows.min(dst.len() / row_out) * n_per_row];
        let mut in_buf = AlignedBuf::new();
        let mut q_buf = AlignedBuf::new();
        for (k, dst) in dst.chunks_mut(slab_rows * row_out).enumerate() {
            let rows = dst.len() / row_out;
            let r0 = first_row + k * slab_rows;
            let src_bytes = &data[r0 * row_in..(r0 + rows) * row_in];
            // Mapped tensor data is aligned; a file with general.alignment < 4
            // might not be, and the kernels need aligned blocks.
            let src_bytes = if (src_bytes.as_ptr() as usize).is_multiple_of(4) {
                src_bytes
            } else {
                in_buf.resize(src_bytes.len());
                in_buf.as_bytes_mut().copy_from_slice(src_bytes);
                in_buf.as_bytes()
            };
            let f = &mut f32_buf[..rows * n_per_row];
            for (r, (s, d)) in src_bytes.chunks_exact(row_in).zip(f.chunks_exact_mut(n_per_row)).enumerate() {
                (dequant.to_float)(s, d);
                if let Some(j) = d.iter().position(|x| !x.is_finite()) {
                    return Err(ConvertError::NonFinite { row: r0 + r, index: j, value: d[j] });
                }
            }
            q_buf.resize(dst.len());
            for (s, d) in f.chunks_exact(n_per_row).zip(q_buf.as_bytes_mut().chunks_exact_mut(row_out)) {
                (quant.from_float)(s, d);
            }
            dst.copy_from_slice(q_buf.as_bytes());
        }
        Ok(())
    };
    if threads == 1 || n_rows <= rows_per_thread {
        work(0, &mut out)?;
    } else {
        std::thread::scope(|s| -> Result<(), ConvertError> {
            let handles: Vec<_> = out
                .chunks_mut(rows_per_thread * row_out)
                .enumerate()
                .map(|(i, chunk)| {
                    let work = &work;
                    s.spawn(move || work(i * rows_per_thread, chunk))
                })
                .collect();
            for h in handles {
                h.join().map_err(|_| ConvertError::ThreadPanicked)??;
            }
            Ok(())
        })?;
    }
    Ok(out)
}
