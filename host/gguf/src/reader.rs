//! The GGUF parser: turns the bytes of a file into validated metadata and
//! tensor infos. Works on a plain byte slice; [`crate::GgufFile`] owns the
//! bytes.
//!
//! Every count in the file is checked against [`ParseLimits`] and against the
//! bytes left in the file *before* anything is allocated for it, so a lying
//! header fails fast instead of allocating. Everything is linear in the size
//! of the header (duplicate checks use hash maps; the overlap check sorts the
//! tensors by offset, which is linear for the usual already-sorted files).

use std::collections::HashMap;

use crate::tensor::{GGML_MAX_DIMS, GGML_MAX_NAME_LEN};
use crate::value::{type_id, Array, Value};
use crate::{GgmlType, GgufError, TensorInfo};

/// `"GGUF"`.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// The alignment used when `general.alignment` is absent.
pub const GGUF_DEFAULT_ALIGNMENT: u64 = 32;
/// The metadata key that sets the alignment.
pub const KEY_ALIGNMENT: &str = "general.alignment";

/// Caps on what a file may claim, so that hostile files cannot make the
/// parser allocate or loop without bound. The defaults admit every real model
/// we know of with a wide margin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseLimits {
    /// Most tensors (`tensor_count`; for a split model, in all its shards
    /// together). Default 2^20.
    pub max_tensors: u64,
    /// Most metadata pairs (`metadata_kv_count`). Default 2^20.
    pub max_kv: u64,
    /// Longest string (keys and values), in bytes. Default 64 MiB.
    pub max_string_len: u64,
    /// Longest array, in elements. Default 2^26 (vocabularies are ~2^18).
    pub max_array_len: u64,
    /// Deepest nesting of arrays (1 = arrays of scalars). Default 8.
    pub max_array_depth: u32,
    /// Most dimensions per tensor. Default 4 (`GGML_MAX_DIMS`).
    pub max_dims: u32,
    /// Longest tensor name, in bytes. Default 63 (ggml's `GGML_MAX_NAME` - 1),
    /// so that every file accepted here is loadable by ggml too.
    pub max_tensor_name_len: u64,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits {
            max_tensors: 1 << 20,
            max_kv: 1 << 20,
            max_string_len: 64 << 20,
            max_array_len: 1 << 26,
            max_array_depth: 8,
            max_dims: GGML_MAX_DIMS as u32,
            max_tensor_name_len: GGML_MAX_NAME_LEN as u64,
        }
    }
}

/// The parsed header of a GGUF file.
#[derive(Debug)]
pub(crate) struct Header {
    pub version: u32,
    pub alignment: u64,
    pub data_offset: u64,
    pub metadata: Vec<(String, Value)>,
    pub key_index: HashMap<String, usize>,
    pub tensors: Vec<TensorInfo>,
    pub tensor_index: HashMap<String, usize>,
}

// Smallest possible encodings, used to reject counts that cannot fit in the
// bytes left before allocating anything for them.
/// key length + 1-byte key + type + 1-byte value.
const MIN_KV_BYTES: u64 = 8 + 1 + 4 + 1;
/// name length + 1-byte name + n_dims + one dim + type + offset.
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 1 + 4 + 8 + 4 + 8;
/// Initial capacity cap for vectors whose final length comes from the file:
/// they grow as elements are actually parsed.
const MAX_PREALLOC: usize = 4096;

/// Smallest encoding of one array element of value type `ty`, or `None` for
/// an unknown type.
fn min_elem_bytes(ty: u32) -> Option<u64> {
    Some(match ty {
        type_id::U8 | type_id::I8 | type_id::BOOL => 1,
        type_id::U16 | type_id::I16 => 2,
        type_id::U32 | type_id::I32 | type_id::F32 => 4,
        type_id::U64 | type_id::I64 | type_id::F64 => 8,
        type_id::STRING => 8,
        type_id::ARRAY => 4 + 8,
        _ => return None,
    })
}

