//! `edgewasm-wasi-adapter OUT`: writes wasi_snapshot_preview1.reactor.wasm
//! (from wasi-preview1-component-adapter-provider 48.0.8) to OUT.

fn main() {
    let out = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: edgewasm-wasi-adapter OUT.wasm");
        std::process::exit(2)
    });
    let bytes = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
    let tmp = format!("{out}.tmp");
    if let Err(e) = std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, &out)) {
        eprintln!("edgewasm-wasi-adapter: writing {out}: {e}");
        std::process::exit(1)
    }
    eprintln!("edgewasm-wasi-adapter: wrote {out} ({} bytes)", bytes.len());
}
