//! Helpers shared by the integration tests: a raw byte builder for crafting
//! malformed files, and a small valid sample file.
#![allow(dead_code)]

use edgewasm_gguf::{Array, GgmlType, GgufWriter, Value};

/// GGUF value type ids, for hand-built files.
pub mod ty {
    pub const U8: u32 = 0;
    pub const I8: u32 = 1;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STRING: u32 = 8;
    pub const ARRAY: u32 = 9;
    pub const U64: u32 = 10;
}

/// Builds GGUF bytes field by field, so tests can put any lie anywhere.
#[derive(Clone, Default)]
pub struct Raw(pub Vec<u8>);

impl Raw {
    /// Magic, version and the two counts.
    pub fn header(version: u32, n_tensors: u64, n_kv: u64) -> Raw {
        Raw(b"GGUF".to_vec()).u32(version).u64(n_tensors).u64(n_kv)
    }

    pub fn u8(mut self, v: u8) -> Raw {
        self.0.push(v);
        self
    }

    pub fn u32(mut self, v: u32) -> Raw {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(mut self, v: u64) -> Raw {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bytes(mut self, b: &[u8]) -> Raw {
        self.0.extend_from_slice(b);
        self
    }

    /// A length-prefixed string of arbitrary bytes.
    pub fn str(self, s: impl AsRef<[u8]>) -> Raw {
        let s = s.as_ref();
        self.u64(s.len() as u64).bytes(s)
    }

    /// A key and value type id (the value follows).
    pub fn key(self, key: impl AsRef<[u8]>, type_id: u32) -> Raw {
        self.str(key).u32(type_id)
    }

    pub fn kv_u32(self, key: &str, v: u32) -> Raw {
        self.key(key, ty::U32).u32(v)
    }

    pub fn kv_str(self, key: &str, v: &str) -> Raw {
        self.key(key, ty::STRING).str(v)
    }

    /// A tensor info with a raw type id.
    pub fn tensor(self, name: impl AsRef<[u8]>, dims: &[u64], type_id: u32, offset: u64) -> Raw {
        let mut r = self.str(name).u32(dims.len() as u32);
        for &d in dims {
            r = r.u64(d);
        }
        r.u32(type_id).u64(offset)
    }

    /// Zero padding up to a multiple of `align`.
    pub fn pad(mut self, align: usize) -> Raw {
        while !self.0.len().is_multiple_of(align) {
            self.0.push(0);
        }
        self
    }

    pub fn zeros(mut self, n: usize) -> Raw {
        self.0.resize(self.0.len() + n, 0);
        self
    }
}

/// A file with no metadata and the given tensor infos (name, dims, type id,
/// offset), padded to 32 and followed by `data_len` zero bytes.
pub fn tensors_file(infos: &[(&str, &[u64], u32, u64)], data_len: usize) -> Vec<u8> {
    let mut r = Raw::header(3, infos.len() as u64, 0);
    for &(name, dims, ty, offset) in infos {
        r = r.tensor(name, dims, ty, offset);
    }
    r.pad(32).zeros(data_len).0
}

/// A file with one metadata pair whose key is `key`, value type `type_id`
/// and value bytes built by `value`, and no tensors.
pub fn kv_file(key: &str, type_id: u32, value: impl FnOnce(Raw) -> Raw) -> Vec<u8> {
    value(Raw::header(3, 0, 1).key(key, type_id)).0
}

/// Deterministic pseudo-random bytes (xorshift), so tests need no RNG crate.
pub fn pseudo_random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Metadata covering every value type, including nested and empty arrays.
pub fn every_value() -> Vec<(String, Value)> {
    let v: Vec<(&str, Value)> = vec![
        ("general.architecture", "llama".into()),
        ("t.u8", Value::U8(200)),
        ("t.i8", Value::I8(-100)),
        ("t.u16", Value::U16(60_000)),
        ("t.i16", Value::I16(-30_000)),
        ("t.u32", Value::U32(4_000_000_000)),
        ("t.i32", Value::I32(-2_000_000_000)),
        ("t.u64", Value::U64(u64::MAX)),
        ("t.i64", Value::I64(i64::MIN)),
        ("t.f32", Value::F32(-1.5e-7)),
        ("t.f64", Value::F64(std::f64::consts::PI)),
        ("t.bool.true", Value::Bool(true)),
        ("t.bool.false", Value::Bool(false)),
        ("t.string", "héllo wörld ✓ \u{1F980}".into()),
        ("t.string.empty", "".into()),
        ("t.arr.u8", vec![0u8, 1, 255].into()),
        ("t.arr.i8", vec![-128i8, 0, 127].into()),
        ("t.arr.u16", vec![0u16, 65535].into()),
        ("t.arr.i16", vec![-1i16, 1].into()),
        ("t.arr.u32", vec![u32::MAX, 0].into()),
        ("t.arr.i32", vec![i32::MIN, -1, 0, 1, i32::MAX].into()),
        ("t.arr.u64", vec![u64::MAX].into()),
        ("t.arr.i64", vec![i64::MIN, i64::MAX].into()),
        (
            "t.arr.f32",
            vec![0.0f32, -0.0, 1.0, f32::MAX, f32::INFINITY].into(),
        ),
        ("t.arr.f64", vec![f64::MIN_POSITIVE, -2.5].into()),
        ("t.arr.bool", vec![true, false, true].into()),
        ("t.arr.string", vec!["a", "", "ü", "<|endoftext|>"].into()),
        ("t.arr.empty", Value::Array(Array::F32(vec![]))),
        (
            "t.arr.nested",
            Value::Array(Array::Array(vec![
                Array::U8(vec![1, 2]),
                Array::String(vec!["x".into()]),
                Array::Array(vec![Array::Bool(vec![true]), Array::I64(vec![])]),
                Array::Array(vec![]),
            ])),
        ),
    ];
    v.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// A small valid file: a few metadata pairs and three tensors. The last
/// tensor's size is a multiple of the alignment, so the file has no trailing
/// padding and every proper prefix of it is invalid.
pub fn sample_writer() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", "llama").unwrap();
    w.add_metadata("llama.block_count", 2u32).unwrap();
    w.add_metadata("general.flag", true).unwrap();
    w.add_metadata("tokenizer.ggml.tokens", vec!["a", "bc"])
        .unwrap();
    w.add_metadata("tokenizer.ggml.scores", vec![0.5f32, -1.0])
        .unwrap();
    w.add_metadata(
        "t.nested",
        Value::Array(Array::Array(vec![
            Array::I32(vec![7]),
            Array::String(vec![]),
        ])),
    )
    .unwrap();
    w.add_f32_tensor("norm.weight", &[3], &[1.0, 2.0, 3.0])
        .unwrap();
    w.add_tensor(
        "blk.0.q",
        GgmlType::Q8_0,
        &[32, 2],
        pseudo_random_bytes(68, 1),
    )
    .unwrap();
    w.add_tensor(
        "blk.0.f16",
        GgmlType::F16,
        &[16, 2],
        pseudo_random_bytes(64, 2),
    )
    .unwrap();
    w
}

pub fn sample_bytes() -> Vec<u8> {
    sample_writer().to_bytes().unwrap()
}
