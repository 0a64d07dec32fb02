//! Every SIMD kernel against its scalar twin, on every path this CPU has,
//! and every path against f32 math with ggml's error bounds
//! (tests/test-quantize-fns.cpp).
//!
//! No tolerances: every path must give the reference's exact bits.
//! * `from_float`: byte-identical (finite and infinite inputs).
//! * every `vec_dot` (quantized and float): `to_bits()`-identical to the
//!   scalar `vec_dot_ref` (NaN matches any NaN). The SIMD kernels compute
//!   exact integer block sums and then repeat the reference's f32 operations
//!   in its order; the float dots share one fixed 32-lane order.

#[path = "common/paths.rs"]
#[macro_use]
mod paths;

use edgewasm_kernels::{
    kernels_for, kernels_for_path, GgmlType, KernelPath, TypeKernels,
};
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

const LEGACY: [GgmlType; 6] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
];
const FLOATS: [GgmlType; 3] = [GgmlType::F32, GgmlType::F16, GgmlType::BF16];

fn scalar(ty: GgmlType) -> TypeKernels {
    kernels_for_path(ty, KernelPath::Scalar).unwrap()
}

fn quantize(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut out = vec![0u8; x.len() / ty.block_size() * ty.type_size()];
    (scalar(ty).from_float)(x, &mut out);
    out
}

/// Bit-identical, or both NaN (NaN payloads are not part of the contract).
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Row data: `nb` blocks of 32 with a per-block scale and a distribution
/// drawn by proptest (including zeros, constant blocks, .5 ties, large and
/// tiny magnitudes).
fn row(max_blocks: usize) -> impl Strategy<Value = Vec<f32>> {
    let block = (
        0u8..8,
        // Magnitudes up to 300: Q8_1 s = d * sum(q) (up to 32 * amax) stays
        // finite in f16.
        -12i32..=5,
        prop::collection::vec(-1.0f32..1.0, 32),
        any::<u32>(),
    )
        .prop_map(|(kind, exp, u, bits)| {
            let scale = 10f32.powi(exp / 2) * if exp % 2 == 0 { 1.0 } else { 3.0 };
            match kind {
                0..=2 => u.iter().map(|v| v * scale).collect::<Vec<_>>(),
                3 => vec![u[0] * scale; 32], // constant
                4 => vec![0.0; 32],          // zero
                5 => u
                    .iter()
                    .enumerate()
                    .map(|(j, v)| {
                        if j == (bits % 32) as usize {
                            127.0
                        } else {
                            (v * 126.0).round() + 0.5
                        }
                    })
                    .collect(), // q8 ties (d = 1)
                6 => u
                    .iter()
                    .enumerate()
                    .map(|(j, v)| {
                        if (bits >> (j % 32)) & 1 == 1 {
                            0.0
                        } else {
                            v * scale
                        }
                    })
                    .collect(), // sparse
                _ => u
                    .iter()
                    .map(|v| (v * 16.0).round() / 16.0 * scale)
                    .collect(), // grid
            }
        });
    prop::collection::vec(block, 1..=max_blocks).prop_map(|b| b.concat())
}

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Runs the property `f` on `cfg().cases` values of `strategy`; on a
/// failure, panics with the shrunk input.
fn check_property<S: Strategy>(strategy: S, f: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    if let Err(e) = TestRunner::new(cfg()).run(&strategy, f) {
        panic!("{e}");
    }
}

per_path!(quantized_vec_dot_matches_reference);
fn quantized_vec_dot_matches_reference(path: KernelPath) {
    check_property((row(72), row(72)), |(xs, ys)| {
        let n = xs.len().min(ys.len());
        let (xs, ys) = (&xs[..n], &ys[..n]);
        for ty in LEGACY {
            let r = scalar(ty);
            let qx = quantize(ty, xs);
            let qy = quantize(r.vec_dot_type, ys);
            let want = (r.vec_dot)(n, &qx, &qy);
            let k = kernels_for_path(ty, path).unwrap();
            prop_assert_eq!(k.vec_dot_type, r.vec_dot_type);
            let got = (k.vec_dot)(n, &qx, &qy);
            prop_assert!(
                same(got, want),
                "{} {}: n={} got {:e} ({:#010x}) want {:e} ({:#010x})",
                ty, path, n, got, got.to_bits(), want, want.to_bits()
            );
        }
        Ok(())
    });
}

