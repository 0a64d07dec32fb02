//! Test guest: one hostile behaviour per subcommand, for
//! tests/tests/hostile.rs. Every attack the host refuses with an error
//! ends here with `refused: CODE: MESSAGE` on stderr and exit status 1
//! (WASI 0.2's `exit` carries only success or failure); an attack the host
//! stops with a trap never returns.
//!
//!   test-hostile.wasm ATTACK [ARG]
//!
//! Attacks: stack-overflow (a shadow-stack overflow); deep-recursion (wasm's
//! call stack); nn-prompt MIB; llm-complete MIB; llm-chat MIB;
//! llm-tokenize MIB; llm-detokenize MIB; nn-tensor-flood MIB; nn-load MIB;
//! nn-load-file PATH (loads it until refused); nn-token ID; nn-token64 ID;
//! token-text ID; detokenize-oob; contexts N; sessions N; kv-cap CTX;
//! use-after-drop KIND (tensor, context, graph, session, generation, model);
//! superseded; abandon-stream; drop-stream; trap-mid-stream N;
//! churn N (creates and drops graphs, tensors, models and errors N times
//! each, prints `ready`, waits for a line on stdin); hold KIND (graph,
//! tensor, model, error: holds more until stopped).

use std::process::exit;

use edgewasm_guest::llm::{Generation, Model, Session};
use edgewasm_guest::nn::{graph, inference, tensor};
use edgewasm_guest::types::Sampling;
use edgewasm_guest::{llm_error, nn_error};

fn refused(e: String) -> ! {
    eprintln!("refused: {e}");
    exit(3)
}

fn mib(arg: Option<&String>) -> usize {
    arg.map(|a| a.parse::<usize>().expect("MIB")).unwrap_or(1024) << 20
}

/// `n` bytes of ASCII text.
fn big_text(n: usize) -> String {
    let mut s = String::with_capacity(n);
    while s.len() + 6 <= n {
        s.push_str("hello ");
    }
    while s.len() < n {
        s.push('x');
    }
    println!("built a prompt of {} MiB", s.len() >> 20);
    s
}

fn greedy(n: u32) -> Sampling {
    Sampling {
        max_tokens: Some(n),
        temperature: Some(0.0),
        top_k: None,
        top_p: None,
        min_p: None,
        repeat_penalty: None,
        seed: None,
        stop: Vec::new(),
    }
}

fn model() -> Model {
    Model::open("default").unwrap_or_else(|e| refused(llm_error(&e)))
}

fn session(m: &Model, ctx: Option<u32>) -> Session {
    Session::create(m, ctx).unwrap_or_else(|e| refused(llm_error(&e)))
}

fn u8_tensor(b: &[u8]) -> tensor::Tensor {
    tensor::Tensor::new(&[b.len() as u32], tensor::TensorType::U8, b)
}

fn nn_context() -> (graph::Graph, inference::GraphExecutionContext) {
    let g = graph::load_by_name("default").unwrap_or_else(|e| refused(nn_error(&e)));
    let c = g.init_execution_context().unwrap_or_else(|e| refused(nn_error(&e)));
    (g, c)
}

