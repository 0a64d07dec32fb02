//! edgewasm's component host: wasmtime engine, linker and store setup, the
//! sandbox (preopened directories, environment, memory and instance
//! limits, wall-clock timeout), WASI 0.2 + wasi:nn + edgewasm:llm, and the
//! compiled-component cache. Core modules (wasm32-wasip1, WasmEdge-style
//! apps) run in the same sandbox with WASI preview 1 and WasmEdge's
//! `wasi_ephemeral_nn` ([`module`]); `wasi:http/proxy` components get one
//! fresh store per request ([`proxy`], for `edgewasm serve`).

pub mod cache;
pub mod module;
pub mod llm_host;
pub mod proxy;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgewasm_llm::ThreadPool;
use edgewasm_nn::wit::{WasiNn, WasiNnView};
use edgewasm_nn::{GuestEnv, Limits, ModelSet};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub use cache::{LoadKind, Loaded};
pub use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// Everything `edgewasm run` needs to know.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The component or core module (`.wasm` or `.cwasm`).
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
    /// Capture the guest's stdout here instead of inheriting the host's
    /// (embedding, tests).
    pub stdout: Option<MemoryOutputPipe>,
}

/// Per-store state.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    nn: WasiNn,
    env: Arc<GuestEnv>,
    limits: StoreLimits,
    http: WasiHttpCtx,
    no_outgoing: proxy::NoOutgoingHttp,
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

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.no_outgoing }
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
    llm_host::add_to_linker(&mut linker, |s: &mut State| llm_host::LlmView {
        table: &mut s.table,
        env: &s.env,
        handles: s.nn.handles_mut(),
    })?;
    Ok(linker)
}

/// Loads the models once for every store of this process.
pub fn host_models(models: ModelSet, threads: usize) -> (Arc<ModelSet>, Arc<ThreadPool>) {
    (Arc::new(models), Arc::new(ThreadPool::new(threads.max(1))))
}

/// The sandbox every guest gets, component or core module: WASI context
/// (arguments, environment, preopened directories, stdio), the wasi-nn
/// environment under the backend limits, the store limits and the deadline.
pub(crate) struct Sandbox {
    pub wasi: WasiCtxBuilder,
    pub env: Arc<GuestEnv>,
    pub limits: StoreLimits,
    pub deadline: Option<Instant>,
}

impl Sandbox {
    fn new(cfg: &RunConfig, models: Arc<ModelSet>, pool: Arc<ThreadPool>, t0: Instant) -> wasmtime::Result<Sandbox> {
        let mut wasi = WasiCtxBuilder::new();
        wasi.inherit_stdio().args(&cfg.args);
        if let Some(out) = &cfg.stdout {
            wasi.stdout(out.clone());
        }
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
        let limits = StoreLimitsBuilder::new()
            .memory_size(cfg.max_memory)
            .memories(16)
            .instances(256)
            .tables(256)
            .table_elements(1 << 20)
            .trap_on_grow_failure(true)
            .build();
        Ok(Sandbox { wasi, env, limits, deadline })
    }
}

/// Arms the epoch deadline of `store` (the epoch ticks once, at the
/// deadline, from [`start_timer`]). A store without a deadline is never
/// interrupted, even when another run on the same engine ticks the epoch.
pub(crate) fn arm_epoch<T>(store: &mut Store<T>, deadline: Option<Instant>) {
    store.epoch_deadline_trap();
    store.set_epoch_deadline(if deadline.is_some() { 1 } else { 1 << 62 });
}

