//! Weight matrices and the threaded matrix × activations product.

use edgewasm_gguf::{GgmlType, GgufFile, TensorInfo};
use edgewasm_kernels::{kernels_for, TypeKernels};

use crate::threadpool::{split_range, ThreadPool};

/// A 2-D weight tensor in the mapped file: `rows` rows of `cols` elements in
/// a ggml block format. Holds no bytes itself; [`QMatrix::bytes`] slices the
/// shared mapping, so every context and guest reads the same pages.
#[derive(Clone, Debug)]
pub struct QMatrix {
    pub name: String,
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    info: TensorInfo,
    kernels: &'static TypeKernels,
}

impl QMatrix {
    pub(crate) fn new(info: &TensorInfo, rows: usize, cols: usize) -> QMatrix {
        QMatrix {
            name: info.name.clone(),
            ty: info.ty,
            rows,
            cols,
            info: info.clone(),
            kernels: kernels_for(info.ty),
        }
    }

    /// The weight bytes, `rows * row_bytes`.
    #[inline]
    pub fn bytes<'a>(&self, file: &'a GgufFile) -> &'a [u8] {
        file.tensor_data(&self.info)
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.ty.type_size() * self.cols / self.ty.block_size()
    }

    /// Dequantizes row `r` into `out` (`cols` values): embedding lookup.
    pub fn dequantize_row(&self, file: &GgufFile, r: usize, out: &mut [f32]) {
        let rb = self.row_bytes();
        let bytes = &self.bytes(file)[r * rb..(r + 1) * rb];
        (self.kernels.to_float)(bytes, &mut out[..self.cols]);
    }

    pub fn kernels(&self) -> &'static TypeKernels {
        self.kernels
    }
}

/// A growable byte buffer aligned to 8 bytes (enough for every block type),
/// used for quantized activations.
#[derive(Debug, Default)]
pub struct ActBuf {
    words: Vec<u64>,
}

impl ActBuf {
    pub fn bytes_mut(&mut self, len: usize) -> &mut [u8] {
        let words = len.div_ceil(8);
        if self.words.len() < words {
            self.words.resize(words, 0);
        }
        &mut bytemuck::cast_slice_mut(&mut self.words)[..len]
    }
    pub fn bytes(&self, len: usize) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..len]
    }
}

/// A raw output pointer that threads write disjoint elements through.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);
// SAFETY: OutPtr is only used inside `matmul`, where each thread writes a
// disjoint set of rows of a buffer that outlives the pool job.
unsafe impl Send for OutPtr {}
// SAFETY: as above; no element is written by two threads or read while written.
unsafe impl Sync for OutPtr {}

/// Rows handed to a thread at a time are multiples of this, so threads never
/// share a cache line of the output in decode.
const ROW_ALIGN: usize = 16;

/// `out[b * w.rows + r] = dot(w[r], x[b])` for `n` activation rows `x` of
/// `w.cols` values each.
///
/// Activations are quantized once to the weight's `vec_dot_type` (as ggml
/// does), then threads split the weight rows; each weight row is read once
/// and dotted with all `n` activation rows while it is hot in cache.
pub fn matmul(
    pool: &ThreadPool,
    file: &GgufFile,
    w: &QMatrix,
    x: &[f32],
    n: usize,
    xq: &mut ActBuf,
    out: &mut [f32],
) {
    let k = w.cols;
    assert_eq!(x.len(), n * k, "matmul {}: activation shape", w.name);
    assert!(out.len() >= n * w.rows, "matmul {}: output shape", w.name);
    let kern = w.kernels;
    let dot_ty = kern.vec_dot_type;
    let act_row = dot_ty.type_size() * k / dot_ty.block_size();
    let act: &[u8] = if dot_ty == GgmlType::F32 {
        bytemuck::cast_slice(x)
    } else {
        let dst = xq.bytes_mut(act_row * n);
        let from_float = edgewasm_kernels::kernels_for(dot_ty).from_float;
        if n >= 4 {
            let dst_ptr = dst.as_mut_ptr() as usize;
            pool.run(|tid, nth| {
                for b in split_range(n, tid, nth, 1) {
                    // SAFETY: rows `b` are disjoint between threads and lie in
                    // `dst` (n * act_row bytes), which outlives the job.
                    let row = unsafe {
                        std::slice::from_raw_parts_mut((dst_ptr as *mut u8).add(b * act_row), act_row)
                    };
                    from_float(&x[b * k..(b + 1) * k], row);
                }
            });
        } else {
            for b in 0..n {
                from_float(&x[b * k..(b + 1) * k], &mut dst[b * act_row..(b + 1) * act_row]);
            }
        }
        xq.bytes(act_row * n)
    };
    let wbytes = w.bytes(file);
    let wrow = w.row_bytes();
    let rows = w.rows;
    let vec_dot = kern.vec_dot;
    let outp = OutPtr(out.as_mut_ptr());
    pool.run(|tid, nth| {
        let outp = outp;
        let range = split_range(rows, tid, nth, ROW_ALIGN);
        for r in range {
            let wr = &wbytes[r * wrow..(r + 1) * wrow];
            for b in 0..n {
                let v = vec_dot(k, wr, &act[b * act_row..(b + 1) * act_row]);
                // SAFETY: index b*rows + r < n*rows <= out.len() (asserted
                // above); row r belongs to this thread only.
                unsafe { *outp.0.add(b * rows + r) = v };
            }
        }
    });
}
