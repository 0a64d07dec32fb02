//! Test helpers shared by every edgewasm crate, so each exists once: where
//! the repository and its test data are, the real models (fetched under a
//! lock when missing), a tiny random-weight llama model written with our
//! GGUF writer, and one seeded RNG.
//!
//! Missing prerequisites fail with the recipe that provides them; a test
//! never passes because something it needs was absent (see [`require`]).

mod arch;
mod bert;
mod rng;
mod tiny;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

pub use arch::{family_vocab, llama_cpp_vocab, tiny_with_family_vocab, TinyArch, TinyExperts, TINY_ARCHS};
pub use bert::TinyBert;
pub use rng::Rng;
pub use tiny::{quantized, TinyLlama};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repository root")
}

/// The test data: llama.cpp's reference outputs and the corpus
/// (`tests/data`, see its README), or `$EDGEWASM_TEST_DATA`.
pub fn data_dir() -> PathBuf {
    let dir = std::env::var_os("EDGEWASM_TEST_DATA").map(PathBuf::from).unwrap_or_else(|| repo_root().join("tests/data"));
    require(dir.is_dir(), &format!("test data {} is missing (EDGEWASM_TEST_DATA, or `python3 scripts/reference.py --write`)", dir.display()));
    dir
}

/// The default model, SmolLM2-135M-Instruct Q4_1.
pub const SMOLLM2: &str = "smollm2-135m-instruct-q4_1.gguf";
/// The second model, Gemma 3 270M Q4_K_M.
pub const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

/// Path of a real model in `models/` (`SMOLLM2`, `GEMMA3`), fetched with
/// `scripts/fetch-models.sh` (`./just models`) when missing, under a
/// process lock and a file lock, since tests run in parallel threads and
/// processes. Fails, never skips, when it cannot be had.
pub fn model_path(file_name: &str) -> PathBuf {
    static FETCH: Mutex<()> = Mutex::new(());
    let root = repo_root();
    let path = root.join("models").join(file_name);
    if path.is_file() {
        return path;
    }
    let _g = FETCH.lock().unwrap_or_else(|e| e.into_inner());
    if !path.is_file() {
        std::fs::create_dir_all(root.join("models")).expect("create models/");
        let status = Command::new("flock")
            .arg(root.join("models/.fetch.lock"))
            .arg("bash")
            .arg(root.join("scripts/fetch-models.sh"))
            .status();
        let ok = matches!(status, Ok(s) if s.success());
        require(ok, &format!("fetching {file_name} failed: run `./just models` (scripts/fetch-models.sh; needs PyPI)"));
    }
    require(path.is_file(), &format!("{} missing after fetching: run `./just models`", path.display()));
    path
}

/// The peer llama.cpp's directory: `PEER_DIR` (the variable
/// scripts/build-peer.sh reads), else the script's default
/// `~/.cache/edgewasm/llama.cpp-0.3.36`. `./just peer` builds it.
pub fn peer_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PEER_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    PathBuf::from(home).join(".cache/edgewasm/llama.cpp-0.3.36")
}

/// llama.cpp's vocab test files in the peer's source (`models/ggml-vocab-*.gguf`
/// with their `.inp`/`.out` cases). Fails, naming `./just peer`, when the
/// peer is not there.
pub fn peer_models_dir() -> PathBuf {
    let dir = peer_dir().join("src/vendor/llama.cpp/models");
    require(
        dir.join("ggml-vocab-llama-bpe.gguf").is_file(),
        &format!("the peer llama.cpp's vocab files are missing from {}: run `./just peer` (scripts/build-peer.sh; PEER_DIR overrides)", dir.display()),
    );
    dir
}

/// Fails the test with `message` unless `ok`. Use it for prerequisites (a
/// model, the peer, a tool), so the message names what to run; a test
/// never turns a missing prerequisite into a pass, under `CI=true` or not.
#[track_caller]
pub fn require(ok: bool, message: &str) {
    if !ok {
        let ci = if in_ci() { " (CI=true: prerequisites are never skipped)" } else { "" };
        panic!("missing prerequisite: {message}{ci}");
    }
}

/// Whether the tests run under CI (`CI=true`, as CI services set it).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A binary of the peer llama.cpp (`llama-quantize`, `llama-bench`...),
/// built by scripts/build-peer.sh (idempotent, serialized with flock; `just
/// test` runs it first as `just peer`) once per process. Never skips: a
/// test that needs the peer fails when it cannot be built.
pub fn peer_bin(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let bin_dir = BUILT.get_or_init(|| {
        let dir = peer_dir();
        let root = repo_root();
        let status = Command::new("bash")
            .current_dir(&root)
            .env("PEER_DIR", &dir)
            .arg(root.join("scripts/build-peer.sh"))
            .status()
            .expect("run scripts/build-peer.sh");
        require(status.success(), &format!("building the peer llama.cpp failed: run `./just peer` (PEER_DIR={})", dir.display()));
        dir.join("build/bin")
    });
    let p = bin_dir.join(name);
    require(p.is_file(), &format!("{} missing after scripts/build-peer.sh: run `./just peer`", p.display()));
    p
}
