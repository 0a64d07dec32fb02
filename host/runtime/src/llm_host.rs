//! Host side of `edgewasm:llm`: models, sessions and streaming generations
//! as component resources over `edgewasm_nn::engine`.

use std::sync::Arc;

use edgewasm_llm::generate::StopReason;
use edgewasm_llm::Model;
use edgewasm_nn::config::Message;
use edgewasm_nn::engine::{GrammarRequest, GuestEnv, LlmContext, SamplingRequest, Session, SharedSession, Stream};
use edgewasm_nn::handles::HandleBudget;
use edgewasm_nn::{ErrorCode, NnError};
use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime::Result;

mod generated {
    wasmtime::component::bindgen!({
        world: "edgewasm:llm/host-llm",
        path: "../../wit",
        with: {
            "edgewasm:llm/llm.model": super::ModelHandle,
            "edgewasm:llm/llm.session": super::SessionHandle,
            "edgewasm:llm/llm.generation": edgewasm_nn::engine::Stream,
        },
        imports: { default: trappable },
    });
}

use generated::edgewasm::llm::{constrained, llm, types};

/// A guest's handle on a preloaded model.
#[derive(Debug)]
pub struct ModelHandle {
    name: String,
    model: Arc<Model>,
}

/// A guest's chat session.
#[derive(Debug)]
pub struct SessionHandle(SharedSession);

/// What the edgewasm:llm host functions borrow from the store.
pub struct LlmView<'a> {
    pub table: &'a mut ResourceTable,
    pub env: &'a Arc<GuestEnv>,
    /// Live resources, counted with wasi:nn's against `--max-handles`.
    pub handles: &'a mut HandleBudget,
}

impl std::fmt::Debug for LlmView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmView").finish_non_exhaustive()
    }
}

struct HasLlm;

impl HasData for HasLlm {
    type Data<'a> = LlmView<'a>;
}

/// Adds edgewasm:llm to `linker`.
pub fn add_to_linker<T: 'static>(l: &mut wasmtime::component::Linker<T>, f: fn(&mut T) -> LlmView<'_>) -> Result<()> {
    llm::add_to_linker::<_, HasLlm>(l, f)?;
    types::add_to_linker::<_, HasLlm>(l, f)?;
    constrained::add_to_linker::<_, HasLlm>(l, f)?;
    Ok(())
}

fn to_wit(e: NnError) -> types::Error {
    if std::env::var_os("EDGEWASM_LOG").is_some() {
        log::warn!(target: "edgewasm-llm", "{e}");
    }
    match e.code {
        ErrorCode::NotFound => types::Error::NotFound(e.message),
        ErrorCode::InvalidArgument | ErrorCode::InvalidEncoding => types::Error::InvalidArgument(e.message),
        ErrorCode::TooLarge => types::Error::LimitExceeded(e.message),
        ErrorCode::Timeout => types::Error::Timeout,
        _ => types::Error::Runtime(e.message),
    }
}

/// A limit breach in a function without an error result: ends the guest.
fn trap(e: NnError) -> wasmtime::Error {
    wasmtime::format_err!("{e}")
}

fn sampling(s: types::Sampling) -> SamplingRequest {
    SamplingRequest {
        max_tokens: s.max_tokens.map(|n| n as usize),
        temperature: s.temperature,
        top_k: s.top_k.map(|n| n as usize),
        top_p: s.top_p,
        min_p: s.min_p,
        repeat_penalty: s.repeat_penalty,
        seed: s.seed,
        stop: s.stop,
        grammar: None,
    }
}

/// Sampling with a constraint; a schema that is not JSON is the guest's
/// invalid argument.
fn constrained_sampling(s: types::Sampling, c: constrained::Constraint) -> Result<SamplingRequest, NnError> {
    let grammar = match c {
        constrained::Constraint::Grammar(g) => GrammarRequest::Gbnf(g),
        constrained::Constraint::JsonSchema(text) => GrammarRequest::JsonSchema(
            serde_json::from_str(&text).map_err(|e| NnError::invalid(format!("json-schema is not JSON: {e}")))?,
        ),
    };
    Ok(SamplingRequest { grammar: Some(grammar), ..sampling(s) })
}

