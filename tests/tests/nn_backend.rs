//! The wasi-nn backend (edgewasm-nn) directly, without wasm: limits,
//! error codes, poisoning after errors, KV reuse.

use std::sync::Arc;
use std::time::{Duration, Instant};

use edgewasm_llm::{Context, ThreadPool};
use edgewasm_nn::backend::GgmlBackend;
use edgewasm_nn::config::TextConfig;
use edgewasm_nn::engine::{LlmContext, SamplingRequest, Session};
use edgewasm_nn::{ErrorCode, GuestEnv, Limits, ModelSet};
use edgewasm_tests::*;

fn env(limits: Limits) -> Arc<GuestEnv> {
    let mut set = ModelSet::new();
    set.insert("default", model(SMOLLM2));
    GuestEnv::new(Arc::new(set), Arc::new(ThreadPool::new(2)), limits)
}

#[test]
fn max_contexts_per_guest() {
    let e = env(Limits { max_contexts: 2, default_ctx: 64, ..Limits::default() });
    let m = model(SMOLLM2);
    let a = LlmContext::new(&e, Arc::clone(&m), None).unwrap();
    let _b = LlmContext::new(&e, Arc::clone(&m), None).unwrap();
    let err = LlmContext::new(&e, Arc::clone(&m), None).unwrap_err();
    assert_eq!(err.code, ErrorCode::TooLarge);
    drop(a);
    LlmContext::new(&e, m, None).expect("a slot is free again");
}

#[test]
fn context_size_cap() {
    let e = env(Limits { max_ctx: 128, ..Limits::default() });
    let err = LlmContext::new(&e, model(SMOLLM2), Some(129)).unwrap_err();
    assert_eq!(err.code, ErrorCode::TooLarge);
    let c = LlmContext::new(&e, model(SMOLLM2), None).unwrap();
    assert_eq!(c.n_ctx(), 128);
}

#[test]
fn token_mode_keeps_the_kv_cache() {
    let e = env(Limits { default_ctx: 64, ..Limits::default() });
    let m = model(SMOLLM2);
    let ids = m.tokenizer().encode("Hello there, general", true, false);
    let mut whole = Context::new(Arc::clone(&m), Arc::new(ThreadPool::new(2)), 64).unwrap();
    let want = whole.eval(&ids, false).unwrap().to_vec();
    let mut c = LlmContext::new(&e, Arc::clone(&m), None).unwrap();
    c.eval_tokens(&ids[..3], None).unwrap();
    let got = c.eval_tokens(&ids[3..], None).unwrap().to_vec();
    let max = want.iter().zip(&got).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(max < 1e-3, "split evaluation differs by {max}");
    // n-past rewinds.
    let again = c.eval_tokens(&ids[3..], Some(3)).unwrap().to_vec();
    assert_eq!(again, got);
    // Errors that do not touch the cache leave the context usable.
    assert_eq!(c.eval_tokens(&[u32::MAX], None).unwrap_err().code, ErrorCode::InvalidArgument);
    assert_eq!(c.eval_tokens(&[], None).unwrap_err().code, ErrorCode::InvalidArgument);
    assert_eq!(c.eval_tokens(&vec![1; 100], None).unwrap_err().code, ErrorCode::TooLarge);
    c.eval_tokens(&ids[..1], Some(0)).unwrap();
}

#[test]
fn deadline_gives_timeout_then_the_context_is_poisoned() {
    let e = env(Limits { deadline: Some(Instant::now() + Duration::from_millis(600)), ..Limits::default() });
    let mut c = LlmContext::new(&e, model(SMOLLM2), None).unwrap();
    // Greedy counting does not stop by itself before the ceiling (4096 tokens).
    let cfg = TextConfig { n_predict: Some(100_000), temp: Some(0.0), ..TextConfig::default() };
    let t = Instant::now();
    let err = c.complete_text(Some("1, 2, 3, 4, 5, 6,"), &cfg).unwrap_err();
    assert_eq!(err.code, ErrorCode::Timeout);
    assert!(t.elapsed() < Duration::from_secs(5));
    let err = c.eval_tokens(&[1], None).unwrap_err();
    assert_eq!(err.code, ErrorCode::RuntimeError, "{err}");
}

#[test]
fn max_tokens_ceiling_clamps_requests() {
    let e = env(Limits { max_tokens: 5, ..Limits::default() });
    let mut c = LlmContext::new(&e, model(SMOLLM2), None).unwrap();
    let cfg = TextConfig { n_predict: Some(1000), temp: Some(0.0), ..TextConfig::default() };
    let out = c.complete_text(Some("Count: one, two, three,"), &cfg).unwrap();
    assert!(out.metadata["output_tokens"].as_u64().unwrap() <= 5, "{}", out.metadata);
}

