//! `edgewasm quantize` on a tiny random-weight llama-shaped GGUF written
//! here: per-tensor types (llama.cpp's rules, fallbacks included), tensor
//! bytes equal to the scalar reference quantize of the source values,
//! requantization, metadata and errors. (Byte identity with llama.cpp's
//! own llama-quantize on the real model: tests/tests/quantize.rs.)

use std::path::Path;
use std::process::{Command, Output};

use edgewasm_gguf::{GgmlType, GgufFile, GgufWriter, Value};
use edgewasm_kernels::{kernels_for_path, AlignedBuf, KernelPath};
use edgewasm_test_support::Rng;

const N_EMBD: u64 = 256;
const N_FF: u64 = 96;
const N_VOCAB: u64 = 64;
const N_LAYER: u32 = 2;

/// A llama-shaped model with f32 weights: tied embeddings (no
/// output.weight), 2 layers, n_embd 256 (fits K-quants), n_ff 96 (ffn_down
/// rows fit 32-blocks only), plus a 48-wide tensor (fits no block) and a
/// 2-D tensor with a trailing 1 (1-D for ggml).
fn tiny_model(path: &Path) -> Vec<(String, Vec<u64>, Vec<f32>)> {
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let mut tensors: Vec<(String, Vec<u64>, Vec<f32>)> = Vec::new();
    let mut add = |name: String, dims: &[u64]| {
        let n: u64 = dims.iter().product();
        tensors.push((name, dims.to_vec(), rng.f32s(n as usize, 1.0)));
    };
    add("token_embd.weight".into(), &[N_EMBD, N_VOCAB]);
    add("output_norm.weight".into(), &[N_EMBD]);
    for l in 0..N_LAYER {
        add(format!("blk.{l}.attn_norm.weight"), &[N_EMBD]);
        add(format!("blk.{l}.attn_q.weight"), &[N_EMBD, N_EMBD]);
        add(format!("blk.{l}.attn_k.weight"), &[N_EMBD, 64]);
        add(format!("blk.{l}.attn_v.weight"), &[N_EMBD, 64]);
        add(format!("blk.{l}.attn_output.weight"), &[N_EMBD, N_EMBD]);
        add(format!("blk.{l}.ffn_norm.weight"), &[N_EMBD]);
        add(format!("blk.{l}.ffn_gate.weight"), &[N_EMBD, N_FF]);
        add(format!("blk.{l}.ffn_up.weight"), &[N_EMBD, N_FF]);
        add(format!("blk.{l}.ffn_down.weight"), &[N_FF, N_EMBD]);
    }
    add("blk.1.odd.weight".into(), &[48, 8]);
    add("blk.1.column.weight".into(), &[N_EMBD, 1]);
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", "llama").unwrap();
    w.add_metadata("general.name", "tiny").unwrap();
    w.set_alignment(64).unwrap();
    w.add_metadata("general.file_type", 0u32).unwrap();
    w.add_metadata("llama.block_count", N_LAYER).unwrap();
    w.add_metadata("llama.embedding_length", N_EMBD as u32).unwrap();
    w.add_metadata("llama.attention.head_count", 4u32).unwrap();
    w.add_metadata("llama.attention.head_count_kv", 1u32).unwrap();
    // Written in an order unlike llama.cpp's, which the output must follow.
    for (name, dims, values) in tensors.iter().rev() {
        w.add_f32_tensor(name.clone(), dims, values).unwrap();
    }
    w.write_file(path).unwrap();
    tensors
}

fn quantize(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgewasm")).arg("quantize").args(args).output().expect("run edgewasm quantize")
}

fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "edgewasm quantize failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The scalar reference quantize of `values` into `ty`, row by row.
fn quantize_ref(ty: GgmlType, values: &[f32], n_per_row: usize) -> Vec<u8> {
    let k = kernels_for_path(ty, KernelPath::Scalar).unwrap();
    let row = ty.row_bytes(n_per_row as u64).unwrap() as usize;
    let mut out = Vec::new();
    let mut buf = AlignedBuf::zeroed(row);
    for r in values.chunks_exact(n_per_row) {
        (k.from_float)(r, buf.as_bytes_mut());
        out.extend_from_slice(buf.as_bytes());
    }
    out
}

fn dequantize_ref(ty: GgmlType, bytes: &[u8], n: usize) -> Vec<f32> {
    let k = kernels_for_path(ty, KernelPath::Scalar).unwrap();
    let mut aligned = AlignedBuf::zeroed(bytes.len());
    aligned.as_bytes_mut().copy_from_slice(bytes);
    let mut out = vec![0f32; n];
    (k.to_float)(aligned.as_bytes(), &mut out);
    out
}