/// A bounds-checked little-endian reader over the file bytes.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }

    fn offset(&self) -> u64 {
        self.pos as u64
    }

    /// Takes `n` bytes, or fails naming `what`.
    fn take(&mut self, n: u64, what: impl FnOnce() -> String) -> Result<&'a [u8], GgufError> {
        if n > self.remaining() {
            return Err(GgufError::Truncated {
                what: what(),
                offset: self.offset(),
            });
        }
        // `n <= remaining <= usize::MAX`, so the cast is lossless.
        let bytes = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(bytes)
    }

    fn array<const N: usize>(
        &mut self,
        what: impl FnOnce() -> String,
    ) -> Result<[u8; N], GgufError> {
        let bytes = self.take(N as u64, what)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self, what: impl FnOnce() -> String) -> Result<u8, GgufError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, GgufError> {
        self.array(what).map(u32::from_le_bytes)
    }

    fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, GgufError> {
        self.array(what).map(u64::from_le_bytes)
    }

    /// A length-prefixed UTF-8 string of at most `max_len` bytes.
    fn string(&mut self, field: &dyn Fn() -> String, max_len: u64) -> Result<String, GgufError> {
        let len = self.u64(|| format!("{} length", field()))?;
        if len > max_len {
            return Err(GgufError::TooLarge {
                field: format!("{} length", field()),
                value: len,
                limit: max_len,
            });
        }
        let bytes = self.take(len, || format!("{} ({len} bytes)", field()))?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(GgufError::InvalidUtf8 { field: field() }),
        }
    }
}

fn parse_bool(byte: u8, field: impl FnOnce() -> String) -> Result<bool, GgufError> {
    // Stricter than ggml (which takes any non-zero byte as true): writers only
    // produce 0 and 1, and anything else means we are reading garbage.
    match byte {
        0 => Ok(false),
        1 => Ok(true),
        value => Err(GgufError::InvalidBool {
            field: field(),
            value,
        }),
    }
}

/// Decodes a byte slice of whole little-endian elements.
macro_rules! decode_le {
    ($bytes:expr, $t:ty) => {{
        let (chunks, _) = $bytes.as_chunks::<{ size_of::<$t>() }>();
        chunks.iter().map(|c| <$t>::from_le_bytes(*c)).collect()
    }};
}

struct Parser<'a> {
    c: Cursor<'a>,
    limits: ParseLimits,
}

