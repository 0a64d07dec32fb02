//! WasmEdge's `wasi_ephemeral_nn` import module (the ABI of its GGML
//! plugin, as used by the crates.io crate `wasmedge-wasi-nn` and LlamaEdge)
//! for core wasm modules, on top of our engine. Written from the crate's
//! public signatures and WasmEdge's documentation; no WasmEdge code.
//!
//! - [`abi`]: error codes, enum values and struct layouts of the ABI;
//! - [`memory`]: checked access to guest memory (every pointer and length);
//! - [`settings`]: the JSON config (graph and `set_input(1)`);
//! - [`state`]: graphs and execution contexts, their semantics;
//! - [`linker`]: the host functions for a `wasmtime::Linker`.
//!
//! Semantics (WasmEdge's GGML plugin): input 0 is the prompt (bytes),
//! input 1 a JSON config; output 0 the text, output 1 metadata JSON
//! (`input_tokens`, `output_tokens`, build fields). `compute_single` /
//! `get_output_single` stream one token at a time and report the end with
//! the end-of-sequence code; `fini_single` ends a stream. Unlike WasmEdge,
//! a new prompt that extends the previous one reuses its KV cache (same
//! output, less work).

pub mod abi;
pub mod linker;
pub mod memory;
pub mod settings;
pub mod state;

pub use abi::{CallError, Errno};
pub use linker::add_to_linker;
pub use state::WasmEdgeNn;
