//! Row-interleaved weights for matrix × many-activations products (prefill)
//! and matrix × vector (decode), bit-identical to [`crate::TypeKernels::vec_dot`].
//!
//! `vec_dot` follows ggml's reference order: per block an exact integer sum,
//! one f32 term, added to a running sum in block order. A SIMD `vec_dot`
//! therefore spends most of its time folding 8 or 16 integer lanes into one
//! block sum and adding the terms one by one. [`RepackedMatrix`] stores 16
//! weight rows interleaved four bytes at a time, so one `vpdpbusd` (or
//! `maddubs`) multiplies the same four activation bytes with four bytes of
//! each of 16 rows: the 16 lanes of the integer accumulator *are* the 16
//! rows' block sums, with no horizontal folding, and the f32 terms and the
//! running sums are 16 rows wide too. Every row still sees exactly the
//! reference's operations in the reference's order, so the output is the
//! same f32 bits as `vec_dot` on any path (tested in `tests/gemm.rs`).
//!
//! Layout: tile `t` (rows `16t..16t+16`) is `nb = cols / block` tile-blocks
//! of `tile_block_bytes(ty)` bytes each. For Q4_0, Q4_1 and Q8_0 a
//! tile-block holds, for block `b` of the 16 rows:
//!
//! * the quants, `groups` vectors of 64 bytes; vector `g` holds bytes
//!   `4g..4g+4` of every row's `qs` (row `r` at bytes `4r..4r+4`). For Q4_0,
//!   Q4_1 and IQ4_NL (4 groups) the low nibbles are elements `4g..4g+4` and
//!   the high nibbles elements `16+4g..16+4g+4`; for Q8_0 (8 groups) the
//!   bytes are elements `4g..4g+4`; for Q5_0 (5 groups: its `qh` and `qs`
//!   are 20 contiguous bytes) vector 0 holds every row's 32 fifth bits
//!   (bit `j` for element `j`) and vectors `1 + g` its nibbles as Q4_0's;
//! * `d` of the 16 rows (f16), then for Q4_1 `m` of the 16 rows (f16).
//!
//! The K-quants Q4_K, Q5_K and Q6_K, and IQ4_XS (256-element blocks, Q8_K activations) are
//! laid out as described in `kquants.rs`.
//!
//! The portable tile kernels (the references) are in `scalar.rs`; their SIMD
//! twins in `crate::arch::<arch>::<isa>::gemm`.
//!
//! Rows past the last whole tile stay in the original layout and go through
//! `vec_dot` (the caller's job; see [`RepackedMatrix::tile_rows`]).

use std::ops::{Deref, DerefMut, Range};
use std::sync::{Arc, OnceLock};

use half::f16;

use crate::blocks::{BlockQ4_0, BlockQ4_1, BlockQ8_0, QK};
use crate::k_quants::blocks::QK_K;
use crate::{active_path, AlignedBuf, GgmlType, KernelPath};

mod arena;
pub(crate) mod kquants;
mod scalar;

pub use arena::{ArenaSlice, WeightArena};

/// Rows per interleaved tile.
pub const TILE_ROWS: usize = 16;

/// `tile(qs, nb, act, n, out)`: `qs` is one tile (`nb` tile-blocks), `act`
/// `n` activation rows of `nb` blocks of the weight's `vec_dot_type`;
/// writes `out[c * 16 + r]` for `c < n`, `r < 16`.
pub(crate) type TileFn = fn(tile: &[u8], nb: usize, act: &[u8], n: usize, out: &mut [f32]);

/// What a Q8_0 tile kernel needs of an activation block besides its quants,
/// worked out once per block of activation rows (and thread) instead of
/// once per tile: the scale as f32
/// and `-128 × Σ qs` (the correction of the kernels that bias the weights
/// by 128 to use `vpdpbusd`; negative, so a kernel can start its sum
/// there instead of subtracting it at the end).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub(crate) struct Q8Prep {
    pub(crate) d: f32,
    pub(crate) neg_bias: i32,
}

/// A [`TileFn`] that also takes the [`Q8Prep`] of every activation block
/// (`prep[c * nb + b]` for block `b` of column `c`).
pub(crate) type PrepTileFn = fn(tile: &[u8], nb: usize, act: &[u8], prep: &[Q8Prep], n: usize, out: &mut [f32]);

