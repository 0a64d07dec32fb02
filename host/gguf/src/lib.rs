//! GGUF v2/v3 reader over a memory map, and a writer.
//!
//! [`GgufFile`] parses and validates a whole GGUF header at open — every
//! count, length, type id, shape, offset and alignment a file could lie
//! about — then hands out metadata and zero-copy tensor data.
//! [`GgufWriter`] builds files (for tests, and for quantization).
//!
//! All integers are little-endian; big-endian GGUF files are rejected.
//!
//! ```
//! use edgewasm_gguf::{GgmlType, GgufFile, GgufWriter};
//!
//! let mut w = GgufWriter::new();
//! w.add_metadata("general.architecture", "llama")?
//!     .add_metadata("llama.block_count", 2u32)?
//!     .add_f32_tensor("output_norm.weight", &[4], &[1.0, 1.0, 1.0, 1.0])?
//!     .add_tensor("token_embd.weight", GgmlType::Q8_0, &[32, 3], vec![0u8; 3 * 34])?;
//! let file = GgufFile::from_bytes(&w.to_bytes()?)?;
//!
//! assert_eq!(file.architecture()?, "llama");
//! assert_eq!(file.get_u32("llama.block_count")?, Some(2));
//! let emb = file.tensor("token_embd.weight").unwrap();
//! assert_eq!((emb.row_len(), emb.n_rows()), (32, 3));
//! assert_eq!(file.tensor_data(emb).len(), 3 * 34);
//! # Ok::<(), edgewasm_gguf::GgufError>(())
//! ```
#![deny(unsafe_code)]

mod error;
mod file;
mod ggml_type;
mod reader;
pub mod split;
mod tensor;
mod value;
mod writer;

pub use error::GgufError;
pub use file::{GgufFile, Shard, KEY_ARCHITECTURE};
pub use ggml_type::GgmlType;
pub use reader::{ParseLimits, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, KEY_ALIGNMENT};
pub use split::{KEY_SPLIT_COUNT, KEY_SPLIT_NO, KEY_SPLIT_TENSORS_COUNT};
pub use tensor::{TensorInfo, GGML_MAX_DIMS, GGML_MAX_NAME_LEN};
pub use value::{Array, Value};
pub use writer::{GgufWriter, SplitOptions};
