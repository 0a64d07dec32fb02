//! The golden-vector inputs, rebuilt bit for bit in Rust, and the files
//! made from them by ggml's C code (scripts/ggml-golden/golden.c; keep the
//! generator here in step with `gen_case` there).
//!
//! Other test files (the K-quant ones too) can use it with
//! `#[path = "common/golden.rs"] mod golden;`.

#![allow(dead_code)]

use std::path::PathBuf;

/// Floats per case (2 K-quant super-blocks, 16 legacy blocks).
pub const N_PER_CASE: usize = 512;
/// Number of cases; see [`CASE_NAMES`].
pub const N_CASES: usize = 14;

pub const CASE_NAMES: [&str; N_CASES] = [
    "uniform",
    "bell",
    "zeros",
    "tiny (some subnormal)",
    "all subnormal",
    "huge (f16 overflow)",
    ".5 ties (q8 d = 1)",
    "negative-dominant",
    "scale per block",
    "constant blocks",
    "one nonzero per block",
    "integer grid",
    "half-integer grid",
    "signed zeros",
];

/// Cases ggml's K-quant refs assert on; their rows in the K files are zero.
pub const K_SKIP: [usize; 3] = [3, 4, 5];

/// Marsaglia xorshift32, as `next_u32` in golden.c.
pub struct Rng(pub u32);

impl Rng {
    pub fn next_u32(&mut self) -> u32 {
        let mut s = self.0;
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        self.0 = s;
        s
    }
    /// Uniform in [0, 1), a multiple of 2^-24.
    pub fn unif(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 * (1.0 / 16_777_216.0)
    }
    /// Uniform in [-1, 1).
    pub fn sym(&mut self) -> f32 {
        2.0 * self.unif() - 1.0
    }
}

/// Case `c`, exactly as golden.c's `gen_case`.
pub fn gen_case(c: usize) -> Vec<f32> {
    let mut r = Rng(0x9E37_79B9 ^ (c as u32).wrapping_mul(0x85EB_CA6B).wrapping_add(1));
    const SCALES: [f32; 8] = [1e-6, 1e-3, 0.1, 1.0, 10.0, 1000.0, 1e5, 65504.0];
    let mut x = vec![0.0f32; N_PER_CASE];
    for (i, v) in x.iter_mut().enumerate() {
        let (blk, j) = (i / 32, i % 32);
        *v = match c {
            0 => r.sym(),
            1 => (r.unif() + r.unif() + r.unif() + r.unif() - 2.0) * 1.5,
            2 => 0.0,
            3 => r.sym() * 1e-38,
            4 => r.sym() * 1e-42,
            5 => r.sym() * 1e30,
            6 => {
                let v = if j == 0 {
                    127.0
                } else {
                    ((r.next_u32() % 254) as i32 - 127) as f32 + 0.5
                };
                if j == 1 {
                    -127.0
                } else {
                    v
                }
            }
            7 => r.sym() * 0.5,
            8 => r.sym() * SCALES[blk % 8],
            9 | 10 => 0.0,
            11 => ((r.next_u32() % 31) as i32 - 15) as f32,
            12 => (r.next_u32() % 16) as f32 - 7.5,
            13 => {
                if r.next_u32() & 1 != 0 {
                    -0.0
                } else {
                    r.sym() * 1e-3
                }
            }
            _ => unreachable!(),
        };
    }
    for b in 0..N_PER_CASE / 32 {
        let xb = &mut x[b * 32..b * 32 + 32];
        match c {
            7 => {
                let j = (r.next_u32() % 32) as usize;
                xb[j] = -3.0 - r.unif();
            }
            9 => {
                let k = r.sym() * 4.0;
                xb.fill(k);
            }
            10 => {
                let j = (r.next_u32() % 32) as usize;
                xb[j] = r.sym() * 10.0;
            }
            _ => {}
        }
    }
    x
}

/// All cases, concatenated (what inputs.f32 holds).
pub fn all_inputs() -> Vec<f32> {
    (0..N_CASES).flat_map(gen_case).collect()
}

pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// A golden file's bytes.
pub fn read(name: &str) -> Vec<u8> {
    let p = data_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A golden file of little-endian f32s.
pub fn read_f32(name: &str) -> Vec<f32> {
    read(name)
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}
