//! Weight matrices and the threaded matrix × activations product.

use std::sync::Arc;

use edgewasm_gguf::{GgmlType, GgufFile, TensorInfo};
use edgewasm_kernels::gemm::{self, RepackedMatrix, WeightArena, TILE_ROWS};
use edgewasm_kernels::{kernels_for, TypeKernels};

use crate::threadpool::ThreadPool;

/// A 2-D weight tensor in the mapped file (or one 2-D slice of a 3-D
/// tensor: an expert): `rows` rows of `cols` elements in a ggml block
/// format. Holds no bytes itself; [`QMatrix::bytes`] slices the shared
/// mapping, so every context and guest reads the same pages.
#[derive(Clone, Debug)]
pub struct QMatrix {
    pub name: String,
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
    info: TensorInfo,
    /// Where the matrix starts in the tensor's bytes (0 but for experts).
    offset: usize,
    kernels: &'static TypeKernels,
    /// The first `tile_rows` rows interleaved for the tile kernels (shared by
    /// clones, e.g. a tied output matrix), where the active path has them.
    repacked: Option<Arc<RepackedMatrix>>,
}

impl QMatrix {
    /// The whole tensor `info` as `rows × cols` (the caller checked that
    /// its bytes are exactly that).
    pub(crate) fn new(info: &TensorInfo, rows: usize, cols: usize) -> QMatrix {
        QMatrix::slice(info, info.name.clone(), rows, cols, 0)
    }

    /// `rows × cols` starting `offset` bytes into the tensor `info` (the
    /// caller checked that they lie inside it): one expert of a 3-D tensor.
    pub(crate) fn slice(info: &TensorInfo, name: String, rows: usize, cols: usize, offset: usize) -> QMatrix {
        QMatrix { name, ty: info.ty, rows, cols, info: info.clone(), offset, kernels: kernels_for(info.ty), repacked: None }
    }

    /// Interleaves the weights for the tile kernels when the active kernel
    /// path has them (same results as `vec_dot`, bit for bit; faster).
    pub(crate) fn repack(&mut self, file: &GgufFile, arena: Option<&Arc<WeightArena>>) {
        if gemm::repack_pays_off(self.ty) && self.rows >= TILE_ROWS {
            // Shapes were checked by the loader, so this cannot fail; if it
            // somehow did, `vec_dot` on the mapped rows is still correct.
            // The mapped pages of copied rows are released as the copy
            // proceeds, so the two copies never coexist (peak RSS); they are
            // only read again for embedding lookups (a few rows).
            let (info, offset) = (&self.info, self.offset);
            self.repacked = RepackedMatrix::new_releasing(self.ty, self.rows, self.cols, self.bytes(file), arena, |r| {
                file.release_tensor_range(info, offset + r.start..offset + r.end)
            })
            .ok()
            .map(Arc::new);
        }
    }

    /// Heap bytes of the interleaved copy, if any.
    pub fn repacked_bytes(&self) -> usize {
        self.repacked.as_ref().map_or(0, |r| r.heap_bytes())
    }

