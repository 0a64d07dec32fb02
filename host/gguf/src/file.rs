//! [`GgufFile`]: an open, validated GGUF file and its typed accessors.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use memmap2::{Mmap, MmapMut};

use crate::reader::{self, ParseLimits};
use crate::split::{self, KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT};
use crate::{GgufError, TensorInfo, Value};

/// The metadata key naming the model architecture.
pub const KEY_ARCHITECTURE: &str = "general.architecture";

/// One file of a model: the whole model, or one shard of a split model.
/// Its bytes are mapped (or held) for as long as the [`GgufFile`] lives.
pub struct Shard {
    /// The file's path, or a description of an in-memory buffer.
    path: PathBuf,
    /// The whole file. Page-aligned in both constructors, so tensor data is
    /// aligned to the file's alignment in memory as well as on disk.
    map: Mmap,
    /// Whether `map` is a shared mapping of a file (rather than anonymous
    /// memory holding a copy), so its pages can be dropped and re-read.
    file_backed: bool,
    version: u32,
    alignment: u64,
    data_offset: u64,
    n_tensors: usize,
}

impl fmt::Debug for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shard")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("file_size", &self.file_size())
            .field("alignment", &self.alignment)
            .field("data_offset", &self.data_offset)
            .field("tensors", &self.n_tensors)
            .finish_non_exhaustive()
    }
}

impl Shard {
    /// The file's path; for a buffer (`from_bytes`), `<in-memory shard N>`.
    pub fn path(&self) -> &Path {
        &self.path
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

    /// Size of the file in bytes.
    pub fn file_size(&self) -> u64 {
        self.map.len() as u64
    }

    /// The file's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.map
    }

    /// How many tensors this file holds.
    pub fn tensor_count(&self) -> usize {
        self.n_tensors
    }
}

/// An open GGUF model: the parsed header plus the bytes of its file, from
/// which tensor data is borrowed without copying.
///
/// A split model (`NAME-00001-of-0000N.gguf`... with `split.*` keys, as
/// llama.cpp's `gguf-split` writes them) opens as one: the metadata is the
/// first shard's (which holds all of it), the tensors are those of every
/// shard in order, each [`TensorInfo`] naming its [`shard`](TensorInfo::shard),
/// and every shard stays mapped, so [`tensor_data`](Self::tensor_data) is
/// zero-copy for all of them.
pub struct GgufFile {
    /// The model's files, the first one first: one for an unsplit model.
    shards: Vec<Shard>,
    metadata: Vec<(String, Value)>,
    key_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
}

impl fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GgufFile")
            .field("version", &self.version())
            .field("file_size", &self.file_size())
            .field("alignment", &self.alignment())
            .field("data_offset", &self.data_offset())
            .field("shards", &self.shards.len())
            .field("metadata", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .finish_non_exhaustive()
    }
}

/// The `split.*` keys of one shard, read as llama.cpp reads them (any
/// integer type is accepted here; llama.cpp wants exactly u16 and i32).
struct SplitKeys {
    no: Option<u16>,
    count: Option<u16>,
    tensors: Option<u64>,
}

impl GgufFile {
    /// Memory-maps and validates the file at `path`, with default limits.
    ///
    /// When the file is the first shard of a split model (`split.count` > 1),
    /// its other shards are found by llama.cpp's naming
    /// (`PREFIX-00002-of-0000N.gguf`, next to it), mapped and validated too,
    /// and the whole model opens as one: see [`GgufFile`]. Any other shard
    /// is refused ([`GgufError::SplitNotFirst`]), as llama.cpp refuses it.
    ///
    /// The files must not be modified or truncated while the `GgufFile` is
    /// alive: see [`GgufFile::open_with_limits`].
    pub fn open(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        Self::open_with_limits(path, ParseLimits::default())
    }

