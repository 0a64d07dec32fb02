//! `edgewasm quantize` against llama.cpp's own `llama-quantize
//! --allow-requantize`, on the default model (SmolLM2-135M Q4_1, token_embd
//! Q8_0, tied embeddings) and on a tiny F32 model of every architecture:
//! every tensor has the same name, type, shape and bytes, the tensors come
//! in the same order, the metadata is the same (keys in the same order,
//! types and values), and so the whole files are byte-identical.
//!
//! The peer comes from scripts/build-peer.sh (`just peer`, a prerequisite of
//! `just test`): the test fails, never skips, without it.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use edgewasm_gguf::GgufFile;
use edgewasm_gguf::GgmlType;
use edgewasm_tests::{edgewasm, model_path, peer_bin, tiny_with_family_vocab, SMOLLM2, TINY_ARCHS};

/// Runs both quantizers on `input` to `ftype`, requires the files to be
/// identical, and returns ours with the number of tensors whose type changed.
fn same_as_llama_cpp(input: &Path, ftype: &str, want_file_type: u32) -> (GgufFile, usize) {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join(format!("ours-{ftype}.gguf"));
    let peer = dir.path().join(format!("peer-{ftype}.gguf"));

    let o = Command::new(edgewasm())
        .args(["quantize", "-q", "--type", ftype])
        .arg(input)
        .arg(&ours)
        .output()
        .expect("run edgewasm quantize");
    assert!(o.status.success(), "edgewasm quantize failed: {}", String::from_utf8_lossy(&o.stderr));
    eprintln!("{}", String::from_utf8_lossy(&o.stdout).trim_end());

    let o = Command::new(peer_bin("llama-quantize"))
        .arg("--allow-requantize")
        .arg(input)
        .arg(&peer)
        .arg(ftype.to_ascii_uppercase())
        .arg("2")
        .output()
        .expect("run llama-quantize");
    assert!(
        o.status.success(),
        "llama-quantize failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );

    let (a, b) = (open(&ours), open(&peer));
    let src = open(input);

    // Tensors: same set, same order, same type, shape and bytes.
    let names = |g: &GgufFile| g.tensors().iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b), "tensor names or order differ");
    assert_eq!(a.tensors().len(), src.tensors().len());
    let mut diffs = Vec::new();
    let mut converted = 0;
    for tb in b.tensors() {
        let ta = a.tensor(&tb.name).unwrap();
        if (ta.ty, &ta.dims) != (tb.ty, &tb.dims) {
            diffs.push(format!("{}: ours {} {:?}, llama.cpp {} {:?}", tb.name, ta.ty, ta.dims, tb.ty, tb.dims));
            continue;
        }
        let (da, db) = (a.tensor_data(ta), b.tensor_data(tb));
        if da != db {
            let n = da.iter().zip(db).filter(|(x, y)| x != y).count();
            diffs.push(format!("{} ({}): {n} of {} bytes differ", tb.name, tb.ty, db.len()));
        }
        converted += usize::from(src.tensor(&tb.name).unwrap().ty != tb.ty);
    }
    eprintln!(
        "{ftype}: {} tensors compared ({converted} converted), {} differ",
        b.tensors().len(),
        diffs.len()
    );
    assert!(diffs.is_empty(), "{} of {} tensors differ from llama.cpp's:\n{}", diffs.len(), b.tensors().len(), diffs.join("\n"));

    // Metadata: the same pairs.
    let kv = |g: &GgufFile| g.metadata().iter().map(|(k, v)| (k.clone(), v.clone())).collect::<HashMap<_, _>>();
    let (ka, kb) = (kv(&a), kv(&b));
    assert_eq!(ka.len(), kb.len(), "metadata key counts differ");
    for (k, v) in &kb {
        assert_eq!(ka.get(k), Some(v), "metadata {k} differs");
    }
    let keys = |g: &GgufFile| g.metadata().iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&a), keys(&b), "metadata order differs");
    assert_eq!(a.get_u32("general.file_type").unwrap(), Some(want_file_type));
    assert_eq!((a.version(), a.alignment(), a.data_offset()), (b.version(), b.alignment(), b.data_offset()));

    // Hence the files are the same, byte for byte.
    let (fa, fb) = (a.as_bytes(), b.as_bytes());
    assert_eq!(fa.len(), fb.len(), "file sizes differ");
    if let Some(i) = fa.iter().zip(fb).position(|(x, y)| x != y) {
        panic!("the files differ first at byte {i} (data section starts at {})", a.data_offset());
    }
    (a, converted)
}

/// The default model: the run must have converted something (Q4_1 →
/// target) and kept the Q8_0 token embeddings (tied: Q6_K wanted, row 576
/// → Q8_0 fallback).
fn smollm2_same_as_llama_cpp(ftype: &str, want_file_type: u32) {
    let (ours, converted) = same_as_llama_cpp(&model_path(SMOLLM2), ftype, want_file_type);
    assert_eq!(converted, 210, "expected the 210 Q4_1 matrices converted");
    assert_eq!(ours.tensor("token_embd.weight").unwrap().ty, GgmlType::Q8_0);
}

fn open(p: &Path) -> GgufFile {
    GgufFile::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn q8_0_is_byte_identical_to_llama_quantize() {
    smollm2_same_as_llama_cpp("q8_0", 7);
}

#[test]
fn q4_0_is_byte_identical_to_llama_quantize() {
    smollm2_same_as_llama_cpp("q4_0", 2);
}

/// IQ4_XS: the 576-wide matrices fall back to IQ4_NL (llama-quantize's 7
/// scale trials), the 1536-wide FFN down to IQ4_XS, its first layers Q5_K.
#[test]
fn iq4_xs_is_byte_identical_to_llama_quantize() {
    smollm2_same_as_llama_cpp("iq4_xs", 30);
}

/// Every architecture's tiny F32 model to Q8_0 and to the Q4_K_M mixture,
/// whose per-tensor choices depend on the architecture (attention V and
/// FFN down get more bits in some layers; experts, fused QKV).
#[test]
fn every_architecture_is_byte_identical_to_llama_quantize() {
    let dir = tempfile::tempdir().unwrap();
    for arch in TINY_ARCHS {
        let input = dir.path().join(format!("{arch}-f32.gguf"));
        std::fs::write(&input, tiny_with_family_vocab(arch, GgmlType::F32).gguf()).unwrap();
        for (ftype, file_type) in [("q8_0", 7), ("q4_k_m", 15)] {
            eprintln!("{arch}:");
            let (_, converted) = same_as_llama_cpp(&input, ftype, file_type);
            assert!(converted > 0, "{arch} {ftype}: nothing converted");
        }
    }
}