/// The tile kernel of a matrix on a path.
#[derive(Clone, Copy)]
enum Kernel {
    Plain(TileFn),
    Prepared(PrepTileFn),
}

/// [`Q8Prep`] of the Q8_0 blocks `act`, into `prep` (replaced).
fn prepare_q8_0(act: &[u8], prep: &mut Vec<Q8Prep>) {
    let blocks: &[BlockQ8_0] = bytemuck::cast_slice(act);
    prep.clear();
    prep.extend(blocks.iter().map(|b| Q8Prep { d: b.d.to_f32(), neg_bias: -128 * b.qs.iter().map(|&q| q as i32).sum::<i32>() }));
}

std::thread_local! {
    /// Per-thread [`Q8Prep`] buffer of [`RepackedMatrix::gemm_blocked`].
    static PREP: std::cell::RefCell<Vec<Q8Prep>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Per-thread output panel of [`RepackedMatrix::gemm_blocked`].
    static PANEL: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The weight types with an interleaved layout.
pub fn supports(ty: GgmlType) -> bool {
    matches!(
        ty,
        GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q8_0
            | GgmlType::IQ4_NL
            | GgmlType::Q4_K
            | GgmlType::Q5_K
            | GgmlType::Q6_K
            | GgmlType::IQ4_XS
    )
}

/// Elements per block of a supported type.
const fn block_elems(ty: GgmlType) -> usize {
    match ty {
        GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K | GgmlType::IQ4_XS => QK_K,
        _ => QK,
    }
}

/// Bytes of the quants of one tile-block.
pub(crate) const fn quant_bytes(ty: GgmlType) -> usize {
    match ty {
        GgmlType::Q8_0 => 8 * 64,
        // The qh vector, then the 4 qs vectors.
        GgmlType::Q5_0 => 5 * 64,
        _ => 4 * 64,
    }
}

/// Bytes of one tile-block (16 rows × one block), the same as 16 blocks.
pub const fn tile_block_bytes(ty: GgmlType) -> usize {
    match ty {
        GgmlType::Q4_K => kquants::Q4K_TBB,
        GgmlType::Q5_K => kquants::Q5K_TBB,
        GgmlType::Q6_K => kquants::Q6K_TBB,
        GgmlType::IQ4_XS => kquants::IQ4XS_TBB,
        GgmlType::Q4_1 => quant_bytes(ty) + 2 * TILE_ROWS * 2,
        _ => quant_bytes(ty) + TILE_ROWS * 2,
    }
}

const _: () = assert!(tile_block_bytes(GgmlType::Q4_0) == TILE_ROWS * size_of::<BlockQ4_0>());
const _: () = assert!(tile_block_bytes(GgmlType::Q4_1) == TILE_ROWS * size_of::<BlockQ4_1>());
const _: () = assert!(tile_block_bytes(GgmlType::Q8_0) == TILE_ROWS * size_of::<BlockQ8_0>());
const _: () = assert!(tile_block_bytes(GgmlType::IQ4_NL) == TILE_ROWS * size_of::<crate::iq4::BlockIQ4_NL>());
const _: () = assert!(tile_block_bytes(GgmlType::Q5_0) == TILE_ROWS * size_of::<crate::blocks::BlockQ5_0>());

/// A weight matrix (its first `tiles * 16` rows) in the interleaved layout.
pub struct RepackedMatrix {
    ty: GgmlType,
    rows: usize,
    cols: usize,
    tiles: usize,
    data: Storage,
}

/// Where a [`RepackedMatrix`] keeps its bytes.
enum Storage {
    Heap(AlignedBuf),
    /// In the model's huge-page arena (see [`WeightArena`]).
    Arena(ArenaSlice),
}

impl Deref for Storage {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Storage::Heap(b) => b,
            Storage::Arena(s) => s,
        }
    }
}

impl DerefMut for Storage {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            Storage::Heap(b) => b,
            Storage::Arena(s) => s,
        }
    }
}

impl std::fmt::Debug for RepackedMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepackedMatrix")
            .field("ty", &self.ty)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("tiles", &self.tiles)
            .finish()
    }
}