    /// The weight bytes, `rows * row_bytes`.
    #[inline]
    pub fn bytes<'a>(&self, file: &'a GgufFile) -> &'a [u8] {
        // In bounds: checked against the tensor when the matrix was made.
        &file.tensor_data(&self.info)[self.offset..self.offset + self.rows * self.row_bytes()]
    }

    /// Bytes of one row.
    pub fn row_bytes(&self) -> usize {
        self.ty.type_size() * self.cols / self.ty.block_size()
    }

    /// Dequantizes row `r` into `out` (`cols` values): embedding lookup.
    pub fn dequantize_row(&self, file: &GgufFile, r: usize, out: &mut [f32]) {
        let rb = self.row_bytes();
        match &self.repacked {
            // From the interleaved copy: the mapped pages were released.
            Some(rp) if r < rp.tile_rows() => {
                let mut row = vec![0u16; rb.div_ceil(2)]; // block alignment
                let row = &mut bytemuck::cast_slice_mut::<u16, u8>(&mut row)[..rb];
                rp.copy_row(r, row);
                (self.kernels.to_float)(row, &mut out[..self.cols]);
            }
            _ => {
                let bytes = &self.bytes(file)[r * rb..(r + 1) * rb];
                (self.kernels.to_float)(bytes, &mut out[..self.cols]);
            }
        }
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
    /// A buffer of `len` bytes already reserved (fallibly).
    pub fn try_with_bytes(len: usize) -> Result<ActBuf, crate::ModelError> {
        Ok(ActBuf { words: crate::alloc::try_zeroed("activation buffers", len.div_ceil(8))? })
    }
    /// Bytes held.
    pub fn capacity_bytes(&self) -> usize {
        self.words.len() * 8
    }
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
// SAFETY: OutPtr is only used inside `matmul_many`, where each thread writes
// a disjoint set of rows of a buffer that outlives the pool job.
unsafe impl Send for OutPtr {}
// SAFETY: as above; no element is written by two threads or read while written.
unsafe impl Sync for OutPtr {}

/// Rows of plain (not interleaved) weights per work item, so threads never
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
    matmul_many(pool, file, x, n, xq, &mut [(w, out)]);
}

/// [`matmul`] for several weight matrices reading the same activations
/// (Q/K/V, gate/up): the activations are quantized once and all the products
/// are one pool job, so decode pays one fork-join for them instead of one per
/// matrix. Each product's output is exactly what `matmul` would write.
pub fn matmul_many(
    pool: &ThreadPool,
    file: &GgufFile,
    x: &[f32],
    n: usize,
    xq: &mut ActBuf,
    products: &mut [(&QMatrix, &mut [f32])],
) {
    let Some((first, _)) = products.first() else { return };
    let (k, dot_ty) = (first.cols, first.kernels.vec_dot_type);
    if products.iter().any(|(w, _)| w.cols != k || w.kernels.vec_dot_type != dot_ty) {
        // Different activation formats (e.g. a Q8_0 V next to Q4_K Q and K,
        // as quantizers mix types): one quantization and one job each.
        for (w, out) in products.iter_mut() {
            matmul_many(pool, file, x, n, xq, &mut [(*w, &mut **out)]);
        }
        return;
    }
    assert_eq!(x.len(), n * k, "matmul {}: activation shape", first.name);
    let act_row = dot_ty.type_size() * k / dot_ty.block_size();
    let act = quantize_activations(pool, dot_ty, x, n, k, xq);
    let plans: Vec<Plan<'_>> = products
        .iter_mut()
        .map(|(w, out)| {
            assert!(out.len() >= n * w.rows, "matmul {}: output shape", w.name);
            let (tiles, first_plain) = match &w.repacked {
                Some(rp) => (rp.tiles(), rp.tile_rows()),
                None => (0, 0),
            };
            // Work items: the 16-row tiles, then the remaining rows in groups
            // of ROW_ALIGN (all rows when nothing is interleaved).
            let items = tiles + (w.rows - first_plain).div_ceil(ROW_ALIGN);
            Plan { w, wbytes: w.bytes(file), out: OutPtr(out.as_mut_ptr()), tiles, first_plain, items }
        })
        .collect();
    let total: usize = plans.iter().map(|p| p.items).sum();
    // Two chunks per thread: long sequential weight streams suit the
    // hardware prefetchers (decode is bandwidth-bound), and a late worker is
    // still covered. Measured on the 2-core VM, 5 alternating runs, Q4_0 tg64
    // 2 threads: 303 t/s with 2 chunks per thread against 251 with 8;
    // prefill unchanged.
    let chunk = pool.chunk_size(total, 2, 1);
    pool.for_each_chunk(total, chunk, |range| {
        let mut base = 0;
        for p in &plans {
            let mine = range.start.max(base)..range.end.min(base + p.items);
            if !mine.is_empty() {
                p.run(act, act_row, n, mine.start - base..mine.end - base);
            }
            base += p.items;
        }
    });
}

