//! Bit-identity with ggml: the reference quantizers, dequantizers and
//! generic dot products against golden files made by ggml's own C code
//! (scripts/ggml-golden/), and every path's `from_float` against them too.

#[path = "common/golden.rs"]
mod golden;
#[path = "common/paths.rs"]
#[macro_use]
mod paths;

use edgewasm_kernels::{
    kernels_for_path, BlockFormat, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0,
    BlockQ8_1, GgmlType, KernelPath,
};
use golden::{all_inputs, gen_case, read, read_f32, CASE_NAMES, K_SKIP, N_CASES, N_PER_CASE};

#[test]
fn inputs_match_the_c_generator() {
    let ours = all_inputs();
    let theirs = read_f32("inputs.f32");
    assert_eq!(ours.len(), theirs.len());
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(
            a.to_bits(),
            b.to_bits(),
            "input {i} (case {}): {a:e} vs {b:e}",
            i / N_PER_CASE
        );
    }
}

fn quantize<B: BlockFormat>(x: &[f32]) -> Vec<B> {
    let mut q = vec![B::zeroed(); x.len() / B::BLOCK];
    B::quantize_ref(x, &mut q);
    q
}

/// Compares row by row, naming the case and block of the first difference.
fn assert_rows_equal(ty: GgmlType, what: &str, ours: &[u8], theirs: &[u8], skip: &[usize]) {
    assert_eq!(ours.len(), theirs.len(), "{ty} {what}: length");
    let row = ours.len() / N_CASES;
    let bs = ty.type_size();
    for c in (0..N_CASES).filter(|c| !skip.contains(c)) {
        let (a, b) = (&ours[c * row..][..row], &theirs[c * row..][..row]);
        if let Some(i) = a.iter().zip(b).position(|(x, y)| x != y) {
            let blk = i / bs;
            panic!(
                "{ty} {what}: case {c} ({}) block {blk} differs at byte {}:\n ours   {:02x?}\n ggml   {:02x?}",
                CASE_NAMES[c],
                i % bs,
                &a[blk * bs..][..bs],
                &b[blk * bs..][..bs]
            );
        }
    }
}

fn check_quantize<B: BlockFormat>() {
    let ty = B::TYPE;
    let theirs = read(&format!("{}.bin", ty.name()));
    let mut ours = Vec::new();
    for c in 0..N_CASES {
        ours.extend_from_slice(bytemuck::cast_slice(&quantize::<B>(&gen_case(c))));
    }
    assert_rows_equal(ty, "quantize_ref", &ours, &theirs, &[]);
}

/// `path`'s from_float gives ggml's bytes.
fn check_from_float(ty: GgmlType, path: KernelPath) {
    let theirs = read(&format!("{}.bin", ty.name()));
    let k = kernels_for_path(ty, path).unwrap();
    let mut via = vec![0u8; theirs.len()];
    let row = via.len() / N_CASES;
    for c in 0..N_CASES {
        (k.from_float)(&gen_case(c), &mut via[c * row..][..row]);
    }
    assert_rows_equal(ty, &format!("{path} from_float"), &via, &theirs, &[]);
}

fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn check_dequantize<B: BlockFormat>() {
    let ty = B::TYPE;
    let q: &[B] = bytemuck::cast_slice(&read(&format!("{}.bin", ty.name())))
        .to_vec()
        .leak();
    let mut ours = vec![0.0f32; q.len() * B::BLOCK];
    B::dequantize_ref(q, &mut ours);
    let theirs = read_f32(&format!("{}.deq.f32", ty.name()));
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        // NaN payloads and signs are the CPU's (x86's default NaN is
        // negative, aarch64's positive): any NaN matches any NaN.
        assert!(same(*a, *b), "{ty} dequantize element {i}: {a:e} vs {b:e}");
    }
}

/// `path`'s to_float gives ggml's floats.
fn check_to_float(ty: GgmlType, path: KernelPath) {
    let theirs = read_f32(&format!("{}.deq.f32", ty.name()));
    let q = read(&format!("{}.bin", ty.name()));
    // Whole blocks, 4-aligned (the reader's Vec<u8> need not be).
    let mut aligned = vec![0u32; q.len().div_ceil(4)];
    bytemuck::cast_slice_mut::<u32, u8>(&mut aligned)[..q.len()].copy_from_slice(&q);
    let q = &bytemuck::cast_slice::<u32, u8>(&aligned)[..q.len()];
    let k = kernels_for_path(ty, path).unwrap();
    let mut via = vec![0.0f32; theirs.len()];
    (k.to_float)(q, &mut via);
    for (i, (a, b)) in via.iter().zip(&theirs).enumerate() {
        assert!(same(*a, *b), "{ty} {path} to_float element {i}: {a:e} vs ggml {b:e}");
    }
}

