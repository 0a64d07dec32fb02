//! Every piece of per-ISA code, one directory per kernel path:
//!
//! ```text
//! arch/x86_64/avx2/    blocks.rs  k_quants.rs  gemm.rs  gemm_k.rs  attn.rs  recurrent.rs  (KernelPath::Avx2)
//! arch/x86_64/avx512/  blocks.rs  gemm.rs  gemm_k.rs  recurrent.rs            (KernelPath::Avx512, on top of avx2)
//! arch/aarch64/neon/   blocks.rs  k_quants.rs  gemm.rs  gemm_k.rs  recurrent.rs     (KernelPath::Neon and NeonDotprod)
//! ```
//!
//! Each file is the SIMD twin of one scalar reference, named in its header:
//! `blocks.rs` of `crate::blocks` and `crate::float`, `k_quants.rs` of
//! `crate::k_quants::scalar`, `gemm.rs` of `crate::gemm::scalar`, `gemm_k.rs` of
//! `crate::gemm::kquants`, `attn.rs`
//! of `crate::attn`, `recurrent.rs` of `crate::recurrent`. A twin returns the reference's exact bits: it reduces
//! in the reference's order.
//!
//! An ISA module may use the crate's scalar code and the modules of ISAs
//! whose features its own imply (AVX-512 reuses AVX2 helpers); nothing
//! outside `arch` calls into an ISA module except through the functions of
//! this file, which hand out function pointers only for a path that
//! [`KernelPath::is_available`] confirmed at run time (the choice is made
//! once and cached by the callers, see `crate::dispatch`).
//!
//! The NEON dotprod path has no directory of its own: its kernels are the
//! NEON sources built a second time with the `sdot` primitive (each NEON
//! file generates a `plain` and an `sdot` module). Likewise AVX-512 builds
//! its quantized dots twice, with and without VNNI.

use crate::gemm::TileFn;
use crate::{GgmlType, KernelPath, TypeKernels};

/// The one door from safe code into `#[target_feature]` code. Declares safe
/// functions whose bodies run the given `checks`, then one `unsafe` block
/// that calls kernels compiled for a set of CPU features:
///
/// ```ignore
/// safe_fn! {
///     requires KernelPath::Avx2.is_available();
///     fn dot_q4_0(n: usize, x: &[u8], y: &[u8]) -> f32 {
///         checks { let (x, y) = dot_args::<BlockQ4_0>(n, x, y); }
///         unsafe { vec_dot_q4_0_q8_0(x, y) }
///     }
/// }
/// ```
///
/// The safety argument is the same for every use, so it is written once,
/// here. (1) The features: a function declared with `safe_fn!` is private
/// to its ISA module and handed out only by that module's `install`,
/// `tile_fn`, `prep_tile_fn`, `attn` or `recurrent` table, which this file calls only for a path whose
/// CPU features were detected at run time; `requires` names that run-time
/// check (it is re-asserted in debug builds). (2) The memory: the checks
/// establish every length and alignment fact the kernel relies on (the
/// crate's `*_args` functions panic before any `unsafe` code otherwise),
/// and the kernels touch memory only through the references they are given
/// (each raw load or store inside them has its own `// SAFETY:` comment).
macro_rules! safe_fn {
    (requires $detected:expr; $(
        $(#[$meta:meta])*
        $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? {
            checks { $($check:tt)* }
            unsafe { $($call:tt)* }
        }
    )*) => {$(
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            debug_assert!($detected, concat!(stringify!($name), ": CPU features not detected"));
            $($check)*
            // SAFETY: see `safe_fn!` in `crate::arch`: handed out only after
            // `$detected` held at run time; the checks above established
            // the slice contract of the call.
            unsafe { $($call)* }
        }
    )*};
}