/// Quantizes `n` rows of `k` activations to `dot_ty` (threaded for batches).
fn quantize_activations<'a>(
    pool: &ThreadPool,
    dot_ty: GgmlType,
    x: &'a [f32],
    n: usize,
    k: usize,
    xq: &'a mut ActBuf,
) -> &'a [u8] {
    if dot_ty == GgmlType::F32 {
        return bytemuck::cast_slice(x);
    }
    let act_row = dot_ty.type_size() * k / dot_ty.block_size();
    let dst = xq.bytes_mut(act_row * n);
    let from_float = edgewasm_kernels::kernels_for(dot_ty).from_float;
    pool.for_each_row_mut(dst, act_row, |b, row| from_float(&x[b * k..(b + 1) * k], row));
    xq.bytes(act_row * n)
}

/// One weight matrix's share of a [`matmul_many`] job.
struct Plan<'a> {
    w: &'a QMatrix,
    wbytes: &'a [u8],
    out: OutPtr,
    /// Interleaved 16-row tiles, and the first row after them.
    tiles: usize,
    first_plain: usize,
    /// Work items: `tiles` then groups of ROW_ALIGN plain rows.
    items: usize,
}

impl Plan<'_> {
    /// Computes work items `range` (`< self.items`) for all `n` activation
    /// rows.
    fn run(&self, act: &[u8], act_row: usize, n: usize, range: std::ops::Range<usize>) {
        let (w, outp, tiles, rows, k) = (self.w, self.out, self.tiles, self.w.rows, self.w.cols);
        let tile_part = range.start.min(tiles)..range.end.min(tiles);
        if let (Some(rp), false) = (&w.repacked, tile_part.is_empty()) {
            // Activation rows in blocks that stay in L2 while the tiles
            // pass over them, and panels small enough to stay in L2 too.
            let cols = act_block_bytes() / act_row;
            rp.gemm_blocked(tile_part.clone(), act, n, cols, PANEL_FLOATS, |part, c0, nc, panel| {
                // `gemm_blocked` emits only tiles of `tile_part` and rows
                // `c0..c0 + nc` within `0..n` (its contract); the copy's
                // bounds rest on that. Row by row: each output row gets the
                // part's tiles as one contiguous run.
                debug_assert!(c0 + nc <= n && part.start >= tile_part.start && part.end <= tile_part.end);
                for b in 0..nc {
                    for (i, t) in part.clone().enumerate() {
                        let src = &panel[(i * nc + b) * TILE_ROWS..(i * nc + b + 1) * TILE_ROWS];
                        // SAFETY: rows 16t..16t+16 < rows belong to this
                        // chunk only; (c0 + b) * rows + row < n * rows <=
                        // out.len().
                        unsafe {
                            std::ptr::copy_nonoverlapping(src.as_ptr(), outp.0.add((c0 + b) * rows + t * TILE_ROWS), TILE_ROWS)
                        };
                    }
                }
            });
        }
        let groups = range.start.max(tiles) - tiles..range.end.max(tiles) - tiles;
        let first = self.first_plain;
        let plain = (first + groups.start * ROW_ALIGN).min(rows)..(first + groups.end * ROW_ALIGN).min(rows);
        let (wrow, vec_dot) = (w.row_bytes(), w.kernels.vec_dot);
        for r in plain {
            let wr = &self.wbytes[r * wrow..(r + 1) * wrow];
            for b in 0..n {
                let v = vec_dot(k, wr, &act[b * act_row..(b + 1) * act_row]);
                // SAFETY: index b*rows + r < n*rows <= out.len() (asserted in
                // matmul_many); row r belongs to this chunk only.
                unsafe { *outp.0.add(b * rows + r) = v };
            }
        }
    }
}

/// The largest panel (f32s) the tile kernels fill before [`Plan::run`]
/// copies it out: 64 KiB, well inside L2.
const PANEL_FLOATS: usize = 16 << 10;

/// The activation bytes [`Plan::run`] multiplies by every tile before
/// moving on (`EDGEWASM_ACT_BLOCK` overrides it, for measuring).
fn act_block_bytes() -> usize {
    static BYTES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BYTES.get_or_init(|| std::env::var("EDGEWASM_ACT_BLOCK").ok().and_then(|v| v.parse().ok()).unwrap_or(512 << 10))
}