per_path!(float_vec_dot_matches_reference);
fn float_vec_dot_matches_reference(path: KernelPath) {
    let inputs = (prop::collection::vec(-100.0f32..100.0, 1..700), any::<u32>(), 0u8..8);
    check_property(inputs, |(xs, seed, special)| {
        let mut xs = xs;
        let n = xs.len();
        let at = seed as usize % n;
        match special {
            // Signed zeros and exact cancellation.
            1 => xs.iter_mut().step_by(3).for_each(|v| *v = if *v < 0.0 { -0.0 } else { 0.0 }),
            2 => xs[at] = f32::INFINITY,
            3 => xs[at] = f32::NAN,
            4 => xs.iter_mut().for_each(|v| *v *= 1e36), // f32 products overflow
            5 => xs.iter_mut().for_each(|v| *v *= 1e-40), // subnormal
            6 => xs.iter_mut().for_each(|v| *v = v.round()), // exact products, ties in sums
            _ => {}
        }
        let ys: Vec<f32> = xs.iter().enumerate().map(|(i, v)| (v * 0.37 + (i as u32 ^ seed) as f32 * 1e-3).sin()).collect();
        for ty in FLOATS {
            let r = scalar(ty);
            let qx = quantize(ty, &xs);
            let qy = quantize(ty, &ys);
            let want = (r.vec_dot)(n, &qx, &qy);
            let got = (kernels_for_path(ty, path).unwrap().vec_dot)(n, &qx, &qy);
            prop_assert!(
                same(got, want),
                "{} {}: n={} got {:e} ({:#010x}) want {:e} ({:#010x})",
                ty, path, n, got, got.to_bits(), want, want.to_bits()
            );
        }
        Ok(())
    });
}

per_path!(from_float_is_byte_identical);
fn from_float_is_byte_identical(path: KernelPath) {
    check_property((row(40), any::<Option<(usize, bool)>>()), |(xs, inf_at)| {
        let mut xs = xs;
        if let Some((i, neg)) = inf_at {
            let i = i % xs.len();
            xs[i] = if neg { f32::NEG_INFINITY } else { f32::INFINITY };
        }
        for ty in LEGACY.into_iter().chain(FLOATS) {
            let want = quantize(ty, &xs);
            let k = kernels_for_path(ty, path).unwrap();
            let mut got = vec![0u8; want.len()];
            (k.from_float)(&xs, &mut got);
            prop_assert!(got == want, "{} {} from_float differs", ty, path);
            let mut deq = vec![0.0f32; xs.len()];
            let mut deq_ref = vec![0.0f32; xs.len()];
            (k.to_float)(&got, &mut deq);
            (scalar(ty).to_float)(&want, &mut deq_ref);
            prop_assert!(
                deq.iter().zip(&deq_ref).all(|(a, b)| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())),
                "{} {} to_float differs", ty, path
            );
        }
        Ok(())
    });
}

// The model's shapes: one 576-long and one 1536-long row.
per_path!(model_row_lengths);
fn model_row_lengths(path: KernelPath) {
    for n in [576usize, 1536, 32, 64, 96] {
        let xs: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let ys: Vec<f32> = (0..n)
            .map(|i| ((i * 104729) % 997) as f32 / 300.0 - 1.6)
            .collect();
        for ty in LEGACY.into_iter().chain(FLOATS) {
            let r = scalar(ty);
            let qx = quantize(ty, &xs);
            let qy = quantize(r.vec_dot_type, &ys);
            let want = (r.vec_dot)(n, &qx, &qy);
            let got = (kernels_for_path(ty, path).unwrap().vec_dot)(n, &qx, &qy);
            assert!(same(got, want), "{ty} {path} n={n}: {got:e} vs {want:e}");
        }
    }
}

// ---- ggml's test-quantize-fns ------------------------------------------------

/// `generate_data`: `0.1 + amplitude * cosf(i + offset)` (in double, as C
/// promotes `0.1`).
fn generate_data(offset: f32, n: usize, amplitude: f32) -> Vec<f32> {
    (0..n)
        .map(|i| (0.1f64 + amplitude as f64 * ((i as f32 + offset).cos() as f64)) as f32)
        .collect()
}

/// ggml's `array_rmse` (which divides the root by n, not inside it).
fn array_rmse(a: &[f32], b: &[f32]) -> f32 {
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = x as f64 - y as f64;
            d * d
        })
        .sum();
    (sum.sqrt() as f32) / a.len() as f32
}

const MAX_QUANTIZATION_TOTAL_ERROR: f32 = 0.002;
const MAX_QUANTIZATION_REFERENCE_ERROR: f32 = 0.0001;
const MAX_DOT_PRODUCT_ERROR: f32 = 0.02;

per_path!(scalar and ggml_quantize_fns_bounds);
fn ggml_quantize_fns_bounds(path: KernelPath) {
    let n = 32 * 128;
    let data1 = generate_data(0.0, n, 2.0);
    let data2 = generate_data(1.0, n, 2.0);
    let dot_exact: f64 = data1
        .iter()
        .zip(&data2)
        .map(|(&a, &b)| (a * b) as f64)
        .sum();
    {
        for ty in LEGACY.into_iter().chain(FLOATS) {
            let k = kernels_for_path(ty, path).unwrap();
            let mut q = vec![0u8; n / ty.block_size() * ty.type_size()];
            (k.from_float)(&data1, &mut q);
            let mut out = vec![0.0f32; n];
            (k.to_float)(&q, &mut out);
            let total = array_rmse(&data1, &out);
            assert!(
                total < MAX_QUANTIZATION_TOTAL_ERROR,
                "{ty} {path}: quantization error {total}"
            );

            let mut q_ref = vec![0u8; q.len()];
            (scalar(ty).from_float)(&data1, &mut q_ref);
            let mut out_ref = vec![0.0f32; n];
            (scalar(ty).to_float)(&q_ref, &mut out_ref);
            let reference = array_rmse(&out, &out_ref);
            assert!(
                reference < MAX_QUANTIZATION_REFERENCE_ERROR,
                "{ty} {path}: reference error {reference}"
            );

            let vd = kernels_for_path(k.vec_dot_type, path).unwrap();
            let mut qy = vec![0u8; n / vd.ty.block_size() * vd.ty.type_size()];
            (vd.from_float)(&data2, &mut qy);
            let got = (k.vec_dot)(n, &q, &qy);
            let err = (got - dot_exact as f32).abs() / n as f32;
            assert!(
                err < MAX_DOT_PRODUCT_ERROR,
                "{ty} {path}: dot product error {err}"
            );
        }
    }
}

// ---- contract --------------------------------------------------------------

#[test]
fn table_is_consistent() {
    // The types with kernels; every other ggml type (the other IQ*, TQ*,
    // MXFP4, integers...) has none on any path, which is how the model
    // refuses it.
    use GgmlType as T;
    let computed = [
        T::F32, T::F16, T::BF16, T::Q4_0, T::Q4_1, T::Q5_0, T::Q5_1, T::Q8_0, T::Q8_1, T::Q2_K, T::Q3_K,
        T::Q4_K, T::Q5_K, T::Q6_K, T::Q8_K, T::IQ4_NL, T::IQ4_XS,
    ];
    for ty in GgmlType::ALL {
        match edgewasm_kernels::try_kernels_for(ty) {
            Some(k) => {
                assert!(computed.contains(&ty), "{ty} has kernels");
                assert_eq!(k.ty, ty);
                assert_eq!(k.path, edgewasm_kernels::active_path());
            }
            None => {
                assert!(!computed.contains(&ty), "{ty} has no kernels");
                assert!(KernelPath::ALL.iter().all(|&p| kernels_for_path(ty, p).is_none()), "{ty}");
            }
        }
    }
    let pairs = [
        (GgmlType::Q4_0, GgmlType::Q8_0),
        (GgmlType::Q4_1, GgmlType::Q8_1),
        (GgmlType::Q5_0, GgmlType::Q8_0),
        (GgmlType::Q5_1, GgmlType::Q8_1),
        (GgmlType::Q8_0, GgmlType::Q8_0),
        (GgmlType::Q8_1, GgmlType::Q8_1),
        (GgmlType::IQ4_NL, GgmlType::Q8_0),
        (GgmlType::IQ4_XS, GgmlType::Q8_K),
        (GgmlType::F32, GgmlType::F32),
        (GgmlType::F16, GgmlType::F16),
        (GgmlType::BF16, GgmlType::BF16),
    ];
    for (w, a) in pairs {
        assert_eq!(kernels_for(w).vec_dot_type, a);
        for p in KernelPath::ALL {
            assert_eq!(
                kernels_for_path(w, p).is_some(),
                p.is_available(),
                "{w} {p}"
            );
        }
    }
}

