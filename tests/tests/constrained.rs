//! Constrained generation on the real default model: llama.cpp's grammars
//! checked by llama.cpp's own validator, JSON Schemas checked by Python's
//! `jsonschema`, and hostile grammars refused rather than followed.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use edgewasm_llm::chat::ChatMessage;
use edgewasm_llm::constrain::GrammarSource;
use edgewasm_llm::generate::{GenerateOptions, Generation, StopReason};
use edgewasm_llm::sampling::SamplerConfig;
use edgewasm_llm::{Context, Model, ModelError, ThreadPool};
use edgewasm_test_support::{peer_bin, peer_dir, require};
use edgewasm_tests::*;
use serde_json::{json, Value};

/// Generates a chat answer to `prompt` under `source`.
fn answer(
    m: &Arc<Model>,
    prompt: &str,
    source: GrammarSource<'_>,
    seed: u64,
    temperature: f32,
) -> Result<(String, StopReason), ModelError> {
    let grammar = m.compile_grammar(source).unwrap_or_else(|e| panic!("compile: {e}"));
    let mut ctx = Context::new(Arc::clone(m), Arc::new(ThreadPool::new(2)), 1024)?;
    let msgs = [ChatMessage { role: "user".into(), content: prompt.into() }];
    let text = m.chat_template()?.render(&msgs, true)?;
    let ids = m.tokenizer().encode(&text, true, true);
    let opts = GenerateOptions {
        max_tokens: 160,
        sampler: SamplerConfig { temperature, seed, ..SamplerConfig::default() },
        grammar: Some(grammar),
        ..GenerateOptions::default()
    };
    let mut gen = Generation::start(&mut ctx, &ids, opts)?;
    let mut out = String::new();
    let reason = gen.run(&mut ctx, |t| out.push_str(t))?;
    Ok((out, reason))
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Valid,
    /// A valid prefix: llama.cpp ran out of input, not into a bad character.
    Prefix,
    Invalid(String),
}

fn validate(grammar: &Path, text: &str) -> Verdict {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.txt");
    std::fs::write(&input, text).unwrap();
    let out = Command::new(peer_bin("llama-gbnf-validator")).arg(grammar).arg(&input).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if stdout.contains("Input string is valid") {
        Verdict::Valid
    } else if stdout.contains("Unexpected end of input") {
        Verdict::Prefix
    } else {
        Verdict::Invalid(stdout)
    }
}

/// Every grammar of llama.cpp's `grammars/` folder, sampled at three seeds
/// and greedily: complete outputs are valid for llama.cpp's validator, and
/// outputs cut by the token limit are valid prefixes.
#[test]
fn llama_cpp_grammars_pass_llama_cpp_validator() {
    let m = model(SMOLLM2);
    let dir = peer_dir().join("src/vendor/llama.cpp/grammars");
    require(dir.join("json.gbnf").is_file(), "the peer's grammars/: run `./just peer`");
    let prompts = [
        ("arithmetic", "Write two arithmetic equations."),
        ("c", "Write a C function that adds two integers."),
        ("chess", "Write the first moves of a chess game."),
        ("english", "Write a sentence about the sea."),
        ("japanese", "日本語で短い挨拶を書いてください。"),
        ("json", "Describe a cat as a JSON object."),
        ("json_arr", "List three fruits as a JSON array of objects."),
        ("list", "List three colours."),
    ];
    let (mut complete, mut cut, mut lines) = (0, 0, Vec::new());
    for (name, prompt) in prompts {
        let path = dir.join(format!("{name}.gbnf"));
        let src = std::fs::read_to_string(&path).unwrap();
        for (seed, temp) in [(1, 0.8), (2, 0.8), (3, 0.8), (0, 0.0)] {
            let (text, reason) = answer(&m, prompt, GrammarSource::Gbnf(&src), seed, temp).unwrap();
            let verdict = validate(&path, &text);
            match reason {
                StopReason::EndOfGeneration => {
                    assert_eq!(verdict, Verdict::Valid, "{name} seed {seed}: {text:?}");
                    complete += 1;
                }
                StopReason::MaxTokens => {
                    assert!(matches!(verdict, Verdict::Valid | Verdict::Prefix), "{name} seed {seed}: {verdict:?} {text:?}");
                    cut += 1;
                }
                other => panic!("{name} seed {seed}: stopped by {other:?}"),
            }
            lines.push(format!("{name} seed {seed}: {reason:?} {:?}", text.chars().take(60).collect::<String>()));
        }
    }
    println!("{}\n{complete} complete and valid, {cut} cut by the token limit and valid prefixes", lines.join("\n"));
    assert!(complete >= 10, "only {complete} of 32 outputs completed within 160 tokens");
}

