//! K-quant tests: bit-identity with ggml (goldens from ggml's C code in
//! tests/data, see scripts/ggml-golden/), SIMD twins against the scalar
//! references on every available path, ggml's accuracy bounds
//! (tests/test-quantize-fns.cpp), and dots on real model weights.

#[path = "../../tests/common/golden.rs"]
mod golden;

use bytemuck::Zeroable;
use proptest::prelude::*;

use super::blocks::*;
use super::kernels;
use crate::{available_paths, BlockFormat, GgmlType, KernelPath, TypeKernels};
use golden::{gen_case, read, read_f32, CASE_NAMES, K_SKIP, N_CASES, N_PER_CASE};

const K_TYPES: [GgmlType; 5] = [
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::Q4_K,
    GgmlType::Q5_K,
    GgmlType::Q6_K,
];

fn k(ty: GgmlType, path: KernelPath) -> TypeKernels {
    kernels(ty, path).unwrap_or_else(|| panic!("no {ty} kernels on available path {path}"))
}

fn quantize_bytes(ty: GgmlType, path: KernelPath, x: &[f32]) -> Vec<u8> {
    let len = x.len() / QK_K * ty.type_size();
    let mut out = vec![0u32; len.div_ceil(4)];
    (k(ty, path).from_float)(x, &mut bytemuck::cast_slice_mut(&mut out)[..len]);
    as_bytes(&out, len).to_vec()
}

fn dequantize_bytes(ty: GgmlType, q: &[u8]) -> Vec<f32> {
    let mut out = vec![0.0f32; q.len() / ty.type_size() * QK_K];
    let qa = aligned(q);
    (k(ty, KernelPath::Scalar).to_float)(as_bytes(&qa, q.len()), &mut out);
    out
}

/// Bytes copied into a 4-aligned buffer (for casts to block slices).
fn aligned(bytes: &[u8]) -> Vec<u32> {
    let mut v = vec![0u32; bytes.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut v)[..bytes.len()].copy_from_slice(bytes);
    v
}

fn as_bytes(v: &[u32], len: usize) -> &[u8] {
    &bytemuck::cast_slice(v)[..len]
}

// ---- layout ---------------------------------------------------------------

#[test]
fn block_layouts_match_ggml_common_h() {
    use core::mem::offset_of;
    assert_eq!(offset_of!(BlockQ2_K, scales), 0);
    assert_eq!(offset_of!(BlockQ2_K, qs), 16);
    assert_eq!(offset_of!(BlockQ2_K, d), 80);
    assert_eq!(offset_of!(BlockQ2_K, dmin), 82);
    assert_eq!(offset_of!(BlockQ3_K, hmask), 0);
    assert_eq!(offset_of!(BlockQ3_K, qs), 32);
    assert_eq!(offset_of!(BlockQ3_K, scales), 96);
    assert_eq!(offset_of!(BlockQ3_K, d), 108);
    assert_eq!(offset_of!(BlockQ4_K, d), 0);
    assert_eq!(offset_of!(BlockQ4_K, dmin), 2);
    assert_eq!(offset_of!(BlockQ4_K, scales), 4);
    assert_eq!(offset_of!(BlockQ4_K, qs), 16);
    assert_eq!(offset_of!(BlockQ5_K, scales), 4);
    assert_eq!(offset_of!(BlockQ5_K, qh), 16);
    assert_eq!(offset_of!(BlockQ5_K, qs), 48);
    assert_eq!(offset_of!(BlockQ6_K, ql), 0);
    assert_eq!(offset_of!(BlockQ6_K, qh), 128);
    assert_eq!(offset_of!(BlockQ6_K, scales), 192);
    assert_eq!(offset_of!(BlockQ6_K, d), 208);
    assert_eq!(offset_of!(BlockQ8_K, d), 0);
    assert_eq!(offset_of!(BlockQ8_K, qs), 4);
    assert_eq!(offset_of!(BlockQ8_K, bsums), 260);
}