fn assert_panics(path: KernelPath, f: impl Fn(&TypeKernels) + std::panic::RefUnwindSafe, ty: GgmlType) {
    let k = kernels_for_path(ty, path).unwrap();
    let r = std::panic::catch_unwind(|| f(&k));
    assert!(r.is_err(), "{ty} {path}: contract violation did not panic");
}

per_path!(scalar and contract_violations_panic_before_simd);
fn contract_violations_panic_before_simd(path: KernelPath) {
    let x = [0u8; 4 * 36 + 2];
    for ty in LEGACY {
        let bs = ty.type_size();
        // n not a multiple of the block.
        assert_panics(
            path,
            |k| {
                let _ = (k.vec_dot)(33, &x[..2 * bs], &x[..2 * 36]);
            },
            ty,
        );
        // x shorter than n.
        assert_panics(
            path,
            |k| {
                let _ = (k.vec_dot)(64, &x[..bs], &x[..2 * 36]);
            },
            ty,
        );
        // y shorter than n.
        assert_panics(
            path,
            |k| {
                let _ = (k.vec_dot)(64, &x[..2 * bs], &x[..36]);
            },
            ty,
        );
        // partial block.
        assert_panics(
            path,
            |k| {
                let _ = (k.vec_dot)(32, &x[..bs + 1], &x[..36]);
            },
            ty,
        );
        // misaligned (odd address).
        assert_panics(
            path,
            |k| {
                let _ = (k.vec_dot)(32, &x[1..1 + bs], &x[..36]);
            },
            ty,
        );
        // from_float: src not whole blocks / dst wrong size.
        assert_panics(path, |k| (k.from_float)(&[0.0; 31], &mut vec![0u8; bs]), ty);
        assert_panics(path, |k| (k.from_float)(&[0.0; 64], &mut vec![0u8; bs]), ty);
        // to_float: dst wrong size.
        assert_panics(path, |k| (k.to_float)(&x[..bs], &mut [0.0; 31]), ty);
    }
    assert_panics(
            path,
        |k| {
            let _ = (k.vec_dot)(3, &[0u8; 12], &[0u8; 8]);
        },
        GgmlType::F32,
    );
    assert_panics(
            path,
        |k| {
            let _ = (k.vec_dot)(3, &[0u8; 6], &[0u8; 4]);
        },
        GgmlType::F16,
    );
}

#[test]
fn helpers_round_trip() {
    let xs: Vec<f32> = (0..576).map(|i| (i as f32 * 0.01).sin()).collect();
    let mut buf =
        edgewasm_kernels::AlignedBuf::zeroed(GgmlType::Q8_0.row_bytes(576).unwrap() as usize);
    edgewasm_kernels::quantize_row(GgmlType::Q8_0, &xs, &mut buf);
    let mut back = vec![0.0; 576];
    edgewasm_kernels::dequantize_row(GgmlType::Q8_0, &buf, &mut back);
    assert!(xs.iter().zip(&back).all(|(a, b)| (a - b).abs() < 0.01));
    let d = edgewasm_kernels::dot_f32(&xs, &xs);
    let want: f32 = xs.iter().map(|x| x * x).sum();
    assert!((d - want).abs() < 1e-3);
}
