#![allow(dead_code)]

//! What the three apps share: options from the environment (as the
//! WasmEdge-WASINN examples read them), the JSON config they send, and
//! reading outputs. Errors end the process with a message, never a panic.

use serde_json::{json, Map, Value};
use wasmedge_wasi_nn::{BackendError, Error, GraphExecutionContext, TensorType};

/// Output buffer size, as in the WasmEdge-WASINN examples.
pub const MAX_OUTPUT_BUFFER_SIZE: usize = 4096 * 6;

/// The plugin options, from environment variables named like the config
/// keys with `_` for `-` (`n_predict`, `ctx_size`, `temp`, `top_p`,
/// `repeat_penalty`, `seed`, `reverse_prompt`, `enable_log`,
/// `stream_stdout`, `n_gpu_layers`, `batch_size`).
pub fn options_from_env() -> Value {
    let mut o = Map::new();
    o.insert("enable-log".into(), json!(env_bool("enable_log")));
    o.insert("n-gpu-layers".into(), json!(env_num("n_gpu_layers").unwrap_or(0.0) as i64));
    for (env, key, int) in [
        ("n_predict", "n-predict", true),
        ("ctx_size", "ctx-size", true),
        ("batch_size", "batch-size", true),
        ("seed", "seed", true),
        ("temp", "temp", false),
        ("top_p", "top-p", false),
        ("repeat_penalty", "repeat-penalty", false),
    ] {
        if let Some(v) = env_num(env) {
            o.insert(key.into(), if int { json!(v as i64) } else { json!(v) });
        }
    }
    if let Ok(r) = std::env::var("reverse_prompt") {
        o.insert("reverse-prompt".into(), json!(r));
    }
    // Constrained output, as the public `grammar` and `json-schema` apps
    // set it: GBNF text, or a schema as a JSON string.
    for (env, key) in [("grammar", "grammar"), ("json_schema", "json-schema")] {
        if let Ok(v) = std::env::var(env) {
            o.insert(key.into(), json!(v));
        }
    }
    if env_bool("embedding") {
        o.insert("embedding".into(), json!(true));
    }
    if env_bool("stream_stdout") {
        o.insert("stream-stdout".into(), json!(true));
    }
    Value::Object(o)
}

fn env_bool(name: &str) -> bool {
    std::env::var(name).map(|v| v == "1" || v == "true").unwrap_or(false)
}

fn env_num(name: &str) -> Option<f64> {
    let v = std::env::var(name).ok()?;
    match v.parse() {
        Ok(n) => Some(n),
        Err(_) => fail(&format!("environment variable {name}={v} is not a number")),
    }
}

/// Prints `msg` and exits with status 1.
pub fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(1)
}

/// Ends the process on an error, naming the step that failed.
pub fn check<T>(step: &str, r: Result<T, Error>) -> T {
    r.unwrap_or_else(|e| fail(&format!("{step}: {e}")))
}

/// `set_input(1, ...)`: the options as JSON bytes (index 1 is the
/// metadata input of WasmEdge's GGML plugin).
pub fn set_options(ctx: &mut GraphExecutionContext, options: &Value) {
    let data = options.to_string().into_bytes();
    check("set_input(1, options)", ctx.set_input(1, TensorType::U8, &[1], &data));
}

/// `set_input(0, ...)`: the prompt as bytes.
pub fn set_prompt(ctx: &mut GraphExecutionContext, prompt: &str) {
    check("set_input(0, prompt)", ctx.set_input(0, TensorType::U8, &[1], prompt.as_bytes()));
}

/// Output `index` of the last `compute` (0: text, 1: metadata JSON).
pub fn output(ctx: &GraphExecutionContext, index: usize) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_OUTPUT_BUFFER_SIZE];
    let n = check("get_output", ctx.get_output(index, &mut buf));
    buf.truncate(n);
    buf
}

/// Output `index` of the last `compute_single` (0: the latest token's text).
pub fn output_single(ctx: &GraphExecutionContext, index: usize) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_OUTPUT_BUFFER_SIZE];
    let n = check("get_output_single", ctx.get_output_single(index, &mut buf));
    buf.truncate(n);
    buf
}

/// `compute`, where a full context still leaves the text produced so far
/// (as LlamaEdge treats it).
pub fn compute(ctx: &mut GraphExecutionContext) {
    match ctx.compute() {
        Ok(()) => {}
        Err(Error::BackendError(BackendError::ContextFull)) => eprintln!("[warn] context full"),
        Err(Error::BackendError(BackendError::PromptTooLong)) => fail("the prompt is too long for the context"),
        Err(e) => fail(&format!("compute: {e}")),
    }
}

/// Prints the metadata output (token counts) to stderr, one line.
pub fn print_metadata(meta: &[u8]) {
    eprintln!("metadata: {}", String::from_utf8_lossy(meta));
}
