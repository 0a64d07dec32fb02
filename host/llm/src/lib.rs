//! Language models on edgewasm's kernels.
//!
//! Data path: a mapped [`edgewasm_gguf::GgufFile`] → [`Model`] (config,
//! tokenizer, weights as views into the map) → [`Context`] (one sequence's KV
//! cache) → [`generate`] (sampling, stop rules, streaming text). Many
//! contexts share one `Arc<Model>`; nothing in a context copies weights.
//! Beside it, [`embed`] turns texts into vectors (BERT encoders, or pooled
//! decoder states).
//! Off that path, [`quantize`] rewrites a model file with other tensor types.

mod alloc;
pub mod batch;
pub mod chat;
pub mod constrain;
pub mod context;
pub mod embed;
pub mod generate;
pub mod kv_cache;
pub mod model;
pub mod perplexity;
pub mod quantize;
pub mod recurrent;
pub mod sampling;
pub mod synth;
pub mod threadpool;

pub use batch::Batcher;
pub use context::Context;
pub use kv_cache::{KvType, KvTypes};
pub use model::{Model, ModelConfig};
pub use threadpool::ThreadPool;

use edgewasm_gguf::{GgmlType, GgufError};
use edgewasm_tokenizer::TokenizerError;

/// Everything that can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),
    #[error("unsupported architecture `{0}` (supported: {list})", list = model::supported_architectures())]
    UnsupportedArchitecture(String),
    /// A setting the engine does not implement.
    #[error("unsupported {what} `{name}` (supported: {supported})")]
    Unsupported { what: &'static str, name: String, supported: &'static str },
    #[error("missing metadata key `{0}`")]
    MissingKey(String),
    #[error("metadata `{key}` has an unusable value {value}")]
    BadHyperparameter { key: String, value: u64 },
    /// A value that is fine alone but not with the others (or whose
    /// products overflow or exceed what the engine will allocate).
    #[error("metadata `{key}` = {value} is unusable: {reason}")]
    InconsistentHyperparameter { key: String, value: u64, reason: String },
    #[error("missing tensor `{0}`")]
    MissingTensor(String),
    #[error("tensor `{tensor}` has shape {found:?}, expected {expected:?}")]
    TensorShape { tensor: String, expected: Vec<u64>, found: Vec<u64> },
    #[error("tensor `{tensor}` has type {ty}, which this engine cannot run (supported weight types: {list})", list = model::supported_weight_types())]
    TensorType { tensor: String, ty: GgmlType },
    #[error("tensor `{tensor}` data is not aligned to {alignment} bytes")]
    TensorAlignment { tensor: String, alignment: usize },
    /// A KV cache type whose blocks do not tile a head's width.
    #[error("KV cache type {ty} needs head widths that are multiples of {block}; this model's are {dim}")]
    KvTypeWidth { ty: &'static str, dim: usize, block: usize },
    #[error("a context of {requested} positions cannot be allocated")]
    ContextTooLarge { requested: usize },
    /// A fallible allocation failed (or its size overflowed).
    #[error("cannot allocate {bytes} bytes for {what}")]
    OutOfMemory { what: &'static str, bytes: usize },
    #[error("context full: {needed} positions needed, context size is {n_ctx}")]
    ContextFull { n_ctx: usize, needed: usize },
    #[error("token id {token} is out of range (vocabulary has {n_vocab} tokens)")]
    TokenOutOfRange { token: u32, n_vocab: usize },
    #[error("time limit exceeded during inference")]
    DeadlineExceeded,
    #[error("no input tokens")]
    EmptyInput,
    /// Constrained generation reached a state that no token of the
    /// vocabulary can continue (the text so far ends with `tail`).
    #[error("the grammar allows no token of this vocabulary after {tail:?}")]
    GrammarDeadEnd { tail: String },
    /// The grammar is too ambiguous to follow within the matcher's bounds.
    #[error("the grammar is too ambiguous to follow (over 1024 live parse stacks, or a token mask too costly to compute)")]
    GrammarTooComplex,
    #[error("chat template: {0}")]
    ChatTemplate(#[from] chat::ChatTemplateError),
    /// A batched decode of several sequences failed inside the engine
    /// (a bug); each sequence in it gets this error instead of a hang.
    #[error("a batched decode failed inside the engine: {0}")]
    BatchFailed(String),
}
