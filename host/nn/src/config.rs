//! The text-mode `config` input: JSON with WasmEdge GGML plugin keys.

use serde_json::Value;

use crate::error::{NnError, NnResult};

/// A grammar as a guest sends it (compiled for a model by
/// `GrammarRequest::compile` in the engine).
#[derive(Clone, Debug, PartialEq)]
pub enum GrammarRequest {
    /// GBNF text (llama.cpp's syntax, start rule `root`).
    Gbnf(String),
    /// A JSON Schema.
    JsonSchema(Value),
}

/// One chat message of the `messages` key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// Parsed text-mode configuration; unset fields take the defaults of
/// `edgewasm generate`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TextConfig {
    /// `n-predict`: tokens to generate (negative: as many as allowed).
    pub n_predict: Option<usize>,
    pub temp: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub seed: Option<u64>,
    pub ctx_size: Option<usize>,
    /// `reverse-prompt`: stop strings (a string or a list of strings).
    pub reverse_prompt: Vec<String>,
    /// `messages`: chat messages; the host applies the model's template.
    pub messages: Option<Vec<Message>>,
    /// `grammar` (GBNF text) or `json-schema` (a schema, as a JSON string
    /// as WasmEdge takes it, or inline): constrains the output. `Some(None)`:
    /// set to `""`, which clears an earlier config's grammar.
    pub grammar: Option<Option<GrammarRequest>>,
}

/// Keys of WasmEdge's plugin that have no meaning here (accepted silently).
const KNOWN_IGNORED: &[&str] = &[
    "enable-log",
    "enable-debug-log",
    "stream-stdout",
    "embedding",
    "n-gpu-layers",
    "main-gpu",
    "tensor-split",
    "use-mmap",
    "batch-size",
    "ubatch-size",
    "threads",
    "mmproj",
    "image",
];

impl TextConfig {
    /// Parses the JSON bytes of a `config` tensor. Returns the config and
    /// the unknown keys (which the caller logs and otherwise ignores).
    pub fn parse(bytes: &[u8]) -> NnResult<(TextConfig, Vec<String>)> {
        let text = std::str::from_utf8(bytes).map_err(|_| NnError::invalid("config is not UTF-8"))?;
        if text.trim().is_empty() {
            return Ok((TextConfig::default(), Vec::new()));
        }
        let v: Value = serde_json::from_str(text).map_err(|e| NnError::invalid(format!("config is not valid JSON: {e}")))?;
        let Value::Object(map) = v else {
            return Err(NnError::invalid("config must be a JSON object"));
        };
        let mut c = TextConfig::default();
        let mut unknown = Vec::new();
        for (k, v) in &map {
            match k.as_str() {
                "n-predict" => {
                    let n = int(k, v)?;
                    c.n_predict = if n < 0 { Some(usize::MAX) } else { Some(n as usize) };
                }
                "temp" => c.temp = Some(nonneg_float(k, v)?),
                "top-k" => c.top_k = Some(uint(k, v)?),
                "top-p" => c.top_p = Some(nonneg_float(k, v)?),
                "min-p" => c.min_p = Some(nonneg_float(k, v)?),
                "repeat-penalty" => c.repeat_penalty = Some(nonneg_float(k, v)?),
                "seed" => {
                    // -1 (and llama.cpp's LLAMA_DEFAULT_SEED, 0xFFFFFFFF) mean
                    // "random", as in WasmEdge; any other value reproduces.
                    let n = int(k, v)?;
                    c.seed = Some(if n < 0 || n == 0xFFFF_FFFF { random_seed() } else { n as u64 });
                }
                "ctx-size" => c.ctx_size = Some(uint(k, v)?),
                "reverse-prompt" => {
                    c.reverse_prompt = match v {
                        Value::String(s) if s.is_empty() => Vec::new(),
                        Value::String(s) => vec![s.clone()],
                        Value::Array(a) => a
                            .iter()
                            .map(|x| x.as_str().map(str::to_string))
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| bad_type(k, "a string or a list of strings"))?,
                        _ => return Err(bad_type(k, "a string or a list of strings")),
                    }
                }
                "messages" => {
                    let Value::Array(a) = v else { return Err(bad_type(k, "a list of {role, content} objects")) };
                    let mut msgs = Vec::with_capacity(a.len());
                    for m in a {
                        let role = m.get("role").and_then(Value::as_str);
                        let content = m.get("content").and_then(Value::as_str);
                        match (role, content) {
                            (Some(r), Some(c)) => msgs.push(Message { role: r.to_string(), content: c.to_string() }),
                            _ => return Err(bad_type(k, "a list of {role, content} objects with string fields")),
                        }
                    }
                    c.messages = Some(msgs);
                }
                "grammar" | "json-schema" => {
                    let g = match (k.as_str(), v) {
                        // WasmEdge sends "" when no grammar is wanted.
                        (_, Value::String(t)) if t.trim().is_empty() => {
                            c.grammar.get_or_insert(None);
                            continue;
                        }
                        ("grammar", Value::String(t)) => GrammarRequest::Gbnf(t.clone()),
                        ("grammar", _) => return Err(bad_type(k, "a string of GBNF")),
                        (_, Value::String(t)) => GrammarRequest::JsonSchema(
                            serde_json::from_str(t)
                                .map_err(|e| NnError::invalid(format!("config key `json-schema` is not JSON: {e}")))?,
                        ),
                        (_, schema @ (Value::Object(_) | Value::Bool(_))) => GrammarRequest::JsonSchema(schema.clone()),
                        _ => return Err(bad_type(k, "a JSON Schema (as a string or an object)")),
                    };
                    if c.grammar.as_ref().is_some_and(Option::is_some) {
                        return Err(NnError::invalid("config keys `grammar` and `json-schema` exclude each other"));
                    }
                    c.grammar = Some(Some(g));
                }
                other if KNOWN_IGNORED.contains(&other) => {}
                other => unknown.push(other.to_string()),
            }
        }
        Ok((c, unknown))
    }
}

