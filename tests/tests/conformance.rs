//! The conformance guest in four languages (Rust, C, JavaScript, Python;
//! guest-components/*/conformance) × three ways of generating (wasi:nn text
//! mode, edgewasm:llm streaming, wasi:nn token mode with the guest's own
//! greedy loop): all twelve must print exactly what `edgewasm generate`
//! prints for the same raw completion, on three prompts with the default
//! model (SmolLM2) and one with Gemma 3.
//!
//! Builds the guests (installing the C, JS and Python toolchains on first
//! use, see scripts/setup-guest-toolchains.sh) and the release `edgewasm`.
//! The JS and Python components (12-18 MB) take 10-15 s each to compile;
//! `edgewasm run` stores them in its compile cache, which the runs after the
//! first one of each language must hit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Instant;

use edgewasm_tests::*;

const LANGUAGES: &[&str] = &["rust", "c", "js", "python"];
const MODES: &[&str] = &["text", "stream", "tokens"];
const PROMPTS: &[&str] = &[
    "The capital of France is",
    "Once upon a time, a little robot",
    "def fibonacci(n):",
];
const MAX_TOKENS: &str = "16";

/// The tests run one after the other: on a cold compile cache, two of them
/// compiling the same 12-18 MB component at once would only waste the CPU.
static SERIAL: Mutex<()> = Mutex::new(());

fn edgewasm_cmd(args: &[&str]) -> (Output, f64) {
    let started = Instant::now();
    let out = Command::new(edgewasm()).current_dir(repo_root()).args(args).output().expect("spawn edgewasm");
    let secs = started.elapsed().as_secs_f64();
    if !out.status.success() {
        eprintln!(
            "$ edgewasm {}\n-> {:?}\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (out, secs)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn guests() -> Vec<(&'static str, PathBuf)> {
    LANGUAGES.iter().map(|l| (*l, guest(&format!("{l}-conformance")))).collect()
}

/// How `edgewasm run -v` says it got the component: `Compiled`, `CacheHit`, ...
fn load_kind(stderr: &str) -> &str {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("[edgewasm] component "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("?")
}

#[test]
fn four_languages_three_modes_match_native_generate() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let guests = guests();
    let mut runs = 0;
    let mut mismatches = Vec::new();
    let mut report = Vec::new();
    // The default model (GPT-2-style BPE) on every prompt; Gemma 3
    // (SentencePiece) on one, so token mode's own detokenization is checked
    // on both tokenizer families.
    for (m, (model_name, prompts)) in [(SMOLLM2, PROMPTS), (GEMMA3, &PROMPTS[..1])].into_iter().enumerate() {
        let model = model_path(model_name);
        let preload = format!("default={}", model.display());
        for (i, prompt) in prompts.iter().enumerate() {
            let (native, _) = edgewasm_cmd(&["generate", "--model", s(&model), "--temp", "0", "--max-tokens", MAX_TOKENS, "--prompt", prompt]);
            assert!(native.status.success(), "edgewasm generate failed");
            let expected = String::from_utf8(native.stdout).expect("UTF-8 output");
            assert!(!expected.trim().is_empty(), "empty native completion for {prompt:?}");
            for (lang, wasm) in &guests {
                for (j, mode) in MODES.iter().enumerate() {
                    let (out, secs) = edgewasm_cmd(&[
                        "run", "-v", "--model", &preload, s(wasm), "--mode", mode, "--max-tokens", MAX_TOKENS, "--temp", "0", prompt,
                    ]);
                    runs += 1;
                    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                    let kind = load_kind(&stderr).to_string();
                    report.push(format!("{model_name} {lang:>6} {mode:>6} prompt {i}: {secs:6.2} s ({kind})"));
                    // Every run after a language's first one starts from the compile cache.
                    if m + i + j > 0 {
                        assert_eq!(kind, "CacheHit", "{lang} --mode {mode}: not started from the compile cache\n{stderr}");
                    }
                    let got = String::from_utf8_lossy(&out.stdout).into_owned();
                    if !out.status.success() || got != expected {
                        mismatches.push(format!(
                            "{model_name}: {lang} --mode {mode} {prompt:?} (exit {:?}):\n  expected {expected:?}\n  got      {got:?}\n  stderr: {}",
                            out.status.code(),
                            stderr.trim()
                        ));
                    }
                }
            }
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(mismatches.is_empty(), "{} of {runs} runs differ from `edgewasm generate`:\n{}", mismatches.len(), mismatches.join("\n"));
}

/// Real error handling: an unknown model is a wasi:nn / edgewasm:llm
/// `not-found` error, reported on stderr with a non-zero exit, in every
/// language and mode.
#[test]
fn four_languages_report_errors_and_fail() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let model = model_path(SMOLLM2);
    let preload = format!("default={}", model.display());
    for (lang, wasm) in guests() {
        for mode in MODES {
            let (out, _) = edgewasm_cmd(&["run", "--model", &preload, s(&wasm), "--mode", mode, "--model", "no-such-model", "Hello"]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{lang} --mode {mode}: exit 0 for an unknown model");
            assert!(stderr.contains("not-found") && stderr.contains("no-such-model"), "{lang} --mode {mode}: {stderr}");
            let api = if *mode == "stream" { "edgewasm:llm error" } else { "error" };
            assert!(stderr.contains(api), "{lang} --mode {mode}: {stderr}");
            assert!(out.stdout.is_empty(), "{lang} --mode {mode} printed {:?}", String::from_utf8_lossy(&out.stdout));
        }
        // A bad flag is a usage error, not a crash.
        let (out, _) = edgewasm_cmd(&["run", s(&wasm), "--mode", "nonsense", "Hello"]);
        assert!(!out.status.success(), "{lang}: exit 0 for --mode nonsense");
    }
}
