//! The numbers of WasmEdge's `wasi_ephemeral_nn` ABI (wasm32: every
//! pointer, length and handle is a 32-bit value, little-endian).

use crate::error::{ErrorCode, NnError};

/// The import module name.
pub const MODULE: &str = "wasi_ephemeral_nn";

/// Return codes (`0` is success). 100–103 are WasmEdge's LLM extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Errno {
    Success = 0,
    InvalidArgument = 1,
    InvalidEncoding = 2,
    MissingMemory = 3,
    Busy = 4,
    RuntimeError = 5,
    UnsupportedOperation = 6,
    TooLarge = 7,
    NotFound = 8,
    EndOfSequence = 100,
    ContextFull = 101,
    PromptTooLong = 102,
    ModelNotFound = 103,
}

/// `graph_encoding` values we serve: GGML, and autodetect (GGUF magic).
pub const ENCODING_AUTODETECT: u32 = 5;
pub const ENCODING_GGML: u32 = 6;

/// `execution_target`: CPU = 0, GPU = 1, TPU = 2, AUTO = 3 (all run on the
/// CPU here).
pub const TARGET_MAX: u32 = 3;

/// `tensor_type`: F16 = 0, F32 = 1, F64 = 2, U8 = 3, I32 = 4, I64 = 5.
pub const TENSOR_TYPE_MAX: u32 = 5;

/// A graph builder entry: `{ ptr: u32, len: u32 }`.
pub const BUILDER_SIZE: u32 = 8;

/// A tensor: `{ dims_ptr, dims_len, type, data_ptr, data_len }`, five u32.
pub const TENSOR_SIZE: u32 = 20;

/// A failed call: an error code for the guest, or a trap that ends it.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Returned to the guest as its code (and logged, but for the normal
    /// end of a stream).
    #[error("{message}")]
    Code { errno: Errno, message: String },
    /// The time limit passed during inference: the run is over.
    #[error("{0}")]
    Trap(NnError),
}

impl CallError {
    pub fn new(errno: Errno, message: impl Into<String>) -> CallError {
        CallError::Code { errno, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> CallError {
        CallError::new(Errno::InvalidArgument, message)
    }
}

impl From<NnError> for CallError {
    fn from(e: NnError) -> CallError {
        let errno = match e.code {
            ErrorCode::Timeout => return CallError::Trap(e),
            ErrorCode::InvalidArgument | ErrorCode::Security => Errno::InvalidArgument,
            ErrorCode::InvalidEncoding => Errno::InvalidEncoding,
            ErrorCode::UnsupportedOperation => Errno::UnsupportedOperation,
            ErrorCode::TooLarge => Errno::TooLarge,
            ErrorCode::NotFound => Errno::NotFound,
            ErrorCode::RuntimeError | ErrorCode::Unknown => Errno::RuntimeError,
        };
        CallError::Code { errno, message: e.message }
    }
}

pub type CallResult<T> = Result<T, CallError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_wasmedge_wasi_nn() {
        let codes = [
            (Errno::InvalidArgument, 1),
            (Errno::InvalidEncoding, 2),
            (Errno::MissingMemory, 3),
            (Errno::Busy, 4),
            (Errno::RuntimeError, 5),
            (Errno::UnsupportedOperation, 6),
            (Errno::TooLarge, 7),
            (Errno::NotFound, 8),
            (Errno::EndOfSequence, 100),
            (Errno::ContextFull, 101),
            (Errno::PromptTooLong, 102),
            (Errno::ModelNotFound, 103),
        ];
        for (e, n) in codes {
            assert_eq!(e as i32, n, "{e:?}");
        }
    }

    #[test]
    fn timeouts_trap_other_errors_are_codes() {
        assert!(matches!(CallError::from(NnError::timeout()), CallError::Trap(_)));
        let e = CallError::from(NnError::too_large("x"));
        assert!(matches!(e, CallError::Code { errno: Errno::TooLarge, .. }));
    }
}