#[test]
fn nearest_int_rounds_like_ggml() {
    use super::scalar::nearest_int;
    for (x, want) in [
        (0.0, 0),
        (0.5, 0),
        (1.5, 2),
        (2.5, 2),
        (-0.5, 0),
        (-1.5, -2),
        (-2.5, -2),
        (126.9, 127),
        (-127.4, -127),
        (4_194_303.0, 4_194_303),
        (-4_194_303.0, -4_194_303),
    ] {
        assert_eq!(nearest_int(x), want, "{x}");
    }
    let mut r = golden::Rng(7);
    for _ in 0..100_000 {
        let x = r.sym() * 4e6;
        assert_eq!(nearest_int(x), x.round_ties_even() as i32, "{x}");
    }
}

#[test]
fn scale_unpacking_agrees_with_get_scale_min_k4() {
    use super::scalar::{get_scale_min_k4, unpack_scales_mins_k4};
    let mut r = golden::Rng(99);
    for _ in 0..1000 {
        let mut s = [0u8; 12];
        s.iter_mut().for_each(|b| *b = r.next_u32() as u8);
        let u = unpack_scales_mins_k4(&s);
        let bytes: [u8; 16] = bytemuck::cast(u.map(u32::to_le));
        for j in 0..8 {
            assert_eq!(get_scale_min_k4(j, &s), (bytes[j], bytes[8 + j]));
        }
    }
}

// ---- bit-identity with ggml -----------------------------------------------

fn check_golden<B: BlockFormat<Dot = BlockQ8_K>>() {
    let ty = B::TYPE;
    let bs = ty.type_size();
    let row = N_PER_CASE / QK_K * bs;
    let theirs = read(&format!("{}.bin", ty.name()));
    assert_eq!(theirs.len(), N_CASES * row);

    // quantize_ref and every path's from_float, byte for byte.
    for path in available_paths() {
        for c in (0..N_CASES).filter(|c| !K_SKIP.contains(c)) {
            let ours = quantize_bytes(ty, path, &gen_case(c));
            let t = &theirs[c * row..][..row];
            if let Some(i) = ours.iter().zip(t).position(|(a, b)| a != b) {
                let blk = i / bs;
                panic!(
                    "{ty} {path} quantize: case {c} ({}) block {blk} byte {}:\n ours {:02x?}\n ggml {:02x?}",
                    CASE_NAMES[c],
                    i % bs,
                    &ours[blk * bs..][..bs],
                    &t[blk * bs..][..bs]
                );
            }
        }
    }

    // dequantize of ggml's bytes, bit for bit.
    let theirs_al = aligned(&theirs);
    let deq = dequantize_bytes(ty, as_bytes(&theirs_al, theirs.len()));
    let want = read_f32(&format!("{}.deq.f32", ty.name()));
    assert_eq!(deq.len(), want.len());
    for (i, (a, b)) in deq.iter().zip(&want).enumerate() {
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "{ty} dequantize element {i}: {a:e} vs {b:e}"
        );
    }

    // ggml's generic vec_dot: bit for bit where the order is ggml's.
    if ty != GgmlType::Q8_K {
        let dots = read_f32(&format!("{}.dot.f32", ty.name()));
        for c in 0..N_CASES {
            let c2 = (c + 1) % N_CASES;
            if K_SKIP.contains(&c) || K_SKIP.contains(&c2) {
                continue;
            }
            let mut x = vec![B::zeroed(); N_PER_CASE / QK_K];
            B::quantize_ref(&gen_case(c), &mut x);
            let mut y = vec![BlockQ8_K::zeroed(); N_PER_CASE / QK_K];
            BlockQ8_K::quantize_ref(&gen_case(c2), &mut y);
            let ours = B::vec_dot_ref(&x, &y);
            if matches!(ty, GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K) {
                // edgewasm's order (one f32 step per block, `scalar::k_term`):
                // the same exact integers, rounded differently. The bound is
                // a few ulps of the sum of |x_i * y_i|; one misread element
                // would move the dot by about 1/N_PER_CASE of that sum.
                let mut xf = vec![0.0f32; N_PER_CASE];
                let mut yf = vec![0.0f32; N_PER_CASE];
                B::dequantize_ref(&x, &mut xf);
                BlockQ8_K::dequantize_ref(&y, &mut yf);
                let abs: f64 = xf.iter().zip(&yf).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum();
                let err = (ours as f64 - dots[c] as f64).abs();
                assert!(
                    err <= 1e-6 * abs,
                    "{ty} vec_dot_ref case {c} ({}): {ours:e} vs ggml {:e} (|x.y| sum {abs:e})",
                    CASE_NAMES[c],
                    dots[c]
                );
            } else {
                assert!(
                    ours.to_bits() == dots[c].to_bits(),
                    "{ty} vec_dot_ref case {c} ({}): {ours:e} vs ggml {:e}",
                    CASE_NAMES[c],
                    dots[c]
                );
            }
        }
    }
}

