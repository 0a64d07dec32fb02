//! edgewasm's component host: wasmtime engine, linker and store setup, the
//! sandbox (preopened directories, environment, memory and instance
//! limits, wall-clock timeout), WASI 0.2 + wasi:nn + edgewasm:llm, and the
//! compiled-component cache.

pub mod cache;
pub mod llm_host;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgewasm_llm::ThreadPool;
use edgewasm_nn::wit::{WasiNn, WasiNnView};
use edgewasm_nn::{GuestEnv, Limits, ModelSet};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

pub use cache::LoadKind;

/// Everything `edgewasm run` needs to know.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The component (`.wasm` or `.cwasm`).
    pub component: PathBuf,
    /// `argv[0]` and the rest as the guest sees them.
    pub args: Vec<String>,
    /// Preopened directories: (host path, guest path).
    pub dirs: Vec<(PathBuf, String)>,
    /// Environment variables for the guest.
    pub env: Vec<(String, String)>,
    /// Most linear memory bytes per memory (and in total tables/instances
    /// limits below).
    pub max_memory: usize,
    /// Wall-clock limit for the whole run (wasm and host inference).
    pub timeout: Option<Duration>,
    /// Backend limits (deadline is filled in at run time).
    pub limits: Limits,
    /// Use the compiled-component cache.
    pub cache: bool,
    /// Print phase timings to stderr.
    pub verbose: bool,
}

/// Per-store state.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    nn: WasiNn,
    env: Arc<GuestEnv>,
    limits: StoreLimits,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The engine configuration shared by `run` and `compile` (a `.cwasm` only
/// loads into an engine with the same settings).
pub fn engine() -> wasmtime::Result<Engine> {
    let mut c = Config::new();
    c.epoch_interruption(true);
    c.wasm_component_model(true);
    c.cranelift_opt_level(wasmtime::OptLevel::Speed);
    c.parallel_compilation(true);
    Engine::new(&c)
}

/// How a run ended without a host error.
#[derive(Debug)]
pub enum Outcome {
    /// The guest returned from `run` (0) or called `exit(code)`.
    Exited(i32),
    /// The wall-clock limit passed (in wasm, or in host inference, after
    /// which the guest failed); `detail` is the error that ended it.
    TimedOut { limit: Duration, detail: String },
}

/// Builds the linker: WASI 0.2, wasi:nn and edgewasm:llm.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    edgewasm_nn::wit::add_to_linker(&mut linker, |s: &mut State| WasiNnView::new(&mut s.table, &mut s.nn))?;
    llm_host::add_to_linker(&mut linker, |s: &mut State| llm_host::LlmView { table: &mut s.table, env: &s.env })?;
    Ok(linker)
}

/// Loads the models once for every store of this process.
pub fn host_models(models: ModelSet, threads: usize) -> (Arc<ModelSet>, Arc<ThreadPool>) {
    (Arc::new(models), Arc::new(ThreadPool::new(threads.max(1))))
}

/// Runs `cfg.component`'s `wasi:cli/run` in a fresh sandboxed store.
pub fn run(cfg: &RunConfig, models: Arc<ModelSet>, pool: Arc<ThreadPool>) -> wasmtime::Result<Outcome> {
    let t0 = Instant::now();
    let engine = engine()?;
    let (component, kind) = cache::load_component(&engine, &cfg.component, cfg.cache)?;
    let t_load = t0.elapsed();
    let linker = linker(&engine)?;

    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio().args(&cfg.args);
    for (k, v) in &cfg.env {
        wasi.env(k, v);
    }
    for (host, guest) in &cfg.dirs {
        wasi.preopened_dir(host, guest, FsPerms::ReadWrite)
            .map_err(|e| wasmtime::format_err!("--dir {}: {e}", host.display()))?;
    }
    let deadline = cfg.timeout.map(|t| t0 + t);
    let mut limits = cfg.limits.clone();
    limits.deadline = deadline;
    let env = GuestEnv::new(models, pool, limits);
    let store_limits = StoreLimitsBuilder::new()
        .memory_size(cfg.max_memory)
        .memories(16)
        .instances(256)
        .tables(256)
        .table_elements(1 << 20)
        .trap_on_grow_failure(true)
        .build();
    let state = State {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        nn: WasiNn::new(&env),
        env,
        limits: store_limits,
    };
    let mut store = Store::new(&engine, state);
    store.limiter(|s| &mut s.limits);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(1);
    // The epoch ticks once, at the deadline (or never).
    if let Some(timeout) = cfg.timeout {
        let engine = engine.clone();
        let remaining = timeout.saturating_sub(t0.elapsed());
        std::thread::Builder::new()
            .name("edgewasm-timeout".into())
            .spawn(move || {
                std::thread::sleep(remaining);
                engine.increment_epoch();
            })
            .map_err(|e| wasmtime::format_err!("spawning the timeout thread: {e}"))?;
    }

    let t1 = Instant::now();
    let command = wasmtime_wasi::p2::bindings::sync::Command::instantiate(&mut store, &component, &linker)?;
    let t_inst = t1.elapsed();
    if cfg.verbose {
        eprintln!(
            "[edgewasm] component {:?} in {:.1} ms, instantiated in {:.1} ms",
            kind,
            t_load.as_secs_f64() * 1e3,
            t_inst.as_secs_f64() * 1e3
        );
    }
    let t2 = Instant::now();
    let result = command.wasi_cli_run().call_run(&mut store);
    if cfg.verbose {
        eprintln!("[edgewasm] run {:.1} ms (total {:.1} ms)", t2.elapsed().as_secs_f64() * 1e3, t0.elapsed().as_secs_f64() * 1e3);
    }
    match result {
        Ok(Ok(())) => Ok(Outcome::Exited(0)),
        Ok(Err(())) => Ok(Outcome::Exited(1)),
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                return Ok(Outcome::Exited(exit.0));
            }
            if let Some(limit) = cfg.timeout {
                // Interrupted wasm, or a guest that trapped on a timeout error
                // from host inference.
                let interrupted = matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt));
                if interrupted || deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(Outcome::TimedOut { limit, detail: format!("{e:?}") });
                }
            }
            if format!("{e:?}").contains("forcing trap when growing memory") {
                return Err(e.context(format!(
                    "the guest exceeded the memory limit of {} MiB (--max-memory)",
                    cfg.max_memory >> 20
                )));
            }
            Err(e)
        }
    }
}