#[test]
fn text_mode_reuses_the_prefix_it_extends() {
    let e = env(Limits::default());
    let mut c = LlmContext::new(&e, model(SMOLLM2), None).unwrap();
    let cfg = TextConfig { n_predict: Some(4), temp: Some(0.0), ..TextConfig::default() };
    let first = c.complete_text(Some("The capital of France is"), &cfg).unwrap();
    let second = c.complete_text(Some(&format!("The capital of France is{} and the capital of Spain is", first.text)), &cfg).unwrap();
    assert!(second.metadata["reused_tokens"].as_u64().unwrap() >= 5, "{}", second.metadata);
}

#[test]
fn chat_session_keeps_history_and_cache() {
    let e = env(Limits::default());
    let s = Session::new(LlmContext::new(&e, model(SMOLLM2), None).unwrap());
    let req = SamplingRequest { max_tokens: Some(8), temperature: Some(0.0), ..SamplingRequest::default() };
    let mut g1 = Session::chat(&s, "Hi! My name is Ada.", &req).unwrap();
    let a1 = g1.collect().unwrap();
    assert!(!a1.is_empty());
    let mut g2 = Session::chat(&s, "What is my name?", &req).unwrap();
    g2.collect().unwrap();
    assert!(g2.stats().reused_tokens > 10, "{:?}", g2.stats());
    let h = s.lock().unwrap().history();
    assert_eq!(h.len(), 4);
    assert_eq!(h[1].content, a1);
    // A superseded generation fails cleanly.
    let mut old = Session::chat(&s, "One", &req).unwrap();
    let _new = Session::chat(&s, "Two", &req).unwrap();
    assert_eq!(old.next_chunk().unwrap_err().code, ErrorCode::InvalidArgument);
}

#[test]
fn load_from_bytes_checks_size_and_magic() {
    let bytes = std::fs::read(model_path(SMOLLM2)).unwrap();
    let small = GgmlBackend::new(env(Limits { max_load_bytes: 1 << 20, ..Limits::default() }));
    assert_eq!(small.load_bytes(&[&bytes]).err().unwrap().code, ErrorCode::TooLarge);
    let b = GgmlBackend::new(env(Limits::default()));
    assert_eq!(b.load_bytes(&[b"not a model"]).err().unwrap().code, ErrorCode::InvalidEncoding);
    assert_eq!(b.load_bytes(&[&bytes[..1000]]).err().unwrap().code, ErrorCode::InvalidEncoding);
    assert_eq!(b.load_bytes(&[]).err().unwrap().code, ErrorCode::InvalidArgument);
    assert!(b.load_bytes(&[&bytes]).is_ok());
}

/// WasmEdge `set_input(1)` with a `ctx-size` no context could have is
/// refused there (too-large, or invalid-argument for 0), and the previous
/// config stays in force (issue 20, finding 6).
#[test]
fn wasmedge_out_of_range_ctx_size_is_refused_at_set_input() {
    use edgewasm_nn::wasmedge::{CallError, Errno, WasmEdgeNn};
    let errno = |r: Result<(), CallError>| match r {
        Err(CallError::Code { errno, .. }) => errno,
        other => panic!("expected an error code, got {other:?}"),
    };
    let mut nn = WasmEdgeNn::new(env(Limits { default_ctx: 64, ..Limits::default() }));
    let g = nn.load_by_name(b"default", None).unwrap();
    let c = nn.init_execution_context(g).unwrap();
    nn.set_input(c, 1, 3, br#"{"n-predict": 2, "temp": 0}"#).unwrap();
    let huge = br#"{"ctx-size": 18446744073709551615, "n-predict": 50}"#;
    assert_eq!(errno(nn.set_input(c, 1, 3, huge)), Errno::TooLarge);
    assert_eq!(errno(nn.set_input(c, 1, 3, br#"{"ctx-size": 8193, "n-predict": 50}"#)), Errno::TooLarge);
    assert_eq!(errno(nn.set_input(c, 1, 3, br#"{"ctx-size": 0, "n-predict": 50}"#)), Errno::InvalidArgument);
    // A later key of bad type does not half-apply the earlier ones either.
    assert_eq!(errno(nn.set_input(c, 1, 3, br#"{"n-predict": 50, "enable-log": 1}"#)), Errno::InvalidArgument);
    // Still usable, with n-predict 2 and the default context.
    nn.set_input(c, 0, 3, b"Hello").unwrap();
    nn.compute(c).unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&nn.get_output(c, 1).unwrap()).unwrap();
    assert_eq!(meta["output_tokens"], 2, "{meta}");
    // Over-limit ctx-size in a load-time config is refused too.
    assert!(matches!(nn.load_by_name(b"default", Some(huge)), Err(CallError::Code { errno: Errno::TooLarge, .. })));
    nn.set_input(c, 1, 3, br#"{"ctx-size": 128}"#).unwrap();
}
