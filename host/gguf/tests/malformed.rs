//! Malformed files: each must give its specific typed error, never a panic.

mod common;

use std::time::{Duration, Instant};

use common::*;
use edgewasm_gguf::{GgufError, GgufFile, ParseLimits};

fn err(bytes: &[u8]) -> GgufError {
    match GgufFile::from_bytes(bytes) {
        Ok(f) => panic!("expected an error, parsed {f:?}"),
        Err(e) => e,
    }
}

/// Asserts the error's message mentions `needle` (the field/key/tensor).
fn mentions(e: &GgufError, needle: &str) {
    let msg = e.to_string();
    assert!(msg.contains(needle), "{msg:?} does not mention {needle:?}");
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = sample_bytes();
    GgufFile::from_bytes(&bytes).unwrap();
    for len in 0..bytes.len() {
        match GgufFile::from_bytes(&bytes[..len]) {
            Ok(_) => panic!("prefix of {len}/{} bytes parsed", bytes.len()),
            Err(GgufError::Truncated { what, offset }) => {
                assert!(!what.is_empty());
                assert!(offset <= len as u64, "{what} at {offset} > {len}");
            }
            Err(GgufError::TensorOutOfBounds { file_size, .. }) => {
                assert_eq!(file_size, len as u64)
            }
            Err(e) => panic!("prefix of {len} bytes: unexpected error {e}"),
        }
    }
}

#[test]
fn truncation_names_the_field() {
    let bytes = sample_bytes();
    let e = err(&bytes[..2]);
    mentions(&e, "magic");
    let e = err(&bytes[..6]);
    mentions(&e, "version");
    let e = err(&bytes[..12]);
    mentions(&e, "tensor_count");
    // Cut inside the first tensor info's dims.
    let f = GgufFile::from_bytes(&bytes).unwrap();
    let name_at = bytes.windows(11).position(|w| w == b"norm.weight").unwrap();
    let e = err(&bytes[..name_at + 11 + 4 + 3]);
    mentions(&e, "tensor info 0 (norm.weight) dims");
    // Cut inside the tensor data.
    let e = err(&bytes[..f.data_offset() as usize + 5]);
    assert!(
        matches!(e, GgufError::TensorOutOfBounds { ref tensor, .. } if tensor == "norm.weight")
    );
}

#[test]
fn bad_magic() {
    let mut bytes = sample_bytes();
    bytes[3] = b'G';
    let e = err(&bytes);
    assert!(matches!(e, GgufError::BadMagic { found } if &found == b"GGUG"));
    assert!(matches!(
        err(b"\0\0\0\0\x03\0\0\0"),
        GgufError::BadMagic { .. }
    ));
}

#[test]
fn bad_versions() {
    for v in [0, 1, 4, 0x0300_0000, u32::MAX] {
        let e = err(&Raw::header(v, 0, 0).0);
        assert!(
            matches!(e, GgufError::UnsupportedVersion(x) if x == v),
            "{v}: {e}"
        );
        mentions(&e, &v.to_string());
    }
    mentions(&err(&Raw::header(1, 0, 0).0), "v1");
    mentions(&err(&Raw::header(0x0300_0000, 0, 0).0), "big-endian");
}

