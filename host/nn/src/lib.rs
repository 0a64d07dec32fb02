//! edgewasm's wasi-nn backend: GGUF language models on the native engine.
//!
//! One module per concern, as in wasmtime's `crates/wasi-nn`:
//! - [`error`]: guest-visible errors (wasi:nn error codes), apart from traps;
//! - [`limits`]: operator limits enforced inside the backend;
//! - [`handles`]: handle tables and the live-handle limit;
//! - [`models`]: models memory-mapped once and shared by every store;
//! - [`config`]: the text-mode JSON `config` (WasmEdge GGML keys);
//! - [`engine`]: contexts, text and token mode, chat sessions, streams;
//! - [`backend`]: `wasmtime_wasi_nn::backend` traits over the engine;
//! - [`registry`]: graphs by name;
//! - [`wit`]: the wasi:nn WIT glue;
//! - [`wasmedge`]: WasmEdge's `wasi_ephemeral_nn` ABI for core modules.

pub mod backend;
pub mod config;
pub mod embedding;
pub mod engine;
pub mod error;
pub mod handles;
pub mod limits;
pub mod models;
pub mod prefix;
pub mod registry;
pub mod wasmedge;
pub mod wit;

pub use engine::GuestEnv;
pub use error::{ErrorCode, NnError};
pub use limits::Limits;
pub use models::{ModelSet, Preload, DEFAULT_NAME};