#[test]
fn q2_k_matches_ggml() {
    check_golden::<BlockQ2_K>();
}
#[test]
fn q3_k_matches_ggml() {
    check_golden::<BlockQ3_K>();
}
#[test]
fn q4_k_matches_ggml() {
    check_golden::<BlockQ4_K>();
}
#[test]
fn q5_k_matches_ggml() {
    check_golden::<BlockQ5_K>();
}
#[test]
fn q6_k_matches_ggml() {
    check_golden::<BlockQ6_K>();
}
#[test]
fn q8_k_matches_ggml() {
    check_golden::<BlockQ8_K>();
}

// ---- accuracy (ggml's test-quantize-fns) ----------------------------------

/// `generate_data`: `0.1 + amplitude * cosf(i + offset)` (double add, as C).
fn generate_data(offset: f32, n: usize, amplitude: f32) -> Vec<f32> {
    (0..n)
        .map(|i| (0.1f64 + (amplitude * (i as f32 + offset).cos()) as f64) as f32)
        .collect()
}

/// `array_rmse` (sic: `sqrt(sum) / n`).
fn array_rmse(a: &[f32], b: &[f32]) -> f32 {
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    (sum.sqrt() as f32) / a.len() as f32
}

fn dot_f64(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(&x, &y)| (x * y) as f64).sum::<f64>() as f32
}

#[test]
fn accuracy_within_ggml_bounds() {
    const N: usize = 32 * 128;
    let data = generate_data(0.0, N, 2.0);
    let data2 = generate_data(1.0, N, 2.0);
    let mut report = String::new();
    for ty in K_TYPES.into_iter().chain([GgmlType::Q8_K]) {
        let max_q = match ty {
            GgmlType::Q2_K => 0.0075,
            GgmlType::Q3_K => 0.0040,
            _ => 0.002,
        };
        let max_dot = if ty == GgmlType::Q2_K { 0.04 } else { 0.02 };
        for path in available_paths() {
            let kk = k(ty, path);
            let q = quantize_bytes(ty, path, &data);
            let deq = dequantize_bytes(ty, &q);
            let err = array_rmse(&data, &deq);
            assert!(err < max_q, "{ty} {path} quantization error {err}");
            if ty == GgmlType::Q8_K {
                continue;
            }
            let y = quantize_bytes(GgmlType::Q8_K, path, &data2);
            let (qa, ya) = (aligned(&q), aligned(&y));
            let got = (kk.vec_dot)(N, as_bytes(&qa, q.len()), as_bytes(&ya, y.len()));
            let derr = (got - dot_f64(&data, &data2)).abs() / N as f32;
            assert!(derr < max_dot, "{ty} {path} dot product error {derr}");
            if path == KernelPath::Scalar {
                report += &format!("{ty}: quantization error {err:.6}, dot error {derr:.6}\n");
            }
        }
    }
    eprintln!("{report}");
}

