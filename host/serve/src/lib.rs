//! edgewasm's HTTP front: serves one `wasi:http/proxy` app
//! ([`edgewasm_runtime::proxy::HttpApp`]) over HTTP/1.1 on hyper.
//!
//! - **Admission.** At most `max_concurrency` guests run at once; up to
//!   `max_queue` more requests wait for a slot. Past that a request gets
//!   `429 Too Many Requests` with `Retry-After` at once, without touching
//!   wasm: on a small device, queueing without bound only turns overload
//!   into timeouts for everyone.
//! - **Isolation.** Each admitted request runs in a fresh instance on a
//!   blocking thread, with the per-request limits of the app.
//! - **Access log.** One line per request when its response body ends
//!   (or the client goes away): peer, method, path, status, bytes, time.
//! - **Shutdown.** When `shutdown` resolves (SIGINT/SIGTERM in the CLI),
//!   the listener closes, idle connections close, requests in flight run
//!   to the end of their response (for at most `shutdown_grace`), and
//!   [`serve`] returns. Headers must arrive within 30 s.

mod admission;
mod logged;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use edgewasm_runtime::proxy::{HttpApp, RequestEnd};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub use admission::Admission;
use logged::{AccessLine, LoggedBody};

/// The response body type: the guest's streamed body, or a short host
/// message (429, a guest that failed before responding).
pub type Body = UnsyncBoxBody<Bytes, anyhow::Error>;

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Guests running at once.
    pub max_concurrency: usize,
    /// Requests waiting for a guest slot; more get 429.
    pub max_queue: usize,
    /// Seconds a 429 tells the client to wait (`Retry-After`).
    pub retry_after_secs: u32,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: std::time::Duration,
}

/// Longest wait for a request's headers.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What a server did, returned when it shuts down.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ServeReport {
    /// Requests that ran in a guest.
    pub served: u64,
    /// Requests refused with 429.
    pub rejected: u64,
}

#[derive(Debug, Default)]
struct Counters {
    served: AtomicU64,
    rejected: AtomicU64,
}

/// Binds `addr` (port 0 picks a free one).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))
}

/// Serves `app` on `listener` until `shutdown` resolves, then finishes
/// the requests in flight and returns. Call inside a multi-threaded tokio
/// runtime (guests run on its blocking threads).
pub async fn serve(
    listener: TcpListener,
    app: Arc<HttpApp>,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<ServeReport> {
    let admission = Arc::new(Admission::new(opts.max_concurrency, opts.max_queue));
    let counters = Arc::new(Counters::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                // Out of file descriptors and the like: the listener is
                // fine, this connection is not; keep serving.
                Err(e) => {
                    log::warn!(target: "edgewasm-serve", "accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let (app, admission, counters, opts) =
            (Arc::clone(&app), Arc::clone(&admission), Arc::clone(&counters), opts.clone());
        let service = hyper::service::service_fn(move |req| {
            let (app, admission, counters, opts) =
                (Arc::clone(&app), Arc::clone(&admission), Arc::clone(&counters), opts.clone());
            async move { Ok::<_, Infallible>(handle(req, peer, app, admission, counters, &opts).await) }
        });
        // A client that never finishes its headers must not hold a
        // connection (or shutdown) forever.
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                log::debug!(target: "edgewasm-serve", "connection from {peer}: {e}");
            }
        });
    }
    drop(listener);
    log::info!(target: "edgewasm-serve", "shutting down: finishing the requests in flight");
    let drained = async {
        graceful.shutdown().await;
        // Guests whose client went away may still be running: wait for them.
        admission.drained().await;
    };
    // A client that stopped reading (or sending) can hold its request in a
    // host call the deadline does not reach; past the grace period the
    // server stops without it.
    if tokio::time::timeout(opts.shutdown_grace, drained).await.is_err() {
        log::warn!(
            target: "edgewasm-serve",
            "{} requests still running after {:?}: stopping without them",
            admission.in_flight(),
            opts.shutdown_grace
        );
    }
    Ok(ServeReport {
        served: counters.served.load(Ordering::Relaxed),
        rejected: counters.rejected.load(Ordering::Relaxed),
    })
}

/// One request: admitted or refused, run in a guest, logged.
async fn handle(
    req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    app: Arc<HttpApp>,
    admission: Arc<Admission>,
    counters: Arc<Counters>,
    opts: &ServeOptions,
) -> Response<Body> {
    let line = AccessLine::new(peer, &req);
    let Some(ticket) = admission.admit() else {
        counters.rejected.fetch_add(1, Ordering::Relaxed);
        let mut resp = message(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "the server is busy: {} requests running and {} waiting (--max-concurrency, --max-queue); retry later",
                admission.max_concurrency(),
                admission.max_queue()
            ),
        );
        resp.headers_mut().insert(hyper::header::RETRY_AFTER, opts.retry_after_secs.into());
        return line.attach(resp);
    };
    let slot = ticket.run().await;
    counters.served.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let guest = tokio::task::spawn_blocking(move || {
        let end = app.handle(req, tx);
        drop(slot);
        end
    });
    let resp = match rx.await {
        Ok(Ok(resp)) => resp.map(|b| b.map_err(anyhow::Error::from).boxed_unsync()),
        Ok(Err(code)) => {
            message(StatusCode::INTERNAL_SERVER_ERROR, &format!("the app answered with an error: {code:?}"))
        }
        // The guest ended without a response: say why.
        Err(_) => match guest.await {
            Ok(RequestEnd::TimedOut(limit)) => message(
                StatusCode::GATEWAY_TIMEOUT,
                &format!("the app did not answer within the time limit of {limit:?} (--timeout)"),
            ),
            Ok(RequestEnd::Failed(e)) => {
                log::warn!(target: "edgewasm-serve", "{} {}: {e}", line.method(), line.path());
                message(StatusCode::INTERNAL_SERVER_ERROR, &format!("the app failed: {e}"))
            }
            Ok(RequestEnd::Done) => {
                message(StatusCode::INTERNAL_SERVER_ERROR, "the app returned without sending a response")
            }
            Err(e) => message(StatusCode::INTERNAL_SERVER_ERROR, &format!("the app's thread failed: {e}")),
        },
    };
    line.attach(resp)
}

/// A plain-text response from the host itself.
fn message(status: StatusCode, text: &str) -> Response<Body> {
    let body = Full::new(Bytes::from(format!("{text}\n"))).map_err(|e: Infallible| match e {}).boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

impl AccessLine {
    /// Wraps `resp`'s body so this line is logged when the body ends.
    fn attach(self, resp: Response<Body>) -> Response<Body> {
        let status = resp.status().as_u16();
        let length = resp.headers().get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
        resp.map(|b| LoggedBody::new(b, self.with_status(status), length).boxed_unsync())
    }
}
