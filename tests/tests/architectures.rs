//! Every architecture through the product, not only the library: tiny
//! random-weight models (tests/support `TinyArch`, with their family's
//! llama.cpp vocabulary) run through `edgewasm run` guests, `bench`,
//! `perplexity` and `quantize`. Their numbers against llama.cpp are checked
//! by host/llm/tests/architectures.rs; here the question is whether every
//! command and both guest kinds take them.
//!
//! Builds the release `edgewasm` binary and the guests on first use.

use std::path::{Path, PathBuf};
use std::process::Output;

use edgewasm_gguf::{GgmlType, Value};
use edgewasm_tests::*;

fn run(args: &[&str]) -> Output {
    run_edgewasm(args, None)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(o: &Output, what: &str) -> String {
    assert!(o.status.success(), "{what} failed ({:?}):\n{}", o.status.code(), stderr(o));
    stdout(o)
}

/// A chat template from llama.cpp's `models/templates/`.
fn template(file: &str) -> String {
    let path = peer_dir().join("src/vendor/llama.cpp/models/templates").join(file);
    require(path.is_file(), &format!("{} is missing: run `./just peer`", path.display()));
    std::fs::read_to_string(path).unwrap()
}

/// Writes a tiny Q8_0 `arch` model with the vocabulary `vocab` and the
/// chat template `template_file` into `dir`.
fn tiny_chat_model(dir: &Path, arch: &str, vocab: &str, template_file: &str) -> PathBuf {
    let (mut keys, n_vocab) = llama_cpp_vocab(vocab);
    keys.retain(|(k, _)| k != "tokenizer.chat_template");
    keys.push(("tokenizer.chat_template".into(), Value::String(template(template_file))));
    let path = dir.join(format!("tiny-{arch}-{vocab}.gguf"));
    std::fs::write(&path, TinyArch::new(arch, GgmlType::Q8_0, keys, n_vocab).gguf()).unwrap();
    path
}

const SYSTEM: &str = "You are a concise assistant.";
const QUESTION: &str = "What is the capital of France?";

/// Llama 3 (128k BPE, `<|eot_id|>`, the Llama 3.1 template), Qwen 3
/// (Qwen's BPE, ChatML), and two 2026 families with their own templates:
/// Qwen 3.5 (hybrid delta-net layers; its vocabulary and template, which
/// opens the reply with an empty think block), SmolLM3 (NoPE layers),
/// Gemma 4 (its 262k vocabulary, `<turn|>` ending a turn) and LFM2 (its
/// LFM2.5 template):
/// the chat component with the model's own template, and a WasmEdge-style
/// core module, each give `edgewasm generate`'s text.
#[test]
fn chat_models_run_through_both_guest_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let chat = guest("chat");
    let cases = [
        ("llama", "llama-bpe", "meta-llama-Llama-3.1-8B-Instruct.jinja"),
        ("qwen3", "qwen2", "Qwen-Qwen3-0.6B.jinja"),
        ("qwen35", "qwen35", "Qwen3.5-4B.jinja"),
        ("smollm3", "llama-bpe", "HuggingFaceTB-SmolLM3-3B.jinja"),
        ("gemma4", "gemma-4", "google-gemma-4-31B-it.jinja"),
        // llama.cpp ships no LFM2 vocabulary: GPT-2's, with LFM2.5's template.
        ("lfm2", "gpt-2", "LFM2.5-Instruct.jinja"),
    ];
    for (arch, vocab, tmpl) in cases {
        let path = tiny_chat_model(dir.path(), arch, vocab, tmpl);
        let reg = format!("tiny={}", s(&path));
        let what = format!("{arch} with the {vocab} vocabulary");

        // The chat component: the model's template, rendered by the host.
        let native = run(&[
            "generate", "--model", s(&path), "--chat", "--system", SYSTEM, "--temp", "0", "--max-tokens", "24", "--prompt", QUESTION,
        ]);
        let native = ok(&native, &format!("generate --chat ({what})"));
        assert!(!native.trim().is_empty(), "{what}: empty answer");
        let wasm = run(&[
            "run", "--model", &reg, s(&chat), "--model", "tiny", "--system", SYSTEM, "--temp", "0", "--max-tokens", "24", QUESTION,
        ]);
        assert_eq!(ok(&wasm, &format!("chat.wasm ({what})")), native, "chat.wasm differs from `generate --chat` ({what})");

        // A WasmEdge-style core module: raw completion for Llama 3; for
        // Qwen 3 the guest's own ChatML, which is what Qwen 3's template
        // renders for a system and a user message.
        let preload = format!("default:GGML:AUTO:{}", s(&path));
        let sys = format!("system={SYSTEM}");
        let (app, env, native) = if arch == "qwen3" {
            ("chat-v08", vec!["temp=0", "n_predict=24", sys.as_str()], native)
        } else {
            let p = "The three primary colors are";
            let raw = run(&["generate", "--model", s(&path), "--temp", "0", "--max-tokens", "24", "--prompt", p]);
            let raw = ok(&raw, &format!("generate ({what})"));
            assert!(!raw.trim().is_empty(), "{what}: empty completion");
            ("basic-v08", vec!["temp=0", "n_predict=24"], raw)
        };
        let prompt = if arch == "qwen3" { QUESTION } else { "The three primary colors are" };
        let module = wasmedge_guest(app);
        let mut args = vec!["run", "--dir", ".:.", "--nn-preload", &preload];
        for e in &env {
            args.extend(["--env", e]);
        }
        args.extend([s(&module), "default", prompt]);
        let o = run(&args);
        assert_eq!(ok(&o, &format!("{app} ({what})")), native, "{app} differs from `generate` ({what})");
    }
}