/// Runs a tile kernel `$kernel::<NC>` over the `n` activation columns in
/// groups of four (the last group may be shorter). Inside `safe_fn!`,
/// after `crate::gemm::tile_args` checked the shapes; the kernels index
/// only blocks `< nb` of columns `c0..c0 + NC`.
macro_rules! by_columns {
    ($kernel:ident($tile:expr, $nb:expr, $act:expr, $n:expr, $out:expr)) => {{
        let mut c0 = 0;
        while c0 < $n {
            match $n - c0 {
                1 => $kernel::<1>($tile, $nb, $act, c0, $out),
                2 => $kernel::<2>($tile, $nb, $act, c0, $out),
                3 => $kernel::<3>($tile, $nb, $act, c0, $out),
                _ => $kernel::<4>($tile, $nb, $act, c0, $out),
            }
            c0 += 4;
        }
    }};
}

/// [`by_columns!`] in groups of up to eight, for kernels with 32 vector
/// registers (AVX-512): `$kernel::<NC>($($arg),*, c0, out)`, the arguments
/// before `;` being the kernel's own (`tile, nb, act`, and `prep` for some).
///
/// Why eight and not four: `vpdpbusd` and the other vector operations
/// share the same two ports on the AVX-512 cores measured (see
/// docs/PERFORMANCE.md), so a kernel's speed is its count of vector
/// operations per multiply-add, and the weights' unpacking is spread over
/// twice the rows. (Taking a tile a chunk of blocks at a time, so the
/// chunk stays in L1 while the groups' activations stream past, measured
/// slower: at the 1B shape the time is in the operations, not in L2.)
#[cfg(target_arch = "x86_64")]
macro_rules! by_columns8 {
    ($kernel:ident($($arg:expr),+; $n:expr, $out:expr)) => {{
        let mut c0 = 0;
        while c0 < $n {
            match $n - c0 {
                1 => $kernel::<1>($($arg),+, c0, $out),
                2 => $kernel::<2>($($arg),+, c0, $out),
                3 => $kernel::<3>($($arg),+, c0, $out),
                4 => $kernel::<4>($($arg),+, c0, $out),
                5 => $kernel::<5>($($arg),+, c0, $out),
                6 => $kernel::<6>($($arg),+, c0, $out),
                7 => $kernel::<7>($($arg),+, c0, $out),
                _ => $kernel::<8>($($arg),+, c0, $out),
            }
            c0 += 8;
        }
    }};
}

#[cfg(target_arch = "aarch64")]
pub(crate) mod aarch64;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;

/// Installs the SIMD kernels of `path` (which must be available) into `k`,
/// a table of scalar references of any type (block, K-quant or float).
pub(crate) fn install(k: &mut TypeKernels, path: KernelPath) {
    assert!(path.is_available(), "kernel path {path} is not available");
    match path {
        KernelPath::Scalar => {}
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 => x86_64::avx2::install(k),
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => {
            x86_64::avx2::install(k);
            x86_64::avx512::install(k);
        }
        #[cfg(target_arch = "aarch64")]
        KernelPath::Neon => aarch64::neon::install(k, false),
        #[cfg(target_arch = "aarch64")]
        KernelPath::NeonDotprod => aarch64::neon::install(k, true),
        #[allow(unreachable_patterns)]
        _ => unreachable!("{path} reported available on the wrong architecture"),
    }
    k.path = path;
}

/// The SIMD tile kernel of `ty` on `path` (available) that takes
/// prepared activations, if there is one (it then replaces [`tile_fn`]'s).
pub(crate) fn prep_tile_fn(ty: GgmlType, path: KernelPath) -> Option<crate::gemm::PrepTileFn> {
    assert!(path.is_available(), "kernel path {path} is not available");
    match path {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 if crate::dispatch::has_avx512vnni() => x86_64::avx512::gemm::prep_tile_fn(ty),
        _ => {
            let _ = ty;
            None
        }
    }
}

