//! The wasi:nn text-mode `config` JSON parser (`host/nn/src/config.rs`),
//! and the WasmEdge-ABI settings parser built on it
//! (`host/nn/src/wasmedge/settings.rs`, `Settings::apply`).
//!
//! The edgewasm-nn crate depends on wasmtime, whose build under the fuzz
//! instrumentation is far too slow for a smoke run on this machine, so the
//! parser's source file (and the error type it returns) are compiled in
//! directly: the code fuzzed is byte for byte the code shipped. This relies
//! on config.rs using only `crate::error` and serde_json; if it grows other
//! crate-internal imports, this target stops compiling and says so.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../host/nn/src/error.rs"]
mod error;

#[allow(dead_code, unused_imports)]
#[path = "../../host/nn/src/config.rs"]
mod config;

#[allow(dead_code, unused_imports)]
#[path = "../../host/nn/src/wasmedge"]
mod wasmedge {
    pub mod abi;
    pub mod settings;
}

use config::TextConfig;
use wasmedge::abi::{CallError, Errno};
use wasmedge::settings::Settings;
use error::ErrorCode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = TextConfig::parse(data);
    // WasmEdge settings: accepted only if the text config is, every
    // rejection is an invalid-argument code (never a trap), and a rejected
    // call leaves the plugin keys untouched.
    let mut s = Settings::default();
    match s.apply(data) {
        Ok(()) => assert!(parsed.is_ok(), "settings accepted a config TextConfig rejects"),
        Err(CallError::Code { errno, .. }) => {
            assert_eq!(errno, Errno::InvalidArgument);
        }
        Err(e @ CallError::Trap(_)) => panic!("a config trapped: {e}"),
    }
    match parsed {
        Ok((c, unknown)) => {
            for f in [c.temp, c.top_p, c.min_p, c.repeat_penalty].into_iter().flatten() {
                assert!(f >= 0.0 && !f.is_nan(), "accepted a negative or NaN number: {f}");
            }
            // Every unknown key is reported once, and is really a key.
            let v: serde_json::Value = serde_json::from_slice(data).unwrap_or_default();
            for k in &unknown {
                assert!(v.get(k).is_some(), "unknown key {k:?} not in the input");
            }
            if let Some(msgs) = &c.messages {
                let _ = msgs.iter().map(|m| m.role.len() + m.content.len()).sum::<usize>();
            }
        }
        // Every rejection is the guest's fault, never an internal error.
        Err(e) => assert_eq!(e.code, ErrorCode::InvalidArgument, "{e}"),
    }
});
