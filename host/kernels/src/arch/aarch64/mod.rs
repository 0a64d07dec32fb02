//! aarch64: the NEON paths (NEON is part of the aarch64 baseline; the
//! dotprod path is the same sources built with `sdot`).

pub(crate) mod neon;