impl Parser<'_> {
    /// Reads a scalar or array value of type `ty` for metadata `key`.
    fn value(
        &mut self,
        ty: u32,
        key: &str,
        field: &dyn Fn() -> String,
    ) -> Result<Value, GgufError> {
        let c = &mut self.c;
        Ok(match ty {
            type_id::U8 => Value::U8(c.u8(field)?),
            type_id::I8 => Value::I8(c.array(field).map(i8::from_le_bytes)?),
            type_id::U16 => Value::U16(c.array(field).map(u16::from_le_bytes)?),
            type_id::I16 => Value::I16(c.array(field).map(i16::from_le_bytes)?),
            type_id::U32 => Value::U32(c.u32(field)?),
            type_id::I32 => Value::I32(c.array(field).map(i32::from_le_bytes)?),
            type_id::U64 => Value::U64(c.u64(field)?),
            type_id::I64 => Value::I64(c.array(field).map(i64::from_le_bytes)?),
            type_id::F32 => Value::F32(c.array(field).map(f32::from_le_bytes)?),
            type_id::F64 => Value::F64(c.array(field).map(f64::from_le_bytes)?),
            type_id::BOOL => Value::Bool(parse_bool(c.u8(field)?, field)?),
            type_id::STRING => Value::String(c.string(field, self.limits.max_string_len)?),
            type_id::ARRAY => Value::Array(self.array(key, field, 1)?),
            type_id => {
                return Err(GgufError::UnknownValueType {
                    key: key.to_owned(),
                    type_id,
                })
            }
        })
    }

    /// Reads an array (element type, length, elements) at nesting `depth`.
    fn array(
        &mut self,
        key: &str,
        field: &dyn Fn() -> String,
        depth: u32,
    ) -> Result<Array, GgufError> {
        let limits = self.limits;
        if depth > limits.max_array_depth {
            return Err(GgufError::TooLarge {
                field: format!("{} array nesting depth", field()),
                value: depth.into(),
                limit: limits.max_array_depth.into(),
            });
        }
        let ty = self.c.u32(|| format!("{} array element type", field()))?;
        let n = self.c.u64(|| format!("{} array length", field()))?;
        if n > limits.max_array_len {
            return Err(GgufError::TooLarge {
                field: format!("{} array length", field()),
                value: n,
                limit: limits.max_array_len,
            });
        }
        let min = min_elem_bytes(ty).ok_or_else(|| GgufError::UnknownValueType {
            key: key.to_owned(),
            type_id: ty,
        })?;
        // Fail before allocating if the elements cannot possibly fit.
        let min_total = n.checked_mul(min).filter(|&b| b <= self.c.remaining());
        let Some(min_total) = min_total else {
            return Err(GgufError::Truncated {
                what: format!("{} ({n} elements of at least {min} bytes)", field()),
                offset: self.c.offset(),
            });
        };
        // Fixed-size elements: `min_total` is exactly their size.
        let mut fixed = || self.c.take(min_total, field);
        Ok(match ty {
            type_id::U8 => Array::U8(fixed()?.to_vec()),
            type_id::I8 => Array::I8(decode_le!(fixed()?, i8)),
            type_id::U16 => Array::U16(decode_le!(fixed()?, u16)),
            type_id::I16 => Array::I16(decode_le!(fixed()?, i16)),
            type_id::U32 => Array::U32(decode_le!(fixed()?, u32)),
            type_id::I32 => Array::I32(decode_le!(fixed()?, i32)),
            type_id::U64 => Array::U64(decode_le!(fixed()?, u64)),
            type_id::I64 => Array::I64(decode_le!(fixed()?, i64)),
            type_id::F32 => Array::F32(decode_le!(fixed()?, f32)),
            type_id::F64 => Array::F64(decode_le!(fixed()?, f64)),
            type_id::BOOL => Array::Bool(
                fixed()?
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| parse_bool(b, || format!("{} element {i}", field())))
                    .collect::<Result<_, _>>()?,
            ),
            type_id::STRING => {
                let mut out = Vec::with_capacity((n as usize).min(MAX_PREALLOC));
                for i in 0..n {
                    let elem = || format!("{} element {i}", field());
                    out.push(self.c.string(&elem, limits.max_string_len)?);
                }
                Array::String(out)
            }
            // `min_elem_bytes` rejected every other type id.
            _ => {
                let mut out = Vec::with_capacity((n as usize).min(MAX_PREALLOC));
                for i in 0..n {
                    let elem = || format!("{} element {i}", field());
                    out.push(self.array(key, &elem, depth + 1)?);
                }
                Array::Array(out)
            }
        })
    }
}