/// Ticks the engine's epoch once `timeout` after `t0`.
fn start_timer(engine: &Engine, timeout: Option<Duration>, t0: Instant) -> wasmtime::Result<()> {
    if let Some(timeout) = timeout {
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
    Ok(())
}

/// Runs `cfg.component` in a fresh sandboxed store: a component's
/// `wasi:cli/run`, or a core module's `_start` (by the file's header).
pub fn run(cfg: &RunConfig, models: Arc<ModelSet>, pool: Arc<ThreadPool>) -> wasmtime::Result<Outcome> {
    run_with_engine(&engine()?, cfg, models, pool)
}

/// [`run`] on a given engine (from [`engine`]), so that many guests in one
/// process share compiled code, models and threads: one store per call,
/// callable from many threads at once. The `--timeout` timer ticks the
/// engine's epoch, so on a shared engine a run's timeout also ends the
/// other runs that have a timeout (runs without one are never
/// interrupted): give timed runs an engine each.
pub fn run_with_engine(
    engine: &Engine,
    cfg: &RunConfig,
    models: Arc<ModelSet>,
    pool: Arc<ThreadPool>,
) -> wasmtime::Result<Outcome> {
    let t0 = Instant::now();
    let engine = engine.clone();
    let (loaded, kind) = cache::load(&engine, &cfg.component, cfg.cache)?;
    let t_load = t0.elapsed();
    let sandbox = Sandbox::new(cfg, models, pool, t0)?;
    let deadline = sandbox.deadline;
    start_timer(&engine, cfg.timeout, t0)?;
    let verbose = |what: &str, t_inst: Duration| {
        if cfg.verbose {
            log::info!(
                target: "edgewasm",
                "{what} {:?} in {:.1} ms, instantiated in {:.1} ms",
                kind,
                t_load.as_secs_f64() * 1e3,
                t_inst.as_secs_f64() * 1e3
            );
        }
    };
    let t2 = Instant::now();
    let result = match loaded {
        Loaded::Component(c) => run_component(&engine, &c, sandbox, verbose),
        Loaded::Module(m) => module::run_module(&engine, &m, sandbox, verbose),
    };
    if cfg.verbose {
        log::info!(target: "edgewasm", "run {:.1} ms (total {:.1} ms)", t2.elapsed().as_secs_f64() * 1e3, t0.elapsed().as_secs_f64() * 1e3);
    }
    outcome(result, cfg, deadline)
}

/// Instantiates a component and calls its `wasi:cli/run`; the exit status.
fn run_component(
    engine: &Engine,
    component: &wasmtime::component::Component,
    sb: Sandbox,
    verbose: impl Fn(&str, Duration),
) -> wasmtime::Result<i32> {
    let linker = linker(engine)?;
    let deadline = sb.deadline;
    let mut store = new_store(engine, sb);
    arm_epoch(&mut store, deadline);
    let t1 = Instant::now();
    let command = wasmtime_wasi::p2::bindings::sync::Command::instantiate(&mut store, component, &linker)?;
    verbose("component", t1.elapsed());
    match command.wasi_cli_run().call_run(&mut store)? {
        Ok(()) => Ok(0),
        Err(()) => Ok(1),
    }
}

/// A component store in sandbox `sb`: its WASI context, wasi:nn and
/// edgewasm:llm state, memory and handle limits, and hostcall fuel (the
/// epoch deadline is the caller's: `run` ticks once, `serve` periodically).
pub(crate) fn new_store(engine: &Engine, sb: Sandbox) -> Store<State> {
    let mut wasi = sb.wasi;
    let mut table = ResourceTable::new();
    let max_handles = component_handles(&sb.env.limits, table.max_capacity());
    table.set_max_capacity(max_handles);
    let state = State {
        wasi: wasi.build(),
        table,
        nn: WasiNn::new(&sb.env),
        env: sb.env,
        limits: sb.limits,
        http: WasiHttpCtx::new(),
        no_outgoing: proxy::NoOutgoingHttp,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limits);
    store.set_hostcall_fuel(hostcall_fuel(&store.data().env.limits));
    let max_handles = component_handles(&store.data().env.limits, store.max_component_handles());
    store.set_max_component_handles(max_handles);
    store
}

/// Most bytes a guest may copy to the host in one call: wasmtime's default
/// (128 MiB), raised to the largest `load` and prompt the operator allows
/// (the default would refuse a 241 MiB model under a 512 MiB
/// `--max-load-size`), plus room for the call's other arguments. Below it,
/// the backend's own checks refuse with a specific message.
pub fn hostcall_fuel(limits: &Limits) -> usize {
    limits.max_load_bytes.max(limits.max_prompt_bytes).max(128 << 20).saturating_add(1 << 20)
}

/// Room for the WASI resources and wasi:nn errors a guest holds next to
/// its `--max-handles` wasi:nn and edgewasm:llm resources.
const OTHER_HANDLES: usize = 65_536;

/// A wasmtime handle limit (`default`: the store's 100 000 live component
/// handles, or the host table's 1 000 000 entries), raised if needed so
/// that `--max-handles`, checked by our host functions with an error the
/// guest can handle, is reached before wasmtime's trap. Both wasmtime
/// limits count live handles (freed slots are reused), so they already
/// bound what churn costs; ours is the lower, per-kind one.
fn component_handles(limits: &Limits, default: usize) -> usize {
    default.max(limits.max_handles.saturating_add(OTHER_HANDLES))
}

/// The operator's view of a guest failure: the cause (trap or host error)
/// first, the wasm backtrace only with `--verbose`.
fn clean_error(e: wasmtime::Error, verbose: bool) -> wasmtime::Error {
    let root = e.root_cause().to_string();
    let what = match e.downcast_ref::<Trap>() {
        Some(Trap::MemoryOutOfBounds) => {
            format!("the guest trapped: {root} (a stack overflow in a Rust or C guest ends this way too: its stack lives in linear memory)")
        }
        Some(_) => format!("the guest trapped: {root}"),
        None if root.contains("fuel allocated for hostcalls") => format!(
            "the guest was stopped: {root} (one call may pass the host at most the larger of --max-load-size and --max-prompt-size)"
        ),
        None if root.contains("cannot allocate another handle") || root.contains("resource table has no free keys") => {
            format!("the guest was stopped: {root} (it holds too many resource handles)")
        }
        None if root.starts_with("unknown handle index") => {
            format!("the guest was stopped: {root} (it used a resource handle it had dropped, or never had)")
        }
        None => format!("the guest was stopped: {root}"),
    };
    match e.downcast_ref::<wasmtime::WasmBacktrace>() {
        Some(bt) if verbose => wasmtime::format_err!("{what}\n{bt}"),
        _ => wasmtime::format_err!("{what}"),
    }
}

/// How a guest's result ends the run: its exit status, a timeout, or an
/// error (with the memory limit named when it was the cause).
fn outcome(result: wasmtime::Result<i32>, cfg: &RunConfig, deadline: Option<Instant>) -> wasmtime::Result<Outcome> {
    // A guest that failed after the deadline was ended by it: it got the
    // timeout error from a host call (tokenizing, prefill) and exited on it.
    let past_deadline = deadline.is_some_and(|d| Instant::now() >= d);
    let exited = |code: i32| match cfg.timeout {
        Some(limit) if code != 0 && past_deadline => {
            Outcome::TimedOut { limit, detail: format!("the guest exited with status {code} after the time limit") }
        }
        _ => Outcome::Exited(code),
    };
    match result {
        Ok(code) => Ok(exited(code)),
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                return Ok(exited(exit.0));
            }
            if let Some(limit) = cfg.timeout {
                // Interrupted wasm, or a guest that trapped on a timeout error
                // from host inference.
                let interrupted = matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt));
                if interrupted || past_deadline {
                    return Ok(Outcome::TimedOut { limit, detail: format!("{e:?}") });
                }
            }
            if format!("{e:?}").contains("forcing trap when growing memory") {
                return Err(wasmtime::format_err!(
                    "the guest exceeded the memory limit of {} MiB (--max-memory)",
                    cfg.max_memory >> 20
                ));
            }
            if e.downcast_ref::<wasmtime::WasmBacktrace>().is_some() || e.downcast_ref::<Trap>().is_some() {
                return Err(clean_error(e, cfg.verbose));
            }
            Err(e)
        }
    }
}
