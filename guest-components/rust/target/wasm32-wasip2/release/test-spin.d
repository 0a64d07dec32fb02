/work/main/guest-components/rust/target/wasm32-wasip2/release/test-spin.wasm: /work/main/guest-components/rust/test-spin/src/main.rs
