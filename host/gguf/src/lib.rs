//! GGUF v2/v3 reader over a memory map, and a writer.
//!
//! [`GgufFile`] parses and validates a whole GGUF header at open — every
//! count, length, type id, shape, offset and alignment a file could lie
//! about — then hands out metadata and zero-copy tensor data.
//! [`GgufWriter`] builds files (for tests, and for quantization).
//!
//! All integers are little-endian; big-endian GGUF files are rejected.
#![deny(unsafe_code)]

mod error;
mod file;
mod ggml_type;
mod reader;
mod tensor;
mod value;
mod writer;

pub use error::GgufError;
pub use file::{GgufFile, KEY_ARCHITECTURE};
pub use ggml_type::GgmlType;
pub use reader::{ParseLimits, GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, KEY_ALIGNMENT};
pub use tensor::{TensorInfo, GGML_MAX_DIMS, GGML_MAX_NAME_LEN};
pub use value::{Array, Value};
pub use writer::GgufWriter;