/// RMSE of quantize -> dequantize on the golden inputs: ours equals ggml's
/// (the bytes are identical); printed for the record.
#[test]
fn rmse_equals_ggml_on_golden_inputs() {
    for ty in K_TYPES {
        let theirs = read_f32(&format!("{}.deq.f32", ty.name()));
        let (mut se_ours, mut se_ggml, mut n) = (0.0f64, 0.0f64, 0usize);
        for c in (0..N_CASES).filter(|c| !K_SKIP.contains(c)) {
            let x = gen_case(c);
            let deq = dequantize_bytes(ty, &quantize_bytes(ty, KernelPath::Scalar, &x));
            for (i, &v) in x.iter().enumerate() {
                se_ours += (deq[i] as f64 - v as f64).powi(2);
                se_ggml += (theirs[c * N_PER_CASE + i] as f64 - v as f64).powi(2);
                n += 1;
            }
        }
        let (ours, ggml) = ((se_ours / n as f64).sqrt(), (se_ggml / n as f64).sqrt());
        eprintln!("{ty}: rmse ours {ours:.6e} ggml {ggml:.6e}");
        assert!(ours <= ggml, "{ty}: rmse {ours} worse than ggml's {ggml}");
    }
}

// ---- SIMD twins against the scalar references -------------------------------

/// Every path's dot must give the scalar reference's exact bits.
fn check_paths_agree(ty: GgmlType, x: &[u8], y: &[u8]) -> Result<(), TestCaseError> {
    let n = x.len() / ty.type_size() * QK_K;
    let (xa, ya) = (aligned(x), aligned(y));
    let (xb, yb) = (as_bytes(&xa, x.len()), as_bytes(&ya, y.len()));
    let want = (k(ty, KernelPath::Scalar).vec_dot)(n, xb, yb);
    for path in available_paths() {
        let got = (k(ty, path).vec_dot)(n, xb, yb);
        // Bit-identical (NaN matches NaN: payloads are not part of the contract).
        prop_assert!(
            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
            "{} {}: {:e} ({:#010x}) vs scalar {:e} ({:#010x})",
            ty,
            path,
            got,
            got.to_bits(),
            want,
            want.to_bits()
        );
    }
    Ok(())
}

/// Random f32 rows, including zeros, constant runs, outliers and a mix of
/// magnitudes.
fn float_row(max_blocks: usize) -> impl Strategy<Value = Vec<f32>> {
    (1..=max_blocks, any::<u64>(), 0u8..6).prop_map(|(nb, seed, kind)| {
        let mut r = golden::Rng((seed as u32) | 1);
        let scale = [1.0f32, 1e-3, 100.0, 1e-6, 3e4, 1.0][kind as usize];
        (0..nb * QK_K)
            .map(|i| {
                let v = r.sym() * scale;
                match kind {
                    5 if i % 97 < 40 => 0.0,
                    5 if i % 53 == 0 => v * 1000.0,
                    _ => v,
                }
            })
            .collect()
    })
}

/// Raw random blocks of `ty` (every bit pattern of the quant and scale bytes)
/// with finite super-block scales.
fn raw_blocks(ty: GgmlType, nb: usize, seed: u32) -> Vec<u8> {
    let mut r = golden::Rng(seed | 1);
    let bs = ty.type_size();
    let mut v: Vec<u8> = (0..nb * bs).map(|_| r.next_u32() as u8).collect();
    for b in v.chunks_exact_mut(bs) {
        let mut f16_at = |off: usize| {
            let h = crate::fp::f16_from_f32(r.sym() * 0.01);
            b[off..off + 2].copy_from_slice(&h.to_bits().to_le_bytes());
        };
        match ty {
            GgmlType::Q2_K => {
                f16_at(80);
                f16_at(82);
            }
            GgmlType::Q3_K => f16_at(108),
            GgmlType::Q4_K | GgmlType::Q5_K => {
                f16_at(0);
                f16_at(2);
            }
            GgmlType::Q6_K => f16_at(208),
            _ => unreachable!(),
        }
    }
    v
}