/// Each architecture, quantized by `edgewasm quantize` from F32 to Q8_0 and
/// Q4_K_M, then measured by `bench` and scored by `perplexity`. (That our
/// quantizer writes llama-quantize's bytes for every architecture is
/// tests/tests/quantize.rs.)
#[test]
fn bench_perplexity_and_quantize_take_every_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = data_dir().join("corpus/gpl-3.txt");
    let text = std::fs::read_to_string(&corpus).unwrap();
    let short = dir.path().join("corpus.txt");
    // About 700 tokens: 10 chunks of 64.
    std::fs::write(&short, &text[..3_000]).unwrap();
    let mut table = Vec::new();
    for arch in TINY_ARCHS {
        let f32_path = dir.path().join(format!("{arch}-f32.gguf"));
        let tiny = tiny_with_family_vocab(arch, GgmlType::F32);
        std::fs::write(&f32_path, tiny.gguf()).unwrap();
        let mut row = format!("{arch:<11}");
        for ftype in ["q8_0", "q4_k_m"] {
            let q = dir.path().join(format!("{arch}-{ftype}.gguf"));
            ok(&run(&["quantize", "-q", "--type", ftype, s(&f32_path), s(&q)]), &format!("quantize {arch} {ftype}"));

            let out = ok(&run(&["perplexity", "--model", s(&q), "-f", s(&short), "--ctx", "64", "--json"]), &format!("perplexity {arch} {ftype}"));
            let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
            let ppl = r["ppl"].as_f64().unwrap();
            // Random weights: close to uniform over the vocabulary, never below 1.
            assert!(ppl.is_finite() && ppl > 1.0 && ppl < 10.0 * tiny.n_vocab as f64, "{arch} {ftype}: perplexity {ppl}");
            assert!(r["chunks"].as_u64().unwrap() >= 2, "{arch} {ftype}: {r}");

            let out = ok(
                &run(&["bench", "--model", s(&q), "-t", "1", "-p", "16", "-n", "4", "-r", "1", "--json"]),
                &format!("bench {arch} {ftype}"),
            );
            let tests: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            let names: Vec<&str> = tests.iter().map(|t| t["test"].as_str().unwrap()).collect();
            assert_eq!(names, ["pp16", "tg4"], "{arch} {ftype}");
            for t in &tests {
                assert!(t["tokens_per_s_mean"].as_f64().unwrap() > 0.0, "{arch} {ftype}: {t}");
            }
            row.push_str(&format!(" {ftype} ppl {ppl:>10.1}"));
        }
        table.push(row);
    }
    eprintln!("{}", table.join("\n"));
}

/// `bench --like`: a random-weight model with Qwen 3.5 0.8B's real shapes
/// (248k vocabulary, 18 delta-net and 6 attention layers) is made, benched
/// and written; llama.cpp's llama-bench runs the written bytes too, and
/// `inspect` sees the real shapes. A wrong name lists the known ones.
#[test]
fn bench_like_makes_real_shapes_that_llama_cpp_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("like-qwen3.5-0.8b-q4_0.gguf");
    let out = ok(
        &run(&["bench", "--like", "qwen3.5-0.8b:q4_0", "--write", s(&path), "-t", "2", "-p", "16", "-n", "4", "-r", "1", "--json"]),
        "bench --like qwen3.5-0.8b",
    );
    let tests: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(tests.iter().map(|t| t["test"].as_str().unwrap()).collect::<Vec<_>>(), ["pp16", "tg4"]);
    assert!(tests.iter().all(|t| t["tokens_per_s_mean"].as_f64().unwrap() > 0.0), "{out}");

    let info = ok(&run(&["inspect", "--tensors", s(&path)]), "inspect");
    for want in ["qwen35", "248320", "blk.23.attn_q.weight", "blk.22.ssm_out.weight"] {
        assert!(info.contains(want), "inspect lacks {want}:\n{}", &info[..info.len().min(3000)]);
    }

    let peer = std::process::Command::new(peer_bin("llama-bench"))
        .args(["-m", s(&path), "-t", "2", "-p", "16", "-n", "4", "-r", "1", "-o", "json"])
        .output()
        .unwrap();
    assert!(peer.status.success(), "llama-bench on the --like file: {}", String::from_utf8_lossy(&peer.stderr));
    let peer: serde_json::Value = serde_json::from_slice(&peer.stdout).unwrap();
    assert_eq!(peer.as_array().map(Vec::len), Some(2), "{peer}");

    let bad = run(&["bench", "--like", "gpt-5"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("gpt-5") && err.contains("llama-3.2-1b") && err.contains("qwen3.5-4b"), "{err}");
}
