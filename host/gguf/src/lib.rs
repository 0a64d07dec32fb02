//! GGUF v2/v3 reader over a memory map.
mod ggml_type;
pub use ggml_type::GgmlType;
