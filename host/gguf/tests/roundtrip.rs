//! Writer → reader round trips.

mod common;

use common::*;
use edgewasm_gguf::{Array, GgmlType, GgufError, GgufFile, GgufWriter, Value};
use proptest::prelude::*;

fn writer_with(metadata: &[(String, Value)]) -> GgufWriter {
    let mut w = GgufWriter::new();
    for (k, v) in metadata {
        w.add_metadata(k.clone(), v.clone()).unwrap();
    }
    w
}

#[test]
fn every_value_type_round_trips_in_v2_and_v3() {
    let metadata = every_value();
    for version in [2, 3] {
        let mut w = writer_with(&metadata);
        w.set_version(version).unwrap();
        let bytes = w.to_bytes().unwrap();
        assert_eq!(&bytes[4..8], &version.to_le_bytes());
        let f = GgufFile::from_bytes(&bytes).unwrap();
        assert_eq!(f.version(), version);
        assert_eq!(f.metadata(), metadata.as_slice());
        for (k, v) in &metadata {
            assert_eq!(f.get(k), Some(v), "{k}");
        }
        assert!(f.tensors().is_empty());
        assert_eq!(f.file_size(), bytes.len() as u64);
    }
}

#[test]
fn every_tensor_type_round_trips() {
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", "test").unwrap();
    let mut expected = Vec::new();
    for (i, ty) in GgmlType::ALL.into_iter().enumerate() {
        let row = ty.block_size() as u64 * 2;
        let dims: Vec<u64> = match i % 4 {
            0 => vec![row],
            1 => vec![row, 3],
            2 => vec![row, 2, 3],
            _ => vec![row, 1, 2, 2],
        };
        let n_rows: u64 = dims[1..].iter().product();
        let size = ty.row_bytes(row).unwrap() * n_rows;
        let data = pseudo_random_bytes(size as usize, i as u64 + 10);
        let name = format!("t.{}", ty.name());
        // The writer holds every type to ggml's size, one byte off either way.
        for wrong in [&data[1..], &[&data[..], &[0]].concat()[..]] {
            let e = w.clone().add_tensor(name.clone(), ty, &dims, wrong).map(|_| ()).unwrap_err();
            assert!(matches!(e, GgufError::TensorDataSize { expected, .. } if expected == size), "{ty}: {e}");
        }
        w.add_tensor(name.clone(), ty, &dims, data.clone()).unwrap();
        expected.push((name, ty, dims, data));
    }
    let f = GgufFile::from_bytes(&w.to_bytes().unwrap()).unwrap();
    assert_eq!(f.tensors().len(), expected.len());
    assert_eq!(f.data_offset() % 32, 0);
    for ((name, ty, dims, data), t) in expected.iter().zip(f.tensors()) {
        assert_eq!(&t.name, name);
        assert_eq!(t.ty, *ty);
        assert_eq!(&t.dims, dims);
        assert_eq!(t.offset % 32, 0);
        assert_eq!(t.size_bytes, data.len() as u64);
        assert_eq!(t.row_len(), dims[0]);
        assert_eq!(t.n_rows(), dims[1..].iter().product::<u64>());
        assert_eq!(t.n_elements(), dims.iter().product::<u64>());
        assert_eq!(f.tensor_data(t), data.as_slice());
        assert_eq!(f.tensor(name), Some(t));
        // Tensor data is aligned in memory, not just in the file.
        assert_eq!(f.tensor_data(t).as_ptr() as usize % 32, 0);
    }
}

#[test]
fn custom_alignment_is_honoured() {
    for align in [1u32, 8, 64, 4096] {
        let mut w = GgufWriter::new();
        w.set_alignment(align).unwrap();
        w.add_f32_tensor("a", &[3], &[1.0, 2.0, 3.0]).unwrap();
        w.add_f32_tensor("b", &[1], &[4.0]).unwrap();
        let f = GgufFile::from_bytes(&w.to_bytes().unwrap()).unwrap();
        assert_eq!(f.alignment(), u64::from(align));
        assert_eq!(f.data_offset() % u64::from(align), 0);
        let b = f.tensor("b").unwrap();
        assert_eq!(b.offset, 12u64.next_multiple_of(align.into()));
        assert_eq!(f.tensor_bytes("b").unwrap(), 4.0f32.to_le_bytes());
        assert_eq!(f.get_u32("general.alignment").unwrap(), Some(align));
    }
}

