//! Which kernel path runs: chosen once from CPU features, or forced with
//! `EDGEWASM_KERNEL_PATH`.

use std::fmt;

/// An instruction-set path through the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KernelPath {
    /// Portable reference code.
    Scalar,
    /// x86_64 AVX2 + FMA + F16C.
    Avx2,
    /// x86_64 AVX-512 F/BW/VL (+VNNI where present).
    Avx512,
    /// aarch64 NEON.
    Neon,
    /// aarch64 NEON with the dot-product extension (`sdot`).
    NeonDotprod,
}

impl KernelPath {
    pub const fn name(self) -> &'static str {
        match self {
            KernelPath::Scalar => "scalar",
            KernelPath::Avx2 => "avx2",
            KernelPath::Avx512 => "avx512",
            KernelPath::Neon => "neon",
            KernelPath::NeonDotprod => "neon-dotprod",
        }
    }
}

impl fmt::Display for KernelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