fn stop_reason(r: StopReason) -> types::StopReason {
    match r {
        StopReason::EndOfGeneration => types::StopReason::Eog,
        StopReason::MaxTokens => types::StopReason::MaxTokens,
        StopReason::StopString => types::StopReason::StopString,
        StopReason::ContextFull => types::StopReason::ContextFull,
    }
}

impl LlmView<'_> {
    /// Pushes a new resource if the guest stays within `--max-handles`.
    fn push<T: Send + 'static>(&mut self, value: T, what: &str) -> Result<Result<Resource<T>, types::Error>> {
        if let Err(e) = self.handles.acquire(1, what) {
            return Ok(Err(to_wit(e)));
        }
        Ok(Ok(self.table.push(value)?))
    }

    /// Starts a generation on session `s` with `start`, refused before any
    /// work when the guest is at its handle limit.
    fn start_generation(
        &mut self,
        s: &Resource<SessionHandle>,
        what: &str,
        start: impl FnOnce(&SharedSession) -> Result<Stream, NnError>,
    ) -> Result<Result<Resource<Stream>, types::Error>> {
        let session = Arc::clone(&self.table.get(s)?.0);
        if let Err(e) = self.handles.check(1, what) {
            return Ok(Err(to_wit(e)));
        }
        match start(&session) {
            Ok(stream) => self.push(stream, what),
            Err(e) => Ok(Err(to_wit(e))),
        }
    }

    /// Removes a resource the guest dropped, and its count.
    fn delete<T: 'static>(&mut self, r: Resource<T>) -> Result<()> {
        self.table.delete(r)?;
        self.handles.release();
        Ok(())
    }
}

impl types::Host for LlmView<'_> {}
impl llm::Host for LlmView<'_> {}