/// Recursion that keeps nothing in linear memory: only wasm's own call
/// stack grows.
#[inline(never)]
#[allow(unconditional_recursion)]
fn deep(n: u64) -> u64 {
    std::hint::black_box(deep(std::hint::black_box(n + 1))).wrapping_mul(3) ^ n
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64, buf: &mut [u8; 256]) -> u64 {
    let mut local = [0u8; 256];
    local[(depth % 256) as usize] = buf[(depth % 256) as usize].wrapping_add(1);
    std::hint::black_box(&mut local);
    1 + recurse(std::hint::black_box(depth + 1), &mut local)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let attack = args.first().map(String::as_str).unwrap_or("");
    let arg = args.get(1);
    match attack {
        "stack-overflow" => {
            println!("recursing");
            let n = recurse(0, &mut [0; 256]);
            println!("returned from depth {n}");
        }
        "deep-recursion" => {
            println!("recursing");
            println!("returned from depth {}", deep(0));
        }
        "nn-prompt" => {
            let p = big_text(mib(arg));
            let (_g, ctx) = nn_context();
            let config = br#"{"n-predict": 4, "temp": 0}"#;
            let inputs = vec![("prompt".to_string(), u8_tensor(p.as_bytes())), ("config".to_string(), u8_tensor(config))];
            match ctx.compute(inputs) {
                Ok(_) => println!("computed"),
                Err(e) => refused(nn_error(&e)),
            }
        }
        "llm-complete" | "llm-chat" => {
            let p = big_text(mib(arg));
            let m = model();
            let s = session(&m, Some(256));
            let g = if attack == "llm-complete" { s.complete(&p, &greedy(4)) } else { s.chat(&p, &greedy(4)) };
            match g {
                Ok(g) => println!("generated {:?}", g.collect()),
                Err(e) => refused(llm_error(&e)),
            }
        }
        "llm-tokenize" => {
            let p = big_text(mib(arg));
            let ids = model().tokenize(&p, true, false);
            println!("{} tokens", ids.len());
        }
        "llm-detokenize" => {
            let ids = vec![1u32; mib(arg) / 4];
            let text = model().detokenize(&ids, false);
            println!("{} bytes of text", text.len());
        }
        "nn-tensor-flood" => {
            let data = vec![b'a'; mib(arg)];
            let mut held = Vec::new();
            loop {
                held.push(u8_tensor(&data));
                println!("holding {} tensors of {} MiB", held.len(), data.len() >> 20);
            }
        }
        "nn-load" => {
            let mut bytes = vec![0u8; mib(arg)];
            bytes[..4].copy_from_slice(b"GGUF");
            match graph::load(&[bytes], graph::GraphEncoding::Ggml, graph::ExecutionTarget::Cpu) {
                Ok(_) => println!("loaded"),
                Err(e) => refused(nn_error(&e)),
            }
        }
        "nn-load-file" => {
            let path = arg.expect("PATH");
            let bytes = std::fs::read(path).unwrap_or_else(|e| refused(format!("cannot read {path}: {e}")));
            let mut graphs = Vec::new();
            loop {
                match graph::load(&[bytes.clone()], graph::GraphEncoding::Ggml, graph::ExecutionTarget::Cpu) {
                    Ok(g) => {
                        graphs.push(g);
                        println!("loaded {} copies", graphs.len());
                    }
                    Err(e) => refused(nn_error(&e)),
                }
            }
        }
        "nn-load-compute" => {
            let read = |p: Option<&String>| {
                let p = p.expect("MODEL PROMPT");
                std::fs::read(p).unwrap_or_else(|e| refused(format!("cannot read {p}: {e}")))
            };
            let (bytes, prompt) = (read(arg), read(args.get(2)));
            let g = graph::load(&[bytes], graph::GraphEncoding::Ggml, graph::ExecutionTarget::Cpu)
                .unwrap_or_else(|e| refused(format!("load: {}", nn_error(&e))));
            println!("loaded");
            let ctx = g.init_execution_context().unwrap_or_else(|e| refused(format!("context: {}", nn_error(&e))));
            println!("context created");
            let config = br#"{"n-predict": 4, "temp": 0}"#;
            let inputs = vec![("prompt".to_string(), u8_tensor(&prompt)), ("config".to_string(), u8_tensor(config))];
            match ctx.compute(inputs) {
                Ok(_) => println!("computed"),
                Err(e) => refused(format!("compute: {}", nn_error(&e))),
            }
        }
        "nn-token" | "nn-token64" => {
            let id: i64 = arg.expect("ID").parse().expect("ID");
            let (_g, ctx) = nn_context();
            let t = if attack == "nn-token" {
                tensor::Tensor::new(&[1], tensor::TensorType::I32, &(id as i32).to_le_bytes())
            } else {
                tensor::Tensor::new(&[1], tensor::TensorType::I64, &id.to_le_bytes())
            };
            match ctx.compute(vec![("tokens".to_string(), t)]) {
                Ok(_) => println!("computed"),
                Err(e) => refused(nn_error(&e)),
            }
        }
        "token-text" => {
            let id: u32 = arg.expect("ID").parse().expect("ID");
            let m = model();
            println!("token-text({id}) = {:?}, is-eog = {}", m.token_text(id), m.is_eog(id));
        }
        "detokenize-oob" => {
            let m = model();
            let hello = m.tokenize("Hello", false, false);
            let mut ids = vec![u32::MAX, 49152, 1 << 31];
            ids.extend(&hello);
            ids.push(u32::MAX);
            println!("detokenize = {:?}", m.detokenize(&ids, true));
        }
        "contexts" => {
            // Create and drop many wasi:nn execution contexts and sessions;
            // slots come back on drop, so the cap is never hit.
            let n: usize = arg.expect("N").parse().expect("N");
            let g = graph::load_by_name("default").unwrap_or_else(|e| refused(nn_error(&e)));
            let m = model();
            for i in 0..n {
                let c = g.init_execution_context().unwrap_or_else(|e| refused(format!("context {i}: {}", nn_error(&e))));
                drop(c);
                let s = Session::create(&m, Some(16)).unwrap_or_else(|e| refused(format!("session {i}: {}", llm_error(&e))));
                drop(s);
            }
            println!("created and dropped {n} contexts and {n} sessions");
            // Then hold them until the count cap refuses one.
            let mut held = Vec::new();
            loop {
                match Session::create(&m, Some(16)) {
                    Ok(s) => held.push(s),
                    Err(e) => refused(format!("after {} live sessions: {}", held.len(), llm_error(&e))),
                }
            }
        }
        "kv-cap" => {
            let ctx: u32 = arg.expect("CTX").parse().expect("CTX");
            let m = model();
            let mut held = Vec::new();
            loop {
                match Session::create(&m, Some(ctx)) {
                    Ok(s) => {
                        held.push(s);
                        println!("{} sessions of {ctx} positions", held.len());
                    }
                    Err(e) => refused(format!("after {} live sessions: {}", held.len(), llm_error(&e))),
                }
            }
        }
        "use-after-drop" => use_after_drop(arg.map(String::as_str).unwrap_or("")),
        "churn" => {
            let n: u32 = arg.map(|a| a.parse().expect("N")).unwrap_or(1000);
            for _ in 0..n {
                drop(graph::load_by_name("default").unwrap_or_else(|e| refused(nn_error(&e))));
                drop(u8_tensor(b"abc"));
                drop(model());
                if graph::load_by_name("nosuch").is_ok() {
                    refused("loaded a model that does not exist".into());
                }
            }
            println!("ready");
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        }
        "hold" => hold(arg.map(String::as_str).unwrap_or("")),
        "superseded" => {
            let m = model();
            let s = session(&m, Some(128));
            let first = s.complete("One, two,", &greedy(8)).unwrap_or_else(|e| refused(llm_error(&e)));
            println!("first: {:?}", first.next());
            let second = s.complete("Red, green,", &greedy(8)).unwrap_or_else(|e| refused(llm_error(&e)));
            println!("second: {:?}", second.next());
            match first.next() {
                Ok(t) => println!("first again: {t:?}"),
                Err(e) => refused(llm_error(&e)),
            }
        }
        "abandon-stream" => {
            // Starts a long generation, reads one chunk, exits without
            // reading or dropping the rest.
            let m = model();
            let s = session(&m, Some(512));
            let g = s.complete("Count from 1 to 1000:", &greedy(400)).unwrap_or_else(|e| refused(llm_error(&e)));
            println!("first chunk {:?}", g.next());
            exit(0)
        }
        "drop-stream" => {
            // Drops unread generations, of wasi:nn and edgewasm:llm alike,
            // then a last one still works.
            let m = model();
            let s = session(&m, Some(512));
            for _ in 0..10 {
                let g = s.complete("Count from 1 to 1000:", &greedy(400)).unwrap_or_else(|e| refused(llm_error(&e)));
                drop(g);
            }
            let (_g, ctx) = nn_context();
            for _ in 0..10 {
                let ids: Vec<u8> = [1i32, 2, 3].iter().flat_map(|t| t.to_le_bytes()).collect();
                let t = tensor::Tensor::new(&[3], tensor::TensorType::I32, &ids);
                let out = ctx.compute(vec![("tokens".to_string(), t)]).unwrap_or_else(|e| refused(nn_error(&e)));
                drop(out);
            }
            let g = s.complete("The capital of France is", &greedy(4)).unwrap_or_else(|e| refused(llm_error(&e)));
            println!("last: {:?}", g.collect());
        }
        "trap-mid-stream" => {
            let n: usize = arg.expect("N").parse().expect("N");
            let m = model();
            let s = session(&m, Some(256));
            let g = s.complete("Count from 1 to 1000: 1, 2, 3,", &greedy(64)).unwrap_or_else(|e| refused(llm_error(&e)));
            for i in 0..n {
                match g.next() {
                    Ok(Some(t)) => println!("chunk {i}: {t:?}"),
                    other => refused(format!("stream ended early: {other:?}")),
                }
            }
            println!("trapping now");
            trap();
        }
        _ => {
            eprintln!("unknown attack `{attack}`");
            exit(2)
        }
    }
}

