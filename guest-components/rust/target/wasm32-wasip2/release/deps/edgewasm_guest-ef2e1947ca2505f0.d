/work/main/guest-components/rust/target/wasm32-wasip2/release/deps/edgewasm_guest-ef2e1947ca2505f0.d: bindings/src/lib.rs /work/main/wit/llm.wit /work/main/wit/deps/cli.wit /work/main/wit/deps/clocks.wit /work/main/wit/deps/filesystem.wit /work/main/wit/deps/io.wit /work/main/wit/deps/random.wit /work/main/wit/deps/sockets.wit /work/main/wit/deps/wasi-nn.wit

/work/main/guest-components/rust/target/wasm32-wasip2/release/deps/libedgewasm_guest-ef2e1947ca2505f0.rlib: bindings/src/lib.rs /work/main/wit/llm.wit /work/main/wit/deps/cli.wit /work/main/wit/deps/clocks.wit /work/main/wit/deps/filesystem.wit /work/main/wit/deps/io.wit /work/main/wit/deps/random.wit /work/main/wit/deps/sockets.wit /work/main/wit/deps/wasi-nn.wit

/work/main/guest-components/rust/target/wasm32-wasip2/release/deps/libedgewasm_guest-ef2e1947ca2505f0.rmeta: bindings/src/lib.rs /work/main/wit/llm.wit /work/main/wit/deps/cli.wit /work/main/wit/deps/clocks.wit /work/main/wit/deps/filesystem.wit /work/main/wit/deps/io.wit /work/main/wit/deps/random.wit /work/main/wit/deps/sockets.wit /work/main/wit/deps/wasi-nn.wit

bindings/src/lib.rs:
/work/main/wit/llm.wit:
/work/main/wit/deps/cli.wit:
/work/main/wit/deps/clocks.wit:
/work/main/wit/deps/filesystem.wit:
/work/main/wit/deps/io.wit:
/work/main/wit/deps/random.wit:
/work/main/wit/deps/sockets.wit:
/work/main/wit/deps/wasi-nn.wit:
