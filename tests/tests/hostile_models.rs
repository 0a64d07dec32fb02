//! Model files that lie about their hyperparameters (issue 20): the CLI and
//! a guest's WasmEdge-style `load` refuse them with a clear error, and what
//! a context allocates counts against `--max-kv-memory`, so the host never
//! aborts on an allocation (exit 134) nor grows past the limits.

use std::path::{Path, PathBuf};
use std::process::Output;

use edgewasm_tests::hostile_gguf::HostileLlama;
use edgewasm_tests::*;

fn write(dir: &Path, name: &str, spec: HostileLlama) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, spec.to_bytes()).unwrap();
    p
}

#[track_caller]
fn assert_clean_exit(o: &Output, code: i32, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "expected exit {code} (None is a signal, 134 an abort): {err}");
    assert!(!err.contains("panicked") && !err.contains("memory allocation of"), "{err}");
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
}

#[test]
fn generate_refuses_huge_heads_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "huge-heads.gguf", HostileLlama::HUGE_HEADS);
    let o = run_edgewasm(&["generate", "--model", m.to_str().unwrap(), "--prompt", "t1", "-n", "1"], None);
    assert_clean_exit(
        &o,
        1,
        "metadata `llama.attention.key_length` = 65536 is unusable: 512 heads × 65536 = 33554432 query values per token",
    );
}

/// A core module that reads `NAME` in the preopened `/m` (WASI), hands the bytes to
/// `wasi_ephemeral_nn.load`, then creates an execution context. Exits with
/// 20 + the load error, or 40 + the init error (40: both succeeded).
fn load_and_init_module(dir: &Path, name: &str, file_len: usize) -> PathBuf {
    const BASE: usize = 65536;
    const CHUNK: usize = 1 << 24;
    let pages = (BASE + file_len + CHUNK).div_ceil(65536);
    // Relative to the preopened directory's fd.
    let path = name.to_string();
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_ephemeral_nn" "load" (func $load (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_ephemeral_nn" "init_execution_context" (func $init (param i32 i32) (result i32)))
  (memory (export "memory") {pages})
  (data (i32.const 256) "{path}")
  ;; 0 fd, 4 bytes read, 8 iovec, 16 graph builder, 24 graph, 28 context.
  (func (export "_start")
    (local $off i32) (local $r i32)
    ;; The preopened /m is fd 3; rights: fd_read (bit 1).
    (if (call $path_open (i32.const 3) (i32.const 0) (i32.const 256) (i32.const {path_len}) (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0))
      (then (call $exit (i32.const 10))))
    (local.set $off (i32.const {BASE}))
    (block $eof (loop $more
      (i32.store (i32.const 8) (local.get $off))
      (i32.store (i32.const 12) (i32.const {CHUNK}))
      (if (call $fd_read (i32.load (i32.const 0)) (i32.const 8) (i32.const 1) (i32.const 4)) (then (call $exit (i32.const 11))))
      (br_if $eof (i32.eqz (i32.load (i32.const 4))))
      (local.set $off (i32.add (local.get $off) (i32.load (i32.const 4))))
      (br $more)))
    (i32.store (i32.const 16) (i32.const {BASE}))
    (i32.store (i32.const 20) (i32.sub (local.get $off) (i32.const {BASE})))
    ;; encoding 6 (GGML), target 0 (CPU).
    (local.set $r (call $load (i32.const 16) (i32.const 1) (i32.const 6) (i32.const 0) (i32.const 24)))
    (if (local.get $r) (then (call $exit (i32.add (i32.const 20) (local.get $r)))))
    (call $exit (i32.add (i32.const 40) (call $init (i32.load (i32.const 24)) (i32.const 28))))))"#,
        path_len = path.len(),
    );
    let p = dir.join(format!("{name}.wasm"));
    std::fs::write(&p, wat::parse_str(&wat).unwrap()).unwrap();
    p
}

fn guest_load(dir: &Path, name: &str, spec: HostileLlama, flags: &[&str]) -> Output {
    let file = write(dir, name, spec);
    let len = std::fs::metadata(&file).unwrap().len() as usize;
    let m = load_and_init_module(dir, name, len);
    let mount = format!("{}::/m", dir.to_str().unwrap());
    let mut args = vec!["run", "--dir", &mount];
    args.extend_from_slice(flags);
    args.push(m.to_str().unwrap());
    run_edgewasm(&args, None)
}

#[test]
fn a_guest_loading_huge_heads_gets_an_error_and_the_host_survives() {
    let dir = tempfile::tempdir().unwrap();
    // `load` refuses it: 20 + 2 (invalid-encoding), with the reason logged.
    let o = guest_load(dir.path(), "huge-heads.gguf", HostileLlama::HUGE_HEADS, &[]);
    assert_clean_exit(&o, 22, "metadata `llama.attention.key_length` = 65536 is unusable: 512 heads × 65536");
    let o = guest_load(dir.path(), "huge-heads-16.gguf", HostileLlama::HUGE_HEADS_16MIB, &["--max-kv-memory", "64MiB"]);
    assert_clean_exit(&o, 22, "64 heads × 65536 = 4194304 query values per token");
}

/// A file within every width limit whose contexts still need 1.25 GiB of
/// activation buffers (and only 32 KiB of KV cache): that memory counts
/// against --max-kv-memory, so `init_execution_context` gets too-large (7).
#[test]
fn context_buffers_count_against_max_kv_memory() {
    let dir = tempfile::tempdir().unwrap();
    let o = guest_load(dir.path(), "wide-ffn.gguf", HostileLlama::WIDE_FFN, &[]);
    assert_clean_exit(&o, 47, "MiB (KV cache and buffers) would bring this guest's live contexts to");
    assert!(stderr(&o).contains("over the limit of 512.0 MiB (--max-kv-memory)"), "{}", stderr(&o));
    // The same context fits a limit that counts it.
    let o = guest_load(dir.path(), "wide-ffn.gguf", HostileLlama::WIDE_FFN, &["--max-kv-memory", "2GiB"]);
    assert_eq!(o.status.code(), Some(40), "{}", stderr(&o));
}
