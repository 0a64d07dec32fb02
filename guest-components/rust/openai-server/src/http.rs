//! wasi:http plumbing: reading a request, sending a whole response, and a
//! streamed (server-sent events) response.

use std::io::Read;

use wasip2::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasip2::io::streams::OutputStream;

/// Largest request body read (a prompt of a few hundred thousand tokens);
/// larger ones get 413 before any is buffered past this.
pub const MAX_BODY: usize = 8 << 20;

/// What the routes need of a request.
pub struct Request {
    pub method: Method,
    pub path: String,
    pub authorization: Option<String>,
    inner: IncomingRequest,
}

impl Request {
    pub fn new(inner: IncomingRequest) -> Request {
        let path = inner.path_with_query().unwrap_or_else(|| "/".into());
        let path = path.split('?').next().unwrap_or("/").to_string();
        let authorization =
            inner.headers().get("authorization").into_iter().next().map(|v| String::from_utf8_lossy(&v).into_owned());
        Request { method: inner.method(), path, authorization, inner }
    }

    /// The body, or `Err(too_large)` past [`MAX_BODY`] bytes.
    pub fn body(&self) -> Result<Vec<u8>, BodyError> {
        let body = self.inner.consume().map_err(|()| BodyError::Unreadable)?;
        let stream = body.stream().map_err(|()| BodyError::Unreadable)?;
        let mut out = Vec::new();
        let mut reader = stream.take(MAX_BODY as u64 + 1);
        let read = reader.read_to_end(&mut out);
        // The stream is a child of the body: it goes first.
        drop(reader);
        drop(body);
        read.map_err(|_| BodyError::Unreadable)?;
        if out.len() > MAX_BODY {
            return Err(BodyError::TooLarge);
        }
        Ok(out)
    }
}

pub enum BodyError {
    TooLarge,
    Unreadable,
}

fn headers(list: &[(&str, &str)]) -> Fields {
    let fields = Fields::new();
    for (k, v) in list {
        // Our own header names and values are always valid.
        let _ = fields.append(k, &v.as_bytes().to_vec());
    }
    fields
}

/// Sends a whole response.
pub fn respond(out: ResponseOutparam, status: u16, content_type: &str, body: &[u8]) {
    let len = body.len().to_string();
    let resp = OutgoingResponse::new(headers(&[("content-type", content_type), ("content-length", &len)]));
    let _ = resp.set_status_code(status);
    let Ok(out_body) = resp.body() else { return };
    ResponseOutparam::set(out, Ok(resp));
    if let Ok(stream) = out_body.write() {
        let _ = write_all(&stream, body);
        drop(stream);
    }
    let _ = OutgoingBody::finish(out_body, None);
}

/// Writes `bytes` in pieces the host accepts (blocking writes take at most
/// 4096 bytes); `false` once the client is gone.
fn write_all(stream: &OutputStream, bytes: &[u8]) -> bool {
    bytes.chunks(4096).all(|c| stream.blocking_write_and_flush(c).is_ok())
}

/// A response of server-sent events, sent as they are written.
pub struct EventStream {
    stream: Option<OutputStream>,
    body: Option<OutgoingBody>,
    open: bool,
}

impl EventStream {
    /// Sends the head (200, `text/event-stream`).
    pub fn start(out: ResponseOutparam) -> EventStream {
        let resp =
            OutgoingResponse::new(headers(&[("content-type", "text/event-stream"), ("cache-control", "no-cache")]));
        let _ = resp.set_status_code(200);
        let body = resp.body().ok();
        ResponseOutparam::set(out, Ok(resp));
        let stream = body.as_ref().and_then(|b| b.write().ok());
        let open = stream.is_some();
        EventStream { stream, body, open }
    }

    /// Sends `data: <payload>`; `false` once the client has gone away.
    pub fn data(&mut self, payload: &str) -> bool {
        if let (true, Some(s)) = (self.open, &self.stream) {
            self.open = write_all(s, format!("data: {payload}\n\n").as_bytes());
        }
        self.open
    }

    pub fn finish(mut self) {
        drop(self.stream.take());
        if let Some(b) = self.body.take() {
            let _ = OutgoingBody::finish(b, None);
        }
    }
}