/// Quantizes the tiny model with `args` and checks every tensor: the
/// expected type (`expect(name)`), and data equal to the reference
/// quantize of the f32 source (or the source itself when kept in f32).
fn check(args: &[&str], ftype_id: u32, expect: impl Fn(&str) -> GgmlType) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tiny-f32.gguf");
    let out = dir.path().join("tiny-out.gguf");
    let tensors = tiny_model(&src);
    let mut a = vec![src.to_str().unwrap(), out.to_str().unwrap()];
    a.extend_from_slice(args);
    let o = quantize(&a);
    ok(&o);
    let g = GgufFile::open(&out).unwrap();
    assert_eq!(g.alignment(), 64);
    assert_eq!(g.get_u32("general.file_type").unwrap(), Some(ftype_id));
    assert_eq!(g.get_u32("general.quantization_version").unwrap(), Some(2));
    assert_eq!(g.get_str("general.name").unwrap(), Some("tiny"));
    // Metadata order kept; as in llama.cpp, quantization_version and
    // file_type (set with gguf_set_val_u32) move to the end.
    let keys: Vec<&str> = g.metadata().iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "general.architecture",
            "general.name",
            "general.alignment",
            "llama.block_count",
            "llama.embedding_length",
            "llama.attention.head_count",
            "llama.attention.head_count_kv",
            "general.quantization_version",
            "general.file_type"
        ]
    );
    // llama.cpp's order: non-layer tensors by name, then layer by layer.
    let names: Vec<&str> = g.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names[..3], ["output_norm.weight", "token_embd.weight", "blk.0.attn_k.weight"]);
    assert_eq!(g.tensors().len(), tensors.len());
    for (name, dims, values) in &tensors {
        let t = g.tensor(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(&t.dims, dims, "{name}");
        let want_ty = expect(name);
        assert_eq!(t.ty, want_ty, "{name} type (args {args:?})");
        let want = quantize_ref(want_ty, values, dims[0] as usize);
        assert!(g.tensor_data(t) == want.as_slice(), "{name}: bytes differ from the reference quantize to {want_ty}");
    }
}

fn is_float_kept(name: &str) -> bool {
    name.contains("norm") || name == "blk.1.column.weight"
}

#[test]
fn q8_0_every_weight_q8_0_odd_shape_f16() {
    check(&["--type", "q8_0", "-q"], 7, |n| match n {
        n if is_float_kept(n) => GgmlType::F32,
        "blk.1.odd.weight" => GgmlType::F16,
        _ => GgmlType::Q8_0,
    });
}

#[test]
fn q4_0_tied_embeddings_get_q6_k() {
    check(&["--type", "Q4_0"], 2, |n| match n {
        n if is_float_kept(n) => GgmlType::F32,
        "blk.1.odd.weight" => GgmlType::F16,
        "token_embd.weight" => GgmlType::Q6_K,
        _ => GgmlType::Q4_0,
    });
}

#[test]
fn pure_q4_0_is_q4_0_everywhere_it_fits() {
    check(&["--type", "q4_0", "--pure", "-j", "1"], 2, |n| match n {
        n if is_float_kept(n) => GgmlType::F32,
        "blk.1.odd.weight" => GgmlType::F16,
        _ => GgmlType::Q4_0,
    });
}

#[test]
fn q4_k_m_mixture_and_fallbacks() {
    // use_more_bits(i, 2): only layer 1. attn_v / ffn_down of layer 1 want
    // Q6_K; ffn_down rows (96) fit no 256-block: Q4_K→Q5_0, Q6_K→Q8_0.
    check(&["--type", "q4_k"], 15, |n| match n {
        n if is_float_kept(n) => GgmlType::F32,
        "blk.1.odd.weight" => GgmlType::F16,
        "token_embd.weight" | "blk.1.attn_v.weight" => GgmlType::Q6_K,
        "blk.0.ffn_down.weight" => GgmlType::Q5_0,
        "blk.1.ffn_down.weight" => GgmlType::Q8_0,
        _ => GgmlType::Q4_K,
    });
}

#[test]
fn other_types() {
    for (ty, id, main, embd) in [
        ("q4_1", 3, GgmlType::Q4_1, GgmlType::Q6_K),
        ("q5_0", 8, GgmlType::Q5_0, GgmlType::Q6_K),
        ("q5_1", 9, GgmlType::Q5_1, GgmlType::Q6_K),
        ("q6_k", 18, GgmlType::Q6_K, GgmlType::Q6_K),
        ("f16", 1, GgmlType::F16, GgmlType::F16),
    ] {
        check(&["--type", ty, "-q"], id, |n| match n {
            n if is_float_kept(n) => GgmlType::F32,
            "blk.1.odd.weight" if main.is_quantized() => GgmlType::F16,
            "blk.1.odd.weight" => main,
            "token_embd.weight" => embd,
            // Q6_K's fallback for 96-wide rows.
            n if n.ends_with("ffn_down.weight") && main == GgmlType::Q6_K => GgmlType::Q8_0,
            _ => main,
        });
    }
}

