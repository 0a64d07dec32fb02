//! Basic completion, modelled on the WasmEdge-WASINN examples' `basic`:
//!
//! ```sh
//! edgewasm run --dir .:. --nn-preload default:GGML:AUTO:model.gguf basic.wasm default 'Once upon a time'
//! ```
//!
//! Prints the completion to stdout and the metadata output (token counts)
//! to stderr. Options come from the environment (see `common.rs`).

#[path = "common.rs"]
mod common;

use wasmedge_wasi_nn::{ExecutionTarget, GraphBuilder, GraphEncoding};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, model_name, prompt, ..] = args.as_slice() else {
        common::fail("usage: basic.wasm MODEL_NAME PROMPT");
    };
    let options = common::options_from_env();
    let graph = common::check(
        "load_by_name",
        GraphBuilder::new(GraphEncoding::Ggml, ExecutionTarget::AUTO)
            .config(options.to_string())
            .build_from_cache(model_name),
    );
    let mut ctx = common::check("init_execution_context", graph.init_execution_context());
    common::set_options(&mut ctx, &options);
    common::set_prompt(&mut ctx, prompt);
    common::compute(&mut ctx);
    let text = common::output(&ctx, 0);
    println!("{}", String::from_utf8_lossy(&text));
    common::print_metadata(&common::output(&ctx, 1));
}
