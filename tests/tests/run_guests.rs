//! `edgewasm run`: the Rust guests in guest-components/rust against the
//! native engine, and every sandbox limit ending a run cleanly.
//!
//! Builds the release `edgewasm` binary and the guests (into target/guests/)
//! on first use.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgewasm_llm::{Context, ThreadPool};
use edgewasm_tests::*;

fn run(args: &[&str]) -> Output {
    run_edgewasm(args, None)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const PROMPTS: &[&str] = &["What is the capital of France?", "Write a haiku about small computers."];

#[test]
fn chat_guest_matches_native_generate() {
    let chat = guest("chat");
    for p in PROMPTS {
        let native = run(&["generate", "--chat", "--temp", "0", "--max-tokens", "48", "--prompt", p]);
        assert!(native.status.success());
        let wasm = run(&["run", s(&chat), "--temp", "0", "--max-tokens", "48", p]);
        assert!(wasm.status.success());
        assert_eq!(stdout(&wasm), stdout(&native), "chat.wasm differs from `edgewasm generate --chat` for {p:?}");
        assert!(!stdout(&native).trim().is_empty());
    }
}

/// `edgewasm:llm/constrained` from a component: the same answer as
/// `generate --json-schema` / `--grammar`, and a bad grammar is the
/// guest's `invalid-argument`.
#[test]
fn chat_guest_constrained_matches_native_generate() {
    let chat = guest("chat");
    let schema = r#"{"type":"object","properties":{"city":{"type":"string","maxLength":20},"population":{"type":"integer","minimum":0}},"required":["city","population"]}"#;
    for (flag, value) in [("--json-schema", schema), ("--grammar", "root ::= [A-Z] [a-z]+ \".\"")] {
        let native = run(&["generate", "--chat", "--temp", "0", "--max-tokens", "48", flag, value, "--prompt", PROMPTS[0]]);
        assert!(native.status.success());
        let wasm = run(&["run", s(&chat), "--temp", "0", "--max-tokens", "48", flag, value, PROMPTS[0]]);
        assert!(wasm.status.success());
        assert_eq!(stdout(&wasm), stdout(&native), "chat.wasm {flag} differs from `edgewasm generate --chat {flag}`");
    }
    let native = run(&["generate", "--chat", "--temp", "0", "--max-tokens", "48", "--json-schema", schema, "--prompt", PROMPTS[0]]);
    let v: serde_json::Value = serde_json::from_str(stdout(&native).trim()).expect("JSON");
    assert!(v["population"].is_u64() && v["city"].is_string(), "{v}");
    let bad = run(&["run", s(&chat), "--grammar", "root ::= (", "hi"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid-argument: grammar syntax error at line 1"), "{}", String::from_utf8_lossy(&bad.stderr));
}

fn vectors(o: &Output) -> Vec<Vec<f32>> {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str(stdout(o).trim()).expect("a JSON array of vectors")
}

/// `model.embed` from a component (embed.wasm) gives `edgewasm embed`'s
/// vectors, and an empty text is the guest's `invalid-argument`.
#[test]
fn embed_guest_matches_native_embed() {
    let texts = ["The cat sat on the mat.", "A kitten rested on the rug.", "Stock prices fell sharply today."];
    let mut args = vec!["embed", "--array"];
    args.extend(texts);
    let native = vectors(&run(&args));
    let embed = guest("embed");
    let mut args = vec!["run", s(&embed)];
    args.extend(texts);
    let wasm = vectors(&run(&args));
    assert_eq!((wasm.len(), native.len()), (3, 3));
    for (w, n) in wasm.iter().zip(&native) {
        assert_eq!(w.len(), n.len());
        let diff = w.iter().zip(n).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(diff < 1e-5, "embed.wasm differs from `edgewasm embed` by {diff}");
        let norm: f32 = w.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "not normalised: {norm}");
    }
    let bad = run(&["run", s(&embed), "fine", ""]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid-argument"), "{}", String::from_utf8_lossy(&bad.stderr));
}

#[test]
fn chat_guest_with_system_and_implicit_run_and_cwasm() {
    let chat = guest("chat");
    let p = PROMPTS[0];
    let native = run(&["generate", "--chat", "--system", "Answer in French.", "--temp", "0", "-n", "24", "--prompt", p]);
    // `edgewasm APP.wasm` means `edgewasm run APP.wasm`.
    let wasm = run(&[s(&chat), "--system", "Answer in French.", "--temp", "0", "--max-tokens", "24", p]);
    assert!(wasm.status.success());
    assert_eq!(stdout(&wasm), stdout(&native));
    // Precompiled.
    let dir = tempfile::tempdir().unwrap();
    let cwasm = dir.path().join("chat.cwasm");
    let c = run(&["compile", s(&chat), "-o", s(&cwasm)]);
    assert!(c.status.success());
    let pre = run(&["run", "-v", s(&cwasm), "--system", "Answer in French.", "--temp", "0", "--max-tokens", "24", p]);
    assert!(pre.status.success());
    assert!(stderr(&pre).contains("Precompiled"), "{}", stderr(&pre));
    assert_eq!(stdout(&pre), stdout(&native));
}

#[test]
fn raw_mode_and_wasi_nn_text_mode_match_native_completion() {
    let p = "The three primary colors are";
    let native = run(&["generate", "--temp", "0", "--max-tokens", "16", "--prompt", p]);
    assert!(native.status.success());
    let raw = run(&["run", s(&guest("chat")), "--raw", "--temp", "0", "--max-tokens", "16", p]);
    assert_eq!(stdout(&raw), stdout(&native));
    let text = run(&["run", s(&guest("nn-greedy")), "--text", p, "--config", r#"{"n-predict": 16, "temp": 0, "unknown-key": 1}"#]);
    assert!(text.status.success());
    assert_eq!(stdout(&text), stdout(&native));
    let err = stderr(&text);
    assert!(err.contains("\"output_tokens\":16") && err.contains("\"stop_reason\":\"max_tokens\""), "{err}");
    assert!(err.contains("ignoring unknown config key `unknown-key`"), "{err}");
}

/// Greedy decoding natively: (tokens, top-5 (id, logit) per step).
fn native_greedy(model_name: &str, prompt: &[u32], steps: usize) -> (Vec<u32>, Vec<Vec<(u32, f32)>>) {
    let m = model(model_name);
    let mut ctx = Context::new(Arc::clone(&m), Arc::new(ThreadPool::new(2)), 512).unwrap();
    let mut feed = prompt.to_vec();
    let (mut toks, mut tops) = (Vec::new(), Vec::new());
    for _ in 0..steps {
        let row = ctx.eval(&feed, false).unwrap().to_vec();
        let mut idx: Vec<usize> = (0..row.len()).collect();
        idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        tops.push(idx[..5].iter().map(|&i| (i as u32, row[i])).collect());
        toks.push(idx[0] as u32);
        feed = vec![idx[0] as u32];
    }
    (toks, tops)
}

#[test]
fn token_mode_guest_matches_native_engine() {
    check_token_mode(SMOLLM2, &[]);
}

/// nn-greedy in wasi:nn token mode against the native engine: the same
/// greedy tokens and the same top-5 logits at every step.
fn check_token_mode(model_name: &str, run_flags: &[&str]) {
    let m = model(model_name);
    let prompt = m.tokenizer().encode("The quick brown fox jumps over the", true, false);
    let steps = 12;
    let (want_toks, want_tops) = native_greedy(model_name, &prompt, steps);
    let ids: Vec<String> = prompt.iter().map(u32::to_string).collect();
    let nn = guest("nn-greedy");
    let steps_s = steps.to_string();
    let mut args = vec!["run"];
    args.extend_from_slice(run_flags);
    args.extend([s(&nn), "--max-tokens", &steps_s]);
    if !run_flags.is_empty() {
        args.extend(["--model", "gemma"]);
    }
    let joined = ids.join(",");
    args.push(&joined);
    let out = run(&args);
    assert!(out.status.success());
    let text = stdout(&out);
    let toks: Vec<u32> = text
        .lines()
        .find_map(|l| l.strip_prefix("tokens: "))
        .expect("tokens line")
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(toks, want_toks, "greedy tokens differ");
    for (i, line) in text.lines().filter(|l| l.starts_with("step ")).enumerate() {
        let got: Vec<(u32, f32)> = line
            .split_once(": ")
            .unwrap()
            .1
            .split_whitespace()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (k.parse().unwrap(), v.parse().unwrap())
            })
            .collect();
        for ((gi, gv), (wi, wv)) in got.iter().zip(&want_tops[i]) {
            assert_eq!(gi, wi, "step {i}: top ids differ");
            assert!((gv - wv).abs() <= 1e-4, "step {i}: logit {gv} vs {wv}");
        }
    }
}

/// Gemma 3 (SentencePiece, K-quants, sliding window) through both guest
/// interfaces: the chat guest with the model's own `<start_of_turn>`
/// template, raw completion, wasi:nn text mode and token mode all equal the
/// native engine.
#[test]
fn gemma3_runs_through_both_guest_interfaces() {
    let path = model_path(GEMMA3);
    let reg = format!("gemma={}", s(&path));
    let chat = guest("chat");
    let p = "What is the capital of France?";
    let native = run(&["generate", "--model", s(&path), "--chat", "--temp", "0", "--max-tokens", "24", "--prompt", p]);
    assert!(native.status.success());
    assert!(!stdout(&native).trim().is_empty());
    let wasm = run(&["run", "--model", &reg, s(&chat), "--model", "gemma", "--temp", "0", "--max-tokens", "24", p]);
    assert!(wasm.status.success());
    assert_eq!(stdout(&wasm), stdout(&native), "chat.wasm with Gemma 3 differs from native");

    let p = "The three primary colors are";
    let native = run(&["generate", "--model", s(&path), "--temp", "0", "--max-tokens", "16", "--prompt", p]);
    assert!(native.status.success());
    let raw = run(&["run", "--model", &reg, s(&chat), "--model", "gemma", "--raw", "--temp", "0", "--max-tokens", "16", p]);
    assert_eq!(stdout(&raw), stdout(&native));
    let preload = format!("gemma:GGML:AUTO:{}", s(&path));
    let text = run(&[
        "run",
        "--nn-preload",
        &preload,
        s(&guest("nn-greedy")),
        "--model",
        "gemma",
        "--text",
        p,
        "--config",
        r#"{"n-predict": 16, "temp": 0}"#,
    ]);
    assert!(text.status.success());
    assert_eq!(stdout(&text), stdout(&native));

    check_token_mode(GEMMA3, &["--model", &reg]);
}

#[test]
fn wasi_nn_errors_reach_the_guest() {
    let nn = guest("nn-greedy");
    let o = run(&["run", s(&nn), "--model", "nope", "1", "2"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not-found"), "{}", stderr(&o));
    let o = run(&["run", s(&nn), "--text", "hi", "--config", r#"{"temp": "hot"}"#]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("invalid-argument"), "{}", stderr(&o));
    let o = run(&["run", s(&nn), "999999999"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("invalid-argument"), "{}", stderr(&o));
    let o = run(&["run", "--max-ctx", "8", s(&nn), "1,2,3,4,5,6,7,8,9"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("too-large"), "{}", stderr(&o));
}

#[test]
fn unknown_model_is_not_found_in_edgewasm_llm() {
    let o = run(&["run", s(&guest("chat")), "--model", "nope", "hi"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not-found"), "{}", stderr(&o));
    // Named models.
    let path = model_path(SMOLLM2);
    let o = run(&["run", "--model", &format!("smol={}", s(&path)), s(&guest("chat")), "--model", "default", "hi"]);
    assert!(stderr(&o).contains("not-found"), "{}", stderr(&o));
    let o = run(&[
        "run",
        "--nn-preload",
        &format!("smol:GGML:AUTO:{}", s(&path)),
        s(&guest("chat")),
        "--model",
        "smol",
        "--max-tokens",
        "4",
        "hi",
    ]);
    assert!(o.status.success());
}

#[test]
fn memory_bomb_is_stopped() {
    let t = Instant::now();
    let o = run(&["run", "--max-memory", "64MiB", s(&guest("test-memory-bomb"))]);
    assert!(!o.status.success());
    assert!(stdout(&o).contains("allocated 16 MiB"));
    assert!(!stdout(&o).contains("allocated 64 MiB"));
    assert!(stderr(&o).contains("memory") || stderr(&o).contains("grow"), "{}", stderr(&o));
    assert!(t.elapsed() < Duration::from_secs(30));
}

#[test]
fn infinite_loop_times_out() {
    let t = Instant::now();
    let o = run(&["run", "--timeout", "1s", s(&guest("test-spin"))]);
    assert_eq!(o.status.code(), Some(124));
    assert!(stderr(&o).contains("time limit"), "{}", stderr(&o));
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
}

#[test]
fn timeout_stops_a_long_generation() {
    let t = Instant::now();
    let o = run(&[
        "run",
        "--timeout",
        "2s",
        s(&guest("chat")),
        // A raw counting completion: it runs to --max-tokens (about 40 s
        // on one core) instead of ending at an end-of-turn token, so only
        // the timeout can stop it.
        "--raw",
        "--temp",
        "0",
        "--max-tokens",
        "4000",
        "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,",
    ]);
    let took = t.elapsed();
    assert!(!o.status.success());
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn filesystem_is_limited_to_dir() {
    let dir = tempfile::tempdir().unwrap();
    let inside = dir.path().join("inside");
    std::fs::create_dir(&inside).unwrap();
    std::fs::write(inside.join("in.txt"), "hello").unwrap();
    std::fs::write(dir.path().join("outside.txt"), "secret").unwrap();
    let rf = guest("test-read-file");
    let mapped = format!("{}::/data", s(&inside));
    let o = run(&["run", "--dir", &mapped, s(&rf), "/data/in.txt"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("read /data/in.txt: 5 bytes"));
    for bad in ["/data/../outside.txt", "/etc/hostname", s(&dir.path().join("outside.txt"))] {
        let o = run(&["run", "--dir", &mapped, s(&rf), bad]);
        assert!(!o.status.success(), "{bad} was readable");
        assert!(stdout(&o).contains("cannot read"));
    }
    // No --dir: nothing at all.
    let o = run(&["run", s(&rf), s(&inside.join("in.txt"))]);
    assert!(!o.status.success());
}

#[test]
fn guest_loads_model_bytes_under_the_size_limit() {
    let path = model_path(SMOLLM2);
    let models_dir = format!("{}::/models", s(path.parent().unwrap()));
    let file = format!("/models/{SMOLLM2}");
    let nn = guest("nn-greedy");
    let by_name = run(&["run", s(&nn), "--max-tokens", "4", "1,2,3"]);
    let loaded = run(&["run", "--dir", &models_dir, s(&nn), "--load", &file, "--max-tokens", "4", "1,2,3"]);
    assert!(loaded.status.success());
    assert_eq!(stdout(&loaded), stdout(&by_name));
    let o = run(&["run", "--max-load-size", "1MiB", "--dir", &models_dir, s(&nn), "--load", &file, "1"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("too-large"), "{}", stderr(&o));
}

#[test]
fn chat_repl_keeps_the_conversation() {
    let chat = guest("chat");
    let o = run_edgewasm(&["run", s(&chat), "-v", "--temp", "0", "--max-tokens", "12"], Some("Hi, I am Ada.\nWhat is my name?\n\n"));
    let err = stderr(&o);
    assert!(o.status.success());
    let turns: Vec<&str> = err.lines().filter(|l| l.starts_with("[chat] prompt")).collect();
    assert_eq!(turns.len(), 2, "{err}");
    assert!(turns[0].contains("(0 reused)"), "{}", turns[0]);
    assert!(!turns[1].contains("(0 reused)"), "second turn should reuse the KV cache: {}", turns[1]);
}
