//! `wasi:http/proxy` components, as `edgewasm serve` runs them: the
//! component is compiled, linked and pre-instantiated once ([`HttpApp`]);
//! every request then gets a fresh store and instance in the same sandbox
//! as `run` (directories, environment, memory, handle and inference
//! limits), with its own deadline. Models and the thread pool are shared by
//! all requests.
//!
//! Requests run synchronously on the caller's thread (a blocking thread of
//! the server's tokio runtime): inference is CPU-bound host code, and a
//! blocking call there does not hold up other requests. The guest's
//! response head reaches the server through a oneshot channel as soon as
//! the guest sets it, while the guest goes on writing the body.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgewasm_llm::ThreadPool;
use edgewasm_nn::ModelSet;
use wasmtime::component::Component;
use wasmtime::{Engine, Trap};
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::bindings::sync::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks, WasiHttpView};

use crate::cache::{self, Loaded};
use crate::{linker, new_store, RunConfig, Sandbox, State};

/// Where the guest's response (or the error it gave instead) goes.
pub type ResponseSender = tokio::sync::oneshot::Sender<Result<hyper::Response<HyperOutgoingBody>, ErrorCode>>;

/// How often the engine's epoch ticks while serving: the resolution of the
/// per-request wasm deadline.
const EPOCH_TICK: Duration = Duration::from_millis(50);

/// Guests get no outgoing network: every `wasi:http/outgoing-handler`
/// request is refused with `HTTP-request-denied`. (The sandbox gives a
/// guest models and directories, never sockets.)
#[derive(Debug, Default)]
pub struct NoOutgoingHttp;

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
)>;

impl WasiHttpHooks for NoOutgoingHttp {
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}

/// How one request's guest ended.
#[derive(Debug)]
pub enum RequestEnd {
    /// `handle` returned.
    Done,
    /// The per-request time limit passed (in wasm, or in host inference
    /// after which the guest trapped).
    TimedOut(Duration),
    /// The guest trapped or the host failed; the operator's message.
    Failed(String),
}

/// A `wasi:http/proxy` component ready to serve requests.
pub struct HttpApp {
    engine: Engine,
    pre: ProxyPre<State>,
    cfg: RunConfig,
    models: Arc<ModelSet>,
    pool: Arc<ThreadPool>,
    ticking: Arc<AtomicBool>,
}

impl std::fmt::Debug for HttpApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpApp").field("component", &self.cfg.component).finish_non_exhaustive()
    }
}

impl HttpApp {
    /// Compiles (or loads from the cache) `cfg.component`, links it and
    /// pre-instantiates it. `cfg.timeout` is the limit of each request,
    /// `cfg.limits` and `cfg.max_memory` apply to each request's store.
    pub fn new(
        engine: &Engine,
        cfg: RunConfig,
        models: Arc<ModelSet>,
        pool: Arc<ThreadPool>,
    ) -> wasmtime::Result<HttpApp> {
        let component = match cache::load(engine, &cfg.component, cfg.cache)?.0 {
            Loaded::Component(c) => c,
            Loaded::Module(_) => wasmtime::bail!(
                "{} is a core module: `edgewasm serve` runs wasi:http/proxy components (`edgewasm run` runs core modules)",
                cfg.component.display()
            ),
        };
        let pre = pre_instantiate(engine, &component)
            .map_err(|e| wasmtime::format_err!("{}: {e:#}", cfg.component.display()))?;
        let ticking = Arc::new(AtomicBool::new(true));
        if cfg.timeout.is_some() {
            let (engine, ticking) = (engine.clone(), Arc::clone(&ticking));
            std::thread::Builder::new()
                .name("edgewasm-epoch".into())
                .spawn(move || {
                    while ticking.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| wasmtime::format_err!("spawning the epoch thread: {e}"))?;
        }
        Ok(HttpApp { engine: engine.clone(), pre, cfg, models, pool, ticking })
    }

    /// The per-request time limit.
    pub fn timeout(&self) -> Option<Duration> {
        self.cfg.timeout
    }

    /// Runs one request in a fresh instance, on this thread, until the
    /// guest's `handle` returns. The response goes to `respond` when the
    /// guest sets it; a guest that fails first drops `respond`.
    ///
    /// Call it where a tokio runtime is current (reading the request body
    /// and writing the response body are tokio I/O).
    pub fn handle(&self, req: hyper::Request<hyper::body::Incoming>, respond: ResponseSender) -> RequestEnd {
        let t0 = Instant::now();
        let result = self.run_request(req, respond, t0);
        let past_deadline = self.cfg.timeout.is_some_and(|t| t0.elapsed() >= t);
        match result {
            Ok(()) => RequestEnd::Done,
            Err(e) => match self.cfg.timeout {
                Some(limit) if past_deadline || matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) => {
                    RequestEnd::TimedOut(limit)
                }
                _ => RequestEnd::Failed(crate::clean_error(e, self.cfg.verbose).to_string()),
            },
        }
    }

    fn run_request(
        &self,
        req: hyper::Request<hyper::body::Incoming>,
        respond: ResponseSender,
        t0: Instant,
    ) -> wasmtime::Result<()> {
        let sb = Sandbox::new(&self.cfg, Arc::clone(&self.models), Arc::clone(&self.pool), t0)?;
        let mut store = new_store(&self.engine, sb);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(match self.cfg.timeout {
            // Ticks every EPOCH_TICK from some point in the last tick: at
            // least `limit`, at most one tick more.
            Some(limit) => (limit.as_nanos() / EPOCH_TICK.as_nanos()) as u64 + 1,
            None => 1 << 62,
        });
        let req = store.data_mut().http().new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(respond)?;
        let proxy = self.pre.instantiate(&mut store)?;
        proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out)
    }
}

impl Drop for HttpApp {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

/// Links `component` against WASI, wasi:nn, edgewasm:llm and wasi:http,
/// and checks that it is a proxy (exports `wasi:http/incoming-handler`).
fn pre_instantiate(engine: &Engine, component: &Component) -> wasmtime::Result<ProxyPre<State>> {
    let mut linker = linker(engine)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
    let pre = linker.instantiate_pre(component)?;
    ProxyPre::new(pre).map_err(|e| {
        wasmtime::format_err!(
            "not an HTTP app: `edgewasm serve` runs components that export wasi:http/incoming-handler (the wasi:http/proxy world); `edgewasm run` runs commands ({e})"
        )
    })
}
