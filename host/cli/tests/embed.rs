//! `edgewasm embed` end to end: the vectors the library computes, as JSON
//! lines or one array, from arguments or a file; bad input is a clean
//! error (exit 1 from the command, 2 from argument parsing), never a
//! panic. The library's numbers are checked against llama.cpp in
//! host/llm/tests/embed.rs.

use std::path::Path;
use std::process::{Command, Output};

use edgewasm_gguf::GgmlType;
use edgewasm_llm::embed::{embed, EmbedOptions, Pooling};
use edgewasm_llm::{Model, ThreadPool};
use edgewasm_test_support::TinyBert;
use edgewasm_tests::{model_path, SMOLLM2};

fn edgewasm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgewasm")).args(args).env("EDGEWASM_MODELS_DIR", model_path(SMOLLM2).parent().unwrap()).output().expect("run edgewasm")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tiny_bert(dir: &Path) -> String {
    let path = dir.join("tiny-bert.gguf");
    std::fs::write(&path, TinyBert::new(GgmlType::Q8_0).gguf()).unwrap();
    path.to_str().unwrap().to_string()
}

fn lines(o: &Output) -> Vec<serde_json::Value> {
    assert!(o.status.success(), "{}", stderr(o));
    stdout(o).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn vector(v: &serde_json::Value) -> Vec<f32> {
    serde_json::from_value(v.clone()).unwrap()
}

/// JSON lines, in order, with the library's bits (f32 values print in
/// their shortest exact form), for BERT and for a decoder.
#[test]
fn prints_the_library_vectors_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let bert = tiny_bert(dir.path());
    let texts = ["Hello, world!", "Ünïcödé café 日本"];
    for (model, pooling) in [(bert.as_str(), None), (bert.as_str(), Some(Pooling::Cls)), (model_path(SMOLLM2).to_str().unwrap(), Some(Pooling::Last))] {
        let mut args = vec!["embed", "-m", model, "-t", "2"];
        if let Some(p) = pooling {
            args.extend(["--pooling", p.name()]);
        }
        args.extend(texts);
        let got = lines(&edgewasm(&args));
        let m = Model::open(model).unwrap();
        let opts = EmbedOptions { pooling, ..EmbedOptions::default() };
        let want = embed(&m, &ThreadPool::new(1), &texts, &opts).unwrap();
        assert_eq!(got.len(), texts.len());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g["index"], i);
            assert_eq!(g["tokens"], edgewasm_llm::embed::tokenize(&m, texts[i]).len());
            assert!(vector(&g["embedding"]) == *w, "{model} {pooling:?} text {i}");
        }
    }
}

/// `--file` (a last newline, CRLF lines) and `--array` give the same
/// vectors as arguments; `--no-normalize` keeps their scale.
#[test]
fn file_array_and_raw_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let bert = tiny_bert(dir.path());
    let file = dir.path().join("texts.txt");
    std::fs::write(&file, "first text\r\nsecond one\nthird\n").unwrap();
    let from_args = lines(&edgewasm(&["embed", "-m", &bert, "first text", "second one", "third"]));
    let o = edgewasm(&["embed", "-m", &bert, "--file", file.to_str().unwrap(), "--array"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let array: Vec<Vec<f32>> = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(array.len(), 3);
    for (a, l) in array.iter().zip(&from_args) {
        assert!(*a == vector(&l["embedding"]));
    }
    let raw = lines(&edgewasm(&["embed", "-m", &bert, "--no-normalize", "first text"]));
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let unit = vector(&from_args[0]["embedding"]);
    assert!((norm(&unit) - 1.0).abs() < 1e-5);
    assert!((norm(&vector(&raw[0]["embedding"])) - 1.0).abs() > 1e-2);
    // `-v` reports the speed on stderr, and nothing else changes.
    let o = edgewasm(&["embed", "-m", &bert, "-v", "first text"]);
    assert!(stderr(&o).contains("texts/s"), "{}", stderr(&o));
    assert_eq!(lines(&o)[0], from_args[0]);
}

#[test]
fn bad_input_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let bert = tiny_bert(dir.path());
    let empty_line = dir.path().join("gap.txt");
    std::fs::write(&empty_line, "one\n\nthree\n").unwrap();
    let empty_file = dir.path().join("empty.txt");
    std::fs::write(&empty_file, "").unwrap();
    let long = "word ".repeat(600);
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["embed", "-m", &bert, "fine", ""], 1, "text 2 is empty"),
        (vec!["embed", "-m", &bert, "--file", empty_line.to_str().unwrap()], 1, "line 2 is empty"),
        (vec!["embed", "-m", &bert, "--file", empty_file.to_str().unwrap()], 1, "no texts"),
        (vec!["embed", "-m", &bert, &long], 1, "more than the 512"),
        (vec!["embed", "-m", &bert, "--ctx", "3", "one two"], 1, "(--ctx)"),
        (vec!["embed", "-m", &bert, "--ctx", "100000", "x"], 1, "100000"),
        (vec!["embed", "-m", &bert, "--pooling", "rank", "x"], 2, "--pooling"),
        (vec!["embed", "-m", &bert, "--batch", "0", "x"], 2, "--batch"),
        (vec!["embed", "-m", &bert], 2, "TEXTS"),
        (vec!["embed", "-m", "no-such-model", "x"], 1, "no-such-model"),
        // An encoder has no output layer to generate with.
        (vec!["generate", "-m", &bert, "-p", "hi", "-n", "2"], 1, "embeddings only"),
    ];
    for (args, code, needle) in cases {
        let o = edgewasm(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: expected {needle:?} in {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
