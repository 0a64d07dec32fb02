//! Tensor descriptors.

use crate::GgmlType;

/// ggml's `GGML_MAX_DIMS`: the most dimensions a tensor may have.
pub const GGML_MAX_DIMS: usize = 4;

/// ggml's `GGML_MAX_NAME` minus the NUL: the longest tensor name (in bytes)
/// ggml can load.
pub const GGML_MAX_NAME_LEN: usize = 63;

/// One tensor's header entry, validated at open.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorInfo {
    pub name: String,
    /// Shape in ggml order: `dims[0]` is the contiguous row length.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Byte offset of the data, relative to the start of the data section
    /// of its file ([`Shard::data_offset`](crate::Shard::data_offset)).
    pub offset: u64,
    /// Bytes of tensor data: `ty.row_bytes(dims[0]) * n_rows()`.
    pub size_bytes: u64,
    /// Index of the file holding the data among the files of a split model
    /// ([`GgufFile::shards`](crate::GgufFile::shards)); 0 in an unsplit
    /// file. `offset` is relative to that file's data section.
    pub shard: u16,
}

impl TensorInfo {
    /// Total number of elements (the product of the dims). Saturates on
    /// overflow, which cannot happen for a `TensorInfo` read from a file.
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().fold(1u64, |n, &d| n.saturating_mul(d))
    }

    /// Number of rows: the product of `dims[1..]` (1 for a vector).
    pub fn n_rows(&self) -> u64 {
        self.dims
            .iter()
            .skip(1)
            .fold(1u64, |n, &d| n.saturating_mul(d))
    }

    /// Elements per row: `dims[0]`.
    pub fn row_len(&self) -> u64 {
        self.dims.first().copied().unwrap_or(1)
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> u64 {
        self.ty.row_bytes(self.row_len()).unwrap_or(0)
    }
}
