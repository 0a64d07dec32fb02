//! [`GgufWriter`]: builds a GGUF v3 (or v2) file from metadata and tensors.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::reader::{GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, KEY_ALIGNMENT};
use crate::split::{self, KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT};
use crate::tensor::{GGML_MAX_DIMS, GGML_MAX_NAME_LEN};
use crate::value::{Array, Value};
use crate::{GgmlType, GgufError};

/// Collects metadata and tensors, then writes a GGUF file.
///
/// Everything the reader would reject is rejected when added, so a written
/// file always reads back (with default limits, as long as arrays nest at
/// most 8 deep and strings stay under 64 MiB). Metadata and tensors are
/// written in the order added; tensor data is padded to the alignment
/// (`general.alignment` if set, else 32), including after the last tensor,
/// as ggml does.
#[derive(Debug, Clone)]
pub struct GgufWriter {
    version: u32,
    alignment: u64,
    metadata: Vec<(String, Value)>,
    keys: HashSet<String>,
    tensors: Vec<PendingTensor>,
    tensor_names: HashSet<String>,
}

#[derive(Debug, Clone)]
struct PendingTensor {
    name: String,
    ty: GgmlType,
    dims: Vec<u64>,
    data: Vec<u8>,
}

/// How [`GgufWriter::split`] cuts a model into shards: llama.cpp's
/// `gguf-split` options. A shard is closed when adding the next tensor
/// would exceed either limit (a tensor larger than `max_bytes` gets a
/// shard of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitOptions {
    /// `--split-max-tensors`: most tensors per shard (gguf-split's default
    /// is 128).
    pub max_tensors: Option<usize>,
    /// `--split-max-size`: most bytes of tensor data per shard, each
    /// tensor's padded to the alignment.
    pub max_bytes: Option<u64>,
    /// `--no-tensor-first-split`: the first shard holds only the metadata.
    pub metadata_only_first: bool,
}

impl Default for SplitOptions {
    /// gguf-split's defaults: 128 tensors per shard.
    fn default() -> Self {
        SplitOptions::max_tensors(128)
    }
}

impl SplitOptions {
    /// At most `n` tensors per shard.
    pub fn max_tensors(n: usize) -> Self {
        SplitOptions {
            max_tensors: Some(n),
            max_bytes: None,
            metadata_only_first: false,
        }
    }

    /// At most `n` bytes of tensor data per shard.
    pub fn max_bytes(n: u64) -> Self {
        SplitOptions {
            max_tensors: None,
            max_bytes: Some(n),
            metadata_only_first: false,
        }
    }

    /// The first shard holds only the metadata.
    pub fn metadata_only_first(mut self, yes: bool) -> Self {
        self.metadata_only_first = yes;
        self
    }
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    /// An empty v3 file.
    pub fn new() -> Self {
        GgufWriter {
            version: 3,
            alignment: GGUF_DEFAULT_ALIGNMENT,
            metadata: Vec::new(),
            keys: HashSet::new(),
            tensors: Vec::new(),
            tensor_names: HashSet::new(),
        }
    }

    /// Chooses the version written: 3 (the default) or 2. The two are
    /// byte-identical apart from the version field for little-endian files.
    pub fn set_version(&mut self, version: u32) -> Result<&mut Self, GgufError> {
        if !(2..=3).contains(&version) {
            return Err(GgufError::UnsupportedWriteVersion(version));
        }
        self.version = version;
        Ok(self)
    }

    /// Sets `general.alignment` (a non-zero power of two).
    pub fn set_alignment(&mut self, alignment: u32) -> Result<&mut Self, GgufError> {
        self.add_metadata(KEY_ALIGNMENT, Value::U32(alignment))
    }

