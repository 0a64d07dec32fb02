//! The endpoints.

use base64::Engine as _;
use edgewasm_guest::constrained::{self, Constraint};
use edgewasm_guest::llm::{Generation, Model, Session};
use edgewasm_guest::types::{ChatMessage, Error as LlmError, Sampling, StopReason};
use serde_json::{json, Value};
use wasip2::http::types::{IncomingRequest, Method, ResponseOutparam};

use crate::api::{self, ApiError, ChatRequest, CompletionRequest, EmbeddingRequest, SamplingFields};
use crate::http::{self, BodyError, EventStream, Request};

const PAGE: &str = include_str!("page.html");

pub fn handle(request: IncomingRequest, out: ResponseOutparam) {
    let req = Request::new(request);
    let result = route(&req, out);
    if let Err((e, out)) = result {
        http::respond(out, e.status, "application/json", e.to_json().to_string().as_bytes());
    }
}

/// An error before the response started, with the outparam to answer on.
type Routed = Result<(), (ApiError, ResponseOutparam)>;

fn route(req: &Request, out: ResponseOutparam) -> Routed {
    let path = req.path.trim_end_matches('/');
    match (&req.method, path) {
        (Method::Get, "") | (Method::Get, "/index.html") => {
            http::respond(out, 200, "text/html; charset=utf-8", PAGE.as_bytes());
            return Ok(());
        }
        (Method::Get, "/health") => {
            http::respond(out, 200, "application/json", br#"{"status":"ok"}"#);
            return Ok(());
        }
        _ => {}
    }
    if !path.starts_with("/v1/") {
        return Err((ApiError::invalid(format!("no such path: {}", req.path), None).status(404), out));
    }
    if let Err(e) = authorize(req) {
        return Err((e, out));
    }
    let post = matches!(req.method, Method::Post);
    match path {
        "/v1/models" if matches!(req.method, Method::Get) => {
            http::respond(out, 200, "application/json", models_json().to_string().as_bytes());
            Ok(())
        }
        p if p.starts_with("/v1/models/") && matches!(req.method, Method::Get) => {
            let id = &p["/v1/models/".len()..];
            match models_json()["data"].as_array().and_then(|d| d.iter().find(|m| m["id"] == id).cloned()) {
                Some(m) => {
                    http::respond(out, 200, "application/json", m.to_string().as_bytes());
                    Ok(())
                }
                None => Err((
                    ApiError::invalid(format!("The model `{id}` does not exist"), Some("model")).with_code("model_not_found").status(404),
                    out,
                )),
            }
        }
        "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings" if post => {
            let body = match req.body() {
                Ok(b) => b,
                Err(BodyError::TooLarge) => {
                    let e =
                        ApiError::invalid(format!("the request body is larger than {} bytes", http::MAX_BODY), None);
                    return Err((e.status(413), out));
                }
                Err(BodyError::Unreadable) => {
                    return Err((ApiError::invalid("the request body could not be read", None), out))
                }
            };
            match path {
                "/v1/chat/completions" => chat(&body, out),
                "/v1/completions" => completion(&body, out),
                _ => match embeddings(&body) {
                    Ok(v) => {
                        http::respond(out, 200, "application/json", v.to_string().as_bytes());
                        Ok(())
                    }
                    Err(e) => Err((e, out)),
                },
            }
        }
        "/v1/models" | "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings" => {
            Err((ApiError::invalid(format!("{} does not take this method", req.path), None).status(405), out))
        }
        _ => Err((ApiError::invalid(format!("no such endpoint: {}", req.path), None).status(404), out)),
    }
}

/// `--env API_KEY=...` turns on bearer-key checks.
fn authorize(req: &Request) -> Result<(), ApiError> {
    let Ok(key) = std::env::var("API_KEY") else { return Ok(()) };
    if key.is_empty() {
        return Ok(());
    }
    let given = req.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer ")).map(str::trim);
    if given == Some(key.as_str()) {
        return Ok(());
    }
    let mut e = ApiError::invalid("Incorrect API key provided (Authorization: Bearer <key>)", None)
        .with_code("invalid_api_key");
    e.status = 401;
    Err(e)
}

fn models_json() -> Value {
    let data: Vec<Value> = Model::names()
        .into_iter()
        .map(|name| json!({"id": name, "object": "model", "created": 0, "owned_by": "edgewasm"}))
        .collect();
    json!({"object": "list", "data": data})
}

/// Opens the requested model (the first preloaded one when none is named).
fn open_model(name: Option<&str>) -> Result<(Model, String), ApiError> {
    let name = match name {
        Some(n) => n.to_string(),
        None => Model::names().into_iter().next().ok_or_else(|| ApiError::server("no model is preloaded"))?,
    };
    match Model::open(&name) {
        Ok(m) => Ok((m, name)),
        Err(LlmError::NotFound(_)) => {
            Err(ApiError::invalid(format!("The model `{name}` does not exist"), Some("model"))
                .with_code("model_not_found")
                .status(404))
        }
        Err(e) => Err(llm_error(e)),
    }
}

/// An edgewasm:llm error as an OpenAI error.
fn llm_error(e: LlmError) -> ApiError {
    match e {
        LlmError::NotFound(m) => ApiError::invalid(m, Some("model")).with_code("model_not_found").status(404),
        LlmError::InvalidArgument(m) => ApiError::invalid(m, None),
        LlmError::LimitExceeded(m) => ApiError::invalid(m, None).with_code("limit_exceeded"),
        LlmError::Timeout => ApiError::server("the request exceeded the server's time limit").status(504),
        LlmError::Runtime(m) => ApiError::server(m),
    }
}

/// A random 64-bit value (ids, and seeds of unseeded requests).
fn random_u64() -> u64 {
    wasip2::random::random::get_random_u64()
}

fn now_secs() -> u64 {
    wasip2::clocks::wall_clock::now().seconds
}

/// What a generation needs, checked before anything starts.
struct Job {
    /// Kept open for the session's lifetime.
    _model: Model,
    model_name: String,
    session: Session,
    prompt: String,
    sampling: Sampling,
    constraint: Option<Constraint>,
}

/// Tokenizes `prompt`, checks it fits, and sizes a session for it.
fn prepare(
    model: Model,
    model_name: String,
    prompt: String,
    f: &SamplingFields,
    constraint: Option<Constraint>,
) -> Result<Job, ApiError> {
    f.check()?;
    let info = model.info();
    let n_prompt = model.tokenize(&prompt, true, true).len() as u32;
    let n_ctx_max = info.n_ctx_max;
    if n_prompt >= n_ctx_max {
        return Err(ApiError::invalid(
            format!(
                "This model's maximum context length is {n_ctx_max} tokens. However, your messages resulted in {n_prompt} tokens."
            ),
            Some("messages"),
        )
        .with_code("context_length_exceeded"));
    }
    let room = n_ctx_max - n_prompt;
    let max_tokens = f.max_tokens().unwrap_or(room).min(room);
    let ctx = (n_prompt + max_tokens + 1).min(n_ctx_max);
    let session = Session::create(&model, Some(ctx)).map_err(llm_error)?;
    let seed = match f.seed {
        Some(s) => s as u64,
        None => random_u64(),
    };
    let sampling = Sampling {
        max_tokens: Some(max_tokens),
        temperature: f.temperature,
        top_k: f.top_k,
        top_p: f.top_p,
        min_p: f.min_p,
        repeat_penalty: f.repeat_penalty,
        seed: Some(seed),
        stop: f.stops(),
    };
    Ok(Job { _model: model, model_name, session, prompt, sampling, constraint })
}

impl Job {
    fn start(&self) -> Result<Generation, ApiError> {
        let r = match &self.constraint {
            Some(c) => constrained::complete(&self.session, &self.prompt, &self.sampling, c),
            None => self.session.complete(&self.prompt, &self.sampling),
        };
        r.map_err(llm_error)
    }
}

/// Ends the generation, then the session, before the last bytes of the
/// answer go out: the host keeps the finished conversation's cache for the
/// next request that continues it, and a client that sends that request as
/// soon as it has the answer must find it there.
fn release(gen: Generation, job: Job) {
    drop(gen);
    drop(job);
}

fn finish_reason(g: &Generation) -> &'static str {
    match g.stop_reason() {
        Some(StopReason::MaxTokens) | Some(StopReason::ContextFull) => "length",
        _ => "stop",
    }
}

