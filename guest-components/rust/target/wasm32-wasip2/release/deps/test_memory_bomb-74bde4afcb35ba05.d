/work/main/guest-components/rust/target/wasm32-wasip2/release/deps/test_memory_bomb-74bde4afcb35ba05.d: test-memory-bomb/src/main.rs

/work/main/guest-components/rust/target/wasm32-wasip2/release/deps/test_memory_bomb-74bde4afcb35ba05.wasm: test-memory-bomb/src/main.rs

test-memory-bomb/src/main.rs:
