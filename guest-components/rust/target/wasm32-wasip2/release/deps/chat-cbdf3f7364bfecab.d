/work/main/guest-components/rust/target/wasm32-wasip2/release/deps/chat-cbdf3f7364bfecab.d: chat/src/main.rs

/work/main/guest-components/rust/target/wasm32-wasip2/release/deps/chat-cbdf3f7364bfecab.wasm: chat/src/main.rs

chat/src/main.rs:
