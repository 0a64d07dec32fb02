//! IQ4 tests: bit-identity with ggml (goldens from ggml's C code in
//! tests/data, see scripts/ggml-golden/), every path's table against the
//! scalar reference, and the dequantize/dot agreement.

#[path = "../../tests/common/golden.rs"]
mod golden;

use bytemuck::Zeroable;

use super::blocks::{BlockIQ4_NL, BlockIQ4_XS};
use super::scalar::{self, KVALUES_IQ4NL, NTRY_REF};
use crate::blocks::BlockQ8_0;
use crate::k_quants::blocks::{BlockQ8_K, QK_K};
use crate::{available_paths, kernels_for_path, BlockFormat, GgmlType};
use golden::{gen_case, read, read_f32, CASE_NAMES, K_SKIP, N_CASES, N_PER_CASE};

#[test]
fn block_layouts_match_ggml_common_h() {
    assert_eq!(size_of::<BlockIQ4_NL>(), 18);
    assert_eq!(size_of::<BlockIQ4_XS>(), 136);
    assert_eq!(core::mem::offset_of!(BlockIQ4_XS, scales_h), 2);
    assert_eq!(core::mem::offset_of!(BlockIQ4_XS, scales_l), 4);
    assert_eq!(core::mem::offset_of!(BlockIQ4_XS, qs), 8);
    assert!(KVALUES_IQ4NL.windows(2).all(|w| w[0] < w[1]));
}

/// Quantize (every path's `from_float` against `{from_float}.bin`, and
/// `other` against its file), dequantize and dot (of `{name}.bin`) against
/// ggml's goldens. `skip`: cases ggml cannot take (its rows are zero bytes).
fn check_golden<B: BlockFormat>(name: &str, skip: &[usize], from_float: &str, other: Option<(&str, fn(&[f32], &mut [B]))>) {
    let ty = B::TYPE;
    let bs = size_of::<B>();
    let nb = N_PER_CASE / B::BLOCK;
    let row = nb * bs;
    let theirs = read(&format!("{from_float}.bin"));
    assert_eq!(theirs.len(), N_CASES * row);
    // Bytes of block `b` that must match: all but, in IQ4_NL, the codes of
    // a block whose d is zero (ggml leaves them uninitialized).
    let must_match = |blk: &[u8]| -> usize { if ty == GgmlType::IQ4_NL && blk[..2] == [0, 0] { 2 } else { bs } };
    let compare = |what: &str, c: usize, ours: &[u8], t: &[u8]| {
        for (b, (o, t)) in ours.chunks(bs).zip(t.chunks(bs)).enumerate() {
            let n = must_match(t);
            assert_eq!(&o[..n], &t[..n], "{ty} {what}: case {c} ({}) block {b}", CASE_NAMES[c]);
        }
    };
    for path in available_paths() {
        let k = kernels_for_path(ty, path).unwrap();
        for c in (0..N_CASES).filter(|c| !skip.contains(c)) {
            let mut ours = vec![B::zeroed(); nb];
            (k.from_float)(&gen_case(c), bytemuck::cast_slice_mut(&mut ours));
            compare(&format!("{path} from_float"), c, bytemuck::cast_slice(&ours), &theirs[c * row..][..row]);
        }
    }
    let theirs = read(&format!("{name}.bin"));
    if let Some((file, quant)) = other {
        let theirs = read(&format!("{file}.bin"));
        for c in (0..N_CASES).filter(|c| !skip.contains(c)) {
            let mut ours = vec![B::zeroed(); nb];
            quant(&gen_case(c), &mut ours);
            compare(file, c, bytemuck::cast_slice(&ours), &theirs[c * row..][..row]);
        }
    }

    // Dequantize of ggml's bytes, bit for bit.
    let blocks: Vec<B> = theirs.chunks(bs).map(bytemuck::pod_read_unaligned).collect();
    let mut deq = vec![0.0f32; blocks.len() * B::BLOCK];
    B::dequantize_ref(&blocks, &mut deq);
    let want = read_f32(&format!("{name}.deq.f32"));
    for (i, (a, b)) in deq.iter().zip(&want).enumerate() {
        assert_eq!(a.to_bits(), b.to_bits(), "{ty} dequantize element {i}: {a:e} vs {b:e}");
    }

    // ggml's generic dot: bit for bit (IQ4_NL, same order) or to rounding
    // (IQ4_XS, edgewasm's order: a few ulps of the sum of |x_i * y_i|; one
    // misread element would move it by about 1/N_PER_CASE of that sum).
    let dots = read_f32(&format!("{name}.dot.f32"));
    for c in 0..N_CASES {
        let c2 = (c + 1) % N_CASES;
        if skip.contains(&c) || skip.contains(&c2) {
            continue;
        }
        let x = &blocks[c * nb..(c + 1) * nb];
        let mut y = vec![<B::Dot as Zeroable>::zeroed(); N_PER_CASE / <B::Dot as BlockFormat>::BLOCK];
        <B::Dot as BlockFormat>::quantize_ref(&gen_case(c2), &mut y);
        let ours = B::vec_dot_ref(x, &y);
        if ty == GgmlType::IQ4_NL {
            // NaN payloads are not part of the contract (an f16-overflowed
            // activation scale times a zero one: its sign is the CPU's).
            if ours.is_nan() && dots[c].is_nan() {
                continue;
            }
            assert_eq!(ours.to_bits(), dots[c].to_bits(), "{ty} dot case {c} ({}): {ours:e} vs {:e}", CASE_NAMES[c], dots[c]);
        } else {
            let mut xf = vec![0.0f32; N_PER_CASE];
            let mut yf = vec![0.0f32; N_PER_CASE];
            B::dequantize_ref(x, &mut xf);
            <B::Dot as BlockFormat>::dequantize_ref(&y, &mut yf);
            let abs: f64 = xf.iter().zip(&yf).map(|(a, b)| (*a as f64 * *b as f64).abs()).sum();
            let err = (ours as f64 - dots[c] as f64).abs();
            assert!(err <= 1e-6 * abs, "{ty} dot case {c} ({}): {ours:e} vs ggml {:e}", CASE_NAMES[c], dots[c]);
        }
    }
}

