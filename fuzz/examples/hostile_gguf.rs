//! Writes one generated hostile model file (fuzz/src/hostile.rs), to
//! reproduce a finding of tests/tests/hostile_gguf.rs outside the test:
//!
//! ```sh
//! cargo run --manifest-path fuzz/Cargo.toml --example hostile_gguf -- SEED INDEX OUT.gguf
//! ```

use edgewasm_fuzz::hostile::case;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [seed, index, out] = args.as_slice() else {
        eprintln!("usage: hostile_gguf SEED INDEX OUT.gguf");
        std::process::exit(2);
    };
    let c = case(seed.parse().expect("SEED"), index.parse().expect("INDEX"));
    let bytes = c.gguf();
    std::fs::write(out, &bytes).unwrap_or_else(|e| panic!("cannot write {out}: {e}"));
    println!("{c}: {} bytes to {out}", bytes.len());
}