fn usage(g: &Generation) -> Value {
    let s = g.stats();
    json!({
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": s.generated_tokens,
        "total_tokens": s.prompt_tokens + s.generated_tokens,
        // Prompt tokens whose KV cache came from an earlier request (or
        // this session) instead of being computed.
        "prompt_tokens_details": {"cached_tokens": s.reused_tokens},
    })
}

fn chat(body: &[u8], out: ResponseOutparam) -> Routed {
    let (req, job, gen): (ChatRequest, _, _) = match begin(body, chat_job) {
        Ok(x) => x,
        Err(e) => return Err((e, out)),
    };
    let (id, created, model) = (format!("chatcmpl-{:016x}", random_u64()), now_secs(), job.model_name.clone());
    if !req.sampling.streaming() {
        return whole(out, gen, job, |text, finish, used| {
            json!({
                "id": id, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": null,
                             "finish_reason": finish}],
                "usage": used,
            })
        });
    }
    let with_usage = req.sampling.include_usage();
    let chunk = |text: Option<&str>, finish: Option<&str>| {
        let delta = match text {
            Some(t) => json!({"content": t}),
            None => json!({}),
        };
        let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        // As OpenAI: with include_usage, every chunk has `usage`, null
        // until the last one.
        if with_usage {
            c["usage"] = Value::Null;
        }
        c.to_string()
    };
    let usage_event = |used: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [], "usage": used})
            .to_string()
    };
    let first = {
        let mut c: Value = serde_json::from_str(&chunk(Some(""), None)).expect("our own JSON");
        c["choices"][0]["delta"]["role"] = json!("assistant");
        c.to_string()
    };
    stream(out, gen, job, Some(first), chunk, with_usage.then_some(usage_event));
    Ok(())
}