#[test]
fn open_maps_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.gguf");
    sample_writer().write_file(&path).unwrap();
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.as_bytes(), sample_bytes().as_slice());
    assert_eq!(f.architecture().unwrap(), "llama");
    assert_eq!(f.tensors().len(), 3);
    assert_eq!(f.tensor_bytes("norm.weight").unwrap().len(), 12);

    let missing = GgufFile::open(dir.path().join("nope.gguf")).unwrap_err();
    assert!(matches!(missing, GgufError::Io { .. }));
    assert!(missing.to_string().contains("nope.gguf"), "{missing}");

    let empty = dir.path().join("empty.gguf");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(
        GgufFile::open(&empty).unwrap_err(),
        GgufError::Truncated { .. }
    ));
}

#[test]
fn writer_output_is_laid_out_like_ggml() {
    let bytes = sample_bytes();
    let f = GgufFile::from_bytes(&bytes).unwrap();
    // Tensors are packed in order, each padded to the alignment.
    let mut expect = 0;
    for t in f.tensors() {
        assert_eq!(t.offset, expect);
        expect = (t.offset + t.size_bytes).next_multiple_of(32);
    }
    assert_eq!(f.data_offset() + expect, bytes.len() as u64);
    // Writing twice gives the same bytes, and write_to reports the length.
    let mut out = Vec::new();
    assert_eq!(
        sample_writer().write_to(&mut out).unwrap(),
        bytes.len() as u64
    );
    assert_eq!(out, bytes);
}

#[test]
fn empty_file_round_trips() {
    let bytes = GgufWriter::new().to_bytes().unwrap();
    let f = GgufFile::from_bytes(&bytes).unwrap();
    assert!(f.metadata().is_empty() && f.tensors().is_empty());
    assert!(
        matches!(f.architecture(), Err(GgufError::MissingKey(k)) if k == "general.architecture")
    );
    // With no tensors, the padding after the header is optional.
    assert!(GgufFile::from_bytes(&bytes[..24]).is_ok());
}

#[test]
fn writer_rejects_what_the_reader_would() {
    let mut w = GgufWriter::new();
    w.add_metadata("k", 1u8).unwrap();
    assert!(matches!(w.add_metadata("k", 2u8), Err(GgufError::DuplicateKey(k)) if k == "k"));
    assert!(matches!(
        w.add_metadata("", 2u8),
        Err(GgufError::EmptyName { .. })
    ));
    assert!(matches!(
        w.set_alignment(0),
        Err(GgufError::BadAlignment(0))
    ));
    assert!(matches!(
        w.set_alignment(48),
        Err(GgufError::BadAlignment(48))
    ));
    assert!(matches!(
        w.add_metadata("general.alignment", 32u64),
        Err(GgufError::MetadataType {
            expected: "u32",
            found: "u64",
            ..
        })
    ));
    assert!(matches!(
        w.set_version(1),
        Err(GgufError::UnsupportedWriteVersion(1))
    ));
    assert!(matches!(
        w.set_version(4),
        Err(GgufError::UnsupportedWriteVersion(4))
    ));

    w.add_f32_tensor("t", &[2], &[1.0, 2.0]).unwrap();
    assert!(
        matches!(w.add_f32_tensor("t", &[1], &[1.0]), Err(GgufError::DuplicateTensor(n)) if n == "t")
    );
    assert!(matches!(
        w.add_f32_tensor("", &[1], &[1.0]),
        Err(GgufError::EmptyName { .. })
    ));
    let long = "x".repeat(64);
    assert!(matches!(
        w.add_f32_tensor(long, &[1], &[1.0]),
        Err(GgufError::TooLarge { .. })
    ));
    assert!(matches!(
        w.add_f32_tensor("u", &[2], &[1.0]),
        Err(GgufError::TensorDataSize {
            expected: 8,
            found: 4,
            ..
        })
    ));
    assert!(matches!(
        w.add_f32_tensor("u", &[], &[]),
        Err(GgufError::BadDims { .. })
    ));
    assert!(matches!(
        w.add_f32_tensor("u", &[1, 0], &[]),
        Err(GgufError::BadDims { .. })
    ));
    assert!(matches!(
        w.add_f32_tensor("u", &[1; 5], &[1.0]),
        Err(GgufError::BadDims { .. })
    ));
    assert!(matches!(
        w.add_tensor("u", GgmlType::Q4_0, &[16], vec![]),
        Err(GgufError::BadDims { .. })
    ));
    assert!(matches!(
        w.add_f32_tensor("u", &[1 << 32, 1 << 32], &[]),
        Err(GgufError::Overflow { .. })
    ));
    assert!(matches!(
        w.add_f32_tensor("u", &[1 << 62], &[]),
        Err(GgufError::Overflow { .. })
    ));
    // Failed adds left nothing behind.
    let f = GgufFile::from_bytes(&w.to_bytes().unwrap()).unwrap();
    assert_eq!(f.metadata().len(), 1);
    assert_eq!(f.tensors().len(), 1);
}

