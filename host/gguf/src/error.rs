//! The crate's error type.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong reading or writing a GGUF file.
///
/// Each variant names the field, metadata key or tensor at fault, so that a
/// message like "tensor info 3 (blk.0.attn_q.weight) dims" points straight at
/// the lie in a malformed file.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum GgufError {
    /// An I/O error opening, mapping or writing a file.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },

    /// The file does not start with `GGUF`.
    #[error("bad magic {found:02x?} (expected \"GGUF\"); not a GGUF file")]
    BadMagic { found: [u8; 4] },

    /// Only versions 2 and 3 are supported.
    #[error("unsupported GGUF version {0}{hint}", hint = version_hint(*.0))]
    UnsupportedVersion(u32),

    /// The file ends before `what` could be read in full.
    #[error("file truncated: not enough bytes for {what} at offset {offset}")]
    Truncated { what: String, offset: u64 },

    /// A count or length exceeds a [`ParseLimits`](crate::ParseLimits) limit.
    #[error("{field} is {value}, more than the limit of {limit}")]
    TooLarge {
        field: String,
        value: u64,
        limit: u64,
    },

    /// A string is not valid UTF-8.
    #[error("{field} is not valid UTF-8")]
    InvalidUtf8 { field: String },

    /// A key or tensor name is empty.
    #[error("{field} is empty")]
    EmptyName { field: String },

    /// A boolean byte other than 0 or 1.
    #[error("{field} is a bool with byte value {value} (must be 0 or 1)")]
    InvalidBool { field: String, value: u8 },

    /// A metadata value (or array element) type id outside the GGUF table.
    #[error("metadata key {key:?} has unknown value type id {type_id}")]
    UnknownValueType { key: String, type_id: u32 },

    /// A tensor type id ggml does not define (removed from it, or newer
    /// than this crate's table).
    #[error("tensor {tensor:?} has unknown ggml type id {type_id}")]
    UnknownTensorType { tensor: String, type_id: u32 },

    /// The same metadata key appears twice.
    #[error("duplicate metadata key {0:?}")]
    DuplicateKey(String),

    /// The same tensor name appears twice.
    #[error("duplicate tensor name {0:?}")]
    DuplicateTensor(String),

    /// `general.alignment` is zero or not a power of two.
    #[error("general.alignment is {0}; it must be a non-zero power of two")]
    BadAlignment(u64),

    /// A tensor's shape is invalid (no dims, too many, a zero dim, or a row
    /// that is not a whole number of blocks).
    #[error("tensor {tensor:?} has bad dims: {reason}")]
    BadDims { tensor: String, reason: String },

    /// An arithmetic overflow computing a size or offset from file values.
    #[error("{field} overflows")]
    Overflow { field: String },

    /// A tensor's data does not lie within the file.
    #[error(
        "tensor {tensor:?} data (offset {offset} + {size} bytes, relative to the data section \
         at {data_offset}) extends past the end of the file ({file_size} bytes)"
    )]
    TensorOutOfBounds {
        tensor: String,
        offset: u64,
        size: u64,
        data_offset: u64,
        file_size: u64,
    },

    /// A tensor's offset is not a multiple of the file's alignment.
    #[error("tensor {tensor:?} offset {offset} is not a multiple of the alignment {alignment}")]
    TensorMisaligned {
        tensor: String,
        offset: u64,
        alignment: u64,
    },

    /// Two tensors' data ranges overlap.
    #[error("tensors {a:?} and {b:?} have overlapping data")]
    TensorOverlap { a: String, b: String },

    /// A metadata value has a different type than the caller asked for.
    #[error("metadata key {key:?} has type {found}, expected {expected}")]
    MetadataType {
        key: String,
        expected: &'static str,
        found: &'static str,
    },

    /// A metadata value has the right kind of type but does not fit the
    /// requested one (a negative count, a u64 above `u32::MAX`...).
    #[error("metadata key {key:?} value {value} does not fit in {expected}")]
    MetadataRange {
        key: String,
        value: String,
        expected: &'static str,
    },

    /// A required metadata key is absent.
    #[error("missing required metadata key {0:?}")]
    MissingKey(String),

    /// Writer: a tensor's data length does not match its type and dims.
    #[error("tensor {tensor:?} data is {found} bytes, but its type and dims need {expected}")]
    TensorDataSize {
        tensor: String,
        expected: u64,
        found: u64,
    },

    /// Writer: the requested GGUF version cannot be written.
    #[error("cannot write GGUF version {0} (only 2 and 3)")]
    UnsupportedWriteVersion(u32),

    /// An error in one file of a split model, naming the file: a shard
    /// that is not GGUF, or is malformed; a `split.*` key of the wrong type.
    #[error("{}: {error}", path.display())]
    InFile {
        path: PathBuf,
        error: Box<GgufError>,
    },

    /// A file of a split model other than the first was opened: llama.cpp
    /// too loads a split model only from its first shard.
    #[error(
        "{} is shard {} of {count} of a split model (split.no = {split_no}); open the first shard{}",
        path.display(),
        u32::from(*split_no) + 1,
        first.as_deref().map(|p| format!(", {}", p.display())).unwrap_or_default()
    )]
    SplitNotFirst {
        path: PathBuf,
        split_no: u16,
        count: u16,
        /// The first shard's path, when `path` is named as llama.cpp names
        /// shards.
        first: Option<PathBuf>,
    },

    /// The first shard of a split model is not named as llama.cpp names
    /// shards, so the others cannot be found.
    #[error(
        "{} is the first of {count} shards of a split model (split.count = {count}), but its name \
         does not end in {suffix:?}, so the other shards cannot be found",
        path.display(),
        suffix = crate::split::split_suffix(0, *count)
    )]
    SplitFileName { path: PathBuf, count: u16 },

    /// A shard of a split model does not exist.
    #[error("shard {shard} of {count} of a split model is missing: {}: {error}", path.display())]
    SplitShardMissing {
        path: PathBuf,
        /// 1-based, as in the file name.
        shard: u16,
        count: u16,
        error: io::Error,
    },

    /// A `split.*` key of a shard is absent or disagrees with the shard's
    /// place or with the first shard.
    #[error("{}: {key} is {found}, expected {expected}", path.display())]
    SplitKey {
        path: PathBuf,
        key: &'static str,
        /// The value found, or `absent`.
        found: String,
        /// The value expected, and why.
        expected: String,
    },

    /// The shards of a split model hold a different number of tensors than
    /// `split.tensors.count` says.
    #[error(
        "{}: split.tensors.count is {expected}, but the {count} shards hold {found} tensors",
        path.display()
    )]
    SplitTensorCount {
        path: PathBuf,
        count: u16,
        expected: u64,
        found: u64,
    },

    /// Two shards of a split model hold a tensor of the same name.
    #[error("duplicate tensor name {name:?}: in {} and in {}", first.display(), second.display())]
    SplitDuplicateTensor {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },

    /// A split model was opened from a list of files (or buffers) of the
    /// wrong length.
    #[error(
        "{} is the first of {count} shards of a split model (split.count = {count}), but {given} \
         file{} given",
        path.display(),
        if *given == 1 { " was" } else { "s were" }
    )]
    SplitFilesGiven {
        path: PathBuf,
        count: u16,
        given: usize,
    },

    /// Writer: split options that cannot be met.
    #[error("cannot split: {0}")]
    BadSplitOptions(String),
}

impl GgufError {
    /// `self`, naming `path` unless it already names a file.
    pub(crate) fn in_file(self, path: &Path) -> GgufError {
        match self {
            e @ (GgufError::Io { .. }
            | GgufError::InFile { .. }
            | GgufError::SplitNotFirst { .. }
            | GgufError::SplitFileName { .. }
            | GgufError::SplitShardMissing { .. }
            | GgufError::SplitKey { .. }
            | GgufError::SplitTensorCount { .. }
            | GgufError::SplitDuplicateTensor { .. }
            | GgufError::SplitFilesGiven { .. }) => e,
            e => GgufError::InFile {
                path: path.to_owned(),
                error: Box::new(e),
            },
        }
    }
}

fn version_hint(v: u32) -> &'static str {
    match v {
        1 => " (GGUF v1 is obsolete; convert the file to v3)",
        // A byte-swapped v2/v3 header reads as 0x0?000000.
        v if v != 0 && v & 0xFFFF == 0 => {
            " (looks byte-swapped: big-endian files are not supported)"
        }
        _ => " (supported: 2 and 3)",
    }
}