/// Parses and validates a whole GGUF file held in `buf`.
pub(crate) fn parse(buf: &[u8], limits: ParseLimits) -> Result<Header, GgufError> {
    let file_size = buf.len() as u64;
    let mut p = Parser {
        c: Cursor { buf, pos: 0 },
        limits,
    };

    let magic = p.c.array::<4>(|| "magic".into())?;
    if magic != GGUF_MAGIC {
        return Err(GgufError::BadMagic { found: magic });
    }
    let version = p.c.u32(|| "version".into())?;
    // v2 and v3 are identical for little-endian files (v3 added big-endian
    // support, which we reject); v1 used 32-bit counts and lengths.
    if !(2..=3).contains(&version) {
        return Err(GgufError::UnsupportedVersion(version));
    }
    let n_tensors = p.c.u64(|| "tensor_count".into())?;
    if n_tensors > limits.max_tensors {
        return Err(GgufError::TooLarge {
            field: "tensor_count".into(),
            value: n_tensors,
            limit: limits.max_tensors,
        });
    }
    let n_kv = p.c.u64(|| "metadata_kv_count".into())?;
    if n_kv > limits.max_kv {
        return Err(GgufError::TooLarge {
            field: "metadata_kv_count".into(),
            value: n_kv,
            limit: limits.max_kv,
        });
    }
    // Both counts are below 2^64 / 2^6, so this cannot overflow in u128.
    let min_header = u128::from(n_kv) * u128::from(MIN_KV_BYTES)
        + u128::from(n_tensors) * u128::from(MIN_TENSOR_INFO_BYTES);
    if min_header > u128::from(p.c.remaining()) {
        return Err(GgufError::Truncated {
            what: format!("{n_kv} metadata pairs (metadata_kv_count) and {n_tensors} tensor infos (tensor_count)"),
            offset: p.c.offset(),
        });
    }

    let mut metadata: Vec<(String, Value)> = Vec::with_capacity((n_kv as usize).min(MAX_PREALLOC));
    let mut key_index = HashMap::with_capacity((n_kv as usize).min(MAX_PREALLOC));
    for i in 0..n_kv {
        let key =
            p.c.string(&|| format!("metadata key {i}"), limits.max_string_len)?;
        if key.is_empty() {
            return Err(GgufError::EmptyName {
                field: format!("metadata key {i}"),
            });
        }
        if key_index.contains_key(&key) {
            return Err(GgufError::DuplicateKey(key));
        }
        let field = || format!("metadata {i} ({key}) value");
        let ty = p.c.u32(|| format!("metadata {i} ({key}) value type"))?;
        let value = p.value(ty, &key, &field)?;
        key_index.insert(key.clone(), metadata.len());
        metadata.push((key, value));
    }

    let alignment = match key_index.get(KEY_ALIGNMENT).map(|&i| &metadata[i].1) {
        None => GGUF_DEFAULT_ALIGNMENT,
        Some(Value::U32(a)) if a.is_power_of_two() => u64::from(*a),
        Some(Value::U32(a)) => return Err(GgufError::BadAlignment(u64::from(*a))),
        Some(other) => {
            return Err(GgufError::MetadataType {
                key: KEY_ALIGNMENT.into(),
                expected: "u32",
                found: other.type_name(),
            })
        }
    };

    let mut tensors: Vec<TensorInfo> = Vec::with_capacity((n_tensors as usize).min(MAX_PREALLOC));
    let mut tensor_index = HashMap::with_capacity((n_tensors as usize).min(MAX_PREALLOC));
    for i in 0..n_tensors {
        let info = tensor_info(&mut p, i)?;
        if tensor_index.contains_key(&info.name) {
            return Err(GgufError::DuplicateTensor(info.name));
        }
        tensor_index.insert(info.name.clone(), tensors.len());
        tensors.push(info);
    }

    let header_end = p.c.offset();
    // `header_end <= file_size < 2^64 - 2^32`, so aligning cannot overflow.
    let aligned = header_end.next_multiple_of(alignment);
    let data_offset = if aligned <= file_size {
        aligned
    } else if tensors.is_empty() {
        // Nothing follows the header, so the padding is optional (ggml does
        // not pad a tensor-less file either).
        header_end
    } else {
        return Err(GgufError::Truncated {
            what: "padding before the tensor data section".into(),
            offset: header_end,
        });
    };

    check_tensor_placement(&tensors, alignment, data_offset, file_size)?;

    Ok(Header {
        version,
        alignment,
        data_offset,
        metadata,
        key_index,
        tensors,
        tensor_index,
    })
}