#[test]
fn iq4_nl_matches_ggml() {
    // from_float is llama-quantize's variant (7 scale trials); ggml's
    // `quantize_row_iq4_nl_ref` (none) is checked too.
    fn row_ref(x: &[f32], y: &mut [BlockIQ4_NL]) {
        scalar::quantize_iq4_nl(x, y, NTRY_REF)
    }
    check_golden::<BlockIQ4_NL>("iq4_nl", &[], "iq4_nl.file", Some(("iq4_nl", row_ref)));
}

#[test]
fn iq4_xs_matches_ggml() {
    check_golden::<BlockIQ4_XS>("iq4_xs", &K_SKIP, "iq4_xs", None);
}

/// Every path's `vec_dot` gives the scalar reference's bits, on raw blocks
/// (every code and scale) and quantized activations.
#[test]
fn every_path_dot_matches_the_reference() {
    let mut r = golden::Rng(0x1234_5678);
    for (ty, vt) in [(GgmlType::IQ4_NL, GgmlType::Q8_0), (GgmlType::IQ4_XS, GgmlType::Q8_K)] {
        for nb in [1usize, 2, 3, 8] {
            let n = nb * ty.block_size();
            let mut x = vec![0u16; nb * ty.type_size() / 2];
            for v in x.iter_mut() {
                *v = r.next_u32() as u16;
            }
            // Finite d (the first f16 of both formats).
            for b in 0..nb {
                x[b * ty.type_size() / 2] = crate::fp::f16_from_f32(r.sym() * 0.01).to_bits();
            }
            let xs: Vec<f32> = (0..n).map(|_| r.sym() * 4.0).collect();
            let scalar_vt = kernels_for_path(vt, crate::KernelPath::Scalar).unwrap();
            let mut y = vec![0u32; (n / vt.block_size() * vt.type_size()).div_ceil(4)];
            let yb = &mut bytemuck::cast_slice_mut::<u32, u8>(&mut y)[..n / vt.block_size() * vt.type_size()];
            (scalar_vt.from_float)(&xs, yb);
            let xb: &[u8] = bytemuck::cast_slice(&x);
            let want = (kernels_for_path(ty, crate::KernelPath::Scalar).unwrap().vec_dot)(n, xb, yb);
            for path in available_paths() {
                let got = (kernels_for_path(ty, path).unwrap().vec_dot)(n, xb, yb);
                assert_eq!(got.to_bits(), want.to_bits(), "{ty} {path} nb {nb}: {got:e} vs {want:e}");
            }
        }
    }
}

/// The dot of quantized rows is the dot of their dequantized values.
#[test]
fn dots_agree_with_dequantized_values() {
    let x: Vec<f32> = gen_case(1).into_iter().chain(gen_case(0)).collect();
    let ya: Vec<f32> = gen_case(7).into_iter().chain(gen_case(8)).collect();
    let mut nl = vec![BlockIQ4_NL::zeroed(); x.len() / 32];
    let mut xs = vec![BlockIQ4_XS::zeroed(); x.len() / QK_K];
    BlockIQ4_NL::quantize_ref(&x, &mut nl);
    BlockIQ4_XS::quantize_ref(&x, &mut xs);
    let mut q0 = vec![BlockQ8_0::zeroed(); x.len() / 32];
    let mut qk = vec![BlockQ8_K::zeroed(); x.len() / QK_K];
    BlockQ8_0::quantize_ref(&ya, &mut q0);
    BlockQ8_K::quantize_ref(&ya, &mut qk);
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| *a as f64 * *b as f64).sum::<f64>();
    let (mut xf, mut yf) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
    BlockIQ4_NL::dequantize_ref(&nl, &mut xf);
    BlockQ8_0::dequantize_ref(&q0, &mut yf);
    let (got, want) = (BlockIQ4_NL::vec_dot_ref(&nl, &q0) as f64, dot(&xf, &yf));
    assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "iq4_nl: {got} vs {want}");
    BlockIQ4_XS::dequantize_ref(&xs, &mut xf);
    BlockQ8_K::dequantize_ref(&qk, &mut yf);
    let (got, want) = (BlockIQ4_XS::vec_dot_ref(&xs, &qk) as f64, dot(&xf, &yf));
    assert!((got - want).abs() <= 1e-5 * want.abs().max(1.0), "iq4_xs: {got} vs {want}");
    // And the quantization is close to the input: 16 levels per 32 values
    // leave an error of a few percent of the signal.
    let rmse = (x.iter().zip(&xf).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    let rms = (x.iter().map(|a| (*a as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    assert!(rmse < 0.1 * rms, "iq4_xs rmse {rmse} of rms {rms}");
}