/// Answers under JSON Schemas validate with Python's `jsonschema`.
#[test]
fn json_schema_outputs_validate_with_python_jsonschema() {
    let have = Command::new("python3").args(["-c", "import jsonschema"]).status().is_ok_and(|s| s.success());
    require(have, "python3 with jsonschema: run `./just test-tools`");
    let m = model(SMOLLM2);
    let schemas = [
        ("Describe a person.", json!({"type": "object", "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer", "minimum": 0, "maximum": 120}}, "required": ["name", "age"]})),
        ("Is the sky blue?", json!({"enum": ["yes", "no", "unsure"]})),
        ("Name up to three fruits.", json!({"type": "array", "items": {"type": "string", "maxLength": 12}, "minItems": 1, "maxItems": 3})),
        ("Give a date and a uuid for an order.", json!({"type": "object", "properties": {"date": {"type": "string", "format": "date"}, "id": {"type": "string", "format": "uuid"}}, "required": ["date", "id"]})),
        ("Describe a tree of two nodes.", json!({"$defs": {"node": {"type": "object", "properties": {"label": {"type": "string", "maxLength": 10}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}}, "required": ["label"]}}, "$ref": "#/$defs/node"})),
        ("Rate this movie.", json!({"type": "object", "properties": {"stars": {"type": "integer", "minimum": 1, "maximum": 5}, "summary": {"type": "string", "maxLength": 30}, "spoilers": {"type": "boolean"}}, "required": ["stars"]})),
    ];
    let mut cases = Vec::new();
    for (prompt, schema) in &schemas {
        for (seed, temp) in [(7, 0.8), (0, 0.0)] {
            let (text, reason) = answer(&m, prompt, GrammarSource::JsonSchema(schema), seed, temp).unwrap();
            if reason == StopReason::MaxTokens {
                println!("{prompt} seed {seed}: cut by the token limit: {text:?}");
                continue;
            }
            assert_eq!(reason, StopReason::EndOfGeneration, "{prompt}");
            let instance: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{prompt}: not JSON ({e}): {text:?}"));
            println!("{prompt} seed {seed}: {instance}");
            cases.push(json!({"schema": schema, "instance": instance}));
        }
    }
    assert!(cases.len() >= 9, "only {} of 12 answers completed", cases.len());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.json");
    std::fs::write(&file, serde_json::to_string(&cases).unwrap()).unwrap();
    let script = "import json, sys, jsonschema\n\
        cases = json.load(open(sys.argv[1]))\n\
        for c in cases:\n    jsonschema.validate(c['instance'], c['schema'], format_checker=jsonschema.FormatChecker())\n\
        print(len(cases), 'valid')";
    let out = Command::new("python3").args(["-c", script]).arg(&file).output().unwrap();
    assert!(out.status.success(), "jsonschema: {}", String::from_utf8_lossy(&out.stderr));
    println!("{}", String::from_utf8_lossy(&out.stdout));
}

/// A grammar so ambiguous that it would need thousands of parse stacks is
/// refused with an error instead of slowing generation to a crawl.
#[test]
fn ambiguous_grammar_is_refused() {
    let m = model(SMOLLM2);
    let mut src = String::from("root ::= r0");
    for i in 1..3000 {
        src.push_str(&format!(" | r{i}"));
    }
    src.push('\n');
    for i in 0..3000 {
        src.push_str(&format!("r{i} ::= [a-z] \"{}\"\n", i % 7));
    }
    let err = answer(&m, "Say a letter.", GrammarSource::Gbnf(&src), 1, 0.0).unwrap_err();
    assert!(matches!(err, ModelError::GrammarTooComplex), "{err}");
}

/// The end of generation comes exactly where the grammar's text may end:
/// a grammar with nothing left to match stops without another forward
/// pass, and one that may continue lets the model choose.
#[test]
fn end_of_generation_follows_the_grammar() {
    let m = model(SMOLLM2);
    let (text, reason) = answer(&m, "Is water wet?", GrammarSource::Gbnf("root ::= \"yes\" | \"no\""), 0, 0.0).unwrap();
    assert!(text == "yes" || text == "no", "{text:?}");
    assert_eq!(reason, StopReason::EndOfGeneration);
    let (text, _) = answer(&m, "Count to five.", GrammarSource::Gbnf("root ::= [0-9 ,]+"), 0, 0.0).unwrap();
    assert!(!text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == ' ' || c == ','), "{text:?}");
    let bad = m.compile_grammar(GrammarSource::Gbnf("root ::= \"a\" b")).unwrap_err();
    assert!(bad.to_string().contains("undefined rule `b` at line 1, column 14"), "{bad}");
}
