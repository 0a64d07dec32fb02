//! Guest-visible errors: a wasi:nn error code plus a message.
//!
//! Everything the backend reports to a guest is an [`NnError`]; traps (host
//! bugs, broken resource tables) are kept apart, in the WIT glue.

use std::fmt;

use edgewasm_llm::ModelError;

/// The `wasi:nn/errors.error-code` a failure maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    InvalidEncoding,
    Timeout,
    RuntimeError,
    UnsupportedOperation,
    TooLarge,
    NotFound,
    Security,
    Unknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid-argument",
            ErrorCode::InvalidEncoding => "invalid-encoding",
            ErrorCode::Timeout => "timeout",
            ErrorCode::RuntimeError => "runtime-error",
            ErrorCode::UnsupportedOperation => "unsupported-operation",
            ErrorCode::TooLarge => "too-large",
            ErrorCode::NotFound => "not-found",
            ErrorCode::Security => "security",
            ErrorCode::Unknown => "unknown",
        }
    }
}

/// A failure a guest sees (as a wasi:nn `error` resource or an
/// `edgewasm:llm` error variant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NnError {
    pub code: ErrorCode,
    pub message: String,
}

impl fmt::Display for NnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for NnError {}

impl NnError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> NnError {
        NnError { code, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> NnError {
        NnError::new(ErrorCode::InvalidArgument, message)
    }
    pub fn too_large(message: impl Into<String>) -> NnError {
        NnError::new(ErrorCode::TooLarge, message)
    }
    pub fn not_found(message: impl Into<String>) -> NnError {
        NnError::new(ErrorCode::NotFound, message)
    }
    pub fn timeout() -> NnError {
        NnError::new(ErrorCode::Timeout, "time limit (--timeout) exceeded during inference")
    }
    pub fn runtime(message: impl Into<String>) -> NnError {
        NnError::new(ErrorCode::RuntimeError, message)
    }
    /// Whether the failure leaves an execution context unusable.
    pub fn poisons(&self) -> bool {
        matches!(self.code, ErrorCode::Timeout | ErrorCode::RuntimeError | ErrorCode::Unknown)
    }
}

/// Exhaustive on purpose: a new `ModelError` variant must choose its code
/// here, since the code decides whether the context is poisoned
/// ([`NnError::poisons`]).
impl From<ModelError> for NnError {
    fn from(e: ModelError) -> NnError {
        let code = match &e {
            ModelError::DeadlineExceeded => return NnError::timeout(),
            ModelError::TokenOutOfRange { .. }
            | ModelError::EmptyInput
            | ModelError::ChatTemplate(_)
            // The request's grammar, not the engine, is at fault.
            | ModelError::GrammarDeadEnd { .. }
            | ModelError::GrammarTooComplex => ErrorCode::InvalidArgument,
            // The operator's (or guest's) choice of cache type cannot hold
            // this model's heads: nothing about the model file is wrong.
            ModelError::KvTypeWidth { .. } => ErrorCode::UnsupportedOperation,
            ModelError::BatchFailed(_) => ErrorCode::RuntimeError,
            ModelError::ContextFull { .. } | ModelError::ContextTooLarge { .. } | ModelError::OutOfMemory { .. } => {
                ErrorCode::TooLarge
            }
            ModelError::Gguf(_)
            | ModelError::UnsupportedArchitecture(_)
            | ModelError::Unsupported { .. }
            | ModelError::MissingKey(_)
            | ModelError::BadHyperparameter { .. }
            | ModelError::InconsistentHyperparameter { .. }
            | ModelError::MissingTensor(_)
            | ModelError::TensorShape { .. }
            | ModelError::TensorType { .. }
            | ModelError::TensorAlignment { .. }
            // Every tokenizer error is about the file's vocabulary metadata,
            // found while loading: the model bytes are bad, not the context.
            | ModelError::Tokenizer(_) => ErrorCode::InvalidEncoding,
        };
        NnError::new(code, e.to_string())
    }
}

pub type NnResult<T> = Result<T, NnError>;