    /// Adds a metadata pair. Keys must be non-empty and unique;
    /// `general.alignment` must be a `U32` power of two and sets the data
    /// alignment.
    pub fn add_metadata(
        &mut self,
        key: impl Into<String>,
        value: impl Into<Value>,
    ) -> Result<&mut Self, GgufError> {
        let (key, value) = (key.into(), value.into());
        if key.is_empty() {
            return Err(GgufError::EmptyName {
                field: format!("metadata key {}", self.metadata.len()),
            });
        }
        if self.keys.contains(&key) {
            return Err(GgufError::DuplicateKey(key));
        }
        if key == KEY_ALIGNMENT {
            match value {
                Value::U32(a) if a.is_power_of_two() => self.alignment = a.into(),
                Value::U32(a) => return Err(GgufError::BadAlignment(a.into())),
                ref other => {
                    return Err(GgufError::MetadataType {
                        key,
                        expected: "u32",
                        found: other.type_name(),
                    })
                }
            }
        }
        self.keys.insert(key.clone());
        self.metadata.push((key, value));
        Ok(self)
    }

    /// Adds a tensor. `dims` are in ggml order (`dims[0]` is the row length)
    /// and `data` must be exactly `ty.row_bytes(dims[0]) * rows` bytes.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        ty: GgmlType,
        dims: &[u64],
        data: impl Into<Vec<u8>>,
    ) -> Result<&mut Self, GgufError> {
        let (name, data) = (name.into(), data.into());
        if name.is_empty() {
            return Err(GgufError::EmptyName {
                field: format!("tensor {} name", self.tensors.len()),
            });
        }
        if name.len() > GGML_MAX_NAME_LEN {
            return Err(GgufError::TooLarge {
                field: format!("tensor {name:?} name length"),
                value: name.len() as u64,
                limit: GGML_MAX_NAME_LEN as u64,
            });
        }
        if self.tensor_names.contains(&name) {
            return Err(GgufError::DuplicateTensor(name));
        }
        let expected = tensor_size(&name, ty, dims)?;
        if data.len() as u64 != expected {
            return Err(GgufError::TensorDataSize {
                tensor: name,
                expected,
                found: data.len() as u64,
            });
        }
        self.tensor_names.insert(name.clone());
        self.tensors.push(PendingTensor {
            name,
            ty,
            dims: dims.to_vec(),
            data,
        });
        Ok(self)
    }

    /// Adds an F32 tensor from values (stored little-endian).
    pub fn add_f32_tensor(
        &mut self,
        name: impl Into<String>,
        dims: &[u64],
        values: &[f32],
    ) -> Result<&mut Self, GgufError> {
        let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.add_tensor(name, GgmlType::F32, dims, data)
    }

    /// Cuts the model into the shards of a split model, as llama.cpp's
    /// `gguf-split --split` does: tensors are kept in order and spread by
    /// `opts`; the first shard has all the metadata, and every shard ends
    /// its metadata with `split.no` (u16), `split.tensors.count` (i32) and
    /// `split.count` (u16), gguf-split's types and order (any `split.*`
    /// keys of the model itself are replaced). Shards after the first have
    /// the default alignment, as gguf-split writes them. A model that fits
    /// in one shard gives one shard (`split.count` 1, which loaders read as
    /// unsplit). For the default alignment the shards are byte-identical to
    /// gguf-split's.
    pub fn split(&self, opts: SplitOptions) -> Result<Vec<GgufWriter>, GgufError> {
        if opts.max_tensors == Some(0) || opts.max_bytes == Some(0) {
            return Err(GgufError::BadSplitOptions(format!(
                "{opts:?}: limits must be positive"
            )));
        }
        let n_tensors = i32::try_from(self.tensors.len()).map_err(|_| GgufError::TooLarge {
            field: "tensor count of a split model (split.tensors.count is i32)".into(),
            value: self.tensors.len() as u64,
            limit: i32::MAX as u64,
        })?;
        // Group the tensors.
        let mut groups: Vec<Vec<&PendingTensor>> = vec![Vec::new()];
        if opts.metadata_only_first {
            groups.push(Vec::new());
        }
        let mut bytes = 0u64;
        for t in &self.tensors {
            let size = (t.data.len() as u64).next_multiple_of(self.alignment);
            let cur = groups.last_mut().expect("at least one group");
            let full = !cur.is_empty()
                && (opts.max_tensors.is_some_and(|n| cur.len() >= n)
                    || opts
                        .max_bytes
                        .is_some_and(|n| bytes.saturating_add(size) > n));
            if full {
                groups.push(Vec::new());
                bytes = 0;
            }
            groups.last_mut().expect("at least one group").push(t);
            bytes = bytes.saturating_add(size);
        }
        let count = u16::try_from(groups.len()).map_err(|_| GgufError::TooLarge {
            field: "shard count (split.count is u16)".into(),
            value: groups.len() as u64,
            limit: u16::MAX.into(),
        })?;
        let mut shards = Vec::with_capacity(groups.len());
        for (no, group) in (0u16..).zip(groups) {
            let mut w = GgufWriter::new();
            w.version = self.version;
            if no == 0 {
                for (k, v) in &self.metadata {
                    if ![KEY_SPLIT_NO, KEY_SPLIT_COUNT, KEY_SPLIT_TENSORS_COUNT]
                        .contains(&k.as_str())
                    {
                        w.add_metadata(k.clone(), v.clone())?;
                    }
                }
            }
            w.add_metadata(KEY_SPLIT_NO, Value::U16(no))?
                .add_metadata(KEY_SPLIT_TENSORS_COUNT, Value::I32(n_tensors))?
                .add_metadata(KEY_SPLIT_COUNT, Value::U16(count))?;
            for t in group {
                w.tensor_names.insert(t.name.clone());
                w.tensors.push(t.clone());
            }
            shards.push(w);
        }
        Ok(shards)
    }

    /// [`GgufWriter::split`], written to `{prefix}-00001-of-0000N.gguf`...
    /// (llama.cpp's naming, [`split::split_path`]); returns the paths in
    /// order.
    pub fn write_split(
        &self,
        prefix: impl AsRef<Path>,
        opts: SplitOptions,
    ) -> Result<Vec<PathBuf>, GgufError> {
        let shards = self.split(opts)?;
        let count = shards.len() as u16; // `split` checked it fits
        let mut paths = Vec::with_capacity(shards.len());
        for (no, w) in (0u16..).zip(&shards) {
            let path = split::split_path(prefix.as_ref(), no, count);
            w.write_file(&path)?;
            paths.push(path);
        }
        Ok(paths)
    }

    /// Writes the file to `w`, returning the number of bytes written.
    pub fn write_to(&self, mut w: impl Write) -> Result<u64, GgufError> {
        let io_err = |source| GgufError::Io {
            context: "cannot write GGUF data".into(),
            source,
        };
        let header = self.header();
        w.write_all(&header).map_err(io_err)?;
        let mut written = header.len() as u64;
        for t in &self.tensors {
            w.write_all(&t.data).map_err(io_err)?;
            let pad = padding(t.data.len() as u64, self.alignment);
            write_zeros(&mut w, pad).map_err(io_err)?;
            written += t.data.len() as u64 + pad;
        }
        Ok(written)
    }

    /// The whole file as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, GgufError> {
        let mut out = Vec::new();
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// Writes the file to `path` (created or truncated).
    pub fn write_file(&self, path: impl AsRef<Path>) -> Result<(), GgufError> {
        let path = path.as_ref();
        let io_err = |source| GgufError::Io {
            context: format!("cannot write {}", path.display()),
            source,
        };
        let mut w = BufWriter::new(File::create(path).map_err(io_err)?);
        self.write_to(&mut w).map_err(|e| match e {
            GgufError::Io { source, .. } => io_err(source),
            e => e,
        })?;
        w.flush().map_err(io_err)
    }

    /// Everything before the tensor data, padding included.
    fn header(&self) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&GGUF_MAGIC);
        h.extend_from_slice(&self.version.to_le_bytes());
        h.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        h.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_str(&mut h, key);
            h.extend_from_slice(&value.type_id().to_le_bytes());
            put_value(&mut h, value);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_str(&mut h, &t.name);
            h.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                h.extend_from_slice(&d.to_le_bytes());
            }
            h.extend_from_slice(&t.ty.id().to_le_bytes());
            h.extend_from_slice(&offset.to_le_bytes());
            let len = t.data.len() as u64;
            offset += len + padding(len, self.alignment);
        }
        let pad = padding(h.len() as u64, self.alignment);
        h.resize(h.len() + pad as usize, 0);
        h
    }
}

