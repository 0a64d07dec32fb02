//! The tokenizer against llama.cpp, token for token:
//!
//! * every `tokenize.jsonl` case of the project's two models;
//! * every vocab test file of llama.cpp (the peer's `models/ggml-vocab-*.gguf`):
//!   each `.inp` case must encode to its `.out` ids, and each case of
//!   `tests/data/vocab/NAME.jsonl` (the peer's outputs on those cases and
//!   on `extra.inp`, from `scripts/vocab-reference.py`) must give the same
//!   ids with and without special tokens and the same decoded bytes.
//!
//! A vocab this crate does not support must be in [`NOT_SUPPORTED`] with
//! the reason, and must then be refused with a typed error.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use edgewasm_gguf::GgufFile;
use edgewasm_tokenizer::{Tokenizer, TokenizerError};

fn check(model: &str, tok: &Tokenizer) {
    let cases = cases(model);
    assert!(cases.len() >= 33, "{model}: only {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let got = tok.encode(&c.text, true, c.parse_special);
        if got != c.ids {
            failures.push(format!("{:?} (parse_special={})\n  want {:?}\n  got  {:?}", c.text, c.parse_special, c.ids, got));
        }
    }
    println!("{model}: {}/{} cases match", cases.len() - failures.len(), cases.len());
    assert!(failures.is_empty(), "{model}: {} of {} cases differ:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn smollm_matches_llama_cpp() {
    check(SMOLLM, smollm());
}

#[test]
fn gemma_matches_llama_cpp() {
    check(GEMMA, gemma());
}

/// Every `ggml-vocab-*.gguf` of the peer (llama.cpp 0.5.0-dev, PyPI
/// llama-cpp-python 0.3.36); `vocab_files_are_all_listed` keeps this in step.
const VOCABS: &[&str] = &[
    "llama-bpe", "qwen2", "qwen35", "deepseek-llm", "deepseek-coder", "falcon", "mpt", "starcoder",
    "refact", "gpt-neox", "gpt-2", "command-r", "phi-3", "llama-spm", "baichuan", "aquila",
    "gemma-4", "bert-bge", "nomic-bert-moe",
];

/// Vocabs refused for now, and why (none: every vocab file is supported;
/// an entry here must be refused with a typed error).
const NOT_SUPPORTED: &[(&str, &str)] = &[];

/// llama.cpp's `tests/test-tokenizer-0.cpp` reading of NAME.gguf.inp/.out:
/// cases split at `\n__ggml_vocab_test__\n`, one `.out` line of ids per
/// case, kept in a map by text (a repeated text keeps its last ids).
fn inp_out_cases(models: &Path, name: &str) -> Option<BTreeMap<String, Vec<u32>>> {
    let inp = models.join(format!("ggml-vocab-{name}.gguf.inp"));
    let out = models.join(format!("ggml-vocab-{name}.gguf.out"));
    if !inp.exists() {
        return None;
    }
    let raw = std::fs::read_to_string(&inp).unwrap_or_else(|e| panic!("{}: {e}", inp.display()));
    let outs = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
    let sep = "\n__ggml_vocab_test__\n";
    let mut texts = Vec::new();
    let mut rest = raw.as_str();
    while !rest.is_empty() {
        match rest.find(sep) {
            Some(i) => {
                texts.push(&rest[..i]);
                rest = &rest[i + sep.len()..];
            }
            None => {
                texts.push(rest);
                rest = "";
            }
        }
    }
    let lines: Vec<&str> = outs.split('\n').collect();
    let lines = if lines.last() == Some(&"") { &lines[..lines.len() - 1] } else { &lines[..] };
    assert_eq!(texts.len(), lines.len(), "{name}: .inp and .out have different numbers of cases");
    Some(
        texts
            .into_iter()
            .zip(lines)
            .map(|(t, l)| (t.to_string(), l.split_whitespace().map(|x| x.parse().expect("token id")).collect()))
            .collect(),
    )
}

/// One line of tests/data/vocab/NAME.jsonl.
struct PeerCase {
    text: String,
    ids: Vec<u32>,
    ids_special: Vec<u32>,
    decoded: Vec<u8>,
    decoded_special: Vec<u8>,
}

fn peer_cases(name: &str) -> Vec<PeerCase> {
    let path = reference_dir().join("vocab").join(format!("{name}.jsonl"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e} (`python3 scripts/vocab-reference.py --write`)", path.display()));
    let ids = |v: &serde_json::Value| -> Vec<u32> { v.as_array().expect("ids").iter().map(|x| x.as_u64().expect("id") as u32).collect() };
    let bytes = |v: &serde_json::Value, key: &str| -> Vec<u8> {
        if let Some(s) = v[key].as_str() {
            return s.as_bytes().to_vec();
        }
        let hex = v[format!("{key}_hex")].as_str().unwrap_or_else(|| panic!("{name}: no {key}"));
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect()
    };
    text.split('\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("jsonl line");
            PeerCase {
                text: v["text"].as_str().expect("text").to_string(),
                ids: ids(&v["ids"]),
                ids_special: ids(&v["ids_special"]),
                decoded: bytes(&v, "decoded"),
                decoded_special: bytes(&v, "decoded_special"),
            }
        })
        .collect()
}

/// Checks one vocab; prints its line of the summary.
fn check_vocab(name: &str) {
    let models = edgewasm_test_support::peer_models_dir();
    let path = models.join(format!("ggml-vocab-{name}.gguf"));
    let file = GgufFile::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let built = Tokenizer::from_gguf(&file);
    if let Some((_, why)) = NOT_SUPPORTED.iter().find(|v| v.0 == name) {
        match built {
            Err(e @ (TokenizerError::UnsupportedModel { .. } | TokenizerError::UnsupportedPreTokenizer { .. })) => {
                println!("{name}: not supported yet: {why} (refused: {e})");
                return;
            }
            Err(e) => panic!("{name}: refused with an untyped reason: {e}"),
            Ok(_) => panic!("{name} now loads: remove it from NOT_SUPPORTED"),
        }
    }
    let tok = built.unwrap_or_else(|e| panic!("{name}: {e} (add it to NOT_SUPPORTED with the reason, or support it)"));

    let mut failures = Vec::new();
    let mut inp_line = String::from("no .inp/.out");
    if let Some(cases) = inp_out_cases(&models, name) {
        let mut ok = 0;
        for (text, want) in &cases {
            let got = tok.encode(text, false, false);
            if &got == want {
                ok += 1;
            } else {
                failures.push(format!(".inp {text:?}\n  want {want:?}\n  got  {got:?}"));
            }
        }
        inp_line = format!(".inp/.out {ok}/{}", cases.len());
    }

    let cases = peer_cases(name);
    assert!(cases.len() >= 60, "{name}: only {} reference cases", cases.len());
    let mut ok = 0;
    for c in &cases {
        let before = failures.len();
        let ids = tok.encode(&c.text, false, false);
        if ids != c.ids {
            failures.push(format!("encode {:?}\n  want {:?}\n  got  {:?}", c.text, c.ids, ids));
        }
        let ids_special = tok.encode(&c.text, true, true);
        if ids_special != c.ids_special {
            failures.push(format!("encode (special) {:?}\n  want {:?}\n  got  {:?}", c.text, c.ids_special, ids_special));
        }
        let dec = tok.decode_bytes(&c.ids, false);
        if dec != c.decoded {
            failures.push(format!("decode {:?}\n  want {:?}\n  got  {:?}", c.ids, String::from_utf8_lossy(&c.decoded), String::from_utf8_lossy(&dec)));
        }
        let dec = tok.decode_bytes(&c.ids_special, true);
        if dec != c.decoded_special {
            failures.push(format!(
                "decode (special) {:?}\n  want {:?}\n  got  {:?}",
                c.ids_special,
                String::from_utf8_lossy(&c.decoded_special),
                String::from_utf8_lossy(&dec)
            ));
        }
        ok += usize::from(failures.len() == before);
    }
    println!("{name}: {inp_line}; reference (encode ±special, decode ±special) {ok}/{}", cases.len());
    assert!(failures.is_empty(), "{name}: {} differences from llama.cpp:\n{}", failures.len(), failures.join("\n"));

    // Adversarial input: 1 MiB of one repeated character is one huge word
    // for most pre-tokenizers. It must tokenize (0.1–0.6 s in release, the
    // time printed, not asserted: a quadratic regression shows as a test
    // that takes hours) into tokens that decode back to text. Native runs
    // only: under qemu it costs minutes and exercises no ISA-specific code.
    if cfg!(target_arch = "x86_64") {
        for c in ["a", " ", "\n", "!", "中"] {
            let text = c.repeat((1 << 20) / c.len());
            let t = std::time::Instant::now();
            let ids = tok.encode(&text, false, false);
            let dt = t.elapsed();
            println!("{name}: 1 MiB of {c:?}: {} tokens in {dt:?}", ids.len());
            // At most one token per byte, plus the leading "▁" SentencePiece
            // adds; WordPiece drops whitespace, so only there may it be empty.
            assert!(
                (!ids.is_empty() || c.trim().is_empty()) && ids.len() <= text.len() + 1,
                "{name}: 1 MiB of {c:?} gave {} tokens",
                ids.len()
            );
            if !ids.is_empty() {
                assert!(!tok.decode_bytes(&ids, false).is_empty(), "{name}: 1 MiB of {c:?} decodes to nothing");
            }
        }
    }
}

macro_rules! vocab_tests {
    ($($test:ident: $name:literal,)*) => {
        $(
            #[test]
            fn $test() {
                check_vocab($name);
            }
        )*
        /// The tests above cover exactly [`VOCABS`].
        #[test]
        fn every_vocab_has_a_test() {
            assert_eq!(&[$($name),*], VOCABS);
        }
    };
}

vocab_tests! {
    vocab_llama_bpe: "llama-bpe",
    vocab_qwen2: "qwen2",
    vocab_qwen35: "qwen35",
    vocab_deepseek_llm: "deepseek-llm",
    vocab_deepseek_coder: "deepseek-coder",
    vocab_falcon: "falcon",
    vocab_mpt: "mpt",
    vocab_starcoder: "starcoder",
    vocab_refact: "refact",
    vocab_gpt_neox: "gpt-neox",
    vocab_gpt_2: "gpt-2",
    vocab_command_r: "command-r",
    vocab_phi_3: "phi-3",
    vocab_llama_spm: "llama-spm",
    vocab_baichuan: "baichuan",
    vocab_aquila: "aquila",
    vocab_gemma_4: "gemma-4",
    vocab_bert_bge: "bert-bge",
    vocab_nomic_bert_moe: "nomic-bert-moe",
}

/// A new peer version with another vocab file fails here until it is listed.
#[test]
fn vocab_files_are_all_listed() {
    let models = edgewasm_test_support::peer_models_dir();
    let mut found: Vec<String> = std::fs::read_dir(&models)
        .expect("read the peer's models/")
        .filter_map(|e| {
            let n = e.ok()?.file_name().into_string().ok()?;
            Some(n.strip_prefix("ggml-vocab-")?.strip_suffix(".gguf")?.to_string())
        })
        .collect();
    found.sort();
    let mut listed: Vec<String> = VOCABS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed, "the peer's vocab files and VOCABS differ");
    for (name, _) in NOT_SUPPORTED {
        assert!(VOCABS.contains(name), "{name} in NOT_SUPPORTED but not in VOCABS");
    }
}

/// An unknown pre-tokenizer is refused with a typed error that names it and
/// the supported ones.
#[test]
fn unknown_pre_tokenizer_is_named() {
    let cfg = edgewasm_tokenizer::TokenizerConfig {
        model: "gpt2".into(),
        pre: Some("no-such-pre".into()),
        tokens: vec!["a".into(), "b".into(), "ab".into()],
        merges: vec!["a b".into()],
        ..Default::default()
    };
    let e = Tokenizer::new(cfg).unwrap_err();
    assert!(matches!(&e, TokenizerError::UnsupportedPreTokenizer { name, .. } if name == "no-such-pre"), "{e:?}");
    let msg = e.to_string();
    for name in ["no-such-pre", "llama-bpe", "qwen2", "qwen35", "deepseek-coder", "falcon", "gpt-2", "smollm"] {
        assert!(msg.contains(name), "{msg}");
    }
    assert!(edgewasm_tokenizer::SUPPORTED_PRE_TOKENIZERS.contains(&"llama-bpe"));
}