#[test]
fn absurd_counts_fail_fast() {
    let start = Instant::now();
    for n in [u64::MAX, 1 << 63, 1 << 40, (1 << 20) + 1] {
        let e = err(&Raw::header(3, n, 0).0);
        assert!(
            matches!(e, GgufError::TooLarge { ref field, value, .. } if field == "tensor_count" && value == n)
        );
        let e = err(&Raw::header(3, 0, n).0);
        assert!(matches!(e, GgufError::TooLarge { ref field, .. } if field == "metadata_kv_count"));
    }
    // Within the limits, but more than the bytes left could hold.
    let e = err(&Raw::header(3, 1 << 20, 0).zeros(100).0);
    assert!(matches!(e, GgufError::Truncated { .. }));
    mentions(&e, "tensor_count");
    let e = err(&Raw::header(3, 0, 1000).zeros(100).0);
    assert!(matches!(e, GgufError::Truncated { .. }));
    mentions(&e, "metadata_kv_count");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn custom_limits() {
    let bytes = sample_bytes();
    let strict = |l: ParseLimits| GgufFile::from_bytes_with_limits(&bytes, l).unwrap_err();
    let d = ParseLimits::default();
    let e = strict(ParseLimits {
        max_tensors: 2,
        ..d
    });
    assert!(
        matches!(e, GgufError::TooLarge { ref field, value: 3, limit: 2 } if field == "tensor_count")
    );
    let e = strict(ParseLimits { max_kv: 5, ..d });
    assert!(matches!(e, GgufError::TooLarge { ref field, .. } if field == "metadata_kv_count"));
    let e = strict(ParseLimits {
        max_string_len: 4,
        ..d
    });
    assert!(matches!(e, GgufError::TooLarge { .. }));
    mentions(&e, "metadata key 0 length");
    let e = strict(ParseLimits {
        max_array_len: 1,
        ..d
    });
    mentions(&e, "tokenizer.ggml.tokens");
    let e = strict(ParseLimits {
        max_array_depth: 1,
        ..d
    });
    mentions(&e, "t.nested");
    mentions(&e, "nesting depth");
    let e = strict(ParseLimits { max_dims: 1, ..d });
    assert!(matches!(e, GgufError::BadDims { ref tensor, .. } if tensor == "blk.0.q"));
    let e = strict(ParseLimits {
        max_tensor_name_len: 7,
        ..d
    });
    mentions(&e, "tensor info 0 name length");
    assert!(GgufFile::from_bytes_with_limits(&bytes, d).is_ok());
}

#[test]
fn absurd_string_lengths() {
    // Key length.
    for len in [u64::MAX, 1 << 40] {
        let e = err(&Raw::header(3, 0, 1).u64(len).zeros(64).0);
        assert!(matches!(e, GgufError::TooLarge { value, .. } if value == len));
        mentions(&e, "metadata key 0 length");
    }
    let e = err(&Raw::header(3, 0, 1).u64(1000).zeros(64).0);
    assert!(matches!(e, GgufError::Truncated { .. }));
    mentions(&e, "metadata key 0");
    // Value length.
    let e = err(&kv_file("my.key", ty::STRING, |r| r.u64(u64::MAX)));
    assert!(matches!(e, GgufError::TooLarge { .. }));
    mentions(&e, "my.key");
    let e = err(&kv_file("my.key", ty::STRING, |r| {
        r.u64(1 << 20).bytes(b"abc")
    }));
    assert!(matches!(e, GgufError::Truncated { .. }));
    mentions(&e, "my.key");
    // Tensor name length.
    let e = err(&Raw::header(3, 1, 0).u64(u64::MAX).zeros(64).0);
    assert!(matches!(e, GgufError::TooLarge { .. }));
    mentions(&e, "tensor info 0 name length");
    let long = "n".repeat(64);
    let e = err(&tensors_file(&[(&long, &[1], 0, 0)], 32));
    assert!(matches!(
        e,
        GgufError::TooLarge {
            value: 64,
            limit: 63,
            ..
        }
    ));
}

#[test]
fn absurd_array_lengths_fail_fast() {
    let start = Instant::now();
    for elem in [ty::U8, ty::U64, ty::STRING, ty::ARRAY, ty::BOOL] {
        for n in [u64::MAX, 1 << 60, 1 << 27] {
            let e = err(&kv_file("arr", ty::ARRAY, |r| r.u32(elem).u64(n).zeros(64)));
            assert!(
                matches!(e, GgufError::TooLarge { value, .. } if value == n),
                "{e}"
            );
            mentions(&e, "arr");
        }
        // Under the limit, but more elements than bytes.
        let e = err(&kv_file("arr", ty::ARRAY, |r| {
            r.u32(elem).u64(1 << 25).zeros(64)
        }));
        assert!(matches!(e, GgufError::Truncated { .. }), "{e}");
        mentions(&e, "metadata 0 (arr) value");
    }
    // Nested: the inner array lies.
    let e = err(&kv_file("nest", ty::ARRAY, |r| {
        r.u32(ty::ARRAY).u64(1).u32(ty::STRING).u64(u64::MAX)
    }));
    assert!(matches!(e, GgufError::TooLarge { .. }));
    mentions(&e, "nest");
    mentions(&e, "element 0");
    // A string element lies about its length.
    let e = err(&kv_file("toks", ty::ARRAY, |r| {
        r.u32(ty::STRING).u64(2).str("ok").u64(u64::MAX - 1)
    }));
    assert!(matches!(e, GgufError::TooLarge { .. }));
    mentions(&e, "metadata 0 (toks) value element 1 length");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn deep_nesting_is_capped() {
    let mut r = Raw::header(3, 0, 1).key("deep", ty::ARRAY);
    for _ in 0..100 {
        r = r.u32(ty::ARRAY).u64(1);
    }
    let e = err(&r.u32(ty::U8).u64(0).0);
    assert!(
        matches!(
            e,
            GgufError::TooLarge {
                value: 9,
                limit: 8,
                ..
            }
        ),
        "{e}"
    );
    mentions(&e, "deep");
}

#[test]
fn bad_alignment() {
    for a in [0u32, 3, 48, u32::MAX] {
        let bytes = Raw::header(3, 0, 1).kv_u32("general.alignment", a).0;
        assert!(matches!(err(&bytes), GgufError::BadAlignment(x) if x == u64::from(a)));
    }
    let bytes = kv_file("general.alignment", ty::U64, |r| r.u64(32));
    let e = err(&bytes);
    assert!(
        matches!(e, GgufError::MetadataType { ref key, expected: "u32", found: "u64" } if key == "general.alignment")
    );
    let bytes = kv_file("general.alignment", ty::STRING, |r| r.str("32"));
    assert!(matches!(
        err(&bytes),
        GgufError::MetadataType {
            found: "string",
            ..
        }
    ));
}

#[test]
fn tensor_offsets_out_of_range() {
    for offset in [64, 1 << 40, u64::MAX - 31, 1 << 63] {
        let e = err(&tensors_file(&[("w", &[8], 0, offset)], 64));
        assert!(
            matches!(e, GgufError::TensorOutOfBounds { ref tensor, offset: o, size: 32, .. } if tensor == "w" && o == offset),
            "{e}"
        );
    }
    // Ends one byte past the end of the file.
    let e = err(&tensors_file(&[("w", &[8], 0, 0)], 31));
    assert!(matches!(e, GgufError::TensorOutOfBounds { .. }));
    assert!(GgufFile::from_bytes(&tensors_file(&[("w", &[8], 0, 0)], 32)).is_ok());
}

#[test]
fn misaligned_tensor() {
    let e = err(&tensors_file(&[("w", &[1], 0, 4)], 64));
    assert!(
        matches!(e, GgufError::TensorMisaligned { ref tensor, offset: 4, alignment: 32 } if tensor == "w")
    );
    // Fine with alignment 4.
    let bytes = Raw::header(3, 1, 1)
        .kv_u32("general.alignment", 4)
        .tensor("w", &[1], 0, 4)
        .pad(4)
        .zeros(8)
        .0;
    let f = GgufFile::from_bytes(&bytes).unwrap();
    assert_eq!(f.tensor("w").unwrap().offset, 4);
}

#[test]
fn overlapping_tensors() {
    // b starts inside a.
    let e = err(&tensors_file(
        &[("a", &[16], 0, 0), ("b", &[8], 0, 32)],
        128,
    ));
    assert!(
        matches!(e, GgufError::TensorOverlap { ref a, ref b } if a == "a" && b == "b"),
        "{e}"
    );
    // Same offset, listed in reverse order of offset with a third tensor.
    let e = err(&tensors_file(
        &[("c", &[8], 0, 64), ("x", &[8], 0, 0), ("y", &[8], 0, 0)],
        128,
    ));
    assert!(matches!(e, GgufError::TensorOverlap { .. }));
    mentions(&e, "\"x\"");
    mentions(&e, "\"y\"");
    // A small tensor inside a big one that is not its neighbour in file order.
    let e = err(&tensors_file(
        &[
            ("big", &[32], 0, 0),
            ("z", &[8], 0, 128),
            ("small", &[8], 0, 96),
        ],
        160,
    ));
    assert!(matches!(e, GgufError::TensorOverlap { ref a, ref b } if a == "big" && b == "small"));
    // Adjacent is fine, in any order.
    let ok = tensors_file(&[("b", &[8], 0, 32), ("a", &[8], 0, 0)], 64);
    assert!(GgufFile::from_bytes(&ok).is_ok());
}

#[test]
fn unknown_tensor_types() {
    // The ids ggml removed (Q4_2, Q4_3, the repacked Q4_0 and IQ4_NL
    // layouts) and ids past its last type.
    for id in [4, 5, 31, 32, 33, 36, 37, 38, 43, 1000, u32::MAX] {
        let e = err(&tensors_file(&[("blk.0.w", &[256], id, 0)], 1024));
        assert!(
            matches!(e, GgufError::UnknownTensorType { ref tensor, type_id } if tensor == "blk.0.w" && type_id == id)
        );
        mentions(&e, "\"blk.0.w\"");
        mentions(&e, &format!("type id {id}"));
    }
}

/// Types the engine cannot compute with are still ggml types: a file
/// holding them parses, with the sizes ggml gives them, so `inspect` can
/// show it and the model can refuse it by name.
#[test]
fn types_without_kernels_parse_with_ggml_sizes() {
    // (name, dims, type id, offset): IQ4_XS 136 bytes per 256, TQ2_0 66 per
    // 256, MXFP4 17 per 32; offsets are the previous end rounded up to 32.
    let infos: [(&str, &[u64], u32, u64); 3] = [
        ("blk.0.iq4_xs", &[512, 3], 23, 0),   // 2 * 136 * 3 = 816 bytes
        ("blk.0.tq2_0", &[256, 2], 35, 832),  // 66 * 2 = 132 bytes
        ("blk.0.mxfp4", &[64, 2], 39, 992),   // 2 * 17 * 2 = 68 bytes
    ];
    let f = GgufFile::from_bytes(&tensors_file(&infos, 992 + 68)).unwrap();
    let got: Vec<(&str, &str, u64)> = f.tensors().iter().map(|t| (t.name.as_str(), t.ty.name(), t.size_bytes)).collect();
    assert_eq!(got, [("blk.0.iq4_xs", "iq4_xs", 816), ("blk.0.tq2_0", "tq2_0", 132), ("blk.0.mxfp4", "mxfp4", 68)]);
    for t in f.tensors() {
        assert_eq!(f.tensor_data(t).len() as u64, t.size_bytes);
    }

    // One byte short of the last tensor's data.
    let e = err(&tensors_file(&infos, 992 + 67));
    assert!(matches!(e, GgufError::TensorOutOfBounds { ref tensor, size: 68, .. } if tensor == "blk.0.mxfp4"), "{e}");
    // Data laid out as if IQ4_XS took 134 bytes per block: the next tensor
    // starts inside it.
    let mut short = infos;
    short[1].3 = 800;
    let e = err(&tensors_file(&short, 992 + 68));
    assert!(matches!(e, GgufError::TensorOverlap { ref a, ref b } if a == "blk.0.iq4_xs" && b == "blk.0.tq2_0"), "{e}");
    // A row that is not whole blocks of the type.
    let e = err(&tensors_file(&[("blk.0.w", &[128], 23, 0)], 1024));
    assert!(matches!(e, GgufError::BadDims { ref tensor, .. } if tensor == "blk.0.w"), "{e}");
    mentions(&e, "iq4_xs block size 256");
}

#[test]
fn unknown_value_types() {
    for id in [13, 14, 1000, u32::MAX] {
        let e = err(&kv_file("k.x", id, |r| r.zeros(16)));
        assert!(
            matches!(e, GgufError::UnknownValueType { ref key, type_id } if key == "k.x" && type_id == id)
        );
        let e = err(&kv_file("k.y", ty::ARRAY, |r| r.u32(id).u64(1).zeros(16)));
        assert!(
            matches!(e, GgufError::UnknownValueType { ref key, type_id } if key == "k.y" && type_id == id)
        );
    }
}

#[test]
fn bad_dims() {
    let cases: &[(&[u64], u32)] = &[
        (&[], 0),              // no dims
        (&[1, 1, 1, 1, 1], 0), // too many
        (&[0], 0),             // zero
        (&[4, 0, 2], 0),       // zero later
        (&[33], 2),            // q4_0 row not a multiple of 32
        (&[100, 2], 12),       // q4_K row not a multiple of 256
    ];
    for &(dims, ty) in cases {
        let e = err(&tensors_file(&[("blk.0.w", dims, ty, 0)], 4096));
        assert!(
            matches!(e, GgufError::BadDims { ref tensor, .. } if tensor == "blk.0.w"),
            "{dims:?}: {e}"
        );
    }
    // n_dims = u32::MAX, with no dims following.
    let bytes = Raw::header(3, 1, 0).str("w").u32(u32::MAX).zeros(64).0;
    assert!(matches!(err(&bytes), GgufError::BadDims { .. }));
}

#[test]
fn overflowing_element_counts() {
    let cases: &[&[u64]] = &[
        &[1 << 32, 1 << 32],
        &[u64::MAX],
        &[1 << 63],
        &[2, 2, 1 << 62],
        &[u64::MAX, u64::MAX, u64::MAX, u64::MAX],
    ];
    for &dims in cases {
        let e = err(&tensors_file(&[("w", dims, 0, 0)], 64));
        assert!(matches!(e, GgufError::Overflow { .. }), "{dims:?}: {e}");
        mentions(&e, "tensor info 0 (w) element count");
    }
    // Element count fits, byte size does not (4 bytes per f32).
    let e = err(&tensors_file(&[("w", &[1 << 62], 0, 0)], 64));
    assert!(matches!(e, GgufError::Overflow { .. }));
    mentions(&e, "size in bytes");
}

#[test]
fn duplicates() {
    let bytes = Raw::header(3, 0, 3)
        .kv_u32("a", 1)
        .kv_str("b", "x")
        .kv_u32("a", 2)
        .0;
    assert!(matches!(err(&bytes), GgufError::DuplicateKey(k) if k == "a"));
    let bytes = tensors_file(
        &[("t", &[8], 0, 0), ("u", &[8], 0, 32), ("t", &[8], 0, 64)],
        96,
    );
    assert!(matches!(err(&bytes), GgufError::DuplicateTensor(n) if n == "t"));
}

#[test]
fn empty_names() {
    let e = err(&Raw::header(3, 0, 1).kv_u32("", 1).0);
    assert!(matches!(e, GgufError::EmptyName { .. }));
    mentions(&e, "metadata key 0");
    let e = err(&tensors_file(&[("", &[8], 0, 0)], 32));
    assert!(matches!(e, GgufError::EmptyName { .. }));
    mentions(&e, "tensor info 0 name");
}

#[test]
fn invalid_utf8() {
    let bad: &[u8] = b"ab\xff";
    let e = err(&Raw::header(3, 0, 1).key(bad, ty::U8).u8(0).0);
    assert!(matches!(e, GgufError::InvalidUtf8 { ref field } if field == "metadata key 0"));
    let e = err(&kv_file("s", ty::STRING, |r| r.str(bad)));
    assert!(matches!(e, GgufError::InvalidUtf8 { ref field } if field == "metadata 0 (s) value"));
    let e = err(&kv_file("s", ty::ARRAY, |r| {
        r.u32(ty::STRING).u64(2).str("ok").str(bad)
    }));
    assert!(
        matches!(e, GgufError::InvalidUtf8 { ref field } if field == "metadata 0 (s) value element 1")
    );
    // A surrogate encoded as if it were a scalar value (CESU-8) is invalid.
    let bytes = Raw::header(3, 1, 0)
        .tensor(b"w\xed\xa0\x80", &[8], 0, 0)
        .pad(32)
        .zeros(32)
        .0;
    assert!(
        matches!(err(&bytes), GgufError::InvalidUtf8 { ref field } if field == "tensor info 0 name")
    );
}

#[test]
fn invalid_bools() {
    let e = err(&kv_file("flag", ty::BOOL, |r| r.u8(2)));
    assert!(matches!(e, GgufError::InvalidBool { value: 2, .. }));
    mentions(&e, "flag");
    let e = err(&kv_file("flags", ty::ARRAY, |r| {
        r.u32(ty::BOOL).u64(3).bytes(&[1, 0, 255])
    }));
    assert!(
        matches!(e, GgufError::InvalidBool { ref field, value: 255 } if field == "metadata 0 (flags) value element 2")
    );
}

#[test]
fn missing_data_section_padding() {
    // The tensor infos end off-alignment and the file stops right there.
    let bytes = Raw::header(3, 1, 0).tensor("w", &[1], 0, 0).0;
    assert!(!bytes.len().is_multiple_of(32));
    let e = err(&bytes);
    assert!(matches!(e, GgufError::Truncated { .. }));
    mentions(&e, "padding");
}

#[test]
fn header_values_of_every_width_are_bounds_checked() {
    // A scalar whose bytes run past the end, for every fixed-size type.
    for (id, width) in [
        (0u32, 1usize),
        (1, 1),
        (2, 2),
        (3, 2),
        (4, 4),
        (5, 4),
        (6, 4),
        (7, 1),
        (10, 8),
        (11, 8),
        (12, 8),
    ] {
        let e = err(&kv_file("v", id, |r| r.zeros(width - 1)));
        // A 1-byte value missing entirely trips the up-front size check of
        // the header counts instead.
        let expected = if width == 1 {
            "1 metadata pairs"
        } else {
            "metadata 0 (v) value"
        };
        assert!(
            matches!(e, GgufError::Truncated { ref what, .. } if what.starts_with(expected)),
            "{id}: {e}"
        );
        assert!(GgufFile::from_bytes(&kv_file("v", id, |r| r.zeros(width))).is_ok());
    }
}
