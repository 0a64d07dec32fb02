//! [`GgufFile`]: an open, validated GGUF file and its typed accessors.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::path::Path;

use memmap2::{Mmap, MmapMut};

use crate::reader::{self, ParseLimits};
use crate::{GgufError, TensorInfo, Value};

/// The metadata key naming the model architecture.
pub const KEY_ARCHITECTURE: &str = "general.architecture";

/// An open GGUF file: the parsed header plus the bytes of the whole file,
/// from which tensor data is borrowed without copying.
pub struct GgufFile {
    /// The whole file. Page-aligned in both constructors, so tensor data is
    /// aligned to the file's alignment in memory as well as on disk.
    map: Mmap,
    /// Whether `map` is a shared mapping of a file (rather than anonymous
    /// memory holding a copy), so its pages can be dropped and re-read.
    file_backed: bool,
    version: u32,
    alignment: u64,
    data_offset: u64,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version)
            .field("file_size", &self.file_size())
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish_non_exhaustive()
    }
}

impl GgufFile {
    /// Memory-maps and validates the file at `path`, with default limits.
    ///
    /// The file must not be modified or truncated while the `GgufFile` is
    /// alive: see [`GgufFile::open_with_limits`].
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        Self::open_with_limits(path, ParseLimits::default())
    }

    /// Like [`GgufFile::open`], with explicit limits.
    ///
    /// Tensor data is not copied: it is read from the map on access. As with
    /// every mmap-based model loader (llama.cpp included), the file is assumed
    /// not to change while mapped; another process truncating it makes later
    /// accesses fault (SIGBUS), and rewriting it in place changes the bytes
    /// under our feet.
    pub fn open_with_limits(
        path: impl AsRef<Path>,
        limits: ParseLimits,
    ) -> Result<GgufFile, GgufError> {
        let path = path.as_ref();
        let io_err = |what: &str| {
            let context = format!("{what} {}", path.display());
            move |source| GgufError::Io { context, source }
        };
        let file = File::open(path).map_err(io_err("cannot open"))?;
        // SAFETY: `Mmap::map` is unsafe because the mapping aliases the file:
        // if another process truncates or writes the file while it is mapped,
        // the `&[u8]` we hand out could change or fault, which Rust cannot
        // rule out. We map read-only and never write through the map, and we
        // document (on `open_with_limits`) that model files must not be
        // modified while open — the same assumption every mmap-based loader
        // makes. The mapping lives exactly as long as the `GgufFile`.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(&file) }.map_err(io_err("cannot memory-map"))?;
        let mut g = Self::from_map(map, limits)?;
        g.file_backed = true;
        Ok(g)
    }

    /// Validates a GGUF file held in memory, with default limits. The bytes
    /// are copied into a fresh page-aligned buffer, so tensor data has the
    /// same alignment as when mapped from a file.
    pub fn from_bytes(bytes: &[u8]) -> Result<GgufFile, GgufError> {
        Self::from_bytes_with_limits(bytes, ParseLimits::default())
    }

    /// Like [`GgufFile::from_bytes`], with explicit limits.
    pub fn from_bytes_with_limits(
        bytes: &[u8],
        limits: ParseLimits,
    ) -> Result<GgufFile, GgufError> {
        let io_err = |source| GgufError::Io {
            context: format!("cannot allocate {} bytes for a GGUF buffer", bytes.len()),
            source,
        };
        let mut buf = MmapMut::map_anon(bytes.len()).map_err(io_err)?;
        buf.copy_from_slice(bytes);
        let map = buf.make_read_only().map_err(io_err)?;
        Self::from_map(map, limits)
    }

    fn from_map(map: Mmap, limits: ParseLimits) -> Result<GgufFile, GgufError> {
        let h = reader::parse(&map, limits)?;
        Ok(GgufFile {
            map,
            file_backed: false,
            version: h.version,
            alignment: h.alignment,
            data_offset: h.data_offset,
            metadata: h.metadata,
            key_index: h.key_index,
            tensors: h.tensors,
            tensor_index: h.tensor_index,
        })
    }

    /// The GGUF version: 2 or 3.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The data alignment: `general.alignment`, or 32 when absent.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Absolute file offset of the tensor data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// Size of the whole file in bytes.
    pub fn file_size(&self) -> u64 {
        self.map.len() as u64
    }

    /// The whole file's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.map
    }

    /// All metadata pairs, in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// The value of metadata `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.key_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// Looks `key` up and converts it with `conv`, which returns `None` on a
    /// type mismatch (reported as `MetadataType`) and `Some(None)` on a
    /// matching type whose value is out of range (reported as `MetadataRange`).
    fn typed<'a, T>(
        &'a self,
        key: &str,
        expected: &'static str,
        conv: impl FnOnce(&'a Value) -> Option<Option<T>>,
    ) -> Result<Option<T>, GgufError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match conv(v) {
            Some(Some(t)) => Ok(Some(t)),
            Some(None) => Err(GgufError::MetadataRange {
                key: key.to_owned(),
                value: v.to_string(),
                expected,
            }),
            None => Err(GgufError::MetadataType {
                key: key.to_owned(),
                expected,
                found: v.type_name(),
            }),
        }
    }

    /// Any integer type holding a non-negative value.
    pub fn get_u64(&self, key: &str) -> Result<Option<u64>, GgufError> {
        self.typed(key, "u64", |v| v.is_integer().then(|| v.as_u64()))
    }

    /// Any integer type holding a value in `0..=u32::MAX`.
    pub fn get_u32(&self, key: &str) -> Result<Option<u32>, GgufError> {
        self.typed(key, "u32", |v| v.is_integer().then(|| v.as_u32()))
    }

    /// Any integer type holding a value that fits in `i64`.
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>, GgufError> {
        self.typed(key, "i64", |v| v.is_integer().then(|| v.as_i64()))
    }

    /// F32, F64 (rounded) or any integer. A finite F64 too large for f32 is
    /// a `MetadataRange` error.
    pub fn get_f32(&self, key: &str) -> Result<Option<f32>, GgufError> {
        self.typed(key, "f32", |v| match v {
            Value::F32(_) | Value::F64(_) => Some(v.as_f32()),
            _ => v.is_integer().then(|| v.as_f32()),
        })
    }

    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        self.typed(key, "bool", |v| v.as_bool().map(Some))
    }

    pub fn get_str(&self, key: &str) -> Result<Option<&str>, GgufError> {
        self.typed(key, "string", |v| v.as_str().map(Some))
    }

    pub fn get_str_array(&self, key: &str) -> Result<Option<&[String]>, GgufError> {
        self.typed(key, "array[string]", |v| match v {
            Value::Array(crate::Array::String(a)) => Some(Some(a.as_slice())),
            _ => None,
        })
    }

    /// Exactly an `array[f32]` (no conversion, so the slice can be borrowed).
    pub fn get_f32_array(&self, key: &str) -> Result<Option<&[f32]>, GgufError> {
        self.typed(key, "array[f32]", |v| match v {
            Value::Array(crate::Array::F32(a)) => Some(Some(a.as_slice())),
            _ => None,
        })
    }

    /// Exactly an `array[i32]`.
    pub fn get_i32_array(&self, key: &str) -> Result<Option<&[i32]>, GgufError> {
        self.typed(key, "array[i32]", |v| match v {
            Value::Array(crate::Array::I32(a)) => Some(Some(a.as_slice())),
            _ => None,
        })
    }

    /// `general.architecture` (e.g. `"llama"`), which every model must have.
    pub fn architecture(&self) -> Result<&str, GgufError> {
        self.get_str(KEY_ARCHITECTURE)?
            .ok_or_else(|| GgufError::MissingKey(KEY_ARCHITECTURE.into()))
    }

    /// All tensor infos, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor named `name`, if present.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    /// The data of tensor `t` (zero-copy; its bounds were validated at open).
    ///
    /// `t` should come from this file's [`tensors`](Self::tensors). For any
    /// other `TensorInfo` this returns the bytes at its offset and size in
    /// this file, or an empty slice if those lie outside it; it never panics.
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let range = self
            .data_offset
            .checked_add(t.offset)
            .and_then(|start| Some((start, start.checked_add(t.size_bytes)?)))
            .and_then(|(s, e)| Some(usize::try_from(s).ok()?..usize::try_from(e).ok()?));
        range.and_then(|r| self.map.get(r)).unwrap_or(&[])
    }

    /// Drops this process's resident pages of `t`'s data when they are pages
    /// of the file (a no-op for GGUFs held in memory): for tensors whose data
    /// was copied elsewhere (interleaved weights), so they stop counting in
    /// the process's RSS. Reading the data again later faults the same bytes
    /// back in from the page cache or the file.
    pub fn release_tensor_pages(&self, t: &TensorInfo) {
        self.release_tensor_range(t, 0..usize::MAX);
    }

    /// [`Self::release_tensor_pages`] for bytes `range` of `t`'s data
    /// (clamped to it; pages straddling the ends are released too, which
    /// is harmless: they are read back on the next access).
    pub fn release_tensor_range(&self, t: &TensorInfo, range: std::ops::Range<usize>) {
        let all = self.tensor_data(t);
        let data = &all[range.start.min(all.len())..range.end.min(all.len())];
        if !self.file_backed || data.is_empty() {
            return;
        }
        let offset = data.as_ptr() as usize - self.map.as_ptr() as usize;
        // SAFETY: `map` is a read-only MAP_SHARED mapping of a file (checked
        // by `file_backed`). MADV_DONTNEED on such a mapping only removes
        // page-table entries: the next access reads the unchanged file pages
        // again, so every `&[u8]` into the map keeps its contents. (On
        // private or anonymous mappings it would zero pages, hence the check.)
        #[allow(unsafe_code)]
        let r = unsafe {
            self.map
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, data.len())
        };
        // Advice is best-effort: failing to drop pages costs memory, not
        // correctness.
        let _ = r;
    }

    /// The data of the tensor named `name`, if present.
    pub fn tensor_bytes(&self, name: &str) -> Option<&[u8]> {
        self.tensor(name).map(|t| self.tensor_data(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn gguf_file_is_send_and_sync() {
        assert_send_sync::<GgufFile>();
    }
}
