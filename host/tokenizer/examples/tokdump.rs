//! Prints what this crate makes of test cases, in the format of the peer's
//! `scripts/peer/vocab-oracle.cpp`, for comparing the two on any input:
//!
//!   cargo run --release -p edgewasm-tokenizer --example tokdump -- VOCAB.gguf < cases.inp
//!
//! Cases are separated by a line `__ggml_vocab_test__` (llama.cpp's
//! `models/ggml-vocab-*.gguf.inp` format). With `--decode`, each line is a
//! list of token ids to decode instead. `tokdump --list-pre` prints the
//! supported `tokenizer.ggml.pre` names.

use std::io::{Read, Write};

use edgewasm_gguf::GgufFile;
use edgewasm_tokenizer::Tokenizer;

fn decoded(key: &str, bytes: Vec<u8>) -> (String, serde_json::Value) {
    match String::from_utf8(bytes) {
        Ok(s) => (key.to_string(), s.into()),
        Err(e) => (format!("{key}_hex"), e.as_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>().into()),
    }
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: tokdump VOCAB.gguf [--decode] < cases.inp | tokdump --list-pre");
    if path == "--list-pre" {
        println!("{}", edgewasm_tokenizer::SUPPORTED_PRE_TOKENIZERS.join("\n"));
        return;
    }
    let file = GgufFile::open(&path).expect("open gguf");
    let tok = Tokenizer::from_gguf(&file).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut raw = String::new();
    std::io::stdin().read_to_string(&mut raw).expect("stdin is UTF-8");
    let mut out = std::io::stdout().lock();
    if std::env::args().nth(2).as_deref() == Some("--decode") {
        for line in raw.split_terminator('\n') {
            let ids: Vec<u32> = line.split_whitespace().map(|t| t.parse().expect("token id")).collect();
            let mut m = serde_json::Map::new();
            m.insert("ids".into(), ids.clone().into());
            let (k, v) = decoded("decoded", tok.decode_bytes(&ids, false));
            m.insert(k, v);
            let (k, v) = decoded("decoded_special", tok.decode_bytes(&ids, true));
            m.insert(k, v);
            writeln!(out, "{}", serde_json::Value::Object(m)).expect("stdout");
        }
        return;
    }
    let sep = "\n__ggml_vocab_test__\n";
    let mut cases = Vec::new();
    let mut rest = raw.as_str();
    while !rest.is_empty() {
        match rest.find(sep) {
            Some(i) => {
                cases.push(&rest[..i]);
                rest = &rest[i + sep.len()..];
            }
            None => {
                cases.push(rest);
                rest = "";
            }
        }
    }
    for text in cases {
        let ids = tok.encode(text, false, false);
        let ids_sp = tok.encode(text, true, true);
        let mut m = serde_json::Map::new();
        m.insert("text".into(), text.into());
        m.insert("ids".into(), ids.clone().into());
        m.insert("ids_special".into(), ids_sp.clone().into());
        let (k, v) = decoded("decoded", tok.decode_bytes(&ids, false));
        m.insert(k, v);
        let (k, v) = decoded("decoded_special", tok.decode_bytes(&ids_sp, true));
        m.insert(k, v);
        writeln!(out, "{}", serde_json::Value::Object(m)).expect("stdout");
    }
}