/// Holds ever more resources of `kind` until the host refuses one (exit 3)
/// or stops the guest.
fn hold(kind: &str) {
    let mut graphs = Vec::new();
    let mut tensors = Vec::new();
    let mut models = Vec::new();
    let mut errors = Vec::new();
    loop {
        let held = graphs.len() + tensors.len() + models.len() + errors.len();
        match kind {
            "graph" => match graph::load_by_name("default") {
                Ok(g) => graphs.push(g),
                Err(e) => refused(format!("after {held} live graphs: {}", nn_error(&e))),
            },
            "tensor" => tensors.push(u8_tensor(b"abc")),
            "model" => match Model::open("default") {
                Ok(m) => models.push(m),
                Err(e) => refused(format!("after {held} live models: {}", llm_error(&e))),
            },
            "error" => match graph::load_by_name("nosuch") {
                Ok(_) => refused("loaded a model that does not exist".into()),
                Err(e) => errors.push(e),
            },
            _ => {
                eprintln!("unknown resource kind `{kind}`");
                exit(2)
            }
        }
    }
}

fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort()
}

/// Calls a method on a resource handle after dropping it (wit-bindgen's
/// `from_handle` re-wraps the stale handle).
fn use_after_drop(kind: &str) {
    println!("using a dropped {kind}");
    match kind {
        "tensor" => {
            let t = u8_tensor(b"abc");
            let h = t.take_handle();
            drop(unsafe { tensor::Tensor::from_handle(h) });
            // SAFETY (of the guest): deliberately stale; the host must trap.
            let stale = unsafe { tensor::Tensor::from_handle(h) };
            println!("data {:?}", stale.data());
        }
        "context" => {
            let (_g, c) = nn_context();
            let h = c.take_handle();
            drop(unsafe { inference::GraphExecutionContext::from_handle(h) });
            let stale = unsafe { inference::GraphExecutionContext::from_handle(h) };
            println!("compute {:?}", stale.compute(vec![]).map(|_| ()).map_err(|e| nn_error(&e)));
        }
        "graph" => {
            let (g, _c) = nn_context();
            let h = g.take_handle();
            drop(unsafe { graph::Graph::from_handle(h) });
            let stale = unsafe { graph::Graph::from_handle(h) };
            println!("init {:?}", stale.init_execution_context().map(|_| ()).map_err(|e| nn_error(&e)));
        }
        "model" => {
            let m = model();
            let h = m.take_handle();
            drop(unsafe { Model::from_handle(h) });
            let stale = unsafe { Model::from_handle(h) };
            println!("info {:?}", stale.info().name);
        }
        "session" => {
            let m = model();
            let s = session(&m, Some(64));
            let h = s.take_handle();
            drop(unsafe { Session::from_handle(h) });
            let stale = unsafe { Session::from_handle(h) };
            println!("n-past {}", stale.n_past());
        }
        "generation" => {
            let m = model();
            let s = session(&m, Some(64));
            let g = s.complete("Hello", &greedy(4)).unwrap_or_else(|e| refused(llm_error(&e)));
            let h = g.take_handle();
            drop(unsafe { Generation::from_handle(h) });
            let stale = unsafe { Generation::from_handle(h) };
            println!("next {:?}", stale.next());
        }
        _ => {
            eprintln!("unknown resource kind `{kind}`");
            exit(2)
        }
    }
}