impl llm::HostModel for LlmView<'_> {
    fn open(&mut self, name: String) -> Result<Result<Resource<ModelHandle>, types::Error>> {
        match self.env.models.get(&name) {
            Ok(m) => {
                let h = ModelHandle { name, model: Arc::clone(m) };
                self.push(h, "edgewasm:llm model.open")
            }
            Err(e) => Ok(Err(to_wit(e))),
        }
    }

    fn names(&mut self) -> Result<Vec<String>> {
        Ok(self.env.models.names().map(str::to_string).collect())
    }

    fn info(&mut self, m: Resource<ModelHandle>) -> Result<types::ModelInfo> {
        let h = self.table.get(&m)?;
        let c = h.model.config();
        let tok = h.model.tokenizer();
        let cap = self.env.limits.max_ctx.min(c.n_ctx_train.max(1));
        Ok(types::ModelInfo {
            name: h.name.clone(),
            display_name: c.name.clone(),
            arch: c.arch.clone(),
            n_vocab: c.n_vocab as u32,
            n_ctx_train: c.n_ctx_train as u32,
            n_ctx_max: cap as u32,
            bos: tok.bos(),
            eos: tok.eos(),
            has_chat_template: h.model.chat_template_source().is_some(),
        })
    }

    fn tokenize(&mut self, m: Resource<ModelHandle>, text: String, add_special: bool, parse_special: bool) -> Result<Vec<u32>> {
        // No error result: a text over the prompt size limit traps, before
        // any tokenizer work, and so does tokenizing past the deadline (the
        // run then ends as timed out).
        let limits = &self.env.limits;
        limits.check_prompt_bytes("edgewasm:llm model.tokenize: the text", text.len()).map_err(trap)?;
        let h = self.table.get(&m)?;
        let past_deadline = || limits.check_deadline().is_err();
        h.model.tokenizer().encode_checked(&text, add_special, parse_special, &past_deadline).map_err(|_| trap(NnError::timeout()))
    }

    fn detokenize(&mut self, m: Resource<ModelHandle>, tokens: Vec<u32>, render_special: bool) -> Result<String> {
        // As many ids as the prompt limit has bytes (4 per id); over it, a trap.
        self.env
            .limits
            .check_prompt_bytes("edgewasm:llm model.detokenize: the token list", tokens.len().saturating_mul(4))
            .map_err(trap)?;
        let h = self.table.get(&m)?;
        let n = h.model.tokenizer().vocab_size() as u32;
        let valid: Vec<u32> = tokens.into_iter().filter(|&t| t < n).collect();
        Ok(h.model.tokenizer().decode(&valid, render_special))
    }

    fn token_text(&mut self, m: Resource<ModelHandle>, token: u32) -> Result<Option<String>> {
        let h = self.table.get(&m)?;
        Ok(h.model.tokenizer().token_text(token).map(str::to_string))
    }

    fn is_eog(&mut self, m: Resource<ModelHandle>, token: u32) -> Result<bool> {
        let h = self.table.get(&m)?;
        let tok = h.model.tokenizer();
        Ok((token as usize) < tok.vocab_size() && tok.is_eog(token))
    }

    fn apply_chat_template(
        &mut self,
        m: Resource<ModelHandle>,
        messages: Vec<types::ChatMessage>,
        add_generation_prompt: bool,
    ) -> Result<Result<String, types::Error>> {
        let bytes = messages.iter().map(|m| m.role.len() + m.content.len()).fold(0usize, usize::saturating_add);
        if let Err(e) = self.env.limits.check_prompt_bytes("the chat messages", bytes) {
            return Ok(Err(to_wit(e)));
        }
        let h = self.table.get(&m)?;
        let tmpl = match h.model.chat_template() {
            Ok(t) => t,
            Err(e) => return Ok(Err(to_wit(e.into()))),
        };
        let msgs: Vec<edgewasm_llm::chat::ChatMessage> = messages
            .into_iter()
            .map(|m| edgewasm_llm::chat::ChatMessage { role: m.role, content: m.content })
            .collect();
        Ok(tmpl.render(&msgs, add_generation_prompt).map_err(|e| to_wit(NnError::invalid(format!("chat template: {e}")))))
    }

    fn embed(&mut self, m: Resource<ModelHandle>, texts: Vec<String>) -> Result<Result<Vec<Vec<f32>>, types::Error>> {
        let model = Arc::clone(&self.table.get(&m)?.model);
        Ok(edgewasm_nn::embedding::embed(self.env, &model, &texts, None).map_err(to_wit))
    }

    fn drop(&mut self, m: Resource<ModelHandle>) -> Result<()> {
        self.delete(m)
    }
}

