/work/main/guest-components/rust/target/wasm32-wasip2/release/test-memory-bomb.wasm: /work/main/guest-components/rust/test-memory-bomb/src/main.rs
