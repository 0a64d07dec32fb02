//! wasi:nn and edgewasm:llm for Rust guests.
//!
//! `nn` is standard `wasi:nn@0.2.0-rc-2024-10-28` (portable to any wasi-nn
//! host); `llm` is edgewasm's language-model interface. WASI itself comes
//! from Rust's `wasm32-wasip2` std.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "edgewasm:llm/llm-imports",
    generate_all,
});

pub use edgewasm::llm::{constrained, llm, types};
pub use wasi::nn;

/// Formats a wasi:nn error as `code: message`.
pub fn nn_error(e: &nn::errors::Error) -> String {
    format!("{}: {}", code_name(e.code()), e.data())
}

/// The WIT name of a wasi:nn error code.
pub fn code_name(c: nn::errors::ErrorCode) -> &'static str {
    use nn::errors::ErrorCode as C;
    match c {
        C::InvalidArgument => "invalid-argument",
        C::InvalidEncoding => "invalid-encoding",
        C::Timeout => "timeout",
        C::RuntimeError => "runtime-error",
        C::UnsupportedOperation => "unsupported-operation",
        C::TooLarge => "too-large",
        C::NotFound => "not-found",
        C::Security => "security",
        C::Unknown => "unknown",
    }
}

/// Formats an edgewasm:llm error.
pub fn llm_error(e: &types::Error) -> String {
    match e {
        types::Error::NotFound(m) => format!("not-found: {m}"),
        types::Error::InvalidArgument(m) => format!("invalid-argument: {m}"),
        types::Error::LimitExceeded(m) => format!("limit-exceeded: {m}"),
        types::Error::Timeout => "timeout: time limit exceeded during inference".to_string(),
        types::Error::Runtime(m) => format!("runtime: {m}"),
    }
}