/// The SIMD tile kernel of `ty` on `path` (available), if there is one
/// (`None` where [`prep_tile_fn`] has the path's kernel instead).
pub(crate) fn tile_fn(ty: GgmlType, path: KernelPath) -> Option<TileFn> {
    assert!(path.is_available(), "kernel path {path} is not available");
    match path {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 if crate::dispatch::has_avx512vnni() => {
            x86_64::avx512::gemm::tile_fn(ty).or_else(|| x86_64::avx512::gemm_k::tile_fn(ty))
        }
        // AVX-512 without VNNI: the AVX2 tiles.
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 | KernelPath::Avx512 => {
            x86_64::avx2::gemm::tile_fn(ty).or_else(|| x86_64::avx2::gemm_k::tile_fn(ty))
        }
        #[cfg(target_arch = "aarch64")]
        KernelPath::Neon => aarch64::neon::gemm::tile_fn(ty, false).or_else(|| aarch64::neon::gemm_k::tile_fn(ty, false)),
        #[cfg(target_arch = "aarch64")]
        KernelPath::NeonDotprod => {
            aarch64::neon::gemm::tile_fn(ty, true).or_else(|| aarch64::neon::gemm_k::tile_fn(ty, true))
        }
        _ => {
            let _ = ty;
            None
        }
    }
}

/// The SIMD attention helpers of `path` (available), if it has its own.
pub(crate) fn attn(path: KernelPath) -> Option<crate::attn::AttnKernels> {
    assert!(path.is_available(), "kernel path {path} is not available");
    match path {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 => Some(x86_64::avx2::attn::kernels(path)),
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => Some(x86_64::avx512::attn::kernels()),
        // aarch64's baseline already has NEON: the scalar build is the NEON
        // one.
        _ => None,
    }
}

/// The SIMD recurrent kernels of `path` (available), if it has its own.
pub(crate) fn recurrent(path: KernelPath) -> Option<crate::recurrent::RecurrentKernels> {
    assert!(path.is_available(), "kernel path {path} is not available");
    match path {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 => Some(x86_64::avx2::recurrent::kernels()),
        // Eight delta-rule state rows at a time, with 32 registers.
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => Some(x86_64::avx512::recurrent::kernels()),
        #[cfg(target_arch = "aarch64")]
        KernelPath::Neon | KernelPath::NeonDotprod => Some(aarch64::neon::recurrent::kernels(path)),
        _ => None,
    }
}

/// The shared runner of the per-ISA unit tests: the builds a path table
/// never holds (AVX-512 without VNNI on a VNNI CPU, NEON without dotprod on
/// a dotprod CPU) are checked here, through their `install`.
#[cfg(test)]
pub(crate) mod tests {
    use crate::blocks::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0};
    use crate::erased::scalar_kernels;
    use crate::{BlockFormat, KernelPath, TypeKernels};

    fn rows(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed | 1;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let u = (s >> 8) as f32 / 16_777_216.0 - 0.5;
                u * (1 + (i / 32) % 7) as f32
            })
            .collect()
    }

    fn check<B: BlockFormat>(build: &str, install: fn(&mut TypeKernels)) {
        let r = scalar_kernels::<B>(KernelPath::Scalar);
        let rd = scalar_kernels::<B::Dot>(KernelPath::Scalar);
        for nb in [1usize, 2, 3, 4, 5, 7, 18, 48] {
            let n = nb * 32;
            let mut x = vec![0u8; nb * size_of::<B>()];
            let mut y = vec![0u8; nb * <B::Dot as BlockFormat>::TYPE.type_size()];
            (r.from_float)(&rows(n, nb as u32), &mut x);
            (rd.from_float)(&rows(n, 77 + nb as u32), &mut y);
            let want = (r.vec_dot)(n, &x, &y);
            let mut k = r;
            install(&mut k);
            assert!(
                k.vec_dot as usize != r.vec_dot as usize,
                "{} {build}: install did not replace vec_dot",
                B::TYPE
            );
            let got = (k.vec_dot)(n, &x, &y);
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "{} {build} nb={nb}: {got:e} vs {want:e}",
                B::TYPE
            );
        }
    }

    /// The quantized block dots that `install` (one build of one ISA, which
    /// this CPU must support) puts into a table, against the scalar
    /// reference, bit for bit.
    pub(crate) fn quantized_dots_match_scalar(build: &str, install: fn(&mut TypeKernels)) {
        check::<BlockQ4_0>(build, install);
        check::<BlockQ4_1>(build, install);
        check::<BlockQ5_0>(build, install);
        check::<BlockQ5_1>(build, install);
        check::<BlockQ8_0>(build, install);
    }
}
