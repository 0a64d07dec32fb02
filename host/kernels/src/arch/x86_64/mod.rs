//! x86_64: the AVX2 path (AVX2 + FMA + F16C) and the AVX-512 path, which
//! installs its own kernels on top of AVX2's and reuses AVX2 helpers.

pub(crate) mod avx2;
pub(crate) mod avx512;