#[test]
fn requantizes_through_f32() {
    let dir = tempfile::tempdir().unwrap();
    let (src, q41, q80) = (dir.path().join("f32.gguf"), dir.path().join("q4_1.gguf"), dir.path().join("q8_0.gguf"));
    tiny_model(&src);
    ok(&quantize(&[src.to_str().unwrap(), q41.to_str().unwrap(), "--type", "q4_1", "--pure", "-q"]));
    ok(&quantize(&[q41.to_str().unwrap(), q80.to_str().unwrap(), "--type", "q8_0", "-q"]));
    let (a, b) = (GgufFile::open(&q41).unwrap(), GgufFile::open(&q80).unwrap());
    let mut converted = 0;
    for t in a.tensors() {
        let u = b.tensor(&t.name).unwrap();
        if t.ty == GgmlType::Q4_1 {
            assert_eq!(u.ty, GgmlType::Q8_0, "{}", t.name);
            let f = dequantize_ref(t.ty, a.tensor_data(t), t.n_elements() as usize);
            assert!(b.tensor_data(u) == quantize_ref(GgmlType::Q8_0, &f, t.dims[0] as usize).as_slice(), "{}", t.name);
            converted += 1;
        } else {
            // f32 norms and the f16 fallback tensor: copied as they are.
            assert_eq!(u.ty, t.ty, "{}", t.name);
            assert!(b.tensor_data(u) == a.tensor_data(t), "{}", t.name);
        }
    }
    assert_eq!(converted, 1 + 7 * N_LAYER as usize);
}

#[test]
fn errors_are_clean() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("m.gguf");
    tiny_model(&src);
    let s = src.to_str().unwrap();
    let err = |o: Output| {
        assert!(!o.status.success());
        let e = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!e.contains("panicked"), "{e}");
        e
    };
    // Same file, also through another spelling of the path.
    let same = dir.path().join(".").join("m.gguf");
    for out in [s, same.to_str().unwrap()] {
        let e = err(quantize(&[s, out, "--type", "q8_0"]));
        assert!(e.contains("is the input file"), "{e}");
    }
    let e = err(quantize(&[s, dir.path().join("o.gguf").to_str().unwrap(), "--type", "iq2_xxs"]));
    assert!(e.contains("unknown type"), "{e}");
    let e = err(quantize(&[s, dir.path().join("no/such/dir/o.gguf").to_str().unwrap(), "--type", "q8_0"]));
    assert!(e.contains("does not exist"), "{e}");
    let e = err(quantize(&[dir.path().join("missing.gguf").to_str().unwrap(), "o.gguf", "--type", "q8_0"]));
    assert!(e.starts_with("error:"), "{e}");
    // Not a GGUF file.
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"not a gguf file at all").unwrap();
    let e = err(quantize(&[junk.to_str().unwrap(), dir.path().join("o.gguf").to_str().unwrap(), "--type", "q8_0"]));
    assert!(e.contains("junk.gguf"), "{e}");
    // Non-finite weights.
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", "llama").unwrap();
    w.add_metadata("llama.block_count", 1u32).unwrap();
    let mut v = vec![0.5f32; 64 * 2];
    v[70] = f32::NAN;
    w.add_f32_tensor("blk.0.attn_q.weight", &[64, 2], &v).unwrap();
    let nan = dir.path().join("nan.gguf");
    w.write_file(&nan).unwrap();
    let e = err(quantize(&[nan.to_str().unwrap(), dir.path().join("o.gguf").to_str().unwrap(), "--type", "q8_0"]));
    assert!(e.contains("blk.0.attn_q.weight") && e.contains("non-finite"), "{e}");
    assert!(!dir.path().join("o.gguf").exists());
    // Metadata the rules need.
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", "llama").unwrap();
    w.add_metadata("llama.block_count", Value::String("two".into())).unwrap();
    let bad = dir.path().join("bad.gguf");
    w.write_file(&bad).unwrap();
    let e = err(quantize(&[bad.to_str().unwrap(), dir.path().join("o.gguf").to_str().unwrap(), "--type", "q8_0"]));
    assert!(e.contains("llama.block_count"), "{e}");
}
