//! Model files that lie about their hyperparameters (issue 20): the CLI and
//! a guest's WasmEdge-style `load` refuse them with a clear error, and what
//! a context allocates counts against `--max-kv-memory`, so the host never
//! aborts on an allocation (exit 134) nor grows past the limits.

use std::path::{Path, PathBuf};
use std::process::Output;

use edgewasm_tests::hostile_gguf::{load_and_init_wat, HostileLlama};
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

fn load_and_init_module(dir: &Path, name: &str, file_len: usize) -> PathBuf {
    let p = dir.join(format!("{name}.wasm"));
    std::fs::write(&p, wat::parse_str(load_and_init_wat(name, file_len)).unwrap()).unwrap();
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
