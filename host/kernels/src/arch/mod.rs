//! SIMD twins of the reference kernels. Each path module exposes an
//! `install` that replaces pointers in a scalar [`TypeKernels`] with its own;
//! the functions it installs are private, so they are reachable only through
//! `install`, which runs only after the path's CPU features were detected.

use crate::{KernelPath, TypeKernels};

#[cfg(target_arch = "aarch64")]
pub(crate) mod aarch64;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86;

/// Installs the SIMD kernels of `path` (which must be available) into `k`.
pub(crate) fn install(k: &mut TypeKernels, path: KernelPath) {
    assert!(path.is_available(), "kernel path {path} is not available");
    match path {
        KernelPath::Scalar => {}
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2 => x86::avx2::install(k),
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => {
            x86::avx2::install(k);
            x86::avx512::install(k);
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