/// `dot[c]` = weights of case c . activations of case (c + 1) % N_CASES,
/// with ggml's generic (scalar) dot: bit-identical, same operation order.
fn check_vec_dot<B: BlockFormat>() {
    let ty = B::TYPE;
    let theirs = read_f32(&format!("{}.dot.f32", ty.name()));
    for c in 0..N_CASES {
        let x = quantize::<B>(&gen_case(c));
        let y = quantize::<B::Dot>(&gen_case((c + 1) % N_CASES));
        let ours = B::vec_dot_ref(&x, &y);
        let t = theirs[c];
        assert!(
            ours.to_bits() == t.to_bits() || (ours.is_nan() && t.is_nan()),
            "{ty} vec_dot_ref case {c} ({}): {ours:e} vs ggml {t:e}",
            CASE_NAMES[c]
        );
    }
}

#[test]
fn q4_0_matches_ggml() {
    check_quantize::<BlockQ4_0>();
    check_dequantize::<BlockQ4_0>();
    check_vec_dot::<BlockQ4_0>();
}

#[test]
fn q4_1_matches_ggml() {
    check_quantize::<BlockQ4_1>();
    check_dequantize::<BlockQ4_1>();
    check_vec_dot::<BlockQ4_1>();
}

#[test]
fn q5_0_matches_ggml() {
    check_quantize::<BlockQ5_0>();
    check_dequantize::<BlockQ5_0>();
    check_vec_dot::<BlockQ5_0>();
}

#[test]
fn q5_1_matches_ggml() {
    check_quantize::<BlockQ5_1>();
    check_dequantize::<BlockQ5_1>();
    check_vec_dot::<BlockQ5_1>();
}

#[test]
fn q8_0_matches_ggml() {
    check_quantize::<BlockQ8_0>();
    check_dequantize::<BlockQ8_0>();
    check_vec_dot::<BlockQ8_0>();
}

#[test]
fn q8_1_matches_ggml() {
    check_quantize::<BlockQ8_1>();
}

// Every path (the reference's own kernels included) against the goldens.
per_path!(scalar and paths_match_ggml);
fn paths_match_ggml(path: KernelPath) {
    let legacy = [GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1, GgmlType::Q8_0];
    for ty in legacy {
        check_from_float(ty, path);
        check_to_float(ty, path);
    }
    check_from_float(GgmlType::Q8_1, path);
    q8_k_from_float_matches_ggml(path);
    float_formats_convert_like_the_reference(path);
}

/// Q8_K is the K-quants' activation format and must be bit-identical too
/// (rows of the cases ggml's ref asserts on are skipped).
fn q8_k_from_float_matches_ggml(path: KernelPath) {
    let theirs = read("q8_K.bin");
    let row = theirs.len() / N_CASES;
    let k = kernels_for_path(GgmlType::Q8_K, path).unwrap();
    let mut via = vec![0u8; theirs.len()];
    for c in (0..N_CASES).filter(|c| !K_SKIP.contains(c)) {
        (k.from_float)(&gen_case(c), &mut via[c * row..][..row]);
    }
    assert_rows_equal(
        GgmlType::Q8_K,
        &format!("{path} from_float"),
        &via,
        &theirs,
        &K_SKIP,
    );
}

fn float_formats_convert_like_the_reference(path: KernelPath) {
    // No C golden needed: the conversions are unit-tested against `half` in
    // src/fp.rs. Here: `path`'s from_float/to_float agree with the refs.
    let x = all_inputs();
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::BF16] {
        let reference = kernels_for_path(ty, KernelPath::Scalar).unwrap();
        let mut want = vec![0u8; x.len() * ty.type_size()];
        (reference.from_float)(&x, &mut want);
        let k = kernels_for_path(ty, path).unwrap();
        let mut got = vec![0u8; want.len()];
        (k.from_float)(&x, &mut got);
        assert_eq!(got, want, "{ty} {path} from_float");
        let mut back = vec![0.0f32; x.len()];
        let mut back_ref = vec![0.0f32; x.len()];
        (k.to_float)(&got, &mut back);
        (reference.to_float)(&want, &mut back_ref);
        assert!(
            back.iter().zip(&back_ref).all(|(a, b)| same(*a, *b)),
            "{ty} {path} to_float"
        );
    }
}