#[test]
fn typed_getters() {
    let f = GgufFile::from_bytes(&writer_with(&every_value()).to_bytes().unwrap()).unwrap();
    assert_eq!(f.get_u64("t.u8").unwrap(), Some(200));
    assert_eq!(f.get_u64("t.u64").unwrap(), Some(u64::MAX));
    assert_eq!(f.get_u64("missing").unwrap(), None);
    assert!(matches!(
        f.get_u64("t.i8"),
        Err(GgufError::MetadataRange { key, expected: "u64", .. }) if key == "t.i8"
    ));
    assert!(matches!(
        f.get_u64("t.string"),
        Err(GgufError::MetadataType { key, expected: "u64", found: "string" }) if key == "t.string"
    ));
    assert_eq!(f.get_u32("t.u16").unwrap(), Some(60_000));
    assert!(matches!(
        f.get_u32("t.u64"),
        Err(GgufError::MetadataRange { .. })
    ));
    assert_eq!(f.get_i64("t.i64").unwrap(), Some(i64::MIN));
    assert_eq!(f.get_i64("t.i8").unwrap(), Some(-100));
    assert!(matches!(
        f.get_i64("t.u64"),
        Err(GgufError::MetadataRange { .. })
    ));
    assert!(matches!(
        f.get_i64("t.f32"),
        Err(GgufError::MetadataType { found: "f32", .. })
    ));
    assert_eq!(f.get_f32("t.f32").unwrap(), Some(-1.5e-7));
    assert_eq!(f.get_f32("t.f64").unwrap(), Some(std::f32::consts::PI));
    assert_eq!(f.get_f32("t.i16").unwrap(), Some(-30_000.0));
    assert!(matches!(
        f.get_f32("t.bool.true"),
        Err(GgufError::MetadataType { found: "bool", .. })
    ));
    assert_eq!(f.get_bool("t.bool.true").unwrap(), Some(true));
    assert!(matches!(
        f.get_bool("t.u8"),
        Err(GgufError::MetadataType {
            expected: "bool",
            found: "u8",
            ..
        })
    ));
    assert_eq!(f.get_str("t.string.empty").unwrap(), Some(""));
    assert!(matches!(
        f.get_str("t.arr.string"),
        Err(GgufError::MetadataType {
            found: "array[string]",
            ..
        })
    ));
    assert_eq!(
        f.get_str_array("t.arr.string").unwrap().unwrap(),
        ["a", "", "ü", "<|endoftext|>"]
    );
    assert!(matches!(
        f.get_str_array("t.arr.u8"),
        Err(GgufError::MetadataType {
            found: "array[u8]",
            ..
        })
    ));
    assert_eq!(f.get_f32_array("t.arr.f32").unwrap().unwrap().len(), 5);
    assert_eq!(
        f.get_f32_array("t.arr.empty").unwrap().unwrap(),
        &[] as &[f32]
    );
    assert!(matches!(
        f.get_f32_array("t.arr.f64"),
        Err(GgufError::MetadataType { .. })
    ));
    assert_eq!(f.get_i32_array("t.arr.i32").unwrap().unwrap()[0], i32::MIN);
    assert!(matches!(
        f.get_i32_array("t.arr.u32"),
        Err(GgufError::MetadataType { .. })
    ));
    assert_eq!(f.architecture().unwrap(), "llama");
    let err = f.get_u32("t.u64").unwrap_err().to_string();
    assert!(err.contains("t.u64") && err.contains("u32"), "{err}");
}

