//! Writes the hostile model files of tests/src/hostile_gguf.rs into a
//! directory, for measuring what the host does with them:
//! `cargo run --release -p edgewasm-tests --example write-hostile-gguf -- DIR`.

use edgewasm_tests::hostile_gguf::{load_and_init_wat, HostileLlama};

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    for (name, spec) in [
        ("huge-heads-128mib.gguf", HostileLlama::HUGE_HEADS),
        ("huge-heads-16mib.gguf", HostileLlama::HUGE_HEADS_16MIB),
        ("wide-ffn.gguf", HostileLlama::WIDE_FFN),
    ] {
        let path = std::path::Path::new(&dir).join(name);
        let bytes = spec.to_bytes();
        std::fs::write(&path, &bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        println!("{} ({} bytes)", path.display(), bytes.len());
        // A WasmEdge-style module that `load`s it from `--dir DIR::/m` and
        // creates a context (exit 20 + load error, 40 + init error).
        let wasm = wat::parse_str(load_and_init_wat(name, bytes.len())).expect("wat");
        std::fs::write(path.with_extension("wasm"), wasm).expect("write module");
    }
}