/// Raw Q8_K blocks: every `qs` value including -128, consistent `bsums`.
fn raw_q8k(nb: usize, seed: u32) -> Vec<u8> {
    let mut r = golden::Rng(seed | 1);
    let blocks: Vec<BlockQ8_K> = (0..nb)
        .map(|_| {
            let mut b = BlockQ8_K::zeroed();
            b.d = r.sym() * 0.1;
            b.qs.iter_mut().for_each(|q| *q = r.next_u32() as i8);
            super::scalar::q8k_bsums(&mut b);
            b
        })
        .collect();
    bytemuck::cast_slice(&blocks).to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Quantized real-valued rows: every path's dot equals the scalar one.
    #[test]
    fn simd_dot_matches_scalar_on_quantized_rows(
        a in float_row(12),
        seed in any::<u32>(),
        ti in 0usize..5,
    ) {
        let ty = K_TYPES[ti];
        let mut r = golden::Rng(seed | 1);
        let b: Vec<f32> = a.iter().map(|_| r.sym() * 2.0).collect();
        let x = quantize_bytes(ty, KernelPath::Scalar, &a);
        let y = quantize_bytes(GgmlType::Q8_K, KernelPath::Scalar, &b);
        check_paths_agree(ty, &x, &y)?;
    }

    /// Arbitrary block bytes (extreme scales and quants, -128 activations).
    #[test]
    fn simd_dot_matches_scalar_on_raw_blocks(
        nb in 1usize..=16,
        seed in any::<u32>(),
        ti in 0usize..5,
    ) {
        let ty = K_TYPES[ti];
        let x = raw_blocks(ty, nb, seed);
        let y = raw_q8k(nb, seed.wrapping_mul(31).wrapping_add(7));
        check_paths_agree(ty, &x, &y)?;
    }

    /// Q8_K (the activation format): every path's from_float gives the
    /// reference's bytes.
    #[test]
    fn q8_k_from_float_identical_on_every_path(a in float_row(8), special in 0u8..8) {
        let mut a = a;
        match special {
            // Ties at the largest magnitude, of both signs.
            1 => { let m = a.len() / 2; a[m] = 7.0; a[m + 1] = -7.0; a[3] = -7.0; }
            2 => { a.iter_mut().step_by(3).for_each(|v| *v = f32::NAN); }
            3 => { a[5] = f32::INFINITY; }
            4 => { a.iter_mut().for_each(|v| *v *= 1e-39); } // subnormal
            5 => { a.iter_mut().for_each(|v| *v *= 1e30); }
            6 => { a.iter_mut().for_each(|v| *v = (*v * 10.0).round() + 0.5); }
            _ => {}
        }
        let want = quantize_bytes(GgmlType::Q8_K, KernelPath::Scalar, &a);
        for path in available_paths() {
            let got = quantize_bytes(GgmlType::Q8_K, path, &a);
            prop_assert!(got == want, "{} from_float differs", path);
        }
    }
}

#[test]
fn extreme_blocks_do_not_saturate() {
    // All quant and scale bits set, activations at -128 and 127: the largest
    // intermediate sums. Every path must equal the scalar result.
    for ty in K_TYPES {
        for fill in [0xFFu8, 0x00, 0xAA] {
            let nb = 3;
            let mut x = raw_blocks(ty, nb, 5);
            let bs = ty.type_size();
            for b in x.chunks_exact_mut(bs) {
                let (d_lo, d_hi) = match ty {
                    GgmlType::Q2_K => (80, 84),
                    GgmlType::Q3_K => (108, 110),
                    GgmlType::Q4_K | GgmlType::Q5_K => (0, 4),
                    _ => (208, 210),
                };
                for (i, v) in b.iter_mut().enumerate() {
                    if !(d_lo..d_hi).contains(&i) {
                        *v = fill;
                    }
                }
            }
            for q in [-128i8, 127, -1] {
                let blocks: Vec<BlockQ8_K> = (0..nb)
                    .map(|i| {
                        let mut b = BlockQ8_K::zeroed();
                        b.d = 0.5 + i as f32;
                        b.qs = [q; QK_K];
                        super::scalar::q8k_bsums(&mut b);
                        b
                    })
                    .collect();
                check_paths_agree(ty, &x, bytemuck::cast_slice(&blocks)).unwrap();
            }
        }
    }
}

