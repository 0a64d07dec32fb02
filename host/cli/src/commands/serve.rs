//! `edgewasm serve`: run a `wasi:http/proxy` component as an HTTP service,
//! one fresh sandboxed instance per request, sharing the preloaded models.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Parser;
use edgewasm_runtime::proxy::HttpApp;
use edgewasm_serve::ServeOptions;

use super::args::positive;
use super::sandbox::SandboxArgs;

/// Serve a wasi:http component (an OpenAI-compatible API, a web app) over
/// HTTP: each request runs in a fresh sandboxed instance with the limits
/// below (`--timeout` and the memory limits are per request).
#[derive(Parser, Debug)]
#[command(mut_arg("threads", |a| a.help("Inference threads, shared by all requests")))]
pub struct ServeCommand {
    /// Address to listen on; port 0 picks a free port (the address is
    /// printed on stderr: `listening on http://ADDR`).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Requests running in a guest at once.
    #[arg(long, value_name = "N", value_parser = positive, default_value_t = 8)]
    max_concurrency: usize,
    /// Requests waiting for a free guest; more are refused with 429 and
    /// `Retry-After`.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_queue: usize,
    /// Decode each request alone instead of batching the decodes of
    /// concurrent requests into shared forward passes (continuous batching;
    /// the answers are the same bits either way).
    #[arg(long)]
    no_batching: bool,
    /// Memory for the KV caches of finished requests, kept so that a later
    /// request starting with the same tokens (the next turn of a
    /// conversation, a shared system prompt) skips computing them; the
    /// least recently used go first. 0 turns it off.
    #[arg(long, value_name = "SIZE", default_value = "256MiB")]
    prefix_cache: String,
    /// Seconds SIGINT/SIGTERM waits for requests in flight before the
    /// server stops without them.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    shutdown_grace: u64,
    #[command(flatten)]
    sandbox: SandboxArgs,
    /// The component (.wasm, compiled and cached, or .cwasm): it must
    /// export wasi:http/incoming-handler.
    #[arg(value_name = "APP.wasm")]
    component: PathBuf,
}

impl ServeCommand {
    pub fn execute(self) -> Result<()> {
        // A client that disconnects must never end the server: writes to
        // its socket fail with EPIPE instead.
        crate::set_sigpipe(false);
        let name =
            self.component.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "app.wasm".into());
        let prefix_cache = super::run::parse_size(&self.prefix_cache).context("--prefix-cache")?;
        let (models, pool) = self.sandbox.load_models(!self.no_batching, prefix_cache)?;
        let cfg = self.sandbox.run_config(self.component.clone(), vec![name])?;
        let engine = edgewasm_runtime::engine().map_err(anyhow::Error::from)?;
        let app = HttpApp::new(&engine, cfg, Arc::clone(&models), pool).map_err(anyhow::Error::from)?;
        let shutdown_grace = std::time::Duration::from_secs(self.shutdown_grace);
        let opts = ServeOptions {
            max_concurrency: self.max_concurrency,
            max_queue: self.max_queue,
            retry_after_secs: 1,
            shutdown_grace,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("edgewasm-http")
            .enable_all()
            .build()
            .context("starting the HTTP runtime")?;
        let report = runtime.block_on(async {
            let listener = edgewasm_serve::bind(self.addr).await?;
            let addr = listener.local_addr().context("reading the bound address")?;
            eprintln!("[edgewasm] listening on http://{addr} ({}; Ctrl-C stops)", self.component.display());
            edgewasm_serve::serve(listener, Arc::new(app), opts, shutdown_signal()).await
        })?;
        // Requests cut at the grace period may leave threads blocked in a
        // host call: do not wait for them.
        runtime.shutdown_timeout(std::time::Duration::from_secs(1));
        eprintln!("[edgewasm] stopped: {} requests served, {} refused as busy (429)", report.served, report.rejected);
        for (name, m) in models.iter() {
            if let Some(b) = models.batcher_for(m) {
                let (passes, rows) = b.counts();
                if passes > 0 {
                    eprintln!("[edgewasm] model {name}: {rows} decodes in {passes} passes ({:.1} per pass)", rows as f64 / passes as f64);
                }
            }
        }
        Ok(())
    }
}

/// Resolves at the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                eprintln!("[edgewasm] warning: no SIGTERM handler ({e}); Ctrl-C still stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
