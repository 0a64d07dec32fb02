/work/main/guest-components/rust/target/wasm32-wasip2/release/deps/test_spin-cdf5ce800dc5a6d8.d: test-spin/src/main.rs

/work/main/guest-components/rust/target/wasm32-wasip2/release/deps/test_spin-cdf5ce800dc5a6d8.wasm: test-spin/src/main.rs

test-spin/src/main.rs:
