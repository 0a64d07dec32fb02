//! `KernelPath::Avx2`: AVX2 + FMA + F16C (also the base the AVX-512 path
//! installs on top of).
//!
//! * `blocks`: the legacy block dots (Q4_0..Q8_0), the F32/F16 dots and the
//!   Q8_0/Q8_1 quantize; twins of `crate::blocks` and `crate::float`;
//! * `k_quants`: the K-quant dots and the Q8_K quantize; twins of
//!   `crate::k_quants::scalar`;
//! * `gemm`: the interleaved tile kernels; twins of `crate::gemm::scalar`;
//! * `gemm_k`: the K-quant tile kernels; twins of `crate::gemm::kquants`;
//! * `attn`: the attention helpers; twins of `crate::attn`;
//! * `recurrent`: the short convolution and the delta rule; twins of
//!   `crate::recurrent`.
//!
//! Every `#[target_feature]` function here is reached only through the
//! `safe_fn!` wrappers these modules hand to `crate::arch`, which does so
//! only after AVX2, FMA and F16C were detected.

/// The block loop of a two-pass tile kernel: a tile is two halves of 8 rows
/// (bytes `32h..32h + 32` of each 64-byte vector), and 16 registers hold
/// one half's unpacked weights at a time. `$body` adds block `$b` of half
/// `$half` into `$acc` (that half's `[__m256; NC]`); the sums are stored
/// to `$out` at the end.
///
/// With several activation rows (prefill) the tile is read in two passes,
/// half after half, so the unpacked weights serve every row. With one row
/// (decode) both halves of a block are done before the next block: every
/// line is read once, while the prefetches keep memory busy. The second
/// pass of the other order runs from cache with no prefetch in flight;
/// on one Zen 3 core it streamed Q4_K and Q6_K tiles 13-20% slower.
/// Each row's sums are the same operations in the same order either way.
macro_rules! tile_passes {
    ($nc:ident, $tile:expr, $nb:expr, $tbb:expr, $c0:expr, $out:expr, |$half:ident, $b:ident, $acc:ident| $body:block) => {{
        if $nc == 1 {
            let (mut a0, mut a1) = ([_mm256_setzero_ps(); $nc], [_mm256_setzero_ps(); $nc]);
            for $b in 0..$nb {
                super::super::prefetch_ahead($tile, $b, $tbb, true);
                {
                    let ($half, $acc) = (0usize, &mut a0);
                    $body
                }
                {
                    let ($half, $acc) = (1usize, &mut a1);
                    $body
                }
            }
            store8($out, $c0, 0, a0[0]);
            store8($out, $c0, 1, a1[0]);
        } else {
            for $half in 0..2usize {
                let mut acc = [_mm256_setzero_ps(); $nc];
                for $b in 0..$nb {
                    super::super::prefetch_ahead($tile, $b, $tbb, $half == 0);
                    let $acc = &mut acc;
                    $body
                }
                for (j, a) in acc.into_iter().enumerate() {
                    store8($out, $c0 + j, $half, a);
                }
            }
        }
    }};
}

pub(crate) mod attn;
pub(crate) mod blocks;
pub(crate) mod gemm;
pub(crate) mod gemm_k;
mod k_quants;
pub(crate) mod recurrent;

use crate::{KernelPath, TypeKernels};

/// Replaces the pointers of `k` that have AVX2 twins.
pub(crate) fn install(k: &mut TypeKernels) {
    assert!(KernelPath::Avx2.is_available());
    blocks::install(k);
    k_quants::install(k);
}