/// Parses a request, prepares its job and starts its generation.
fn begin<R: serde::de::DeserializeOwned>(
    body: &[u8],
    job: impl FnOnce(&R) -> Result<Job, ApiError>,
) -> Result<(R, Job, Generation), ApiError> {
    let req: R = api::parse(body)?;
    let job = job(&req)?;
    let gen = job.start()?;
    Ok((req, job, gen))
}

/// Answers with the whole text: `make(text, finish_reason, usage)`.
fn whole(out: ResponseOutparam, gen: Generation, job: Job, make: impl FnOnce(String, &str, Value) -> Value) -> Routed {
    let text = match gen.collect() {
        Ok(t) => t,
        Err(e) => return Err((llm_error(e), out)),
    };
    let v = make(text, finish_reason(&gen), usage(&gen));
    release(gen, job);
    http::respond(out, 200, "application/json", v.to_string().as_bytes());
    Ok(())
}

/// Streams the generation as server-sent events: `first` if any, a
/// `chunk(Some(text), None)` per piece, then `chunk(None, finish_reason)`,
/// `usage_event(usage)` when asked for, and `[DONE]`. An error after the
/// head went out goes in the stream.
fn stream(
    out: ResponseOutparam,
    gen: Generation,
    job: Job,
    first: Option<String>,
    chunk: impl Fn(Option<&str>, Option<&str>) -> String,
    usage_event: Option<impl Fn(Value) -> String>,
) {
    let mut events = EventStream::start(out);
    let mut open = first.map_or(true, |f| events.data(&f));
    while open {
        match gen.next() {
            Ok(Some(text)) => open = events.data(&chunk(Some(&text), None)),
            Ok(None) => break,
            Err(e) => {
                events.data(&llm_error(e).to_json().to_string());
                open = false;
            }
        }
    }
    let (finish, used) = (finish_reason(&gen), usage(&gen));
    release(gen, job);
    if open {
        events.data(&chunk(None, Some(finish)));
        if let Some(u) = usage_event {
            events.data(&u(used));
        }
        events.data("[DONE]");
    }
    events.finish();
}

fn chat_job(req: &ChatRequest) -> Result<Job, ApiError> {
    if req.messages.is_empty() {
        return Err(ApiError::invalid("`messages` must not be empty", Some("messages")));
    }
    req.check()?;
    let (model, name) = open_model(req.model.as_deref())?;
    let mut msgs = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        let role = if m.role == "developer" { "system".to_string() } else { m.role.clone() };
        msgs.push(ChatMessage { role, content: m.text()? });
    }
    let prompt = model.apply_chat_template(&msgs, true).map_err(llm_error)?;
    let constraint = constraint(req.response_format.as_ref(), req.grammar.as_deref())?;
    prepare(model, name, prompt, &req.sampling, constraint)
}

