//! Streaming completion with `compute_single` / `get_output_single` /
//! `fini_single`, as LlamaEdge streams its answers:
//!
//! ```sh
//! edgewasm run --nn-preload default:GGML:AUTO:model.gguf stream.wasm default 'Once upon a time'
//! ```
//!
//! Writes each token's text to stdout as it arrives (raw bytes: a piece may
//! end inside a UTF-8 character), then a newline; the metadata to stderr.

#[path = "common.rs"]
mod common;

use std::io::Write;

use wasmedge_wasi_nn::{BackendError, Error, ExecutionTarget, GraphBuilder, GraphEncoding};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, model_name, prompt, ..] = args.as_slice() else {
        common::fail("usage: stream.wasm MODEL_NAME PROMPT");
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
    let mut out = std::io::stdout();
    let mut pieces = 0usize;
    loop {
        match ctx.compute_single() {
            Ok(()) => {}
            Err(Error::BackendError(BackendError::EndOfSequence)) => break,
            Err(Error::BackendError(BackendError::ContextFull)) => {
                eprintln!("[warn] context full");
                break;
            }
            Err(e) => common::fail(&format!("compute_single: {e}")),
        }
        let piece = common::output_single(&ctx, 0);
        pieces += 1;
        if out.write_all(&piece).and_then(|_| out.flush()).is_err() {
            common::fail("writing to stdout");
        }
    }
    println!();
    let meta = common::output_single(&ctx, 1);
    common::check("fini_single", ctx.fini_single());
    eprintln!("pieces: {pieces}");
    common::print_metadata(&meta);
}