#[test]
fn zero_and_empty_rows() {
    for ty in K_TYPES {
        let z = vec![0.0f32; 2 * QK_K];
        for path in available_paths() {
            let kk = k(ty, path);
            let x = quantize_bytes(ty, path, &z);
            let y = quantize_bytes(GgmlType::Q8_K, path, &z);
            let (xa, ya) = (aligned(&x), aligned(&y));
            assert_eq!(
                (kk.vec_dot)(2 * QK_K, as_bytes(&xa, x.len()), as_bytes(&ya, y.len())),
                0.0
            );
            let empty: &[u8] = bytemuck::cast_slice::<u32, u8>(&[]);
            assert_eq!((kk.vec_dot)(0, empty, empty), 0.0);
        }
    }
}

#[test]
fn table_reports_path_and_types() {
    for path in available_paths() {
        for ty in K_TYPES.into_iter().chain([GgmlType::Q8_K]) {
            let kk = k(ty, path);
            assert_eq!(
                (kk.ty, kk.vec_dot_type, kk.path),
                (ty, GgmlType::Q8_K, path)
            );
        }
        assert!(kernels(GgmlType::Q4_0, path).is_none());
        assert!(kernels(GgmlType::F32, path).is_none());
    }
}

#[test]
#[should_panic]
fn vec_dot_rejects_mismatched_lengths() {
    let x = vec![0u16; 144 / 2];
    let y = vec![0u32; 292 / 4];
    let (x, y): (&[u8], &[u8]) = (bytemuck::cast_slice(&x), bytemuck::cast_slice(&y));
    let path = *available_paths().last().unwrap();
    (k(GgmlType::Q4_K, path).vec_dot)(2 * QK_K, x, y);
}

// ---- real weights ---------------------------------------------------------------

/// Q4_K and Q6_K rows of the Gemma 3 270M model (fetched when missing): every path's
/// dot of a real weight row with quantized activations matches the scalar
/// one, and the reference dot is close to the f32 dot of the dequantized row.
#[test]
fn real_gemma_rows() {
    let path = edgewasm_test_support::model_path(edgewasm_test_support::GEMMA3);
    let file = edgewasm_gguf::GgufFile::open(&path).expect("open gemma gguf");
    let mut seen = std::collections::HashSet::new();
    let mut r = golden::Rng(12345);
    for t in file.tensors() {
        if !matches!(t.ty, GgmlType::Q4_K | GgmlType::Q6_K) || !seen.insert((t.ty, t.dims[0])) {
            continue;
        }
        let data = file.tensor_data(t);
        let row_bytes = t.row_bytes() as usize;
        let n = t.dims[0] as usize;
        let rows = t.n_rows() as usize;
        for ri in [0, rows / 2, rows - 1] {
            let x = &data[ri * row_bytes..][..row_bytes];
            let xdeq = dequantize_bytes(t.ty, x);
            let act: Vec<f32> = (0..n).map(|_| r.sym() + 0.3 * r.sym()).collect();
            let y = quantize_bytes(GgmlType::Q8_K, KernelPath::Scalar, &act);
            check_paths_agree(t.ty, x, &y).unwrap_or_else(|e| panic!("{} row {ri}: {e}", t.name));
            // Against f32 math on the dequantized weights.
            let yd = dequantize_bytes(GgmlType::Q8_K, &y);
            let exact = dot_f64(&xdeq, &yd);
            let (xa, ya) = (aligned(x), aligned(&y));
            let got = (k(t.ty, KernelPath::Scalar).vec_dot)(
                n,
                as_bytes(&xa, x.len()),
                as_bytes(&ya, y.len()),
            );
            let mag: f32 = xdeq.iter().zip(&yd).map(|(a, b)| (a * b).abs()).sum();
            assert!(
                (got - exact).abs() <= 1e-4 * mag + 1e-6,
                "{} row {ri}: {got} vs {exact}",
                t.name
            );
        }
        eprintln!("{} ({}, {} x {}): paths agree", t.name, t.ty, n, rows);
    }
    assert!(
        seen.iter().any(|(ty, _)| *ty == GgmlType::Q4_K),
        "no Q4_K tensor found"
    );
    assert!(
        seen.iter().any(|(ty, _)| *ty == GgmlType::Q6_K),
        "no Q6_K tensor found"
    );
}

