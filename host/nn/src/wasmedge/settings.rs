//! The JSON config of WasmEdge's GGML plugin, as sent at load time
//! (`load_by_name_with_config`, or a second graph builder) and through
//! `set_input(1)`. Each call updates only the keys it names.
//!
//! Sampling keys (`n-predict`, `ctx-size`, `temp`, `top-p`, `top-k`,
//! `min-p`, `repeat-penalty`, `seed`, `reverse-prompt`, `grammar`,
//! `json-schema`) are parsed by
//! [`TextConfig`]. The plugin's own keys: `enable-log` (timings and notes on
//! stderr), `stream-stdout` (print tokens to stdout as they come),
//! `n-gpu-layers` (accepted, ignored: CPU only), `batch-size` (accepted:
//! the engine picks its own batches), `embedding` (`compute` writes the
//! prompt's embedding as `{"n_embedding": N, "embedding": [...]}`).
//! Unknown keys are logged and ignored.

use serde_json::Value;

use super::abi::{CallError, CallResult};
use crate::config::TextConfig;

/// Settings of a graph, copied to each of its execution contexts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    pub text: TextConfig,
    pub enable_log: bool,
    pub stream_stdout: bool,
    /// `embedding`: `compute` writes the prompt's embedding to output 0.
    pub embedding: bool,
    pub n_gpu_layers: Option<i64>,
    pub batch_size: Option<u64>,
}

impl Settings {
    /// Applies the keys of the JSON `bytes`.
    pub fn apply(&mut self, bytes: &[u8]) -> CallResult<()> {
        let (c, unknown) = TextConfig::parse(bytes).map_err(|e| CallError::invalid(format!("config: {}", e.message)))?;
        for k in unknown {
            log::warn!(target: "edgewasm-nn", "ignoring unknown config key `{k}`");
        }
        merge(&mut self.text, c);
        let v: Value = match std::str::from_utf8(bytes).map(str::trim) {
            Ok("") => return Ok(()),
            // TextConfig::parse has already checked it is a JSON object.
            _ => serde_json::from_slice(bytes).map_err(|e| CallError::invalid(format!("config: {e}")))?,
        };
        if let Some(b) = get(&v, "enable-log", Value::as_bool, "a boolean")? {
            self.enable_log = b;
        }
        if let Some(b) = get(&v, "stream-stdout", Value::as_bool, "a boolean")? {
            self.stream_stdout = b;
        }
        if let Some(b) = get(&v, "embedding", Value::as_bool, "a boolean")? {
            self.embedding = b;
        }
        if let Some(n) = get(&v, "n-gpu-layers", Value::as_i64, "an integer")? {
            self.n_gpu_layers = Some(n);
            if n > 0 && self.enable_log {
                log::warn!(target: "edgewasm-nn", "n-gpu-layers={n} ignored: edgewasm runs on the CPU");
            }
        }
        if let Some(n) = get(&v, "batch-size", Value::as_u64, "a non-negative integer")? {
            self.batch_size = Some(n);
        }
        Ok(())
    }
}

fn get<T>(v: &Value, key: &str, f: impl Fn(&Value) -> Option<T>, want: &str) -> CallResult<Option<T>> {
    match v.get(key) {
        None => Ok(None),
        Some(x) => f(x).map(Some).ok_or_else(|| CallError::invalid(format!("config key `{key}` must be {want}"))),
    }
}

/// Overrides the fields of `base` that `new` sets.
fn merge(base: &mut TextConfig, new: TextConfig) {
    fn set<T>(dst: &mut Option<T>, src: Option<T>) {
        if src.is_some() {
            *dst = src;
        }
    }
    set(&mut base.n_predict, new.n_predict);
    set(&mut base.temp, new.temp);
    set(&mut base.top_k, new.top_k);
    set(&mut base.top_p, new.top_p);
    set(&mut base.min_p, new.min_p);
    set(&mut base.repeat_penalty, new.repeat_penalty);
    set(&mut base.seed, new.seed);
    set(&mut base.ctx_size, new.ctx_size);
    set(&mut base.grammar, new.grammar);
    set(&mut base.messages, new.messages);
    if !new.reverse_prompt.is_empty() {
        base.reverse_prompt = new.reverse_prompt;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_configs_update_only_their_keys() {
        let mut s = Settings::default();
        s.apply(br#"{"n-predict": 8, "temp": 0.5, "enable-log": false, "n-gpu-layers": 100, "batch-size": 512}"#).unwrap();
        s.apply(br#"{"temp": 0, "stream-stdout": true, "some-new-key": 1}"#).unwrap();
        assert_eq!(s.text.n_predict, Some(8));
        assert_eq!(s.text.temp, Some(0.0));
        assert!(s.stream_stdout);
        assert_eq!((s.n_gpu_layers, s.batch_size), (Some(100), Some(512)));
        s.apply(b"").unwrap();
        assert_eq!(s.text.n_predict, Some(8));
    }

    #[test]
    fn wrong_types_are_invalid() {
        for bad in [&br#"{"enable-log": 1}"#[..], br#"{"n-gpu-layers": "all"}"#, br#"{"temp": "x"}"#, b"nope"] {
            assert!(Settings::default().apply(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
