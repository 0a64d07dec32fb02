//! Hostile guests under `edgewasm run` (issue #9): each attack ends in a
//! clean error the operator can read and a non-zero exit status, never a
//! signal or a host panic, and never hangs; a trap in one guest leaves
//! other guests alone. The attacks are subcommands of
//! guest-components/rust/test-hostile. Limits refuse early: no test
//! allocates more than about 1 GiB.
//!
//! What each attack looks like to the operator is tabulated in
//! docs/RELIABILITY.md ("Hostile guests").

use std::process::Output;
use std::time::{Duration, Instant};

use edgewasm_tests::*;

fn run(args: &[&str]) -> Output {
    run_edgewasm(args, None)
}

fn hostile(flags: &[&str], attack: &[&str]) -> Output {
    let g = guest("test-hostile");
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.push(g.to_str().unwrap());
    args.extend_from_slice(attack);
    run(&args)
}

/// Exit status `code` (not a signal, not a Rust panic's 101), and `needle`
/// on stderr.
#[track_caller]
fn assert_ends(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "expected exit {code} (a signal is None): {err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "host panic: {err}");
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
}

/// A trap or host-stopped guest: the CLI's one `error:` line names the
/// cause, without a wasm backtrace unless -v.
#[track_caller]
fn assert_stopped(o: &Output, needle: &str) {
    assert_ends(o, 1, needle);
    let err = stderr(o);
    let line = err.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(line.contains(needle), "the error line lacks {needle:?}: {line}");
    assert!(!err.contains("wasm backtrace"), "{err}");
}

/// An attack the host refused with an error the guest received (and
/// printed as `refused: ...`).
#[track_caller]
fn assert_refused(o: &Output, needle: &str) {
    assert_ends(o, 1, "refused: ");
    let err = stderr(o);
    let line = err.lines().find(|l| l.starts_with("refused: ")).unwrap();
    assert!(line.contains(needle), "the refusal lacks {needle:?}: {line}");
}

#[test]
fn stack_overflow_is_a_clean_trap() {
    // Rust keeps big locals on a shadow stack in linear memory: overflowing
    // it is an out-of-bounds access.
    let o = hostile(&[], &["stack-overflow"]);
    assert_stopped(&o, "the guest trapped: wasm trap: out of bounds memory access (a stack overflow");
    // Only wasm's own call stack.
    let o = hostile(&[], &["deep-recursion"]);
    assert_stopped(&o, "the guest trapped: wasm trap: call stack exhausted");
}

#[test]
fn huge_prompts_are_refused_before_tokenizing() {
    // 1 GiB: more than one call may copy to the host (wasmtime's hostcall
    // fuel, raised to our largest limit), stopped before any copy.
    for attack in ["nn-prompt", "llm-complete"] {
        let t = Instant::now();
        let o = hostile(&[], &[attack, "1024"]);
        assert!(stdout(&o).contains("built a prompt of 1024 MiB"));
        assert_stopped(&o, "fuel allocated for hostcalls has been exhausted (one call may pass the host at most");
        assert!(t.elapsed() < Duration::from_secs(30), "{attack}: {:?}", t.elapsed());
    }
    // 64 MiB: copied, then refused by --max-prompt-size before tokenizing
    // (64 MiB of text would take the tokenizer minutes).
    let t = Instant::now();
    let limit = "exceeds the prompt size limit of 1048576 bytes (--max-prompt-size)";
    assert_refused(&hostile(&[], &["nn-prompt", "64"]), &format!("too-large: input `prompt` of 67108864 bytes {limit}"));
    assert_refused(&hostile(&[], &["llm-complete", "64"]), &format!("limit-exceeded: the prompt of 67108864 bytes {limit}"));
    assert_refused(&hostile(&[], &["llm-chat", "64"]), &format!("limit-exceeded: the chat message of 67108864 bytes {limit}"));
    // tokenize and detokenize have no error result: the guest traps.
    assert_stopped(&hostile(&[], &["llm-tokenize", "64"]), &format!("model.tokenize: the text of 67108864 bytes {limit}"));
    assert_stopped(&hostile(&[], &["llm-detokenize", "64"]), &format!("model.detokenize: the token list of 67108864 bytes {limit}"));
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    // The limit is the operator's.
    let o = hostile(&["--max-prompt-size", "128MiB"], &["llm-complete", "2"]);
    assert_refused(&o, "limit-exceeded: the prompt has");
}