/// Reads and validates the `i`th tensor info (all but its placement).
fn tensor_info(p: &mut Parser<'_>, i: u64) -> Result<TensorInfo, GgufError> {
    let limits = p.limits;
    let name = p.c.string(
        &|| format!("tensor info {i} name"),
        limits.max_tensor_name_len,
    )?;
    if name.is_empty() {
        return Err(GgufError::EmptyName {
            field: format!("tensor info {i} name"),
        });
    }
    let field = |what: &str| format!("tensor info {i} ({name}) {what}");
    let bad_dims = |reason: String| GgufError::BadDims {
        tensor: name.clone(),
        reason,
    };

    let n_dims = p.c.u32(|| field("n_dims"))?;
    if n_dims == 0 {
        return Err(bad_dims("n_dims is 0".into()));
    }
    if n_dims > limits.max_dims {
        return Err(bad_dims(format!(
            "n_dims is {n_dims}, more than the maximum of {}",
            limits.max_dims
        )));
    }
    let dim_bytes = p.c.take(u64::from(n_dims) * 8, || field("dims"))?;
    let (dim_chunks, _) = dim_bytes.as_chunks::<8>();
    let dims: Vec<u64> = dim_chunks.iter().map(|c| u64::from_le_bytes(*c)).collect();
    if let Some(j) = dims.iter().position(|&d| d == 0) {
        return Err(bad_dims(format!("dimension {j} is 0 (dims {dims:?})")));
    }
    // ggml stores element counts as int64_t.
    let n_elements = dims
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64);
    if n_elements.is_none() {
        return Err(GgufError::Overflow {
            field: format!("{} (dims {dims:?})", field("element count")),
        });
    }

    let type_id = p.c.u32(|| field("type"))?;
    let ty = GgmlType::from_id(type_id).ok_or_else(|| GgufError::UnknownTensorType {
        tensor: name.clone(),
        type_id,
    })?;
    let block = ty.block_size() as u64;
    if !dims[0].is_multiple_of(block) {
        return Err(bad_dims(format!(
            "row length {} is not a multiple of the {ty} block size {block}",
            dims[0]
        )));
    }
    let n_rows = dims[1..].iter().product::<u64>(); // bounded by n_elements
    let size_bytes = ty
        .row_bytes(dims[0])
        .and_then(|row| row.checked_mul(n_rows))
        .ok_or_else(|| GgufError::Overflow {
            field: field("size in bytes"),
        })?;

    let offset = p.c.u64(|| field("offset"))?;
    Ok(TensorInfo {
        name,
        dims,
        ty,
        offset,
        size_bytes,
        shard: 0,
    })
}

/// Checks that every tensor is aligned, inside the file and disjoint from
/// every other.
fn check_tensor_placement(
    tensors: &[TensorInfo],
    alignment: u64,
    data_offset: u64,
    file_size: u64,
) -> Result<(), GgufError> {
    for t in tensors {
        if !t.offset.is_multiple_of(alignment) {
            return Err(GgufError::TensorMisaligned {
                tensor: t.name.clone(),
                offset: t.offset,
                alignment,
            });
        }
        let end = data_offset
            .checked_add(t.offset)
            .and_then(|start| start.checked_add(t.size_bytes));
        if end.is_none_or(|end| end > file_size) {
            return Err(GgufError::TensorOutOfBounds {
                tensor: t.name.clone(),
                offset: t.offset,
                size: t.size_bytes,
                data_offset,
                file_size,
            });
        }
    }

    // Sorted by start, a tensor overlaps some earlier one iff it starts
    // before the furthest end seen so far. The stable sort is linear on the
    // already-sorted order writers produce.
    let mut order: Vec<&TensorInfo> = tensors.iter().collect();
    order.sort_by_key(|t| t.offset);
    let mut furthest: Option<&TensorInfo> = None;
    for t in order {
        if let Some(prev) = furthest {
            // Both ends were bounds-checked above, so no overflow.
            if t.offset < prev.offset + prev.size_bytes {
                return Err(GgufError::TensorOverlap {
                    a: prev.name.clone(),
                    b: t.name.clone(),
                });
            }
        }
        // Sizes are non-zero, so with no overlap each tensor ends furthest.
        furthest = Some(t);
    }
    Ok(())
}
