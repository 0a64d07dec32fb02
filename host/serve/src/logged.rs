//! The access log: one line per request, written when its response body
//! has been sent (or dropped, when the client went away first).

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

/// What the access log says about one request.
#[derive(Debug)]
pub struct AccessLine {
    peer: SocketAddr,
    method: String,
    path: String,
    status: u16,
    t0: Instant,
}

impl AccessLine {
    pub fn new<B>(peer: SocketAddr, req: &hyper::Request<B>) -> AccessLine {
        AccessLine {
            peer,
            method: req.method().to_string(),
            // The path only: query strings may carry keys.
            path: req.uri().path().to_string(),
            status: 0,
            t0: Instant::now(),
        }
    }

    pub fn with_status(mut self, status: u16) -> AccessLine {
        self.status = status;
        self
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    pub fn path(&self) -> &str {
        &self.path
    }
}

/// A response body that logs its [`AccessLine`] when it ends.
#[derive(Debug)]
pub struct LoggedBody<B> {
    inner: B,
    line: AccessLine,
    bytes: u64,
    /// The response's `content-length`: hyper stops polling once it is sent.
    length: Option<u64>,
    complete: bool,
}

impl<B> LoggedBody<B> {
    pub fn new(inner: B, line: AccessLine, length: Option<u64>) -> LoggedBody<B> {
        // An empty body (HEAD, 204, or `content-length: 0`) is never polled.
        LoggedBody { inner, line, bytes: 0, length, complete: length == Some(0) }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for LoggedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                // hyper stops polling a body that says it has ended, or
                // once its declared length is sent.
                this.complete |= this.inner.is_end_stream() || this.length == Some(this.bytes);
            }
            Poll::Ready(None) => this.complete = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for LoggedBody<B> {
    fn drop(&mut self) {
        let l = &self.line;
        log::info!(
            target: "access",
            "{} \"{} {}\" {} {}B {:.1}ms{}",
            l.peer,
            l.method,
            l.path,
            l.status,
            self.bytes,
            l.t0.elapsed().as_secs_f64() * 1e3,
            if self.complete { "" } else { " (client gone before the end)" }
        );
    }
}
