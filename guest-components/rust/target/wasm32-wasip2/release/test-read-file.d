/work/main/guest-components/rust/target/wasm32-wasip2/release/test-read-file.wasm: /work/main/guest-components/rust/test-read-file/src/main.rs
