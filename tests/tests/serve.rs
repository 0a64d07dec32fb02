//! `edgewasm serve` with the OpenAI-compatible guest
//! (guest-components/rust/openai-server) on the default model: the API's
//! answers and errors, the server's admission control, per-request limits
//! and graceful shutdown. The `openai` Python client runs against the same
//! server in `openai_client.rs`.

use std::io::Read;
use std::time::{Duration, Instant};

use edgewasm_tests::server::{open, post_json, request, Server};
use edgewasm_tests::*;
use serde_json::{json, Value};

fn openai_guest() -> String {
    guest("openai-server").to_str().unwrap().to_string()
}

fn serve(extra: &[&str]) -> Server {
    let g = openai_guest();
    let mut args: Vec<&str> = extra.to_vec();
    args.push(&g);
    Server::start(&args)
}

fn chat_body(prompt: &str, max_tokens: u32, stream: bool) -> Value {
    json!({
        "model": "default",
        "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": stream,
        "stream_options": {"include_usage": true},
    })
}

/// Reads a whole SSE response: the content deltas joined, every event.
fn read_stream(s: &mut edgewasm_tests::server::Streaming) -> (String, Vec<Value>, bool) {
    let mut text = String::new();
    let mut events = Vec::new();
    let mut done = false;
    while let Some(data) = s.next_event() {
        if data == "[DONE]" {
            done = true;
            continue;
        }
        assert!(!done, "an event after [DONE]");
        let v: Value = serde_json::from_str(&data).unwrap_or_else(|e| panic!("event {data:?}: {e}"));
        if let Some(c) = v["choices"][0]["delta"]["content"].as_str() {
            text.push_str(c);
        }
        if let Some(c) = v["choices"][0]["text"].as_str() {
            text.push_str(c);
        }
        events.push(v);
    }
    (text, events, done)
}

