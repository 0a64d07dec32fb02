//! A hostile HTTP app: `GET /?127.0.0.1:PORT` makes it send
//! `GET http://127.0.0.1:PORT/` through `wasi:http/outgoing-handler` and
//! answer with the outcome (`denied: ...`, or `sent: STATUS`). Under
//! `edgewasm serve` every outgoing request must be refused.

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingRequest, OutgoingResponse, ResponseOutparam, Scheme,
};

struct Egress;

fn attempt(authority: &str) -> String {
    let req = OutgoingRequest::new(Fields::new());
    let _ = req.set_scheme(Some(&Scheme::Http));
    let _ = req.set_authority(Some(authority));
    let _ = req.set_path_with_query(Some("/"));
    match outgoing_handler::handle(req, None) {
        Err(e) => format!("denied: {e:?}"),
        Ok(future) => {
            future.subscribe().block();
            match future.get() {
                Some(Ok(Ok(resp))) => format!("sent: {}", resp.status()),
                Some(Ok(Err(e))) => format!("denied: {e:?}"),
                other => format!("failed: {other:?}"),
            }
        }
    }
}

impl Guest for Egress {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_default();
        let authority = target.split('?').nth(1).unwrap_or("127.0.0.1:9").to_string();
        let text = attempt(&authority);
        let resp = OutgoingResponse::new(Fields::new());
        let body = resp.body().expect("body");
        ResponseOutparam::set(out, Ok(resp));
        let stream = body.write().expect("stream");
        let _ = stream.blocking_write_and_flush(text.as_bytes());
        drop(stream);
        let _ = OutgoingBody::finish(body, None);
    }
}

wasip2::http::proxy::export!(Egress);
