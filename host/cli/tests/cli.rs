//! The `edgewasm` binary end to end: real model, real process, exit codes.

use std::process::{Command, Output};

use edgewasm_gguf::GgmlType;
use edgewasm_test_support::TinyLlama;
use edgewasm_tests::{model_path, SMOLLM2};

fn edgewasm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgewasm"))
        .args(args)
        .env("EDGEWASM_MODELS_DIR", model_path(SMOLLM2).parent().unwrap())
        .output()
        .expect("run edgewasm")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn tokenize_prints_json_ids() {
    let o = edgewasm(&["tokenize", "Hello, world! How are you today?"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ids: Vec<u32> = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(ids, [19556, 28, 905, 17, 1073, 359, 346, 1834, 47]);
}

#[test]
fn greedy_chat_is_deterministic() {
    let args = ["generate", "--chat", "--temp", "0", "-n", "24", "-p", "What is the capital of France?"];
    let a = edgewasm(&args);
    let b = edgewasm(&args);
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(stdout(&a), stdout(&b));
    // llama.cpp's greedy continuation of this prompt starts "L'Étoile" too
    // (checked with scripts/peer/peer-logits.cpp).
    assert!(stdout(&a).starts_with("L'Étoile"), "unexpected answer: {}", stdout(&a));
    assert!(!stdout(&a).contains("<|im_end|>"));
}

#[test]
fn seeded_sampling_repeats_and_seeds_differ() {
    let run = |seed: &str| stdout(&edgewasm(&["generate", "-p", "Once upon a time", "-n", "16", "--temp", "1.0", "--seed", seed]));
    assert_eq!(run("7"), run("7"));
    assert_ne!(run("7"), run("8"));
}

#[test]
fn logits_json_lines_per_position() {
    let o = edgewasm(&["logits", "--ids", "19556,905", "--all-positions", "--json", "--top", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["top_ids"].as_array().unwrap().len(), 3);
}

/// The digest covers every logit bit: the same input on 1 and 2 threads
/// agrees (the engine is thread-count invariant), another input does not.
#[test]
fn logits_digest_is_exact_and_thread_invariant() {
    let d = |ids: &str, t: &str| {
        let o = edgewasm(&["logits", "--ids", ids, "--all-positions", "--digest", "-t", t]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let a = d("1,19556,905,314", "1");
    assert!(a.starts_with("digest ") && a.contains("positions 4 vocab 49152"), "{a}");
    assert_eq!(a, d("1,19556,905,314", "2"));
    assert_ne!(a, d("1,19556,905,315", "1"));
}

/// `bench --json --bandwidth`: one record per test and thread count, plus
/// the memory probe and the decode ceiling derived from it (speeds are not
/// checked: they are benchmarks, not tests).
#[test]
fn bench_json_has_every_test_and_the_bandwidth_ceiling() {
    let o = edgewasm(&["bench", "-p", "8", "-n", "4", "-r", "1", "-t", "1,2", "--json", "--bandwidth"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let tests: Vec<(u64, &str)> = lines.iter().map(|l| (l["threads"].as_u64().unwrap(), l["test"].as_str().unwrap())).collect();
    assert_eq!(tests, [(1, "mem-read"), (1, "pp8"), (1, "tg4"), (2, "mem-read"), (2, "pp8"), (2, "tg4")]);
    let file_size = std::fs::metadata(model_path(SMOLLM2)).unwrap().len() as f64;
    for mem in lines.iter().filter(|l| l["test"] == "mem-read") {
        let (gbs, bytes) = (mem["gb_per_s"].as_f64().unwrap(), mem["weight_bytes_per_token"].as_f64().unwrap());
        // Tied embeddings: decode reads (nearly) the whole file per token.
        assert!(bytes > 0.95 * file_size && bytes < file_size, "{bytes} of {file_size}");
        assert!(gbs > 0.0);
        let ceiling = mem["tg_ceiling_tokens_per_s"].as_f64().unwrap();
        assert!((ceiling - gbs * 1e9 / bytes).abs() <= 1e-9 * ceiling, "{mem}");
    }
}

#[test]
fn inspect_shows_tensor_table() {
    let o = edgewasm(&["inspect", SMOLLM2]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.contains("q4_1") && s.contains("q8_0") && s.contains("llama.block_count"), "{s}");
}

/// A model with a weight type the engine cannot run (IQ2_XXS): `inspect`
/// shows it; `generate` and `run` refuse it at load with one message that
/// names the tensor, its type and the supported types, and exit 1.
#[test]
fn unsupported_tensor_types_are_inspected_then_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    let tensor = "blk.0.attn_q.weight";
    let tiny = TinyLlama { n_embd: 256, n_ff: 256, retype: Some((tensor.into(), GgmlType::IQ2_XXS)), ..TinyLlama::default() };
    std::fs::write(&path, tiny.gguf()).unwrap();
    let wasm = dir.path().join("guest.wasm");
    std::fs::write(&wasm, b"\0asm never read: the model is refused first").unwrap();
    let (model, wasm) = (path.to_str().unwrap(), wasm.to_str().unwrap());

    let o = edgewasm(&["inspect", "--tensors", model]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    let fields = |l: &str| l.split_whitespace().take(2).map(str::to_owned).collect::<Vec<_>>();
    assert!(s.lines().any(|l| fields(l) == ["iq2_xxs", "1"]), "no iq2_xxs row in the type summary:\n{s}");
    assert!(s.lines().any(|l| fields(l) == [tensor, "iq2_xxs"]), "{tensor} not listed as iq2_xxs:\n{s}");

    let refusal = format!(
        "tensor `{tensor}` has type iq2_xxs, which this engine cannot run (supported weight types: {})",
        edgewasm_llm::model::supported_weight_types()
    );
    let run_model = format!("x={model}");
    for args in [&["generate", "-m", model, "-p", "hi", "-n", "2"][..], &["run", "--model", &run_model, wasm][..]] {
        let o = edgewasm(args);
        let err = stderr(&o);
        eprintln!("{args:?} -> {:?}: {err}", o.status.code());
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.starts_with("error: ") && err.contains(&refusal), "{args:?}: {err}");
        // Said once: the loader's context adds the file, not the reason again.
        assert_eq!(err.matches("iq2_xxs").count(), 1, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

/// Bad input: a clear message on stderr and exit code 1, never a panic (101).
#[test]
fn bad_input_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated.gguf");
    let bytes = std::fs::read(model_path(SMOLLM2)).unwrap();
    std::fs::write(&truncated, &bytes[..4096]).unwrap();
    let garbage = dir.path().join("garbage.gguf");
    std::fs::write(&garbage, b"not a gguf file at all").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["generate", "-m", "no-such-model", "-p", "hi"], "no-such-model"),
        (vec!["inspect", truncated.to_str().unwrap()], "truncated"),
        (vec!["generate", "-m", garbage.to_str().unwrap(), "-p", "hi"], "magic"),
        (vec!["logits", "--ids", "1,99999999"], "out of range"),
        (vec!["generate", "-p", "hi", "--ctx-size", "100000000"], "cannot be allocated"),
        (vec!["perplexity", "-f", "/nonexistent/file.txt"], "/nonexistent/file.txt"),
        (vec!["generate", "-p", ""], "no input tokens"),
    ];
    for (args, needle) in cases {
        let o = edgewasm(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.starts_with("error: ") && err.contains(needle), "{args:?}: {err}");
    }
}

/// A reader that goes away (`edgewasm tokenize ... | head -c 10`) ends
/// every printing command quietly: by SIGPIPE's default action (status 141
/// in a shell), as any Unix filter, never with Rust's "failed printing to
/// stdout: Broken pipe" panic and its status 101.
#[cfg(unix)]
#[test]
fn a_closed_stdout_pipe_ends_every_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let long = "Hello, world! How are you today? ".repeat(3_000);
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("text.txt");
    std::fs::write(&text, "The quick brown fox jumps over the lazy dog. ".repeat(40)).unwrap();
    let text = text.to_str().unwrap();
    let cases: [&[&str]; 8] = [
        &["tokenize", &long],
        &["tokenize", "--pieces", &long],
        &["inspect", "--tensors"],
        &["logits", "--ids", "19556,905", "--all-positions", "--top", "5"],
        &["generate", "-p", "Once upon a time", "-n", "8", "--temp", "0"],
        &["perplexity", "-f", text, "--ctx", "64"],
        &["bench", "-t", "1", "-p", "8", "-n", "4", "-r", "1"],
        &["--help"],
    ];
    for args in cases {
        let mut child = Command::new(env!("CARGO_BIN_EXE_edgewasm"))
            .args(args)
            .env("EDGEWASM_MODELS_DIR", model_path(SMOLLM2).parent().unwrap())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn edgewasm");
        // The reader is gone before the first byte is written.
        drop(child.stdout.take());
        let o = child.wait_with_output().expect("wait for edgewasm");
        let err = stderr(&o);
        let what = format!("edgewasm {}: {:?}, stderr: {err}", args[0], o.status);
        assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{what}");
        assert!(o.status.success() || o.status.signal() == Some(13), "{what}");
        assert_ne!(o.status.code(), Some(101), "{what}");
    }
}

/// `tokenize` reads only the vocabulary: it works on llama.cpp's vocab-only
/// files, and gives their `.out` ids for the `.inp` texts.
#[test]
fn tokenize_works_on_a_vocab_only_file() {
    let models = edgewasm_test_support::peer_models_dir();
    for name in ["llama-bpe", "qwen2", "phi-3"] {
        let vocab = models.join(format!("ggml-vocab-{name}.gguf"));
        let inp = std::fs::read_to_string(models.join(format!("ggml-vocab-{name}.gguf.inp"))).unwrap();
        let out = std::fs::read_to_string(models.join(format!("ggml-vocab-{name}.gguf.out"))).unwrap();
        let texts: Vec<&str> = inp.split("\n__ggml_vocab_test__\n").collect();
        for (text, want) in texts.iter().zip(out.lines()).filter(|(t, _)| !t.trim().is_empty()).take(4) {
            let o = edgewasm(&["tokenize", "--model", vocab.to_str().unwrap(), "--no-bos", "--no-parse-special", "--", text]);
            assert!(o.status.success(), "{name} {text:?}: {}", stderr(&o));
            let ids: Vec<u32> = serde_json::from_str(stdout(&o).trim()).unwrap();
            let want: Vec<u32> = want.split_whitespace().map(|v| v.parse().unwrap()).collect();
            assert_eq!(ids, want, "{name} {text:?}");
        }
    }
}