/// Why a matrix cannot be repacked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RepackError {
    #[error("no interleaved layout for {0}")]
    Unsupported(GgmlType),
    #[error("{cols} columns are not whole blocks of {ty}")]
    Columns { ty: GgmlType, cols: usize },
    #[error("{got} bytes for {rows} rows of {cols} {ty} values (expected {expected})")]
    Length { ty: GgmlType, rows: usize, cols: usize, got: usize, expected: usize },
}

impl RepackedMatrix {
    /// Interleaves the whole tiles of a `rows × cols` matrix of `ty` held in
    /// `bytes` (row-major ggml blocks).
    pub fn new(ty: GgmlType, rows: usize, cols: usize, bytes: &[u8]) -> Result<Self, RepackError> {
        Self::new_releasing(ty, rows, cols, bytes, None, |_| {})
    }

    /// Bytes the interleaved copy of a `rows × cols` matrix of `ty` takes (0
    /// when it has no interleaved layout): for sizing a [`WeightArena`].
    pub fn bytes_for(ty: GgmlType, rows: usize, cols: usize) -> usize {
        if !supports(ty) || cols % block_elems(ty) != 0 {
            return 0;
        }
        (rows / TILE_ROWS).saturating_mul(cols / block_elems(ty)).saturating_mul(tile_block_bytes(ty))
    }

    /// [`Self::new`], with the copy in `arena` when there is room (the heap
    /// otherwise), calling `done(range)` with each range of `bytes` that has
    /// been copied (about every 1 MiB, in order), so the caller can release
    /// source pages as it goes instead of holding both copies, and at the
    /// end once more with everything copied. (Where the page cache holds
    /// the file in large folios, reading a page maps its whole folio again,
    /// so ranges released early came back while their neighbours were read:
    /// 50-60 MB of a 1.3 GB model stayed mapped next to its copy.)
    pub fn new_releasing(
        ty: GgmlType,
        rows: usize,
        cols: usize,
        bytes: &[u8],
        arena: Option<&Arc<WeightArena>>,
        mut done: impl FnMut(Range<usize>),
    ) -> Result<Self, RepackError> {
        if !supports(ty) {
            return Err(RepackError::Unsupported(ty));
        }
        if cols == 0 || cols % block_elems(ty) != 0 {
            return Err(RepackError::Columns { ty, cols });
        }
        let nb = cols / block_elems(ty);
        let row_bytes = nb * ty.type_size();
        let expected = rows.checked_mul(row_bytes).unwrap_or(usize::MAX);
        if bytes.len() != expected {
            return Err(RepackError::Length { ty, rows, cols, got: bytes.len(), expected });
        }
        let tiles = rows / TILE_ROWS;
        let tbb = tile_block_bytes(ty);
        let len = tiles * nb * tbb;
        let mut data = match arena.and_then(|a| a.alloc(len)) {
            Some(slice) => Storage::Arena(slice),
            None => Storage::Heap(AlignedBuf::zeroed(len)),
        };
        let tile_src = TILE_ROWS * row_bytes;
        let tiles_per_release = (1usize << 20).div_ceil(tile_src.max(1)).max(1);
        let mut released = 0;
        for t in 0..tiles {
            for b in 0..nb {
                let dst = &mut data[(t * nb + b) * tbb..(t * nb + b + 1) * tbb];
                let src = |r: usize| &bytes[(t * TILE_ROWS + r) * row_bytes + b * ty.type_size()..][..ty.type_size()];
                let src: [&[u8]; TILE_ROWS] = core::array::from_fn(src);
                match ty {
                    GgmlType::Q4_K => kquants::pack_q4_k(&src, dst),
                    GgmlType::Q5_K => kquants::pack_q5_k(&src, dst),
                    GgmlType::Q6_K => kquants::pack_q6_k(&src, dst),
                    GgmlType::IQ4_XS => kquants::pack_iq4_xs(&src, dst),
                    _ => pack_block32(ty, &src, dst),
                }
            }
            if (t + 1) % tiles_per_release == 0 || t + 1 == tiles {
                done(released..(t + 1) * tile_src);
                released = (t + 1) * tile_src;
            }
        }
        if tiles > 0 {
            done(0..tiles * tile_src);
        }
        Ok(RepackedMatrix { ty, rows, cols, tiles, data })
    }

    pub fn ty(&self) -> GgmlType {
        self.ty
    }
    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Whole 16-row tiles.
    pub fn tiles(&self) -> usize {
        self.tiles
    }
    /// Rows held here (`tiles * 16`); the rest need `vec_dot`.
    pub fn tile_rows(&self) -> usize {
        self.tiles * TILE_ROWS
    }
    /// Bytes of the interleaved copy (in the heap or an arena).
    pub fn heap_bytes(&self) -> usize {
        self.data.len()
    }

    /// Writes row `r` (`< tile_rows()`) back in the original block layout
    /// into `out` (exactly one row's bytes): the inverse of the interleave,
    /// so lookups (embeddings) need not touch the original weights.
    pub fn copy_row(&self, r: usize, out: &mut [u8]) {
        let ty = self.ty;
        let nb = self.cols / block_elems(ty);
        assert!(r < self.tile_rows(), "copy_row: row {r} of {}", self.tile_rows());
        assert_eq!(out.len(), nb * ty.type_size(), "copy_row: output length");
        let (tile, lane) = (self.tile(r / TILE_ROWS), r % TILE_ROWS);
        let tbb = tile_block_bytes(ty);
        for (b, dst) in out.chunks_exact_mut(ty.type_size()).enumerate() {
            let tb = &tile[b * tbb..(b + 1) * tbb];
            match ty {
                GgmlType::Q4_K => kquants::unpack_q4_k(tb, lane, dst),
                GgmlType::Q5_K => kquants::unpack_q5_k(tb, lane, dst),
                GgmlType::Q6_K => kquants::unpack_q6_k(tb, lane, dst),
                GgmlType::IQ4_XS => kquants::unpack_iq4_xs(tb, lane, dst),
                _ => unpack_block32(ty, tb, lane, dst),
            }
        }
    }

    fn tile(&self, t: usize) -> &[u8] {
        let len = self.cols / block_elems(self.ty) * tile_block_bytes(self.ty);
        &self.data[t * len..(t + 1) * len]
    }

    /// `out[c * 16 + r] = dot(row 16t + r, act row c)` for the tiles in
    /// `tiles` (`out` holds `tiles.len()` consecutive `n × 16` panels), on the
    /// active path. `act` is `n` rows in the weight's `vec_dot_type`.
    pub fn gemm(&self, tiles: Range<usize>, act: &[u8], n: usize, out: &mut [f32]) {
        self.gemm_with(tile_fn(self.ty, Some(active_path())), tiles, act, n, out)
    }

    /// [`Self::gemm`] on a given path (`None` for the portable scalar code);
    /// `false` if the CPU cannot run `path`.
    pub fn gemm_on(
        &self,
        path: Option<KernelPath>,
        tiles: Range<usize>,
        act: &[u8],
        n: usize,
        out: &mut [f32],
    ) -> bool {
        if path.is_some_and(|p| !p.is_available()) {
            return false;
        }
        self.gemm_with(tile_fn(self.ty, path), tiles, act, n, out);
        true
    }

    fn gemm_with(&self, k: Kernel, tiles: Range<usize>, act: &[u8], n: usize, out: &mut [f32]) {
        self.gemm_args(&tiles, act, n);
        assert!(out.len() >= tiles.len() * n * TILE_ROWS, "gemm: output length");
        let mut prep = Vec::new();
        if let Kernel::Prepared(_) = k {
            prepare_q8_0(act, &mut prep);
        }
        self.gemm_tiles(k, tiles, act, &prep, n, out);
    }

    /// Checks what every tile kernel relies on (panics on a caller's bug).
    fn gemm_args(&self, tiles: &Range<usize>, act: &[u8], n: usize) {
        let nb = self.cols / block_elems(self.ty);
        let dot_ty = vec_dot_type(self.ty);
        assert!(tiles.end <= self.tiles, "gemm: tiles {tiles:?} of {}", self.tiles);
        assert_eq!(act.len(), n * nb * dot_ty.type_size(), "gemm: activation bytes");
        // f16 scales (Q8_0, Q8_1) or an f32 one (Q8_K) lead each block.
        let align = if dot_ty == GgmlType::Q8_K { 4 } else { 2 };
        assert_eq!(act.as_ptr() as usize % align, 0, "gemm: activation alignment");
    }

    /// The kernel over `tiles`, into consecutive panels of `out`; `prep`
    /// is `act`'s [`Q8Prep`] when `k` takes it.
    fn gemm_tiles(&self, k: Kernel, tiles: Range<usize>, act: &[u8], prep: &[Q8Prep], n: usize, out: &mut [f32]) {
        let nb = self.cols / block_elems(self.ty);
        for (i, t) in tiles.enumerate() {
            let out = &mut out[i * n * TILE_ROWS..(i + 1) * n * TILE_ROWS];
            match k {
                Kernel::Plain(f) => f(self.tile(t), nb, act, n, out),
                Kernel::Prepared(f) => f(self.tile(t), nb, act, prep, n, out),
            }
        }
    }

    /// [`Self::gemm`] blocked for caches, on the active path: the `n`
    /// activation rows in blocks of `cols`, each multiplied by every tile
    /// of `tiles` (so a block stays in L2 while the tiles pass), the
    /// tiles a few at a time so that their panel (`panel_floats` f32s at
    /// most, or one tile's if that is more) stays in L2 too. Used for
    /// decode as well (one block of one row). `emit(part, c0, nc, panel)` receives each
    /// panel: tiles `part` against activation rows `c0..c0 + nc`,
    /// `panel[(i * nc + c) * 16 + r]` for tile `part.start + i`.
    pub fn gemm_blocked(
        &self,
        tiles: Range<usize>,
        act: &[u8],
        n: usize,
        cols: usize,
        panel_floats: usize,
        mut emit: impl FnMut(Range<usize>, usize, usize, &[f32]),
    ) {
        self.gemm_args(&tiles, act, n);
        if tiles.is_empty() || n == 0 {
            return;
        }
        let k = tile_fn(self.ty, Some(active_path()));
        let cols = cols.clamp(1, n);
        let row_bytes = act.len() / n;
        let step = (panel_floats / (cols * TILE_ROWS)).max(1);
        PANEL.with_borrow_mut(|panel| {
            PREP.with_borrow_mut(|prep| {
                panel.resize(step.min(tiles.len()) * cols * TILE_ROWS, 0.0);
                for c0 in (0..n).step_by(cols) {
                    let nc = cols.min(n - c0);
                    let act = &act[c0 * row_bytes..(c0 + nc) * row_bytes];
                    if let Kernel::Prepared(_) = k {
                        prepare_q8_0(act, prep);
                    }
                    for t0 in tiles.clone().step_by(step) {
                        let part = t0..(t0 + step).min(tiles.end);
                        let panel = &mut panel[..part.len() * nc * TILE_ROWS];
                        self.gemm_tiles(k, part.clone(), act, prep, nc, panel);
                        emit(part, c0, nc, panel);
                    }
                }
            })
        });
    }
}

/// Interleaves one block of each of 16 Q4_0, Q4_1 or Q8_0 rows.
fn pack_block32(ty: GgmlType, src: &[&[u8]; TILE_ROWS], dst: &mut [u8]) {
    let groups = quant_bytes(ty) / 64;
    let qs_off = ty.type_size() - 4 * groups; // qs are each block's tail
    let sc = quant_bytes(ty);
    for (r, src) in src.iter().enumerate() {
        for g in 0..groups {
            dst[g * 64 + r * 4..g * 64 + r * 4 + 4].copy_from_slice(&src[qs_off + 4 * g..qs_off + 4 * g + 4]);
        }
        // d (and m) are the block's leading f16s.
        dst[sc + 2 * r..sc + 2 * r + 2].copy_from_slice(&src[0..2]);
        if ty == GgmlType::Q4_1 {
            let m = sc + 2 * TILE_ROWS;
            dst[m + 2 * r..m + 2 * r + 2].copy_from_slice(&src[2..4]);
        }
    }
}

/// The inverse of [`pack_block32`] for row `lane`: its original block.
fn unpack_block32(ty: GgmlType, tb: &[u8], lane: usize, dst: &mut [u8]) {
    let groups = quant_bytes(ty) / 64;
    let qs_off = ty.type_size() - 4 * groups;
    let sc = quant_bytes(ty);
    for g in 0..groups {
        dst[qs_off + 4 * g..qs_off + 4 * g + 4].copy_from_slice(&tb[g * 64 + lane * 4..g * 64 + lane * 4 + 4]);
    }
    dst[0..2].copy_from_slice(&tb[sc + 2 * lane..sc + 2 * lane + 2]);
    if ty == GgmlType::Q4_1 {
        let m = sc + 2 * TILE_ROWS;
        dst[2..4].copy_from_slice(&tb[m + 2 * lane..m + 2 * lane + 2]);
    }
}

fn vec_dot_type(ty: GgmlType) -> GgmlType {
    match ty {
        GgmlType::Q4_1 => GgmlType::Q8_1,
        GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K | GgmlType::IQ4_XS => GgmlType::Q8_K,
        _ => GgmlType::Q8_0,
    }
}

/// Whether matrices of `ty` should be interleaved: the active path has a
/// SIMD tile kernel for it (otherwise `vec_dot` on the original rows is as
/// fast, and repacking would only cost memory) and `EDGEWASM_NO_REPACK` is
/// not set.
pub fn repack_pays_off(ty: GgmlType) -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    let enabled = *ENABLED.get_or_init(|| std::env::var_os("EDGEWASM_NO_REPACK").is_none());
    let path = active_path();
    enabled
        && supports(ty)
        && path != KernelPath::Scalar
        && (crate::arch::tile_fn(ty, path).is_some() || crate::arch::prep_tile_fn(ty, path).is_some())
}

/// The tile kernel of `ty` on `path` (`None`: scalar).
fn tile_fn(ty: GgmlType, path: Option<KernelPath>) -> Kernel {
    if let Some(f) = path.and_then(|p| crate::arch::prep_tile_fn(ty, p)) {
        return Kernel::Prepared(f);
    }
    if let Some(f) = path.and_then(|p| crate::arch::tile_fn(ty, p)) {
        return Kernel::Plain(f);
    }
    Kernel::Plain(match ty {
        GgmlType::Q4_0 => scalar::tile_q4_0,
        GgmlType::Q4_1 => scalar::tile_q4_1,
        GgmlType::Q8_0 => scalar::tile_q8_0,
        GgmlType::Q4_K => kquants::tile_q4_k,
        GgmlType::Q5_K => kquants::tile_q5_k,
        GgmlType::Q6_K => kquants::tile_q6_k,
        GgmlType::IQ4_NL => scalar::tile_iq4_nl,
        GgmlType::Q5_0 => scalar::tile_q5_0,
        GgmlType::IQ4_XS => kquants::tile_iq4_xs,
        _ => unreachable!("RepackedMatrix only holds supported types"),
    })
}

/// Checks the arguments every tile kernel relies on (`tile` is `nb`
/// tile-blocks of `ty`, `act` exactly `n` rows of `nb` blocks `Y`, `out`
/// room for `n` rows of 16) and returns the activation blocks.
#[track_caller]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
pub(crate) fn tile_args<'a, Y: bytemuck::Pod>(
    ty: GgmlType,
    tile: &[u8],
    nb: usize,
    act: &'a [u8],
    n: usize,
    out: &[f32],
) -> &'a [Y] {
    assert_eq!(tile.len(), nb * tile_block_bytes(ty));
    let act: &[Y] = bytemuck::cast_slice(act);
    assert_eq!(act.len(), n * nb);
    assert!(out.len() >= n * TILE_ROWS);
    act
}

/// The activation's 32 quants as eight 4-byte groups (one broadcast per
/// quant vector of a tile-block).
#[inline(always)]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), allow(dead_code))]
pub(crate) fn groups(qs: &[i8; 32]) -> [i32; 8] {
    bytemuck::cast(*qs)
}

/// The 16 `d` (or `m`) values of a tile-block starting at byte `off`.
#[inline]
fn f16s(tb: &[u8], off: usize) -> &[f16] {
    bytemuck::cast_slice(&tb[off..off + 2 * TILE_ROWS])
}