impl llm::HostSession for LlmView<'_> {
    fn create(&mut self, m: Resource<ModelHandle>, ctx_size: Option<u32>) -> Result<Result<Resource<SessionHandle>, types::Error>> {
        let model = Arc::clone(&self.table.get(&m)?.model);
        // Refused before the KV cache is allocated; counted by `push`.
        if let Err(e) = self.handles.check(1, "edgewasm:llm session.create") {
            return Ok(Err(to_wit(e)));
        }
        match LlmContext::new(self.env, model, ctx_size.map(|n| n as usize)) {
            Ok(ctx) => self.push(SessionHandle(Session::new(ctx)), "edgewasm:llm session.create"),
            Err(e) => Ok(Err(to_wit(e))),
        }
    }

    fn complete(
        &mut self,
        s: Resource<SessionHandle>,
        prompt: String,
        options: types::Sampling,
    ) -> Result<Result<Resource<Stream>, types::Error>> {
        self.start_generation(&s, "edgewasm:llm session.complete", |session| Session::complete(session, &prompt, &sampling(options)))
    }

    fn chat(
        &mut self,
        s: Resource<SessionHandle>,
        content: String,
        options: types::Sampling,
    ) -> Result<Result<Resource<Stream>, types::Error>> {
        self.start_generation(&s, "edgewasm:llm session.chat", |session| Session::chat(session, &content, &sampling(options)))
    }

    fn set_system(&mut self, s: Resource<SessionHandle>, content: Option<String>) -> Result<()> {
        let h = self.table.get(&s)?;
        h.0.lock().unwrap_or_else(|e| e.into_inner()).set_system(content);
        Ok(())
    }

    fn history(&mut self, s: Resource<SessionHandle>) -> Result<Vec<types::ChatMessage>> {
        let h = self.table.get(&s)?;
        let hist: Vec<Message> = h.0.lock().unwrap_or_else(|e| e.into_inner()).history();
        Ok(hist.into_iter().map(|m| types::ChatMessage { role: m.role, content: m.content }).collect())
    }

    fn reset(&mut self, s: Resource<SessionHandle>) -> Result<()> {
        let h = self.table.get(&s)?;
        h.0.lock().unwrap_or_else(|e| e.into_inner()).reset();
        Ok(())
    }

    fn n_past(&mut self, s: Resource<SessionHandle>) -> Result<u32> {
        let h = self.table.get(&s)?;
        Ok(h.0.lock().unwrap_or_else(|e| e.into_inner()).n_past() as u32)
    }

    fn n_ctx(&mut self, s: Resource<SessionHandle>) -> Result<u32> {
        let h = self.table.get(&s)?;
        Ok(h.0.lock().unwrap_or_else(|e| e.into_inner()).n_ctx() as u32)
    }

    fn drop(&mut self, s: Resource<SessionHandle>) -> Result<()> {
        let session = self.table.delete(s)?;
        self.handles.release();
        Session::release(session.0);
        Ok(())
    }
}

impl constrained::Host for LlmView<'_> {
    fn complete(
        &mut self,
        s: Resource<SessionHandle>,
        prompt: String,
        options: types::Sampling,
        constraint: constrained::Constraint,
    ) -> Result<Result<Resource<Stream>, types::Error>> {
        self.start_generation(&s, "edgewasm:llm constrained.complete", |session| {
            Session::complete(session, &prompt, &constrained_sampling(options, constraint)?)
        })
    }

    fn chat(
        &mut self,
        s: Resource<SessionHandle>,
        content: String,
        options: types::Sampling,
        constraint: constrained::Constraint,
    ) -> Result<Result<Resource<Stream>, types::Error>> {
        self.start_generation(&s, "edgewasm:llm constrained.chat", |session| {
            Session::chat(session, &content, &constrained_sampling(options, constraint)?)
        })
    }
}

impl llm::HostGeneration for LlmView<'_> {
    fn next(&mut self, g: Resource<Stream>) -> Result<Result<Option<String>, types::Error>> {
        let stream = self.table.get_mut(&g)?;
        Ok(stream.next_chunk().map_err(to_wit))
    }

    fn collect(&mut self, g: Resource<Stream>) -> Result<Result<String, types::Error>> {
        let stream = self.table.get_mut(&g)?;
        Ok(stream.collect().map_err(to_wit))
    }

    fn stop_reason(&mut self, g: Resource<Stream>) -> Result<Option<types::StopReason>> {
        Ok(self.table.get(&g)?.stop_reason().map(stop_reason))
    }

    fn stats(&mut self, g: Resource<Stream>) -> Result<types::Stats> {
        let s = self.table.get(&g)?.stats().clone();
        Ok(types::Stats {
            prompt_tokens: s.prompt_tokens as u32,
            reused_tokens: s.reused_tokens as u32,
            generated_tokens: s.generated_tokens as u32,
            prompt_ms: s.prompt_time.as_secs_f64() * 1e3,
            generate_ms: s.generate_time.as_secs_f64() * 1e3,
        })
    }

    fn drop(&mut self, g: Resource<Stream>) -> Result<()> {
        let stream = self.table.delete(g)?;
        self.handles.release();
        Session::release(stream.into_session());
        Ok(())
    }
}

#[allow(dead_code)]
fn _assert_send(_: &SessionHandle) {}
