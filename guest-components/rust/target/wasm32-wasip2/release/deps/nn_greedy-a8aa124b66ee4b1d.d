/work/main/guest-components/rust/target/wasm32-wasip2/release/deps/nn_greedy-a8aa124b66ee4b1d.d: nn-greedy/src/main.rs

/work/main/guest-components/rust/target/wasm32-wasip2/release/deps/nn_greedy-a8aa124b66ee4b1d.wasm: nn-greedy/src/main.rs

nn-greedy/src/main.rs:
