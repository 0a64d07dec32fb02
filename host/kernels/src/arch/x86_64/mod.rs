//! x86_64: the AVX2 path (AVX2 + FMA + F16C) and the AVX-512 path, which
//! installs its own kernels on top of AVX2's and reuses AVX2 helpers.

pub(crate) mod avx2;
pub(crate) mod avx512;

/// How far ahead of the block being multiplied the tile kernels prefetch.
///
/// Decode streams every weight once, so its tile kernels wait on memory.
/// On Zen 4 the hardware prefetchers alone kept a single thread at about a
/// third of its plain read bandwidth: streaming a 128k x 2048 Q4_K matrix
/// (150 MB, one activation row, `cargo bench --bench gemm matvec_stream`)
/// ran at 9.9 GiB/s, against 30.8 GB/s for a plain sum of the same kind of
/// huge-page memory. Asking for the lines PREFETCH_BYTES ahead into L2 (T1)
/// took it to 24-25 GiB/s. Into L1 (T0) or non-temporal it did not help:
/// the L1's miss buffers fill before the lines arrive.
pub(crate) const PREFETCH_BYTES: usize = 32 << 10;

/// Prefetches into L2 the `tbb` bytes that lie [`PREFETCH_BYTES`] after
/// block `b` of `tbb`-byte tile-blocks of `tile` (when `on`: AVX2 kernels
/// read each tile twice, one 8-row half at a time, and prefetch in the
/// first pass only).
///
/// The range may run past `tile`'s end, into the next tile of the same
/// weight buffer (what the next call multiplies) or past the buffer: a
/// prefetch is a hint that never faults, so any address is allowed.
#[inline(always)]
pub(crate) fn prefetch_ahead(tile: &[u8], b: usize, tbb: usize, on: bool) {
    if !on {
        return;
    }
    let start = tile.as_ptr().wrapping_add(b * tbb + PREFETCH_BYTES);
    let mut line = 0;
    // Not unrolled: one prefetch per loop iteration. The unrolled form (the
    // block's 37-53 prefetches back to back) decoded the 1B Q4_K_M model at
    // 18.4 t/s on one thread, this loop at 23 (4 interleaved rounds); the
    // same prefetches spread through the block's computation gave 21.3.
    let tbb = core::hint::black_box(tbb);
    while line < tbb {
        // SAFETY: `_mm_prefetch` performs no architectural memory access
        // and cannot fault, whatever the address; SSE is part of x86_64.
        unsafe { core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T1 }>(start.wrapping_add(line).cast()) };
        line += 64;
    }
}
