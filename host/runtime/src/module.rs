//! Core wasm modules (wasm32-wasip1): WASI preview 1 from `wasmtime-wasi`
//! plus WasmEdge's `wasi_ephemeral_nn` (edgewasm-nn's `wasmedge` module),
//! in the same sandbox as components (directories, environment, memory
//! limit, epoch timeout, backend limits). This is how apps written for
//! WasmEdge's GGML plugin (LlamaEdge, `wasmedge-wasi-nn`) run unmodified.

use std::time::{Duration, Instant};

use edgewasm_nn::wasmedge::{self, WasmEdgeNn};
use wasmtime::{Engine, Linker, Module, Store, StoreLimits};
use wasmtime_wasi::p1::{self, WasiP1Ctx};

use crate::{arm_epoch, Sandbox};

/// Per-store state of a core module.
pub struct CoreState {
    wasi: WasiP1Ctx,
    nn: WasmEdgeNn,
    limits: StoreLimits,
}

impl std::fmt::Debug for CoreState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreState").finish_non_exhaustive()
    }
}

/// The linker: `wasi_snapshot_preview1` and `wasi_ephemeral_nn`.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<CoreState>> {
    let mut linker = Linker::new(engine);
    p1::add_to_linker_sync(&mut linker, |s: &mut CoreState| &mut s.wasi)?;
    wasmedge::add_to_linker(&mut linker, |s: &mut CoreState| &mut s.nn)?;
    Ok(linker)
}

/// Instantiates `module` and calls its `_start`; the exit status (a
/// `proc_exit` arrives as an `I32Exit` error, as for components).
pub(crate) fn run_module(
    engine: &Engine,
    module: &Module,
    sb: Sandbox,
    verbose: impl Fn(&str, Duration),
) -> wasmtime::Result<i32> {
    let linker = linker(engine)?;
    let mut wasi = sb.wasi;
    let deadline = sb.env.limits.deadline;
    let fuel = crate::hostcall_fuel(&sb.env.limits);
    let state = CoreState { wasi: wasi.build_p1(), nn: WasmEdgeNn::new(sb.env), limits: sb.limits };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    // WASI preview 1 copies (fd_read, fd_write) draw on the same fuel as
    // component calls: without it a module could not read a model of
    // 128 MiB or more in one call, whatever --max-load-size allows.
    store.set_hostcall_fuel(fuel);
    arm_epoch(&mut store, deadline);
    let t1 = Instant::now();
    let instance = linker.instantiate(&mut store, module)?;
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .map_err(|e| e.context("the core module has no `_start` (edgewasm runs WASI commands)"))?;
    verbose("core module", t1.elapsed());
    start.call(&mut store, ())?;
    Ok(0)
}