/// A seed from the OS's randomness (std seeds `RandomState` from it), so no
/// two "random" requests share a sequence.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

fn bad_type(key: &str, want: &str) -> NnError {
    NnError::invalid(format!("config key `{key}` must be {want}"))
}

fn int(key: &str, v: &Value) -> NnResult<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|u| u.min(i64::MAX as u64) as i64))
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9e15).map(|f| f as i64))
            .ok_or_else(|| bad_type(key, "an integer")),
        _ => Err(bad_type(key, "an integer")),
    }
}

fn uint(key: &str, v: &Value) -> NnResult<usize> {
    let n = int(key, v)?;
    usize::try_from(n).map_err(|_| bad_type(key, "a non-negative integer"))
}

fn nonneg_float(key: &str, v: &Value) -> NnResult<f32> {
    let f = v.as_f64().ok_or_else(|| bad_type(key, "a number"))?;
    if !f.is_finite() || f < 0.0 {
        return Err(bad_type(key, "a finite non-negative number"));
    }
    Ok(f as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wasmedge_keys() {
        let (c, unknown) = TextConfig::parse(
            br#"{"n-predict": 16, "temp": 0, "top-k": 5, "seed": 7, "reverse-prompt": "User:", "ctx-size": 512, "foo": 1, "enable-log": true}"#,
        )
        .unwrap();
        assert_eq!(c.n_predict, Some(16));
        assert_eq!(c.temp, Some(0.0));
        assert_eq!(c.top_k, Some(5));
        assert_eq!(c.seed, Some(7));
        assert_eq!(c.ctx_size, Some(512));
        assert_eq!(c.reverse_prompt, vec!["User:".to_string()]);
        assert_eq!(unknown, vec!["foo".to_string()]);
    }

    #[test]
    fn grammar_keys() {
        let (c, _) = TextConfig::parse(br#"{"grammar": "root ::= \"a\""}"#).unwrap();
        assert_eq!(c.grammar, Some(Some(GrammarRequest::Gbnf("root ::= \"a\"".into()))));
        let (c, _) = TextConfig::parse(br#"{"json-schema": "{\"type\": \"integer\"}"}"#).unwrap();
        assert_eq!(c.grammar, Some(Some(GrammarRequest::JsonSchema(serde_json::json!({"type": "integer"})))));
        let (c, _) = TextConfig::parse(br#"{"json-schema": {"enum": [1, 2]}}"#).unwrap();
        assert_eq!(c.grammar, Some(Some(GrammarRequest::JsonSchema(serde_json::json!({"enum": [1, 2]})))));
        // "" clears; absent leaves an earlier config's grammar alone.
        assert_eq!(TextConfig::parse(br#"{"grammar": ""}"#).unwrap().0.grammar, Some(None));
        assert_eq!(TextConfig::parse(br#"{"temp": 0}"#).unwrap().0.grammar, None);
        assert!(TextConfig::parse(br#"{"grammar": "root ::= \"a\"", "json-schema": "{}"}"#).is_err());
        assert!(TextConfig::parse(br#"{"json-schema": "{not json"}"#).is_err());
        assert!(TextConfig::parse(br#"{"grammar": 5}"#).is_err());
    }

    #[test]
    fn random_seed_for_minus_one() {
        let seed = |b: &[u8]| TextConfig::parse(b).unwrap().0.seed.unwrap();
        assert_eq!(seed(br#"{"seed": 7}"#), 7);
        assert_ne!(seed(br#"{"seed": -1}"#), seed(br#"{"seed": -1}"#));
        assert_ne!(seed(br#"{"seed": 4294967295}"#), 4294967295);
    }

    #[test]
    fn wrong_types_are_invalid_arguments() {
        for bad in [&br#"{"temp": "hot"}"#[..], br#"{"n-predict": 1.5}"#, br#"{"top-k": -1}"#, br#"[1]"#, b"{", br#"{"messages": [{"role": 1}]}"#] {
            let e = TextConfig::parse(bad).unwrap_err();
            assert_eq!(e.code, crate::error::ErrorCode::InvalidArgument, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn messages() {
        let (c, _) = TextConfig::parse(br#"{"messages": [{"role": "user", "content": "hi"}]}"#).unwrap();
        assert_eq!(c.messages.unwrap()[0].content, "hi");
    }
}
