/work/main/guest-components/rust/target/wasm32-wasip2/release/deps/test_read_file-df454db3c12536b0.d: test-read-file/src/main.rs

/work/main/guest-components/rust/target/wasm32-wasip2/release/deps/test_read_file-df454db3c12536b0.wasm: test-read-file/src/main.rs

test-read-file/src/main.rs:
