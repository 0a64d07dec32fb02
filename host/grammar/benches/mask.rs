//! Cost of constrained sampling on real vocabularies: building the token
//! trie, a full mask walk (uncached) at JSON states, a cached mask, and
//! checking one sampled token (the common path).
//!
//! `cargo bench -p edgewasm-grammar --bench mask` (needs `./just models`).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use edgewasm_gguf::GgufFile;
use edgewasm_grammar::{Grammar, Matcher, TokenTrie};
use edgewasm_tokenizer::Tokenizer;

const JSON: &str = r#"root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array  ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
ws ::= | " " | "\n" [ \t]{0,20}
"#;

fn vocab(file: &str) -> Option<Tokenizer> {
    let path = edgewasm_test_support::model_path(file);
    let g = GgufFile::open(path).ok()?;
    Tokenizer::from_gguf(&g).ok()
}

fn bench(c: &mut Criterion) {
    let g = Arc::new(Grammar::parse(JSON).unwrap());
    for (name, file) in [("smollm2-49k", "smollm2-135m-instruct-q4_1.gguf"), ("gemma3-262k", "gemma-3-270m-q4_k_m.gguf")] {
        let Some(tok) = vocab(file) else {
            eprintln!("{file} missing: run ./just models");
            continue;
        };
        let n = tok.vocab_size();
        c.bench_function(&format!("trie_build/{name}"), |b| b.iter(|| TokenTrie::new(n, |id| tok.token_bytes(id))));
        let trie = TokenTrie::new(n, |id| tok.token_bytes(id));
        // States: after `{`, inside a string value, inside a number.
        for (state, prefix) in [("object_start", "{"), ("in_string", "{\"name\": \"Fel"), ("in_number", "{\"n\": 12")] {
            c.bench_function(&format!("mask_uncached/{name}/{state}"), |b| {
                b.iter(|| {
                    let mut m = Matcher::new(Arc::clone(&g));
                    m.accept_bytes(prefix.as_bytes());
                    black_box(m.fill_mask(&trie, &[]).count())
                })
            });
            let mut m = Matcher::new(Arc::clone(&g));
            m.accept_bytes(prefix.as_bytes());
            m.fill_mask(&trie, &[]);
            c.bench_function(&format!("mask_cached/{name}/{state}"), |b| b.iter(|| black_box(m.fill_mask(&trie, &[]).count())));
            let id = tok.encode("ix", false, false)[0];
            let bytes = tok.token_bytes(id).unwrap().to_vec();
            c.bench_function(&format!("allows_token/{name}/{state}"), |b| b.iter(|| black_box(m.allows_token(id, &bytes))));
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
