//! The product promise: the same inputs give the same f32 bits on every
//! kernel path *and every architecture*. Each `vec_dot` result below was
//! recorded once (scalar path, x86_64) and is pinned here; the test runs
//! every path this CPU has against it, so running it on x86_64 (scalar,
//! AVX2, AVX-512) and on aarch64 (scalar, NEON, NEON dotprod; see the
//! README for qemu) checks cross-ISA bit-identity directly.
//!
//! Inputs: the golden cases (`tests/common/golden.rs`), weights from case c
//! and activations from case (c + 1) % 14, at 512 elements and at a 480
//! element prefix (partial SIMD chunks). A change of any kernel's f32 order
//! (or of the reference's) shows up here; if the reference is changed on
//! purpose, re-record with `EDGEWASM_RECORD=1 cargo test -p
//! edgewasm-kernels --test determinism -- --nocapture`.

#[path = "common/golden.rs"]
mod golden;
#[path = "common/paths.rs"]
#[macro_use]
mod paths;

use edgewasm_kernels::{kernels_for_path, GgmlType, KernelPath};
use golden::{gen_case, K_SKIP, N_CASES};

const TYPES: [GgmlType; 14] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

/// The dot bits of `ty` on `path` for every case (0 for skipped K cases),
/// and an FNV-1a hash of them.
fn dots(ty: GgmlType, path: KernelPath) -> (Vec<u32>, u64) {
    let k = kernels_for_path(ty, path).unwrap();
    let vt = kernels_for_path(k.vec_dot_type, path).unwrap();
    let scalar = kernels_for_path(ty, KernelPath::Scalar).unwrap();
    let scalar_vt = kernels_for_path(k.vec_dot_type, KernelPath::Scalar).unwrap();
    let mut bits = Vec::new();
    for n in [512usize, 480] {
        if !n.is_multiple_of(ty.block_size()) {
            continue;
        }
        for c in 0..N_CASES {
            if ty.block_size() == 256
                && (K_SKIP.contains(&c) || K_SKIP.contains(&((c + 1) % N_CASES)))
            {
                bits.push(0);
                continue;
            }
            let (a, b) = (&gen_case(c)[..n], &gen_case((c + 1) % N_CASES)[..n]);
            // Quantize with the scalar path (from_float is tested for
            // byte-identity elsewhere); u32 buffers for alignment.
            let mut x = vec![0u32; (ty.row_bytes(n as u64).unwrap() as usize).div_ceil(4)];
            let mut y = vec![0u32; (vt.ty.row_bytes(n as u64).unwrap() as usize).div_ceil(4)];
            let xb =
                &mut bytemuck::cast_slice_mut(&mut x)[..ty.row_bytes(n as u64).unwrap() as usize];
            (scalar.from_float)(a, xb);
            let yb = &mut bytemuck::cast_slice_mut(&mut y)
                [..vt.ty.row_bytes(n as u64).unwrap() as usize];
            (scalar_vt.from_float)(b, yb);
            let d = (k.vec_dot)(n, xb, yb);
            // NaN payloads are not part of the contract.
            bits.push(if d.is_nan() { 0x7fc0_0000 } else { d.to_bits() });
        }
    }
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in &bits {
        for byte in b.to_le_bytes() {
            h = (h ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    (bits, h)
}

/// FNV-1a of each type's dot bits, recorded on x86_64 (scalar path).
const EXPECTED: [(GgmlType, u64); 14] = [
    (GgmlType::F32, 0x0744c6a28742f9ef),
    (GgmlType::F16, 0xef393a1cf8ead7e6),
    (GgmlType::BF16, 0x39d21c2fe6f6430a),
    (GgmlType::Q4_0, 0xdc33ecd0ffd9b093),
    (GgmlType::Q4_1, 0xe5723a3c76f177f7),
    (GgmlType::Q5_0, 0xb3043bfb1f3b6b59),
    (GgmlType::Q5_1, 0x6bcdbd3bd77c29f5),
    (GgmlType::Q8_0, 0xf80fff21a77f5231),
    (GgmlType::Q8_1, 0xf80fff21a77f5231),
    (GgmlType::Q2_K, 0x4398c873b27fec66),
    (GgmlType::Q3_K, 0x2d34455146e8bf36),
    (GgmlType::Q4_K, 0x04b93405c0ccc18a),
    (GgmlType::Q5_K, 0x89cfd5ff8e4d0dc3),
    (GgmlType::Q6_K, 0x2e292fe50847187f),
];

per_path!(scalar and vec_dot_bits_are_the_same_on_every_path_and_architecture);
fn vec_dot_bits_are_the_same_on_every_path_and_architecture(path: KernelPath) {
    // `EDGEWASM_RECORD=1`: print the scalar hashes in `EXPECTED`'s form
    // (from the `scalar` test) instead of checking.
    if std::env::var_os("EDGEWASM_RECORD").is_some() {
        if path == KernelPath::Scalar {
            for (ty, _) in EXPECTED {
                println!("    (GgmlType::{ty:?}, {:#018x}),", dots(ty, path).1);
            }
        }
        return;
    }
    for (ty, want) in EXPECTED {
        assert!(TYPES.contains(&ty));
        let (ref_bits, _) = dots(ty, KernelPath::Scalar);
        let (bits, hash) = dots(ty, path);
        if let Some(i) = bits.iter().zip(&ref_bits).position(|(a, b)| a != b) {
            panic!(
                "{ty} {path}: dot {i} is {:#010x}, scalar gives {:#010x}",
                bits[i], ref_bits[i]
            );
        }
        assert_eq!(
            hash, want,
            "{ty} {path}: dot bits differ from the ones recorded on x86_64 ({hash:#018x})"
        );
    }
}