/// The byte size of a tensor of type `ty` and shape `dims`, validated as the
/// reader validates it.
fn tensor_size(name: &str, ty: GgmlType, dims: &[u64]) -> Result<u64, GgufError> {
    let bad = |reason: String| GgufError::BadDims {
        tensor: name.to_owned(),
        reason,
    };
    if dims.is_empty() || dims.len() > GGML_MAX_DIMS {
        return Err(bad(format!(
            "{} dims (must be 1 to {GGML_MAX_DIMS})",
            dims.len()
        )));
    }
    if let Some(j) = dims.iter().position(|&d| d == 0) {
        return Err(bad(format!("dimension {j} is 0")));
    }
    let n = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
    if n.is_none_or(|n| n > i64::MAX as u64) {
        return Err(GgufError::Overflow {
            field: format!("tensor {name:?} element count"),
        });
    }
    if !dims[0].is_multiple_of(ty.block_size() as u64) {
        return Err(bad(format!(
            "row length {} is not a multiple of the {ty} block size {}",
            dims[0],
            ty.block_size()
        )));
    }
    ty.row_bytes(dims[0])
        .and_then(|row| row.checked_mul(dims[1..].iter().product()))
        .ok_or_else(|| GgufError::Overflow {
            field: format!("tensor {name:?} size in bytes"),
        })
}

