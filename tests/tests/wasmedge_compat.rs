//! WasmEdge compatibility: core-module guests written by us with the
//! crates.io crate `wasmedge-wasi-nn` (0.7 and 0.8, in
//! guest-components/wasmedge) run unmodified under `edgewasm run`, with
//! WasmEdge's command line, and give the native engine's output; bad guest
//! pointers are error codes; the sandbox limits hold for core modules.
//!
//! Builds the release `edgewasm` binary and the wasm32-wasip1 guests (into
//! target/guests/wasmedge/) on first use.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use edgewasm_tests::{edgewasm, model_path, peak_rss_when_ready, repo_root, wasmedge_guest as guest, SMOLLM2};

fn run_with(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let model = model_path(SMOLLM2);
    let mut c = Command::new(edgewasm());
    c.current_dir(repo_root()).env("EDGEWASM_MODELS_DIR", model.parent().unwrap()).args(args);
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().expect("spawn edgewasm");
    eprintln!(
        "$ edgewasm {}\n-> {:?}\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn run(args: &[&str]) -> Output {
    run_with(args, &[])
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `edgewasm run` as WasmEdge is invoked: `--dir .:. --nn-preload
/// default:GGML:AUTO:MODEL`, then the guest's options as `--env` and the
/// app with its arguments (`default 'prompt'`).
fn run_guest(app: &str, env: &[&str], args: &[&str]) -> Output {
    let preload = format!("default:GGML:AUTO:{}", model_path(SMOLLM2).display());
    let wasm = guest(app);
    let mut a = vec!["run", "--dir", ".:.", "--nn-preload", &preload];
    for e in env {
        a.extend(["--env", e]);
    }
    a.push(s(&wasm));
    a.extend(args);
    run(&a)
}

/// `edgewasm generate -v`: the text and (prompt, generated) token counts.
fn native(args: &[&str]) -> (String, usize, usize) {
    let mut a = vec!["generate", "-v", "--temp", "0"];
    a.extend(args);
    let o = run(&a);
    assert!(o.status.success());
    let err = stderr(&o);
    let count = |key: &str| -> usize {
        let rest = &err[err.find(key).unwrap_or_else(|| panic!("no `{key}` in {err}")) + key.len()..];
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    (stdout(&o), count("prompt: "), count("generated: "))
}

/// The metadata JSON lines the guests print to stderr.
fn metadata(o: &Output) -> Vec<serde_json::Value> {
    stderr(o)
        .lines()
        .filter_map(|l| l.strip_prefix("metadata: "))
        .map(|l| serde_json::from_str(l).expect("metadata is JSON"))
        .collect()
}

fn tokens(m: &serde_json::Value) -> (usize, usize) {
    (m["input_tokens"].as_u64().unwrap() as usize, m["output_tokens"].as_u64().unwrap() as usize)
}

const VERSIONS: &[&str] = &["v07", "v08"];
const PROMPTS: &[&str] = &["The three primary colors are", "Once upon a time, in a small village,"];

#[test]
fn basic_completion_matches_native_generate() {
    for p in PROMPTS {
        let (text, n_in, n_out) = native(&["--max-tokens", "32", "--prompt", p]);
        assert!(!text.trim().is_empty());
        for v in VERSIONS {
            let o = run_guest(&format!("basic-{v}"), &["temp=0", "n_predict=32"], &["default", p]);
            assert!(o.status.success(), "basic-{v}");
            assert_eq!(stdout(&o), text, "basic-{v} differs from `edgewasm generate` for {p:?}");
            let m = metadata(&o);
            assert_eq!(m.len(), 1);
            assert_eq!(tokens(&m[0]), (n_in, n_out), "basic-{v} token counts");
            assert!(m[0]["llama_commit"].as_str().unwrap().starts_with("edgewasm"), "{}", m[0]);
            assert!(m[0]["llama_build_number"].is_u64());
        }
    }
}

/// The `grammar` and `json-schema` config keys constrain the output as
/// `edgewasm generate --grammar/--json-schema` does, on both crate
/// versions; a bad grammar is an error naming its line and column.
#[test]
fn grammar_and_json_schema_keys_constrain_the_output() {
    let schema = r#"{"type":"object","properties":{"color":{"enum":["red","green","blue"]},"count":{"type":"integer","minimum":1,"maximum":9}},"required":["color","count"]}"#;
    let prompt = "The three primary colors are";
    let cases = [("grammar", "root ::= (\"yes\" | \"no\") \".\"", "--grammar"), ("json_schema", schema, "--json-schema")];
    for (key, value, flag) in cases {
        let (text, _, _) = native(&["--max-tokens", "48", "--prompt", prompt, flag, value]);
        if key == "json_schema" {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
            assert!(v["count"].as_u64().is_some_and(|c| (1..=9).contains(&c)), "{v}");
        } else {
            assert!(text == "yes.\n" || text == "no.\n", "{text:?}");
        }
        let env = format!("{key}={value}");
        for v in VERSIONS {
            let o = run_guest(&format!("basic-{v}"), &["temp=0", "n_predict=48", &env], &["default", prompt]);
            assert!(o.status.success(), "basic-{v} with {key}");
            assert_eq!(stdout(&o), text, "basic-{v} with {key} differs from `edgewasm generate {flag}`");
        }
    }
    let o = run_guest("basic-v08", &["temp=0", "grammar=root ::= \"a\" missing"], &["default", prompt]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("undefined rule `missing` at line 1, column 14"), "{}", stderr(&o));
}

/// `embedding: true`, as LlamaEdge's embedding apps set it: output 0 is
/// `{"n_embedding": N, "embedding": [...]}` with `edgewasm embed`'s vector.
#[test]
fn embedding_key_writes_the_embedding_as_wasmedge_does() {
    let text = "Edge devices run small models offline.";
    let native = run(&["embed", "--array", text]);
    assert!(native.status.success());
    let native: Vec<Vec<f32>> = serde_json::from_str(stdout(&native).trim()).unwrap();
    for v in VERSIONS {
        let o = run_guest(&format!("basic-{v}"), &["embedding=1"], &["default", text]);
        assert!(o.status.success(), "basic-{v}");
        let out: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("output 0 is JSON");
        let got: Vec<f32> = out["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        assert_eq!(out["n_embedding"].as_u64(), Some(got.len() as u64));
        assert_eq!(got.len(), native[0].len());
        let diff = got.iter().zip(&native[0]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-5, "basic-{v} embedding differs from `edgewasm embed` by {diff}");
        let m = metadata(&o);
        assert_eq!(tokens(&m[0]).1, 0);
        assert!(tokens(&m[0]).0 > 5);
    }
}

#[test]
fn streaming_with_compute_single_equals_compute() {
    let p = PROMPTS[1];
    let (text, n_in, n_out) = native(&["--max-tokens", "40", "--prompt", p]);
    for v in VERSIONS {
        let o = run_guest(&format!("stream-{v}"), &["temp=0", "n_predict=40"], &["default", p]);
        assert!(o.status.success(), "stream-{v}");
        assert_eq!(stdout(&o), text, "stream-{v}: the pieces do not add up to the completion");
        assert_eq!(tokens(&metadata(&o)[0]), (n_in, n_out));
        // One compute_single per generated token.
        assert!(stderr(&o).contains(&format!("pieces: {n_out}\n")), "{}", stderr(&o));
    }
}

const SYSTEM: &str = "You are a concise assistant.";

#[test]
fn chatml_chat_matches_the_native_chat_template() {
    let q = "What is the capital of France?";
    let (text, n_in, n_out) = native(&["--chat", "--system", SYSTEM, "--max-tokens", "48", "--prompt", q]);
    for v in VERSIONS {
        let sys = format!("system={SYSTEM}");
        let o = run_guest(&format!("chat-{v}"), &["temp=0", "n_predict=48", &sys], &["default", q]);
        assert!(o.status.success(), "chat-{v}");
        assert_eq!(stdout(&o), text, "chat-{v}: hand-built ChatML differs from the model's template");
        assert_eq!(tokens(&metadata(&o)[0]), (n_in, n_out));
    }
}

#[test]
fn a_prompt_that_extends_the_last_reuses_the_cache_with_unchanged_output() {
    let sys = format!("system={SYSTEM}");
    let turns = ["Name a primary color.", "And another one?", "Thanks. One more?"];
    let mut args = vec!["default"];
    args.extend(turns);
    let reuse = run_guest("chat-v08", &["temp=0", "n_predict=24", &sys], &args);
    let fresh = run_guest("chat-v08", &["temp=0", "n_predict=24", &sys, "fresh_context=1"], &args);
    assert!(reuse.status.success() && fresh.status.success());
    assert_eq!(stdout(&reuse), stdout(&fresh), "reusing the KV cache changed the answers");
    let (mr, mf) = (metadata(&reuse), metadata(&fresh));
    assert_eq!(mr.len(), turns.len());
    for t in 1..turns.len() {
        let reused = mr[t]["reused_tokens"].as_u64().unwrap();
        assert!(reused > 0, "turn {t}: nothing reused: {}", mr[t]);
        assert_eq!(mf[t]["reused_tokens"].as_u64(), Some(0));
        assert_eq!(tokens(&mr[t]), tokens(&mf[t]));
    }
}

#[test]
fn unknown_model_name_is_model_not_found() {
    let o = run_guest("basic-v07", &[], &["nosuch-model", "Hi"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("Model Not Found"), "{}", stderr(&o));
}

/// Writes the text-format module `wat` as `NAME.wasm` in `dir`.
fn wat_module(dir: &Path, name: &str, wat: &str) -> PathBuf {
    let bytes = wat::parse_str(wat).unwrap_or_else(|e| panic!("{name}: {e}"));
    let p = dir.join(format!("{name}.wasm"));
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A `(data ...)` segment of little-endian u32 values.
fn words(at: u32, values: &[u32]) -> String {
    let hex: String = values.iter().flat_map(|v| v.to_le_bytes()).map(|b| format!("\\{b:02x}")).collect();
    format!("(data (i32.const {at}) \"{hex}\")")
}

#[test]
fn bad_guest_pointers_are_error_codes_and_the_host_survives() {
    let dir = tempfile::tempdir().unwrap();
    let config = r#"{"n-predict": 4, "temp": 0}"#;
    // Layout: 0 graph, 4 context, 8 bytes written; 64 "default", 80
    // "nosuch"; 128 a builder entry out of bounds; 160 a tensor whose data
    // is out of bounds; 256 a good prompt tensor; 400 a config tensor.
    let segments = [
        words(128, &[0xfff0, 0x1000]),
        words(160, &[300, 1, 3, 0xfffe, 16]),
        words(256, &[300, 1, 3, 320, 5]),
        words(300, &[1]),
        words(400, &[300, 1, 3, 440, config.len() as u32]),
    ]
    .join("\n");
    let config = config.replace('"', "\\\"");
    let wat = format!(
        r#"(module
  (import "wasi_ephemeral_nn" "load" (func $load (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "load_by_name" (func $load_by_name (param i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "init_execution_context" (func $init (param i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "set_input" (func $set_input (param i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "compute" (func $compute (param i32) (result i32)))
  (import "wasi_ephemeral_nn" "compute_single" (func $compute_single (param i32) (result i32)))
  (import "wasi_ephemeral_nn" "get_output" (func $get_output (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "finalize_execution_context" (func $fin (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "default")
  (data (i32.const 80) "nosuch")
  (data (i32.const 320) "Hello")
  (data (i32.const 440) "{config}")
  {segments}
  ;; Exits with `step` unless `got` is `want`.
  (func $expect (param $got i32) (param $want i32) (param $step i32)
    (if (i32.ne (local.get $got) (local.get $want)) (then (call $exit (local.get $step)))))
  (func (export "_start")
    (call $expect (call $load (i32.const 0xfffffff0) (i32.const 1) (i32.const 6) (i32.const 3) (i32.const 0)) (i32.const 1) (i32.const 10))
    (call $expect (call $load (i32.const 128) (i32.const 0x7fffffff) (i32.const 6) (i32.const 3) (i32.const 0)) (i32.const 1) (i32.const 11))
    (call $expect (call $load (i32.const 128) (i32.const 1) (i32.const 6) (i32.const 3) (i32.const 0)) (i32.const 1) (i32.const 12))
    (call $expect (call $load_by_name (i32.const -1) (i32.const 7) (i32.const 0)) (i32.const 1) (i32.const 13))
    (call $expect (call $load_by_name (i32.const 64) (i32.const 7) (i32.const 65534)) (i32.const 1) (i32.const 14))
    (call $expect (call $load_by_name (i32.const 80) (i32.const 6) (i32.const 0)) (i32.const 103) (i32.const 15))
    (call $expect (call $load_by_name (i32.const 64) (i32.const 7) (i32.const 0)) (i32.const 0) (i32.const 16))
    (call $expect (call $init (i32.load (i32.const 0)) (i32.const 65536)) (i32.const 1) (i32.const 17))
    (call $expect (call $init (i32.const 99) (i32.const 4)) (i32.const 1) (i32.const 18))
    (call $expect (call $init (i32.load (i32.const 0)) (i32.const 4)) (i32.const 0) (i32.const 19))
    (call $expect (call $set_input (i32.load (i32.const 4)) (i32.const 0) (i32.const 65530)) (i32.const 1) (i32.const 20))
    (call $expect (call $set_input (i32.load (i32.const 4)) (i32.const 0) (i32.const 160)) (i32.const 1) (i32.const 21))
    (call $expect (call $compute (i32.const 12345)) (i32.const 1) (i32.const 22))
    (call $expect (call $compute_single (i32.load (i32.const 4))) (i32.const 1) (i32.const 23))
    (call $expect (call $get_output (i32.load (i32.const 4)) (i32.const 1) (i32.const 65000) (i32.const 10000) (i32.const 8)) (i32.const 1) (i32.const 24))
    (call $expect (call $get_output (i32.load (i32.const 4)) (i32.const 1) (i32.const 1024) (i32.const 512) (i32.const -4)) (i32.const 1) (i32.const 25))
    (call $expect (call $get_output (i32.load (i32.const 4)) (i32.const 1) (i32.const 1024) (i32.const 2) (i32.const 8)) (i32.const 7) (i32.const 26))
    ;; After all that, a real request still works.
    (call $expect (call $set_input (i32.load (i32.const 4)) (i32.const 1) (i32.const 400)) (i32.const 0) (i32.const 27))
    (call $expect (call $set_input (i32.load (i32.const 4)) (i32.const 0) (i32.const 256)) (i32.const 0) (i32.const 28))
    (call $expect (call $compute (i32.load (i32.const 4))) (i32.const 0) (i32.const 29))
    (call $expect (call $get_output (i32.load (i32.const 4)) (i32.const 0) (i32.const 1024) (i32.const 4096) (i32.const 8)) (i32.const 0) (i32.const 30))
    (if (i32.eqz (i32.load (i32.const 8))) (then (call $exit (i32.const 31))))
    (call $expect (call $fin (i32.load (i32.const 4))) (i32.const 0) (i32.const 32))
    (call $expect (call $fin (i32.load (i32.const 4))) (i32.const 1) (i32.const 33))
    (call $exit (i32.const 0))))"#
    );
    let m = wat_module(dir.path(), "bad-pointers", &wat);
    let o = run(&["run", "--nn-preload", &format!("default:GGML:AUTO:{}", model_path(SMOLLM2).display()), s(&m)]);
    assert_eq!(o.status.code(), Some(0), "a check failed: the exit code is its step number");
    assert!(stderr(&o).contains("lie outside guest memory"), "{}", stderr(&o));

    // No memory export: MissingMemory (3); the module traps otherwise.
    let m = wat_module(
        dir.path(),
        "no-memory",
        r#"(module
  (import "wasi_ephemeral_nn" "compute" (func $compute (param i32) (result i32)))
  (func (export "_start") (if (i32.ne (call $compute (i32.const 0)) (i32.const 3)) (then unreachable))))"#,
    );
    assert_eq!(run(&["run", s(&m)]).status.code(), Some(0));
}

/// WasmEdge's behaviour in the details apps rely on: output 1 has
/// `input_tokens` right after `set_input`; a prompt too long for the
/// context is error 102 from `compute`; `unload` frees the contexts made
/// from the graph; an `--nn-preload` file that does not exist is a warning
/// at start and 103 at `load_by_name`; a second `set_input` replaces the
/// first prompt.
#[test]
fn set_input_metadata_prompt_too_long_unload_and_missing_preload() {
    let dir = tempfile::tempdir().unwrap();
    let prompt = "one two three four five six seven eight nine ten ".repeat(6);
    let config = r#"{"ctx-size": 32, "n-predict": 4}"#;
    // 0 graph, 4 context, 8 bytes written; 64 "default", 80 "gone";
    // 96 config; 256 prompt tensor; 300 dims; 320 config tensor; 352 an
    // iovec of the output at 1024; 2048 the prompt.
    let segments = [
        words(256, &[300, 1, 3, 2048, prompt.len() as u32]),
        words(300, &[1]),
        words(320, &[300, 1, 3, 96, config.len() as u32]),
        words(352, &[1024, 0]),
        words(384, &[300, 1, 3, 448, 5]),
        words(416, &[440, 1]),
    ]
    .join("\n");
    let config = config.replace('"', "\\\"");
    let wat = format!(
        r#"(module
  (import "wasi_ephemeral_nn" "load_by_name" (func $load_by_name (param i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "load_by_name_with_config" (func $load_cfg (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "init_execution_context" (func $init (param i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "set_input" (func $set_input (param i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "compute" (func $compute (param i32) (result i32)))
  (import "wasi_ephemeral_nn" "get_output" (func $get_output (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "unload" (func $unload (param i32) (result i32)))
  (import "wasi_ephemeral_nn" "finalize_execution_context" (func $fin (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "default")
  (data (i32.const 80) "gone")
  (data (i32.const 96) "{config}")
  (data (i32.const 2048) "{prompt}")
  (data (i32.const 440) "\n")
  (data (i32.const 448) "Hello")
  {segments}
  (func $expect (param $got i32) (param $want i32) (param $step i32)
    (if (i32.ne (local.get $got) (local.get $want)) (then (call $exit (local.get $step)))))
  (func (export "_start")
    (call $expect (call $load_by_name (i32.const 80) (i32.const 4) (i32.const 0)) (i32.const 103) (i32.const 10))
    (call $expect (call $load_cfg (i32.const 64) (i32.const 7) (i32.const 96) (i32.const {cfg_len}) (i32.const 0)) (i32.const 0) (i32.const 11))
    (call $expect (call $init (i32.load (i32.const 0)) (i32.const 4)) (i32.const 0) (i32.const 12))
    (call $expect (call $set_input (i32.load (i32.const 4)) (i32.const 0) (i32.const 256)) (i32.const 0) (i32.const 13))
    (call $expect (call $get_output (i32.load (i32.const 4)) (i32.const 1) (i32.const 1024) (i32.const 512) (i32.const 8)) (i32.const 0) (i32.const 14))
    (i32.store (i32.const 356) (i32.load (i32.const 8)))
    (call $expect (call $write (i32.const 1) (i32.const 352) (i32.const 1) (i32.const 360)) (i32.const 0) (i32.const 15))
    (call $expect (call $write (i32.const 1) (i32.const 416) (i32.const 1) (i32.const 360)) (i32.const 0) (i32.const 35))
    (call $expect (call $compute (i32.load (i32.const 4))) (i32.const 102) (i32.const 16))
    ;; set-input twice: the second prompt replaces the first.
    (call $expect (call $set_input (i32.load (i32.const 4)) (i32.const 0) (i32.const 384)) (i32.const 0) (i32.const 30))
    (call $expect (call $get_output (i32.load (i32.const 4)) (i32.const 1) (i32.const 1024) (i32.const 512) (i32.const 8)) (i32.const 0) (i32.const 31))
    (i32.store (i32.const 356) (i32.load (i32.const 8)))
    (call $expect (call $write (i32.const 1) (i32.const 352) (i32.const 1) (i32.const 360)) (i32.const 0) (i32.const 32))
    (call $expect (call $write (i32.const 1) (i32.const 416) (i32.const 1) (i32.const 360)) (i32.const 0) (i32.const 33))
    (call $expect (call $compute (i32.load (i32.const 4))) (i32.const 0) (i32.const 34))
    (call $expect (call $unload (i32.load (i32.const 0))) (i32.const 0) (i32.const 17))
    (call $expect (call $compute (i32.load (i32.const 4))) (i32.const 1) (i32.const 18))
    (call $expect (call $fin (i32.load (i32.const 4))) (i32.const 1) (i32.const 19))
    (call $exit (i32.const 0))))"#,
        cfg_len = r#"{"ctx-size": 32, "n-predict": 4}"#.len(),
    );
    let m = wat_module(dir.path(), "parity", &wat);
    let real = format!("default:GGML:AUTO:{}", model_path(SMOLLM2).display());
    let o = run(&["run", "--nn-preload", "gone:GGML:AUTO:/nonexistent/model.gguf", "--nn-preload", &real, s(&m)]);
    assert_eq!(o.status.code(), Some(0), "a check failed: the exit code is its step number");
    assert!(stderr(&o).contains("/nonexistent/model.gguf does not exist"), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let tok = edgewasm_tests::model(SMOLLM2);
    let want = tok.tokenizer().encode(&prompt, true, true).len();
    assert!(want > 32);
    assert_eq!(lines[0]["input_tokens"].as_u64(), Some(want as u64), "{out}");
    assert_eq!(lines[0]["output_tokens"].as_u64(), Some(0), "{out}");
    let hello = tok.tokenizer().encode("Hello", true, true).len();
    assert_eq!(lines[1]["input_tokens"].as_u64(), Some(hello as u64), "the second set_input replaces the first: {out}");
}

#[test]
fn core_modules_get_the_same_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    // Wall-clock limit in wasm: exit 124.
    let spin = wat_module(dir.path(), "spin", r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#);
    assert_eq!(run(&["run", "--timeout", "500ms", s(&spin)]).status.code(), Some(124));
    // Memory limit.
    let bomb = wat_module(
        dir.path(),
        "bomb",
        r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (drop (memory.grow (i32.const 16))) (br $l))))"#,
    );
    let o = run(&["run", "--max-memory", "8MiB", s(&bomb)]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--max-memory"), "{}", stderr(&o));
    // Wall-clock limit during host inference: exit 124 as well.
    let o = run_guest_timeout();
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    // The compile cache covers core modules.
    let cache = tempfile::tempdir().unwrap();
    let env = [("EDGEWASM_CACHE_DIR", cache.path().to_str().unwrap())];
    let first = run_with(&["run", "-v", "--timeout", "200ms", s(&spin)], &env);
    assert!(stderr(&first).contains("core module Compiled"), "{}", stderr(&first));
    let second = run_with(&["run", "-v", "--timeout", "200ms", s(&spin)], &env);
    assert!(stderr(&second).contains("core module CacheHit"), "{}", stderr(&second));
}

fn run_guest_timeout() -> Output {
    let preload = format!("default:GGML:AUTO:{}", model_path(SMOLLM2).display());
    let wasm = guest("stream-v08");
    run(&[
        "run",
        "--timeout",
        "1500ms",
        "--nn-preload",
        &preload,
        "--env",
        "temp=0",
        "--env",
        "n_predict=4000",
        "--env",
        "ctx_size=8192",
        s(&wasm),
        "default",
        "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,",
    ])
}

/// A module that loads and unloads the preloaded `default` graph `graphs`
/// times and creates and frees a 16-position context `contexts` times,
/// checking every code and that stale handles are invalid after their
/// slots were reused; with `cap`, also that the fifth live handle under
/// `--max-handles 4` is refused (7). Then prints `ready` and waits for
/// stdin to close.
fn churn_module(dir: &Path, graphs: u32, contexts: u32, cap: bool) -> PathBuf {
    let config = r#"{"ctx-size": 16}"#;
    let wat = format!(
        r#"(module
  (import "wasi_ephemeral_nn" "load_by_name" (func $load_by_name (param i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "load_by_name_with_config" (func $load_cfg (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "unload" (func $unload (param i32) (result i32)))
  (import "wasi_ephemeral_nn" "init_execution_context" (func $init (param i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "finalize_execution_context" (func $fin (param i32) (result i32)))
  (import "wasi_ephemeral_nn" "compute" (func $compute (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  ;; 0 graph, 4 context, 8 first graph, 12 first context, 16 a third
  ;; context, 20 spare; 32 an iovec of "ready\n", 48 an iovec of 8 bytes at 56
  (data (i32.const 32) "\80\00\00\00\06\00\00\00")
  (data (i32.const 48) "\38\00\00\00\08\00\00\00")
  (data (i32.const 64) "default")
  (data (i32.const 96) "{cfg}")
  (data (i32.const 128) "ready\n")
  (func $expect (param $got i32) (param $want i32) (param $step i32)
    (if (i32.ne (local.get $got) (local.get $want)) (then (call $exit (local.get $step)))))
  (func (export "_start") (local $i i32)
    (call $expect (call $load_by_name (i32.const 64) (i32.const 7) (i32.const 8)) (i32.const 0) (i32.const 10))
    (call $expect (call $unload (i32.load (i32.const 8))) (i32.const 0) (i32.const 11))
    (local.set $i (i32.const 0))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.const {graphs})))
      (call $expect (call $load_by_name (i32.const 64) (i32.const 7) (i32.const 0)) (i32.const 0) (i32.const 12))
      (call $expect (call $unload (i32.load (i32.const 0))) (i32.const 0) (i32.const 13))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    ;; A live graph in the first graph's slot; the first handle stays invalid.
    (call $expect (call $load_cfg (i32.const 64) (i32.const 7) (i32.const 96) (i32.const {cfg_len}) (i32.const 0)) (i32.const 0) (i32.const 14))
    (if (i32.eq (i32.load (i32.const 0)) (i32.load (i32.const 8))) (then (call $exit (i32.const 15))))
    (call $expect (call $unload (i32.load (i32.const 8))) (i32.const 1) (i32.const 16))
    (call $expect (call $init (i32.load (i32.const 8)) (i32.const 4)) (i32.const 1) (i32.const 17))
    (call $expect (call $init (i32.load (i32.const 0)) (i32.const 12)) (i32.const 0) (i32.const 18))
    (call $expect (call $fin (i32.load (i32.const 12))) (i32.const 0) (i32.const 19))
    (local.set $i (i32.const 0))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.const {contexts})))
      (call $expect (call $init (i32.load (i32.const 0)) (i32.const 4)) (i32.const 0) (i32.const 20))
      (call $expect (call $fin (i32.load (i32.const 4))) (i32.const 0) (i32.const 21))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (call $expect (call $fin (i32.load (i32.const 12))) (i32.const 1) (i32.const 22))
    (call $expect (call $compute (i32.load (i32.const 12))) (i32.const 1) (i32.const 23))
    (if (i32.const {cap}) (then
      ;; Under --max-handles 4: the graph and three contexts, then refused.
      (call $expect (call $init (i32.load (i32.const 0)) (i32.const 4)) (i32.const 0) (i32.const 24))
      (call $expect (call $init (i32.load (i32.const 0)) (i32.const 12)) (i32.const 0) (i32.const 25))
      (call $expect (call $init (i32.load (i32.const 0)) (i32.const 16)) (i32.const 0) (i32.const 26))
      (call $expect (call $init (i32.load (i32.const 0)) (i32.const 20)) (i32.const 7) (i32.const 27))
      (call $expect (call $fin (i32.load (i32.const 16))) (i32.const 0) (i32.const 28))
      (call $expect (call $init (i32.load (i32.const 0)) (i32.const 20)) (i32.const 0) (i32.const 29))))
    (call $expect (call $write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 24)) (i32.const 0) (i32.const 30))
    (drop (call $read (i32.const 0) (i32.const 48) (i32.const 1) (i32.const 24)))
    (call $exit (i32.const 0))))"#,
        cfg = config.replace('"', "\\\""),
        cfg_len = config.len(),
        cap = cap as u32,
    );
    wat_module(dir, &format!("churn-{graphs}-{contexts}-{cap}"), &wat)
}

/// Graph and context churn costs no host memory: the handle tables reuse
/// freed slots (finding: 10 M load/unload cycles reached 2.1 GB, 1 M
/// init/finalize 1.3 GB, under --max-memory 16MiB), and stale handles stay
/// invalid.
#[test]
fn handle_churn_keeps_host_memory_flat() {
    let dir = tempfile::tempdir().unwrap();
    let preload = format!("default:GGML:AUTO:{}", model_path(SMOLLM2).display());
    let flags = ["run", "--max-memory", "16MiB", "--nn-preload", &preload];
    let small = churn_module(dir.path(), 1_000, 1_000, false);
    let big = churn_module(dir.path(), CHURN_GRAPHS, CHURN_CONTEXTS, false);
    let (hwm_small, o, _) = peak_rss_when_ready(&[&flags[..], &[s(&small)]].concat());
    assert_eq!(o.status.code(), Some(0), "a check failed: the exit code is its step number");
    let (hwm_big, o, took) = peak_rss_when_ready(&[&flags[..], &[s(&big)]].concat());
    assert_eq!(o.status.code(), Some(0), "a check failed: the exit code is its step number");
    let grew = hwm_big.saturating_sub(hwm_small);
    eprintln!(
        "{CHURN_GRAPHS} load/unload + {CHURN_CONTEXTS} init/finalize cycles in {took:.2?}: peak RSS {hwm_big} kB vs {hwm_small} kB for 1000 + 1000 (+{grew} kB)"
    );
    assert!(hwm_small > 0 && hwm_big > 0, "no VmHWM read");
    assert!(grew < 8 << 10, "peak RSS grew by {grew} kB over the churn");
}

/// `--max-handles` caps the graphs and contexts a core module holds at
/// once: the handle past it is refused with error 7 (too large), and
/// freeing one makes room again.
#[test]
fn max_handles_refuses_the_handle_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let preload = format!("default:GGML:AUTO:{}", model_path(SMOLLM2).display());
    let m = churn_module(dir.path(), 10, 10, true);
    let (_, o, _) = peak_rss_when_ready(&["run", "--max-handles", "4", "--nn-preload", &preload, s(&m)]);
    assert_eq!(o.status.code(), Some(0), "a check failed: the exit code is its step number");
    assert!(stderr(&o).contains("the limit is 4 (--max-handles)"), "{}", stderr(&o));
    let o = run(&["run", "--max-handles", "0", s(&m)]);
    assert_eq!(o.status.code(), Some(2), "clap refuses 0");
}

const CHURN_GRAPHS: u32 = 1_000_000;
/// 100 000: a context costs about 50 µs to create (its buffers), so a
/// million would take a minute; this many grew the peak RSS by 106 MB before.
const CHURN_CONTEXTS: u32 = 100_000;

/// A core module reads a model of 128 MiB or more (Gemma 3, 241 MiB) with
/// one `fd_read` and passes it to `load`: the hostcall limit of core
/// modules follows --max-load-size as it does for components (wasmtime's
/// default of 128 MiB refused the read with ENOMEM).
#[test]
fn a_core_module_reads_a_241_mib_model_in_one_call_and_loads_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = model_path(edgewasm_tests::GEMMA3).canonicalize().unwrap();
    let len = std::fs::metadata(&model).unwrap().len() as u32;
    assert!(len >= 128 << 20, "the test needs a file of 128 MiB or more");
    let name = model.file_name().unwrap().to_str().unwrap();
    let data = 65536u32;
    let pages = (data + len) / 65536 + 1;
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_ephemeral_nn" "load" (func $load (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") {pages})
  ;; 0 fd, 8 iovec, 16 bytes read, 24 graph builder, 32 graph; 64 the name
  {iovec}
  (data (i32.const 64) "{name}")
  (func $expect (param $got i32) (param $want i32) (param $step i32)
    (if (i32.ne (local.get $got) (local.get $want)) (then (call $exit (local.get $step)))))
  (func (export "_start")
    ;; path_open(preopen 3, no flags, name, no oflags, rights fd_read, ...)
    (call $expect (call $open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const {name_len}) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0)) (i32.const 0) (i32.const 10))
    (call $expect (call $read (i32.load (i32.const 0)) (i32.const 8) (i32.const 1) (i32.const 16)) (i32.const 0) (i32.const 11))
    (call $expect (i32.load (i32.const 16)) (i32.const {len}) (i32.const 12))
    (i32.store (i32.const 24) (i32.const {data}))
    (i32.store (i32.const 28) (i32.load (i32.const 16)))
    (call $expect (call $load (i32.const 24) (i32.const 1) (i32.const 6) (i32.const 0) (i32.const 32)) (i32.const 0) (i32.const 13))
    (call $exit (i32.const 0))))"#,
        iovec = words(8, &[data, len]),
        name_len = name.len(),
    );
    let m = wat_module(dir.path(), "read-big", &wat);
    let host_dir = format!("{}::m", model.parent().unwrap().display());
    let o = run(&["run", "--dir", &host_dir, s(&m)]);
    assert_eq!(o.status.code(), Some(0), "step {:?} failed (11: the read was refused)", o.status.code());
}
