//! An OpenAI-compatible API over edgewasm:llm, as a `wasi:http/proxy`
//! component: `edgewasm serve target/guests/openai-server.wasm`.
//!
//! - `GET /v1/models`
//! - `POST /v1/chat/completions` (streaming with SSE, `response_format`
//!   `json_object` / `json_schema` through grammar-constrained output)
//! - `POST /v1/completions`
//! - `POST /v1/embeddings` (`float` and `base64`)
//! - `GET /`: a chat page that streams the answer.
//!
//! With `--env API_KEY=...`, `/v1/` requests need `Authorization: Bearer
//! <key>`. Errors are OpenAI error objects with OpenAI's status codes.

mod api;
mod http;
mod routes;

use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{IncomingRequest, ResponseOutparam};

struct Server;

impl Guest for Server {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        routes::handle(request, out);
    }
}

wasip2::http::proxy::export!(Server);