    /// Like [`GgufFile::open`], with explicit limits (applied to each file, and `max_tensors` to them all).
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
        let first = Self::open_shard_with_limits(path, limits)?;
        let Some(count) = first.first_shard_count()? else {
            return Ok(first);
        };
        let prefix =
            split::split_prefix(path, 0, count).ok_or_else(|| GgufError::SplitFileName {
                path: path.to_owned(),
                count,
            })?;
        let rest = (1..count).map(|i| {
            let p = split::split_path(&prefix, i, count);
            let shard = Self::open_shard_with_limits(&p, limits).map_err(|e| match e {
                GgufError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                    GgufError::SplitShardMissing {
                        path: p.clone(),
                        shard: i + 1,
                        count,
                        error: source,
                    }
                }
                e => e.in_file(&p),
            });
            (p, shard)
        });
        first.join_shards(count, rest, limits)
    }

    /// Opens a split model from the list of its files, in order (as
    /// llama.cpp's `llama_model_load_from_splits`), whatever they are
    /// named; with one file, the same as [`GgufFile::open`] on a file that
    /// is not split. The list must hold exactly `split.count` files.
    pub fn open_split(paths: &[impl AsRef<Path>]) -> Result<GgufFile, GgufError> {
        Self::open_split_with_limits(paths, ParseLimits::default())
    }

    /// Like [`GgufFile::open_split`], with explicit limits.
    pub fn open_split_with_limits(
        paths: &[impl AsRef<Path>],
        limits: ParseLimits,
    ) -> Result<GgufFile, GgufError> {
        let Some((first_path, others)) = paths.split_first() else {
            return Err(GgufError::BadSplitOptions("no files given".into()));
        };
        let first = Self::open_shard_with_limits(first_path.as_ref(), limits)?;
        first.join_given(
            limits,
            others.len() + 1,
            others.iter().map(|p| {
                let p = p.as_ref();
                (
                    p.to_owned(),
                    Self::open_shard_with_limits(p, limits).map_err(|e| e.in_file(p)),
                )
            }),
        )
    }

    /// Memory-maps and validates one file alone, with default limits: a
    /// whole model, or one shard of a split model with only its own
    /// metadata and tensors (its `split.*` keys are not followed).
    pub fn open_shard(path: impl AsRef<Path>) -> Result<GgufFile, GgufError> {
        Self::open_shard_with_limits(path, ParseLimits::default())
    }

    /// Like [`GgufFile::open_shard`], with explicit limits.
    pub fn open_shard_with_limits(
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
        Self::from_map(map, true, path.to_owned(), limits)
    }

    /// Validates a GGUF file held in memory, with default limits. The bytes
    /// are copied into a fresh page-aligned buffer, so tensor data has the
    /// same alignment as when mapped from a file. The first shard of a
    /// split model is refused ([`GgufError::SplitFilesGiven`]): see
    /// [`GgufFile::from_split_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<GgufFile, GgufError> {
        Self::from_bytes_with_limits(bytes, ParseLimits::default())
    }

    /// Like [`GgufFile::from_bytes`], with explicit limits.
    pub fn from_bytes_with_limits(
        bytes: &[u8],
        limits: ParseLimits,
    ) -> Result<GgufFile, GgufError> {
        Self::from_split_bytes_with_limits(&[bytes], limits)
    }

    /// A split model held in memory: the bytes of each of its shards, in
    /// order (named `<in-memory shard N>` in errors). With one buffer, the
    /// same as [`GgufFile::from_bytes`].
    pub fn from_split_bytes(shards: &[&[u8]]) -> Result<GgufFile, GgufError> {
        Self::from_split_bytes_with_limits(shards, ParseLimits::default())
    }

    /// Like [`GgufFile::from_split_bytes`], with explicit limits.
    pub fn from_split_bytes_with_limits(
        shards: &[&[u8]],
        limits: ParseLimits,
    ) -> Result<GgufFile, GgufError> {
        let Some((first_bytes, others)) = shards.split_first() else {
            return Err(GgufError::BadSplitOptions("no buffers given".into()));
        };
        let name = |i: usize| PathBuf::from(format!("<in-memory shard {}>", i + 1));
        let first = Self::from_memory(first_bytes, name(0), limits)?;
        first.join_given(
            limits,
            shards.len(),
            others.iter().enumerate().map(|(i, b)| {
                let p = name(i + 1);
                let shard = Self::from_memory(b, p.clone(), limits).map_err(|e| e.in_file(&p));
                (p, shard)
            }),
        )
    }

    /// One GGUF file held in memory, alone, with default limits: like
    /// [`GgufFile::open_shard`] (its `split.*` keys are not followed).
    pub fn from_shard_bytes(bytes: &[u8]) -> Result<GgufFile, GgufError> {
        Self::from_memory(
            bytes,
            PathBuf::from("<in-memory shard 1>"),
            ParseLimits::default(),
        )
    }

    /// One file copied into page-aligned anonymous memory.
    fn from_memory(
        bytes: &[u8],
        name: PathBuf,
        limits: ParseLimits,
    ) -> Result<GgufFile, GgufError> {
        let io_err = |source| GgufError::Io {
            context: format!("cannot allocate {} bytes for a GGUF buffer", bytes.len()),
            source,
        };
        let mut buf = MmapMut::map_anon(bytes.len()).map_err(io_err)?;
        buf.copy_from_slice(bytes);
        let map = buf.make_read_only().map_err(io_err)?;
        Self::from_map(map, false, name, limits)
    }

    fn from_map(
        map: Mmap,
        file_backed: bool,
        path: PathBuf,
        limits: ParseLimits,
    ) -> Result<GgufFile, GgufError> {
        let h = reader::parse(&map, limits)?;
        Ok(GgufFile {
            shards: vec![Shard {
                path,
                map,
                file_backed,
                version: h.version,
                alignment: h.alignment,
                data_offset: h.data_offset,
                n_tensors: h.tensors.len(),
            }],
            metadata: h.metadata,
            key_index: h.key_index,
            tensors: h.tensors,
            tensor_index: h.tensor_index,
        })
    }

    /// This single file's `split.*` keys; a key of the wrong type or out
    /// of range is an error naming the file.
    fn split_keys(&self) -> Result<SplitKeys, GgufError> {
        let path = &self.shards[0].path;
        let u16_key = |key: &str| {
            self.typed(key, "u16", |v| {
                v.is_integer()
                    .then(|| v.as_u64().and_then(|n| u16::try_from(n).ok()))
            })
            .map_err(|e| e.in_file(path))
        };
        Ok(SplitKeys {
            no: u16_key(KEY_SPLIT_NO)?,
            count: u16_key(KEY_SPLIT_COUNT)?,
            tensors: self
                .typed(
                    KEY_SPLIT_TENSORS_COUNT,
                    "a count (non-negative integer)",
                    |v| v.is_integer().then(|| v.as_u64()),
                )
                .map_err(|e| e.in_file(path))?,
        })
    }

    /// For a single file just opened as the file a model is opened from:
    /// `None` if it is not split (`split.count` absent, 0 or 1, as in
    /// llama.cpp), else `split.count`, after checking that the file is the
    /// first shard.
    fn first_shard_count(&self) -> Result<Option<u16>, GgufError> {
        let keys = self.split_keys()?;
        let count = match keys.count {
            Some(c) if c > 1 => c,
            _ => return Ok(None),
        };
        let path = &self.shards[0].path;
        match keys.no {
            None => Err(GgufError::SplitKey {
                path: path.clone(),
                key: KEY_SPLIT_NO,
                found: "absent".into(),
                expected: format!("0 (the first of split.count = {count} shards)"),
            }),
            Some(0) => Ok(Some(count)),
            Some(no) => Err(GgufError::SplitNotFirst {
                path: path.clone(),
                split_no: no,
                count,
                first: split::split_prefix(path, no, count).map(|p| split::split_path(p, 0, count)),
            }),
        }
    }

    /// [`Self::join_shards`] for an explicit list of `given` files (this
    /// one and `rest`), which must be all the shards.
    fn join_given(
        self,
        limits: ParseLimits,
        given: usize,
        rest: impl Iterator<Item = (PathBuf, Result<GgufFile, GgufError>)>,
    ) -> Result<GgufFile, GgufError> {
        match self.first_shard_count()? {
            None if given == 1 => Ok(self),
            None => Err(GgufError::SplitKey {
                path: self.shards[0].path.clone(),
                key: KEY_SPLIT_COUNT,
                found: self
                    .get_u64(KEY_SPLIT_COUNT)?
                    .map_or_else(|| "absent".into(), |c| c.to_string()),
                expected: format!("{given}, the number of files given"),
            }),
            Some(count) if usize::from(count) != given => Err(GgufError::SplitFilesGiven {
                path: self.shards[0].path.clone(),
                count,
                given,
            }),
            Some(count) => self.join_shards(count, rest, limits),
        }
    }

    /// Appends shards 1.. of a split model of `count` shards (this file
    /// being shard 0) in order, checking each one's `split.*` keys against
    /// its place and this file's, that no tensor name repeats, and that the
    /// total is this file's `split.tensors.count`, as llama.cpp does (and,
    /// further, each shard's `split.count` and `split.tensors.count` where
    /// present).
    fn join_shards(
        mut self,
        count: u16,
        rest: impl Iterator<Item = (PathBuf, Result<GgufFile, GgufError>)>,
        limits: ParseLimits,
    ) -> Result<GgufFile, GgufError> {
        let first_path = self.shards[0].path.clone();
        let n_tensors = self
            .split_keys()?
            .tensors
            .ok_or_else(|| GgufError::SplitKey {
                path: first_path.clone(),
                key: KEY_SPLIT_TENSORS_COUNT,
                found: "absent".into(),
                expected: format!("the number of tensors in all {count} shards"),
            })?;
        for (i, (path, shard)) in (1..count).zip(rest) {
            let mut shard = shard?;
            let keys = shard.split_keys()?;
            let mismatch = |key, found: Option<u64>, expected: String| GgufError::SplitKey {
                path: path.clone(),
                key,
                found: found.map_or_else(|| "absent".into(), |v| v.to_string()),
                expected,
            };
            if keys.no != Some(i) {
                let place = format!("{i} (shard {} of {count})", u32::from(i) + 1);
                return Err(mismatch(KEY_SPLIT_NO, keys.no.map(u64::from), place));
            }
            // llama.cpp reads only `split.no` from the other shards; a
            // shard that disagrees on the others belongs to another split.
            if let Some(c) = keys.count.filter(|&c| c != count) {
                let why = format!("{count}, as in {}", first_path.display());
                return Err(mismatch(KEY_SPLIT_COUNT, Some(c.into()), why));
            }
            if let Some(n) = keys.tensors.filter(|&n| n != n_tensors) {
                let why = format!("{n_tensors}, as in {}", first_path.display());
                return Err(mismatch(KEY_SPLIT_TENSORS_COUNT, Some(n), why));
            }
            let shard_tensors = std::mem::take(&mut shard.tensors);
            for mut t in shard_tensors {
                if let Some(&j) = self.tensor_index.get(&t.name) {
                    let first = self.shards[usize::from(self.tensors[j].shard)].path.clone();
                    return Err(GgufError::SplitDuplicateTensor {
                        name: t.name,
                        first,
                        second: path,
                    });
                }
                t.shard = i;
                self.tensor_index.insert(t.name.clone(), self.tensors.len());
                self.tensors.push(t);
            }
            if self.tensors.len() as u64 > limits.max_tensors {
                return Err(GgufError::TooLarge {
                    field: format!(
                        "tensor_count of the {count} shards of {}",
                        first_path.display()
                    ),
                    value: self.tensors.len() as u64,
                    limit: limits.max_tensors,
                });
            }
            self.shards.append(&mut shard.shards);
        }
        if self.shards.len() != usize::from(count) {
            // Only an explicit list can run out early, and its length was
            // checked; kept as an error rather than a panic all the same.
            return Err(GgufError::SplitFilesGiven {
                path: first_path,
                count,
                given: self.shards.len(),
            });
        }
        if self.tensors.len() as u64 != n_tensors {
            return Err(GgufError::SplitTensorCount {
                path: first_path,
                count,
                expected: n_tensors,
                found: self.tensors.len() as u64,
            });
        }
        Ok(self)
    }

    /// The model's files, the one opened first: one for an unsplit model.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The file the model was opened from (the first shard of a split model).
    fn main(&self) -> &Shard {
        &self.shards[0]
    }

    /// The GGUF version: 2 or 3 (of the first shard of a split model).
    pub fn version(&self) -> u32 {
        self.main().version
    }

    /// The data alignment: `general.alignment`, or 32 when absent (of the
    /// first shard of a split model: see [`Shard::alignment`]).
    pub fn alignment(&self) -> u64 {
        self.main().alignment
    }

    /// Absolute file offset of the tensor data section (of the first shard
    /// of a split model: see [`Shard::data_offset`]).
    pub fn data_offset(&self) -> u64 {
        self.main().data_offset
    }

    /// Size of the whole file in bytes; for a split model, of all its
    /// shards together.
    pub fn file_size(&self) -> u64 {
        self.shards.iter().map(Shard::file_size).sum()
    }

    /// The whole file's bytes (of the first shard of a split model).
    pub fn as_bytes(&self) -> &[u8] {
        self.main().as_bytes()
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

    /// An array of any integer type with no negative element, as `u64`s.
    pub fn get_u64_array(&self, key: &str) -> Result<Option<Vec<u64>>, GgufError> {
        self.typed(key, "array[integer]", |v| match v {
            Value::Array(a) => a.to_u64s(),
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
    /// its shard of this file, or an empty slice if those lie outside it or
    /// there is no such shard; it never panics.
    pub fn tensor_data(&self, t: &TensorInfo) -> &[u8] {
        let Some(shard) = self.shards.get(usize::from(t.shard)) else {
            return &[];
        };
        let range = shard
            .data_offset
            .checked_add(t.offset)
            .and_then(|start| Some((start, start.checked_add(t.size_bytes)?)))
            .and_then(|(s, e)| Some(usize::try_from(s).ok()?..usize::try_from(e).ok()?));
        range.and_then(|r| shard.map.get(r)).unwrap_or(&[])
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
        let Some(shard) = self.shards.get(usize::from(t.shard)) else {
            return;
        };
        let all = self.tensor_data(t);
        let data = &all[range.start.min(all.len())..range.end.min(all.len())];
        if !shard.file_backed || data.is_empty() {
            return;
        }
        // `data` lies in `shard.map` (`tensor_data` slices it).
        let offset = data.as_ptr() as usize - shard.map.as_ptr() as usize;
        // SAFETY: `map` is a read-only MAP_SHARED mapping of a file (checked
        // by `file_backed`). MADV_DONTNEED on such a mapping only removes
        // page-table entries: the next access reads the unchanged file pages
        // again, so every `&[u8]` into the map keeps its contents. (On
        // private or anonymous mappings it would zero pages, hence the check.)
        #[allow(unsafe_code)]
        let r = unsafe {
            shard
                .map
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, data.len())
        };
        // Advice is best-effort: failing to drop pages costs memory, not
        // correctness.
        let _ = r;
    }

    /// Drops this process's resident pages of the whole file (a no-op for
    /// GGUFs held in memory), as [`Self::release_tensor_pages`] does for
    /// one tensor: for a loader that has parsed the header (a large
    /// vocabulary's strings take megabytes there) and copied what it keeps
    /// elsewhere (norm vectors, convolution taps, interleaved weights).
    /// Pages read again later, such as those of matrices used in place,
    /// fault back in from the page cache or the file.
    pub fn release_pages(&self) {
        for shard in &self.shards {
            if !shard.file_backed || shard.map.is_empty() {
                continue;
            }
            // SAFETY: as in `release_tensor_range`: `map` is a read-only
            // MAP_SHARED mapping of a file, so dropped pages read back
            // unchanged; `0..len` is the whole mapping.
            #[allow(unsafe_code)]
            let r = unsafe { shard.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, 0, shard.map.len()) };
            // Best-effort, as there.
            let _ = r;
        }
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