#[test]
fn openai_api_answers_and_errors() {
    let server = serve(&[]);
    let a = server.addr;

    // Models.
    let r = request(a, "GET", "/v1/models", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let ids: Vec<String> =
        r.json()["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, ["default"]);

    // Chat, whole and streamed: the same text at temperature 0.
    let prompt = "What is the capital of France? Answer in one sentence.";
    let r = post_json(a, "/v1/chat/completions", &chat_body(prompt, 40, false));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    let whole = v["choices"][0]["message"]["content"].as_str().unwrap().to_string();
    assert!(whole.contains("Paris"), "{whole:?}");
    let usage = &v["usage"];
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 10);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    // The same answer as the native engine with the same chat template.
    let native = run_edgewasm(
        &[
            "generate",
            "--chat",
            "--system",
            "You are a helpful assistant.",
            "--temp",
            "0",
            "--max-tokens",
            "40",
            "--prompt",
            prompt,
        ],
        None,
    );
    assert!(native.status.success());
    assert_eq!(whole, stdout(&native).trim_end_matches('\n'), "serve vs generate --chat");

    let body = chat_body(prompt, 40, true).to_string();
    let mut s = open(a, "POST", "/v1/chat/completions", &[("content-type", "application/json")], body.as_bytes());
    assert_eq!(s.status, 200);
    assert_eq!(s.headers.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.as_str()), Some("text/event-stream"));
    let (streamed, events, done) = read_stream(&mut s);
    assert!(done, "no [DONE]");
    assert_eq!(streamed, whole, "streamed vs whole at temperature 0");
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    let last = events.last().unwrap();
    assert_eq!(last["choices"].as_array().unwrap().len(), 0, "the usage chunk has no choices");
    for k in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        assert_eq!(last["usage"][k], v["usage"][k], "{k}");
    }
    // The same prompt again: all of it but the last token (which must run
    // to give fresh logits) comes from the first request's cache.
    assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(last["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap(), v["usage"]["prompt_tokens"].as_u64().unwrap() - 1);
    let finish = &events[events.len() - 2]["choices"][0]["finish_reason"];
    assert_eq!(finish, &v["choices"][0]["finish_reason"]);

    // Completions.
    let r = post_json(
        a,
        "/v1/completions",
        &json!({"model": "default", "prompt": "The capital of France is", "max_tokens": 8, "temperature": 0}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["usage"]["completion_tokens"], 8);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert!(!v["choices"][0]["text"].as_str().unwrap().is_empty());

    // Embeddings: floats and base64 carry the same vector.
    let r = post_json(a, "/v1/embeddings", &json!({"model": "default", "input": ["edge devices", "small models"]}));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let floats: Vec<f32> =
        v["data"][1]["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    assert_eq!(floats.len(), 576, "SmolLM2's width");
    let norm: f32 = floats.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "L2-normalised: {norm}");
    let r = post_json(a, "/v1/embeddings", &json!({"input": "small models", "encoding_format": "base64"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let b64 = r.json()["data"][0]["embedding"].as_str().unwrap().to_string();
    let bytes = base64_decode(&b64);
    let decoded: Vec<f32> = bytes.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(decoded, floats, "base64 and float encodings of the same text");

    // response_format json_schema: the answer is JSON of that shape.
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
                        "required": ["city", "country"], "additionalProperties": false});
    let mut body = chat_body("Name the capital of France as JSON.", 60, false);
    body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "place", "schema": schema}});
    let r = post_json(a, "/v1/chat/completions", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let content = r.json()["choices"][0]["message"]["content"].as_str().unwrap().to_string();
    let obj: Value = serde_json::from_str(&content).unwrap_or_else(|e| panic!("not JSON: {content:?} ({e})"));
    assert!(obj["city"].is_string() && obj["country"].is_string(), "{obj}");

    // Errors: OpenAI error objects with OpenAI's status codes.
    let err = |r: &edgewasm_tests::server::Response| r.json()["error"].clone();
    let r = post_json(
        a,
        "/v1/chat/completions",
        &json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(err(&r)["code"], "model_not_found");
    assert_eq!(err(&r)["param"], "model");
    let r = request(a, "POST", "/v1/chat/completions", &[("content-type", "application/json")], b"{\"messages\": [");
    assert_eq!(r.status, 400);
    assert_eq!(err(&r)["type"], "invalid_request_error");
    let r = post_json(a, "/v1/chat/completions", &json!({"messages": []}));
    assert_eq!(r.status, 400);
    let r = post_json(a, "/v1/chat/completions", &json!({"messages": [{"role": "user", "content": "hi"}], "n": 3}));
    assert_eq!(r.status, 400);
    assert_eq!(err(&r)["param"], "n");
    // Function calling is refused, never answered as plain text.
    let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    let r = post_json(a, "/v1/chat/completions", &json!({"messages": [{"role": "user", "content": "hi"}], "tools": tools}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(err(&r)["param"], "tools");
    let r = request(a, "GET", "/v1/models/default", &[], b"");
    assert_eq!((r.status, r.json()["id"].clone()), (200, json!("default")));
    assert_eq!(request(a, "GET", "/v1/models/nope", &[], b"").status, 404);
    let r = request(a, "GET", "/v1/chat/completions", &[], b"");
    assert_eq!(r.status, 405);
    let r = request(a, "GET", "/v1/nothing", &[], b"");
    assert_eq!(r.status, 404);
    assert!(err(&r)["message"].as_str().unwrap().contains("/v1/nothing"));

    // The chat page.
    let r = request(a, "GET", "/", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.text().contains("/v1/chat/completions"));

    // One access-log line per request.
    let log = server.log();
    assert!(log.contains("\"POST /v1/chat/completions\" 200"), "{log}");
    assert!(log.contains("\"GET /v1/nothing\" 404"), "{log}");
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    } as u32;
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::new();
    for chunk in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// A prompt longer than the context is 400 `context_length_exceeded`; the
/// API key, when set, is required.
#[test]
fn limits_and_api_key() {
    let server = serve(&["--max-ctx", "64", "--env", "API_KEY=sesame"]);
    let a = server.addr;
    let r = request(a, "GET", "/v1/models", &[], b"");
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "invalid_api_key");
    let r = request(a, "GET", "/v1/models", &[("authorization", "Bearer wrong")], b"");
    assert_eq!(r.status, 401);
    let auth = [("authorization", "Bearer sesame"), ("content-type", "application/json")];
    let r = request(a, "GET", "/v1/models", &auth, b"");
    assert_eq!(r.status, 200);
    // The page itself is public (it asks for the key).
    assert_eq!(request(a, "GET", "/", &[], b"").status, 200);

    let long = "Tell me about edge computing. ".repeat(20);
    let body = json!({"messages": [{"role": "user", "content": long}]}).to_string();
    let r = request(a, "POST", "/v1/chat/completions", &auth, body.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "context_length_exceeded");
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("64 tokens"));
}

/// A grammar whose text never ends: the model cannot stop, so only the
/// time limit ends the request (a sampled answer could stop first).
const ENDLESS: &str = "root ::= \"a \" root";

/// Past `--max-concurrency` + `--max-queue`, 429 with `Retry-After`; a
/// request over `--timeout` ends with 504 and the server goes on.
#[test]
fn busy_server_refuses_and_timeouts_end_requests() {
    let server = serve(&["--max-concurrency", "1", "--max-queue", "0", "--timeout", "1500ms"]);
    let a = server.addr;
    // A long generation holds the only slot (streamed, so it is running).
    let body =
        json!({"prompt": "Once upon a time", "max_tokens": 100000, "temperature": 0, "stream": true, "grammar": ENDLESS}).to_string();
    let mut long = open(a, "POST", "/v1/completions", &[("content-type", "application/json")], body.as_bytes());
    assert_eq!(long.status, 200);
    assert!(long.next_event().is_some());
    let r = request(a, "GET", "/v1/models", &[], b"");
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    // The long one ends at the time limit with an error event.
    let t0 = Instant::now();
    let mut rest = String::new();
    long.read_to_string(&mut rest).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(30));
    assert!(rest.contains("time limit"), "{rest}");
    assert!(!rest.contains("[DONE]"));
    // A whole (non-streamed) request over the limit: 504 from the guest.
    // (The long request's slot is freed just after its body ends: until
    // then a request may still see 429.)
    let t0 = Instant::now();
    let r = loop {
        let r = post_json(a, "/v1/completions", &json!({"prompt": "Once upon a time", "max_tokens": 100000, "grammar": ENDLESS}));
        if r.status != 429 || t0.elapsed() > Duration::from_secs(10) {
            break r;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(r.status, 504, "{}", r.text());
    // And the server serves on (once the slot is free again).
    let t0 = Instant::now();
    let status = loop {
        let s = request(a, "GET", "/v1/models", &[], b"").status;
        if s != 429 || t0.elapsed() > Duration::from_secs(10) {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status, 200);
    let (status, log) = server.stop(libc::SIGTERM, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert!(log.contains("refused as busy (429)"), "{log}");
}

/// SIGTERM while requests stream: every one finishes (with `[DONE]`),
/// then the server exits 0.
#[test]
fn sigterm_finishes_requests_in_flight() {
    let server = serve(&["--max-concurrency", "4"]);
    let a = server.addr;
    let mut clients = Vec::new();
    for i in 0..3 {
        let body = chat_body(&format!("Count from 1 to {}.", 10 + i), 48, true).to_string();
        let mut s = open(a, "POST", "/v1/chat/completions", &[("content-type", "application/json")], body.as_bytes());
        assert_eq!(s.status, 200);
        assert!(s.next_event().is_some(), "the stream started");
        clients.push(std::thread::spawn(move || read_stream(&mut s)));
    }
    let (status, log) = server.stop(libc::SIGTERM, Duration::from_secs(120));
    for c in clients {
        let (text, _, done) = c.join().unwrap();
        assert!(done, "a request in flight lost its end: {text:?}");
    }
    assert!(status.success(), "{status:?}\n{log}");
    assert!(log.contains("stopped: 3 requests served"), "{log}");
}

/// A command component is not an HTTP app: a clear error at start.
#[test]
fn command_component_is_refused() {
    let chat = guest("chat");
    let out = run_edgewasm(&["serve", "--addr", "127.0.0.1:0", chat.to_str().unwrap()], None);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("not an HTTP app") && err.contains("wasi:http/incoming-handler"), "{err}");
}

/// The bounded load test (scripts/load-test.py) at 1, 4 and 16 streaming
/// clients, 60 s each (`EDGEWASM_LOAD_SECONDS` shortens it): no request
/// fails (429s would be counted apart; with the default queue there are
/// none). Time to first token and throughput are printed, not judged:
/// speed is for benchmarks (`./just bench-serve`).
#[test]
fn load_test_has_no_failures() {
    let server = serve(&["--max-concurrency", "8"]);
    let secs = std::env::var("EDGEWASM_LOAD_SECONDS").unwrap_or_else(|_| "60".into());
    let out = std::process::Command::new("python3")
        .arg(repo_root().join("scripts/load-test.py"))
        .arg(server.url())
        .args(["--clients", "1,4,16", "--seconds", &secs, "--max-tokens", "48", "--json"])
        .output()
        .expect("run python3");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    let levels: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(levels.len(), 3, "one line per level");
    for l in &levels {
        assert_eq!(l["requests_failed"], 0, "{l}");
        assert!(l["requests_ok"].as_u64().unwrap() > 0, "{l}");
    }
    assert!(out.status.success());
    let (status, log) = server.stop(libc::SIGTERM, Duration::from_secs(60));
    assert!(status.success(), "{log}");
}

/// A conversation over three requests: from the second on, the prompt's
/// prefix comes from the previous request's cache (`cached_tokens`), and
/// the answers equal a server's without the prefix cache.
#[test]
fn prefix_cache_reuses_the_conversation() {
    let turns = ["What is the capital of France?", "And of Italy?", "Which of the two is larger?"];
    let run = |extra: &[&str]| {
        let server = serve(extra);
        let mut msgs = vec![json!({"role": "system", "content": "You are a helpful assistant."})];
        let mut out = Vec::new();
        for q in turns {
            msgs.push(json!({"role": "user", "content": q}));
            let r = post_json(server.addr, "/v1/chat/completions", &json!({"messages": msgs, "temperature": 0, "max_tokens": 40}));
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            let answer = v["choices"][0]["message"]["content"].as_str().unwrap().to_string();
            msgs.push(json!({"role": "assistant", "content": answer}));
            let u = &v["usage"];
            out.push((answer, u["prompt_tokens"].as_u64().unwrap(), u["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap()));
        }
        out
    };
    let reused = run(&[]);
    let fresh = run(&["--prefix-cache", "0"]);
    for (i, (r, f)) in reused.iter().zip(&fresh).enumerate() {
        assert_eq!(r.0, f.0, "turn {i}: the answer changed with the prefix cache");
        assert_eq!(f.2, 0, "turn {i}: nothing cached without the prefix cache");
    }
    assert_eq!(reused[0].2, 0);
    // Turn 2 starts with turn 1's prompt and answer.
    for (i, r) in reused.iter().enumerate().skip(1) {
        assert!(r.2 > reused[i - 1].1, "turn {i}: only {} of {} prompt tokens cached", r.2, r.1);
    }
}

/// Concurrent requests decode in shared passes (the server's count at
/// shutdown), with the answers a lone request gives.
#[test]
fn concurrent_requests_share_passes() {
    let server = serve(&["--max-concurrency", "8"]);
    let a = server.addr;
    let prompts: Vec<String> = (0..6).map(|i| format!("Count from {} to {}.", i, i + 8)).collect();
    let alone: Vec<String> = prompts
        .iter()
        .map(|p| post_json(a, "/v1/completions", &json!({"prompt": p, "max_tokens": 32, "temperature": 0})).json()["choices"][0]["text"]
            .as_str()
            .unwrap()
            .to_string())
        .collect();
    let threads: Vec<_> = prompts
        .iter()
        .cloned()
        .map(|p| {
            std::thread::spawn(move || {
                post_json(a, "/v1/completions", &json!({"prompt": p, "max_tokens": 32, "temperature": 0})).json()["choices"][0]["text"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
        })
        .collect();
    let together: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(together, alone, "batched answers differ from lone ones");
    let (status, log) = server.stop(libc::SIGTERM, Duration::from_secs(60));
    assert!(status.success());
    let line = log.lines().find(|l| l.contains("decodes in")).unwrap_or_else(|| panic!("no batching line:\n{log}"));
    let per_pass: f64 = line.split('(').nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!(per_pass > 1.2, "decodes did not share passes: {line}");
}

/// A guest cannot reach the network: its outgoing HTTP request to a
/// listening port on this host is refused (`HTTP-request-denied`) and no
/// connection arrives.
#[test]
fn outgoing_http_is_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let target = listener.local_addr().unwrap();
    let g = guest("test-http-egress");
    let server = Server::start(&[g.to_str().unwrap()]);
    let r = request(server.addr, "GET", &format!("/?{target}"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("denied: ErrorCode::HttpRequestDenied"), "{}", r.text());
    assert!(listener.accept().is_err(), "the guest reached a socket on the host");
}
