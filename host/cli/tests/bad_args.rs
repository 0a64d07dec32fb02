//! Every subcommand given bad arguments (missing files, a non-GGUF or
//! truncated GGUF, a directory, an unknown model name, bad numbers): a
//! non-zero exit (1 from the command, 2 from argument parsing), a message
//! naming the problem, and never a panic (exit 101, "panicked").

use std::process::{Command, Output};

use edgewasm_tests::{model_path, SMOLLM2};

fn edgewasm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgewasm"))
        .args(args)
        .env("EDGEWASM_MODELS_DIR", model_path(SMOLLM2).parent().unwrap())
        .output()
        .expect("run edgewasm")
}

#[test]
fn bad_arguments_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let bytes = std::fs::read(model_path(SMOLLM2)).unwrap();
    std::fs::write(p("truncated.gguf"), &bytes[..100_000]).unwrap();
    std::fs::write(p("junk.gguf"), b"this is not a gguf file").unwrap();
    std::fs::write(p("junk.wasm"), b"\0asm but not really").unwrap();
    std::fs::write(p("text.txt"), "some text for perplexity").unwrap();
    std::fs::write(p("empty.wasm"), b"").unwrap();
    let (missing, truncated, junk, junk_wasm, dir_s, text, empty_wasm) =
        (p("missing.gguf"), p("truncated.gguf"), p("junk.gguf"), p("junk.wasm"), p(""), p("text.txt"), p("empty.wasm"));
    let dir_s = dir_s.trim_end_matches('/').to_string();
    let unknown = "no-such-model";

    let mut cases: Vec<(Vec<String>, &str)> = Vec::new();
    let mut add = |args: &[&str], needle: &'static str| cases.push((args.iter().map(|s| s.to_string()).collect(), needle));
    // Model arguments, for every subcommand that takes one.
    for (sub, extra) in [
        ("inspect", &[][..]),
        ("tokenize", &["hi"][..]),
        ("generate", &["-p", "hi", "-n", "2"][..]),
        ("logits", &["--ids", "1"][..]),
        ("perplexity", &["-f", text.as_str()][..]),
        ("bench", &["-p", "8", "-n", "0", "-r", "1", "-t", "1"][..]),
    ] {
        let flag = if sub == "inspect" { None } else { Some("-m") };
        for (model, needle) in [
            (missing.as_str(), "missing.gguf"),
            (truncated.as_str(), "truncated"),
            (junk.as_str(), "magic"),
            (dir_s.as_str(), "no such file"),
            (unknown, unknown),
        ] {
            let mut a = vec![sub];
            a.extend(flag);
            a.push(model);
            a.extend_from_slice(extra);
            add(&a, needle);
        }
    }
    // Bad numbers.
    add(&["generate", "-p", "hi", "--threads", "0"], "--threads");
    add(&["generate", "-p", "hi", "--max-tokens", "-1"], "-1");
    add(&["generate", "-p", "hi", "--max-tokens", "lots"], "--max-tokens");
    add(&["generate", "-p", "hi", "--temp", "nan"], "--temp");
    add(&["generate", "-p", "hi", "--temp=-1"], "--temp");
    add(&["generate", "-p", "hi", "--top-p", "inf"], "--top-p");
    add(&["generate", "-p", "hi", "--ctx-size", "0"], "--ctx-size");
    add(&["logits", "--ids", "1", "--threads", "0"], "--threads");
    add(&["logits", "--ids", "1", "--top", "0"], "--top");
    add(&["logits", "--ids", "1,x"], "--ids");
    add(&["perplexity", "-f", &text, "--ctx", "0"], "--ctx");
    add(&["perplexity", "-f", &missing], "missing.gguf");
    add(&["perplexity", "-f", &dir_s], "directory");
    add(&["bench", "--threads", "0"], "--threads");
    add(&["bench", "-r", "0"], "--repetitions");
    add(&["run", "--threads", "0", &junk_wasm], "--threads");
    add(&["run", "--max-ctx", "0", &junk_wasm], "--max-ctx");
    add(&["run", "--max-contexts", "0", &junk_wasm], "--max-contexts");
    add(&["run", "--max-memory", "lots", &junk_wasm], "--max-memory");
    add(&["run", "--max-kv-memory", "1X", &junk_wasm], "--max-kv-memory");
    add(&["run", "--max-prompt-size=-5", &junk_wasm], "--max-prompt-size");
    add(&["run", "--timeout", "nan", &junk_wasm], "--timeout");
    add(&["run", "--timeout", "0", &junk_wasm], "--timeout");
    // Files for run and compile.
    add(&["run", &missing], "missing.gguf");
    add(&["run", &dir_s], "directory");
    add(&["run", &junk], "not a WebAssembly component");
    add(&["run", &junk_wasm], "junk.wasm");
    add(&["run", &empty_wasm], "empty.wasm");
    add(&["run", "--model", &format!("x={missing}"), &junk_wasm], "--model");
    add(&["run", "--model", &format!("x={dir_s}"), &junk_wasm], "--model");
    add(&["run", "--model", &format!("x={junk}"), &junk_wasm], "magic");
    add(&["run", "--model", &format!("x={truncated}"), &junk_wasm], "truncated");
    add(&["run", "--model", "nameonly", &junk_wasm], "NAME=PATH");
    add(&["run", "--nn-preload", "x:ONNX:AUTO:y", &junk_wasm], "ONNX");
    add(&["run", "--dir", &missing, &junk_wasm], "not a directory");
    add(&["compile", &missing], "missing.gguf");
    add(&["compile", &dir_s], "directory");
    add(&["compile", &junk], "magic");
    add(&["compile", &junk_wasm], "junk.wasm");

    let mut failures = Vec::new();
    for (args, needle) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = edgewasm(&args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let code = o.status.code();
        let first = err.lines().next().unwrap_or("").to_string();
        eprintln!("{args:?} -> {code:?}: {first}");
        let ok = matches!(code, Some(1) | Some(2))
            && !err.contains("panicked")
            && err.starts_with("error: ")
            && err.contains(needle);
        if !ok {
            failures.push(format!("{args:?} -> {code:?} (want 1 or 2, naming {needle:?}):\n{err}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}