#[test]
fn architecture_must_be_a_string() {
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", 3u32).unwrap();
    let f = GgufFile::from_bytes(&w.to_bytes().unwrap()).unwrap();
    assert!(matches!(
        f.architecture(),
        Err(GgufError::MetadataType {
            expected: "string",
            ..
        })
    ));
}

#[test]
fn tensor_data_never_panics_on_foreign_infos() {
    let f = GgufFile::from_bytes(&sample_bytes()).unwrap();
    let mut t = f.tensors()[0].clone();
    t.offset = u64::MAX;
    assert!(f.tensor_data(&t).is_empty());
    t.offset = 0;
    t.size_bytes = f.file_size() * 2;
    assert!(f.tensor_data(&t).is_empty());
    assert_eq!(f.tensor_bytes("no such tensor"), None);
}

fn arb_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u8>().prop_map(Value::U8),
        any::<i8>().prop_map(Value::I8),
        any::<u16>().prop_map(Value::U16),
        any::<i16>().prop_map(Value::I16),
        any::<u32>().prop_map(Value::U32),
        any::<i32>().prop_map(Value::I32),
        any::<u64>().prop_map(Value::U64),
        any::<i64>().prop_map(Value::I64),
        // NaN != NaN would break the equality check; NaN payloads round-trip
        // bit-exactly all the same.
        any::<f32>()
            .prop_filter("not NaN", |f| !f.is_nan())
            .prop_map(Value::F32),
        any::<f64>()
            .prop_filter("not NaN", |f| !f.is_nan())
            .prop_map(Value::F64),
        any::<bool>().prop_map(Value::Bool),
        ".{0,20}".prop_map(Value::String),
    ]
}

fn arb_array() -> impl Strategy<Value = Array> {
    let leaf = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Array::U8),
        prop::collection::vec(any::<i16>(), 0..8).prop_map(Array::I16),
        prop::collection::vec(any::<u64>(), 0..8).prop_map(Array::U64),
        prop::collection::vec(-1e6f32..1e6, 0..8).prop_map(Array::F32),
        prop::collection::vec(any::<bool>(), 0..8).prop_map(Array::Bool),
        prop::collection::vec(".{0,8}", 0..8).prop_map(Array::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(Array::Array)
    })
}

fn arb_value() -> impl Strategy<Value = Value> {
    prop_oneof![arb_scalar(), arb_array().prop_map(Value::Array)]
}

proptest! {
    #[test]
    fn random_metadata_round_trips(
        values in prop::collection::vec(arb_value(), 0..12),
        version in 2u32..=3,
    ) {
        let metadata: Vec<(String, Value)> = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("k{i}"), v))
            .collect();
        let mut w = writer_with(&metadata);
        w.set_version(version).unwrap();
        w.add_f32_tensor("x", &[2], &[1.0, -1.0]).unwrap();
        let f = GgufFile::from_bytes(&w.to_bytes().unwrap()).unwrap();
        prop_assert_eq!(f.version(), version);
        prop_assert_eq!(f.metadata(), metadata.as_slice());
        prop_assert_eq!(f.tensor_bytes("x").unwrap().len(), 8);
    }
}