/// `response_format` (or llama-server's `grammar`) as a constraint.
fn constraint(format: Option<&api::ResponseFormat>, grammar: Option<&str>) -> Result<Option<Constraint>, ApiError> {
    let from_format = match format {
        None | Some(api::ResponseFormat::Text) => None,
        Some(api::ResponseFormat::JsonObject) => Some(Constraint::JsonSchema(r#"{"type":"object"}"#.to_string())),
        Some(api::ResponseFormat::JsonSchema { json_schema }) => {
            let schema = json_schema.schema.clone().unwrap_or_else(|| json!({}));
            Some(Constraint::JsonSchema(schema.to_string()))
        }
    };
    match (from_format, grammar) {
        (Some(_), Some(_)) => {
            Err(ApiError::invalid("give either response_format or grammar, not both", Some("grammar")))
        }
        (Some(c), None) => Ok(Some(c)),
        (None, Some(g)) => Ok(Some(Constraint::Grammar(g.to_string()))),
        (None, None) => Ok(None),
    }
}

fn completion(body: &[u8], out: ResponseOutparam) -> Routed {
    let (req, job, gen): (CompletionRequest, _, _) = match begin(body, completion_job) {
        Ok(x) => x,
        Err(e) => return Err((e, out)),
    };
    let (id, created, model) = (format!("cmpl-{:016x}", random_u64()), now_secs(), job.model_name.clone());
    let choice = |text: &str, finish: Option<&str>| {
        json!({"id": id, "object": "text_completion", "created": created, "model": model,
               "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": finish}]})
    };
    if !req.sampling.streaming() {
        return whole(out, gen, job, |text, finish, used| {
            let mut v = choice(&text, Some(finish));
            v["usage"] = used;
            v
        });
    }
    let usage_event = |used: Value| {
        json!({"id": id, "object": "text_completion", "created": created, "model": model, "choices": [], "usage": used})
            .to_string()
    };
    let chunk = |text: Option<&str>, finish: Option<&str>| choice(text.unwrap_or(""), finish).to_string();
    stream(out, gen, job, None, chunk, req.sampling.include_usage().then_some(usage_event));
    Ok(())
}

fn completion_job(req: &CompletionRequest) -> Result<Job, ApiError> {
    if req.echo == Some(true) {
        return Err(ApiError::invalid("echo is not supported", Some("echo")));
    }
    if req.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::invalid("suffix is not supported", Some("suffix")));
    }
    let prompt = match &req.prompt {
        api::Prompt::One(p) => p.clone(),
        api::Prompt::Many(v) if v.len() == 1 => v[0].clone(),
        api::Prompt::Many(_) => return Err(ApiError::invalid("give one prompt per request", Some("prompt"))),
    };
    if prompt.is_empty() {
        return Err(ApiError::invalid("`prompt` must not be empty", Some("prompt")));
    }
    let (model, name) = open_model(req.model.as_deref())?;
    let constraint = constraint(None, req.grammar.as_deref())?;
    prepare(model, name, prompt, &req.sampling, constraint)
}

fn embeddings(body: &[u8]) -> Result<Value, ApiError> {
    let req: EmbeddingRequest = api::parse(body)?;
    let texts = match req.input {
        api::Input::One(s) => vec![s],
        api::Input::Many(v) => v,
        api::Input::Tokens(_) => {
            return Err(ApiError::invalid(
                "`input` must be a string or a list of strings (token ids are not supported)",
                Some("input"),
            ))
        }
    };
    if texts.is_empty() {
        return Err(ApiError::invalid("`input` must not be empty", Some("input")));
    }
    if req.dimensions.is_some() {
        return Err(ApiError::invalid("dimensions is not supported", Some("dimensions")));
    }
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                format!("encoding_format must be float or base64, not {other}"),
                Some("encoding_format"),
            ))
        }
    };
    let (model, name) = open_model(req.model.as_deref())?;
    let vectors = model.embed(&texts).map_err(llm_error)?;
    let n_tokens: usize = texts.iter().map(|t| model.tokenize(t, true, false).len()).sum();
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Ok(json!({"object": "list", "data": data, "model": name,
              "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}}))
}
