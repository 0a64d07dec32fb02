//! Shared test helpers: load the project's real models (fetching them if
//! needed) and the llama.cpp reference cases.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use edgewasm_gguf::GgufFile;
use edgewasm_tokenizer::Tokenizer;

pub const SMOLLM: &str = "smollm2-135m-instruct-q4_1";
pub const GEMMA: &str = "gemma-3-270m-q4_k_m";

/// Path of `models/NAME.gguf`, fetched when missing.
pub fn model_path(name: &str) -> PathBuf {
    edgewasm_test_support::model_path(&format!("{name}.gguf"))
}

fn load(name: &str) -> Tokenizer {
    let file = GgufFile::open(model_path(name)).expect("open gguf");
    Tokenizer::from_gguf(&file).expect("build tokenizer")
}

pub fn smollm() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| load(SMOLLM))
}

pub fn gemma() -> &'static Tokenizer {
    static T: OnceLock<Tokenizer> = OnceLock::new();
    T.get_or_init(|| load(GEMMA))
}

/// One line of `tokenize.jsonl`.
pub struct Case {
    pub text: String,
    pub parse_special: bool,
    pub ids: Vec<u32>,
}

/// llama.cpp's reference outputs (`tests/data`).
pub fn reference_dir() -> PathBuf {
    edgewasm_test_support::data_dir()
}

pub fn cases(model: &str) -> Vec<Case> {
    let path = reference_dir().join(model).join("tokenize.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("jsonl line");
            Case {
                text: v["text"].as_str().expect("text").to_string(),
                parse_special: v["parse_special"].as_bool().expect("parse_special"),
                ids: v["ids"].as_array().expect("ids").iter().map(|x| x.as_u64().expect("id") as u32).collect(),
            }
        })
        .collect()
}