#[test]
fn tensors_the_guest_hoards_are_capped() {
    let o = hostile(&[], &["nn-tensor-flood", "64"]);
    assert!(stdout(&o).contains("holding 4 tensors of 64 MiB") && !stdout(&o).contains("holding 5 "), "{}", stdout(&o));
    assert_stopped(&o, "wasi:nn tensor constructor: too-large: wasi:nn tensors of 67108864 more bytes would exceed the guest's limit of 268435456 bytes of live tensors (--max-tensor-memory");
}

#[test]
fn loading_too_many_model_bytes_is_refused() {
    let o = hostile(&["--max-load-size", "16MiB"], &["nn-load", "32"]);
    assert_refused(&o, "too-large: model of 33554432 bytes exceeds the load limit of 16777216 bytes (--max-load-size)");
    let o = hostile(&[], &["nn-load", "1024"]);
    assert_stopped(&o, "fuel allocated for hostcalls has been exhausted");
    // The limit counts every guest-loaded model still alive, with the
    // interleaved copy of its Q4_1/Q8_0 matrices (92 MiB beside the 94 MiB
    // file): it loads once under 300 MiB, not twice.
    // (models/ may hold symlinks, which --dir would rightly not follow out.)
    let path = model_path(SMOLLM2).canonicalize().unwrap();
    let dir = format!("{}::/models", path.parent().unwrap().to_str().unwrap());
    let file = format!("/models/{SMOLLM2}");
    let o = hostile(&["--max-load-size", "300MiB", "--dir", &dir], &["nn-load-file", &file]);
    assert!(stdout(&o).contains("loaded 1 copies") && !stdout(&o).contains("loaded 2"), "{}", stdout(&o));
    assert_refused(&o, "over the load limit of 314572800 bytes (--max-load-size)");
}

