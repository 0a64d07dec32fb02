//! A ChatML chat, the way LlamaEdge's chat apps build prompts: the guest
//! renders the whole conversation in ChatML itself and sends it as the
//! prompt each turn (so each prompt extends the previous one).
//!
//! ```sh
//! edgewasm run --nn-preload default:GGML:AUTO:model.gguf chat.wasm default 'Hi!' 'And now in French?'
//! ```
//!
//! One answer per user message on stdout (one line each), the metadata of
//! each turn on stderr. Env: `system` (the system prompt), `fresh_context=1`
//! (a new execution context per turn, as a baseline), plus the options of
//! `common.rs`.

#[path = "common.rs"]
mod common;

use wasmedge_wasi_nn::{ExecutionTarget, GraphBuilder, GraphEncoding};

/// Renders `system` and the `turns` (user, assistant) in ChatML, ending with
/// an open assistant turn for `user`.
fn chatml(system: &str, turns: &[(String, String)], user: &str) -> String {
    let mut p = format!("<|im_start|>system\n{system}<|im_end|>\n");
    for (u, a) in turns {
        p.push_str(&format!("<|im_start|>user\n{u}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>\n"));
    }
    p.push_str(&format!("<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"));
    p
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, model_name, messages @ ..] = args.as_slice() else {
        common::fail("usage: chat.wasm MODEL_NAME USER_MESSAGE...");
    };
    if messages.is_empty() {
        common::fail("usage: chat.wasm MODEL_NAME USER_MESSAGE...");
    }
    let system = std::env::var("system").unwrap_or_else(|_| "You are a helpful assistant.".to_string());
    let fresh = std::env::var("fresh_context").is_ok_and(|v| v == "1");
    let options = common::options_from_env();
    let graph = common::check(
        "load_by_name",
        GraphBuilder::new(GraphEncoding::Ggml, ExecutionTarget::AUTO)
            .config(options.to_string())
            .build_from_cache(model_name),
    );
    let mut ctx = common::check("init_execution_context", graph.init_execution_context());
    common::set_options(&mut ctx, &options);
    let mut turns: Vec<(String, String)> = Vec::new();
    for user in messages {
        if fresh {
            ctx = common::check("init_execution_context", graph.init_execution_context());
            common::set_options(&mut ctx, &options);
        }
        common::set_prompt(&mut ctx, &chatml(&system, &turns, user));
        common::compute(&mut ctx);
        let answer = String::from_utf8_lossy(&common::output(&ctx, 0)).into_owned();
        println!("{answer}");
        common::print_metadata(&common::output(&ctx, 1));
        turns.push((user.clone(), answer.trim().to_string()));
    }
}