/// Writes `n` zero bytes without allocating `n` (alignments go up to 2^31).
fn write_zeros(w: &mut impl Write, mut n: u64) -> io::Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while n > 0 {
        let k = n.min(ZEROS.len() as u64);
        w.write_all(&ZEROS[..k as usize])?;
        n -= k;
    }
    Ok(())
}

fn padding(len: u64, alignment: u64) -> u64 {
    len.next_multiple_of(alignment) - len
}

fn put_str(h: &mut Vec<u8>, s: &str) {
    h.extend_from_slice(&(s.len() as u64).to_le_bytes());
    h.extend_from_slice(s.as_bytes());
}

fn put_value(h: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => h.push(*x),
        Value::I8(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::U64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => h.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => h.push(u8::from(*x)),
        Value::String(s) => put_str(h, s),
        Value::Array(a) => put_array(h, a),
    }
}

/// Element type, length, elements.
fn put_array(h: &mut Vec<u8>, a: &Array) {
    h.extend_from_slice(&a.elem_type_id().to_le_bytes());
    h.extend_from_slice(&(a.len() as u64).to_le_bytes());
    macro_rules! le {
        ($v:expr) => {
            for x in $v {
                h.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match a {
        Array::U8(v) => h.extend_from_slice(v),
        Array::I8(v) => le!(v),
        Array::U16(v) => le!(v),
        Array::I16(v) => le!(v),
        Array::U32(v) => le!(v),
        Array::I32(v) => le!(v),
        Array::U64(v) => le!(v),
        Array::I64(v) => le!(v),
        Array::F32(v) => le!(v),
        Array::F64(v) => le!(v),
        Array::Bool(v) => h.extend(v.iter().map(|&b| u8::from(b))),
        Array::String(v) => v.iter().for_each(|s| put_str(h, s)),
        Array::Array(v) => v.iter().for_each(|a| put_array(h, a)),
    }
}