/// Over wasmtime's default hostcall limit (128 MiB) but under ours: a
/// guest may hand the host Gemma 3 270M (241 MiB) by `load`.
#[test]
fn a_241_mib_model_loads_from_guest_bytes() {
    let path = model_path(GEMMA3).canonicalize().unwrap();
    let dir = format!("{}::/models", path.parent().unwrap().to_str().unwrap());
    let file = format!("/models/{GEMMA3}");
    let o = run(&["run", "--dir", &dir, guest("nn-greedy").to_str().unwrap(), "--load", &file, "--max-tokens", "2", "2,818"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("tokens: "));
}

#[test]
fn out_of_range_token_ids_are_invalid_arguments() {
    assert_refused(&hostile(&[], &["nn-token", "49152"]), "invalid-argument: token id 49152 is out of range (vocabulary has 49152 tokens)");
    assert_refused(&hostile(&[], &["nn-token", "-1"]), "invalid-argument: token id -1 is out of range");
    assert_refused(&hostile(&[], &["nn-token64", "4294967296"]), "invalid-argument: token id 4294967296 is out of range");
    // Lookups without an error result answer "no such token".
    for id in ["49152", "4294967295"] {
        let o = hostile(&[], &["token-text", id]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stdout(&o).contains(&format!("token-text({id}) = None, is-eog = false")), "{}", stdout(&o));
    }
    // detokenize skips ids outside the vocabulary.
    let o = hostile(&[], &["detokenize-oob"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains(r#"detokenize = "Hello""#), "{}", stdout(&o));
}

#[test]
fn thousands_of_contexts_and_the_kv_memory_cap() {
    // 2000 wasi:nn contexts and 2000 sessions created and dropped: every
    // slot comes back, so the count cap (8) still allows exactly 8 live.
    let t = Instant::now();
    let o = hostile(&[], &["contexts", "2000"]);
    assert!(stdout(&o).contains("created and dropped 2000 contexts and 2000 sessions"), "{}", stdout(&o));
    assert_refused(&o, "after 8 live sessions: limit-exceeded: too many live execution contexts (limit 8, --max-contexts)");
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    // Context memory, counted at each context's full size in its real KV
    // types: an 8192-position SmolLM2 context holds 180 MiB of f16 keys and
    // values + 14.3 MiB of buffers and logits; two fit the default 512 MiB,
    // three do not.
    let o = hostile(&[], &["kv-cap", "8192"]);
    assert_refused(
        &o,
        "after 2 live sessions: limit-exceeded: a context of 194.3 MiB (KV cache and buffers) would bring this guest's live contexts to 582.9 MiB, over the limit of 512.0 MiB (--max-kv-memory)",
    );
    // With an f32 cache (360 MiB + 14.3 MiB) only one fits.
    let o = hostile(&["--cache-type-k", "f32", "--cache-type-v", "f32"], &["kv-cap", "8192"]);
    assert_refused(&o, "after 1 live sessions: limit-exceeded: a context of 374.3 MiB");
    // 45 MiB of f16 KV cache + 14.3 MiB: three fit 200 MiB, four do not.
    let o = hostile(&["--max-kv-memory", "200MiB"], &["kv-cap", "2048"]);
    assert_refused(&o, "after 3 live sessions: limit-exceeded: a context of 59.3 MiB");
}

#[test]
fn resources_used_after_drop_stop_the_guest() {
    for kind in ["tensor", "context", "graph", "model", "session", "generation"] {
        let o = hostile(&[], &["use-after-drop", kind]);
        assert!(stdout(&o).contains(&format!("using a dropped {kind}")));
        assert_stopped(&o, "the guest was stopped: unknown handle index");
        assert!(stderr(&o).contains("(it used a resource handle it had dropped, or never had)"));
    }
    // A generation its session has replaced.
    let o = hostile(&[], &["superseded"]);
    assert!(stdout(&o).contains("second: Ok(Some("), "{}", stdout(&o));
    assert_refused(&o, "invalid-argument: this generation was superseded by a newer one on the same session");
}

#[test]
fn symlinks_and_dot_dot_do_not_escape_dir() {
    let dir = tempfile::tempdir().unwrap();
    let inside = dir.path().join("inside");
    std::fs::create_dir(&inside).unwrap();
    std::fs::write(inside.join("in.txt"), "hello").unwrap();
    std::fs::write(dir.path().join("outside.txt"), "secret").unwrap();
    let outside_dir = dir.path().join("outside-dir");
    std::fs::create_dir(&outside_dir).unwrap();
    std::fs::write(outside_dir.join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink("../outside.txt", inside.join("rel-link")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), inside.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", inside.join("etc-link")).unwrap();
    std::os::unix::fs::symlink(&outside_dir, inside.join("dir-link")).unwrap();
    std::os::unix::fs::symlink("in.txt", inside.join("ok-link")).unwrap();
    let rf = guest("test-read-file");
    let mapped = format!("{}::/data", inside.to_str().unwrap());
    // A link that stays inside is followed.
    let o = run(&["run", "--dir", &mapped, rf.to_str().unwrap(), "/data/ok-link"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("read /data/ok-link: 5 bytes"));
    for bad in ["/data/rel-link", "/data/abs-link", "/data/etc-link", "/data/dir-link/secret.txt", "/data/../outside.txt", "/data/dir-link/../in.txt"] {
        let o = run(&["run", "--dir", &mapped, rf.to_str().unwrap(), bad]);
        assert_eq!(o.status.code(), Some(1), "{bad}: {}", stderr(&o));
        assert!(stdout(&o).contains(&format!("cannot read {bad}")), "{bad} was readable: {}", stdout(&o));
    }
}

#[test]
fn abandoned_outputs_neither_hang_nor_leak() {
    // Exits after one chunk of a 400-token generation.
    let t = Instant::now();
    let o = hostile(&[], &["abandon-stream"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("first chunk Ok(Some("));
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    // Drops unread generations and logits, then generates normally.
    let o = hostile(&[], &["drop-stream"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("last: Ok(\" Paris"), "{}", stdout(&o));

    // A WasmEdge-style core module streaming with compute_single and never
    // calling get_output, then exiting mid-stream.
    let dir = tempfile::tempdir().unwrap();
    let config = r#"{"n-predict": 8, "temp": 0}"#;
    let wat = format!(
        r#"(module
  (import "wasi_ephemeral_nn" "load_by_name" (func $load_by_name (param i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "init_execution_context" (func $init (param i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "set_input" (func $set_input (param i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "compute_single" (func $compute_single (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "default")
  (data (i32.const 300) "\01\00\00\00")
  (data (i32.const 256) "\2c\01\00\00\01\00\00\00\03\00\00\00\40\01\00\00\05\00\00\00")
  (data (i32.const 320) "Hello")
  (data (i32.const 400) "\2c\01\00\00\01\00\00\00\03\00\00\00\b8\01\00\00\{len:02x}\00\00\00")
  (data (i32.const 440) "{config}")
  (func (export "_start") (local $i i32)
    (if (call $load_by_name (i32.const 64) (i32.const 7) (i32.const 0)) (then (call $exit (i32.const 10))))
    (if (call $init (i32.load (i32.const 0)) (i32.const 4)) (then (call $exit (i32.const 11))))
    (if (call $set_input (i32.load (i32.const 4)) (i32.const 1) (i32.const 400)) (then (call $exit (i32.const 12))))
    (if (call $set_input (i32.load (i32.const 4)) (i32.const 0) (i32.const 256)) (then (call $exit (i32.const 13))))
    ;; 30 steps of an 8-token stream (it restarts after its end), no output read.
    (loop $l
      (drop (call $compute_single (i32.load (i32.const 4))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 30))))
    ;; Start one more stream and leave mid-way.
    (drop (call $compute_single (i32.load (i32.const 4))))
    (call $exit (i32.const 0))))"#,
        len = config.len(),
        config = config.replace('"', "\\\""),
    );
    let m = dir.path().join("no-get-output.wasm");
    std::fs::write(&m, wat::parse_str(&wat).unwrap()).unwrap();
    let t = Instant::now();
    let o = run(&["run", m.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "a step failed (exit code = step): {}", stderr(&o));
    assert!(!stderr(&o).contains("error"), "{}", stderr(&o));
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
}

#[test]
fn a_trap_mid_stream_leaves_other_guests_alone() {
    let chat = guest("chat");
    let chat_args = ["run", chat.to_str().unwrap(), "--temp", "0", "--max-tokens", "24", "What is the capital of France?"];
    let alone = run(&chat_args);
    assert_eq!(alone.status.code(), Some(0), "{}", stderr(&alone));
    // The same chat next to a guest that traps after 3 streamed chunks.
    let spawn = |args: &[&str]| {
        edgewasm_command(args).spawn().unwrap()
    };
    let h = guest("test-hostile");
    let trapper = spawn(&["run", h.to_str().unwrap(), "trap-mid-stream", "3"]);
    let neighbour = spawn(&chat_args);
    let trapped = trapper.wait_with_output().unwrap();
    let next = neighbour.wait_with_output().unwrap();
    eprintln!("trapper: {}\n{}", stdout(&trapped), stderr(&trapped));
    assert!(stdout(&trapped).contains("chunk 2:") && stdout(&trapped).contains("trapping now"));
    assert_stopped(&trapped, "the guest trapped: wasm trap: wasm `unreachable` instruction executed");
    assert_eq!(next.status.code(), Some(0), "{}", stderr(&next));
    assert_eq!(stdout(&next), stdout(&alone));
}

/// Creating and dropping wasi:nn graphs, tensors and errors and
/// edgewasm:llm models in a loop costs no host memory (freed table slots
/// are reused), and `--max-handles` caps what a guest holds at once:
/// refused with too-large / limit-exceeded where the call has an error
/// result, a trap naming the limit where it has none (the tensor
/// constructor) or when the guest hoards the errors themselves.
#[test]
fn resource_churn_is_flat_and_live_resources_are_capped() {
    let g = guest("test-hostile");
    let g = g.to_str().unwrap();
    let (hwm_small, o, _) = peak_rss_when_ready(&["run", "--max-memory", "16MiB", g, "churn", "1000"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (hwm_big, o, took) = peak_rss_when_ready(&["run", "--max-memory", "16MiB", g, "churn", "200000"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let grew = hwm_big.saturating_sub(hwm_small);
    eprintln!("200000 churn rounds (4 resources each) in {took:.2?}: peak RSS {hwm_big} kB vs {hwm_small} kB for 1000 (+{grew} kB)");
    assert!(hwm_small > 0 && grew < 8 << 10, "peak RSS grew by {grew} kB");

    let o = hostile(&["--max-handles", "100"], &["hold", "graph"]);
    assert_refused(&o, "after 100 live graphs: too-large: wasi:nn load-by-name: the guest holds 100");
    assert!(stderr(&o).contains("(--max-handles)"), "{}", stderr(&o));
    let o = hostile(&["--max-handles", "100"], &["hold", "model"]);
    assert_refused(&o, "after 100 live models: limit-exceeded: edgewasm:llm model.open");
    let o = hostile(&["--max-handles", "100"], &["hold", "tensor"]);
    assert_stopped(&o, "wasi:nn tensor constructor: too-large: new tensor: the guest holds 100");
    assert!(stderr(&o).contains("(--max-handles)"), "{}", stderr(&o));
    let o = hostile(&["--max-handles", "100"], &["hold", "error"]);
    assert_stopped(&o, "does not drop the errors it gets");
    // The default leaves a normal guest far from the limit.
    let o = hostile(&[], &["hold", "graph"]);
    assert_refused(&o, &format!("after {} live graphs", edgewasm_nn::handles::DEFAULT_MAX_HANDLES));
}
