//! Engine logic behind both guest interfaces (wasi:nn and edgewasm:llm):
//! contexts under limits, text mode, token mode, chat sessions and
//! streaming generations. No wasmtime types here.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use edgewasm_gguf::GgufFile;
use edgewasm_grammar::Grammar;
use edgewasm_llm::chat::ChatMessage;
use edgewasm_llm::constrain::GrammarSource;
use edgewasm_llm::generate::{GenerateOptions, Generation, GenerationStats, StopReason};
use edgewasm_llm::sampling::SamplerConfig;
use edgewasm_llm::{Context, Model, ThreadPool};
use serde_json::json;

use crate::backend::GGUF_MAGIC;
use crate::config::{Message, TextConfig};
use crate::error::{ErrorCode, NnError, NnResult};
use crate::limits::{ContextPermit, ContextSlots, Limits};
use crate::models::ModelSet;

/// What one guest (one store) may use: the host's models and threads, its
/// limits and its live-context count.
#[derive(Debug)]
pub struct GuestEnv {
    pub models: Arc<ModelSet>,
    pub pool: Arc<ThreadPool>,
    pub limits: Limits,
    pub slots: Arc<ContextSlots>,
    /// Models the guest loaded from its own bytes (the host's copy lives as
    /// long as any graph or context holds it), with their sizes.
    loaded: Mutex<Vec<(Weak<Model>, usize)>>,
}

impl GuestEnv {
    pub fn new(models: Arc<ModelSet>, pool: Arc<ThreadPool>, limits: Limits) -> Arc<GuestEnv> {
        let slots = ContextSlots::new(limits.max_contexts, limits.max_kv_bytes);
        Arc::new(GuestEnv { models, pool, limits, slots, loaded: Mutex::new(Vec::new()) })
    }

    /// Bytes of guest-loaded models still alive.
    pub fn loaded_bytes(&self) -> usize {
        let mut l = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        l.retain(|(m, _)| m.strong_count() > 0);
        l.iter().map(|(_, n)| n).sum()
    }

    /// Builds a model from a GGUF file in guest bytes, if the guest's live
    /// loaded models stay within the load limit (`--max-load-size`), which
    /// counts the host's copy of the bytes plus what the model allocates
    /// beside them (interleaved weights, f32 norms): the bytes are checked
    /// before they are copied, the rest before the model is built. Guest
    /// bytes are untrusted: their Jinja chat template is never run.
    pub fn load_guest_bytes(&self, bytes: &[u8]) -> NnResult<Arc<Model>> {
        let len = bytes.len();
        self.check_load(len)?;
        if !bytes.starts_with(GGUF_MAGIC) {
            return Err(NnError::new(ErrorCode::InvalidEncoding, "not a GGUF file (bad magic)"));
        }
        let file = GgufFile::from_bytes(bytes).map_err(|e| NnError::new(ErrorCode::InvalidEncoding, e.to_string()))?;
        let total = len.saturating_add(Model::host_bytes_for(&file));
        self.check_load(total)?;
        let model = Arc::new(Model::from_gguf(Arc::new(file))?.without_file_chat_template());
        self.loaded.lock().unwrap_or_else(|e| e.into_inner()).push((Arc::downgrade(&model), total));
        Ok(model)
    }

    /// Fails with `too-large` if `len` more bytes of loaded models would
    /// exceed `--max-load-size`.
    fn check_load(&self, len: usize) -> NnResult<()> {
        let max = self.limits.max_load_bytes;
        let held = self.loaded_bytes();
        if held.checked_add(len).is_none_or(|t| t > max) {
            return Err(NnError::too_large(if held == 0 {
                format!("model of {len} bytes exceeds the load limit of {max} bytes (--max-load-size)")
            } else {
                format!(
                    "model of {len} bytes would bring this guest's loaded models to {} bytes, over the load limit of {max} bytes (--max-load-size)",
                    held.saturating_add(len)
                )
            }));
        }
        Ok(())
    }
}

/// Sampling request in engine terms (`None`: the `edgewasm generate`
/// default).
#[derive(Clone, Debug, Default)]
pub struct SamplingRequest {
    pub max_tokens: Option<usize>,
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub seed: Option<u64>,
    pub stop: Vec<String>,
    /// Constrain the output to a grammar.
    pub grammar: Option<GrammarRequest>,
}

pub use crate::config::GrammarRequest;

impl GrammarRequest {
    /// Compiles the grammar for `model`; a bad grammar or schema is the
    /// guest's invalid argument, with the line and column (or JSON pointer)
    /// in the message.
    pub fn compile(&self, model: &Model) -> NnResult<Arc<Grammar>> {
        let source = match self {
            GrammarRequest::Gbnf(g) => GrammarSource::Gbnf(g),
            GrammarRequest::JsonSchema(s) => GrammarSource::JsonSchema(s),
        };
        model.compile_grammar(source).map_err(|e| NnError::invalid(e.to_string()))
    }
}

impl SamplingRequest {
    /// Generation options for `model` under `limits` (max tokens clamped to
    /// the ceiling, the grammar compiled).
    pub fn options(&self, limits: &Limits, model: &Model) -> NnResult<GenerateOptions> {
        for (name, v) in [
            ("temperature", self.temperature),
            ("top-p", self.top_p),
            ("min-p", self.min_p),
            ("repeat-penalty", self.repeat_penalty),
        ] {
            if let Some(v) = v {
                if !v.is_finite() || v < 0.0 {
                    return Err(NnError::invalid(format!("{name} must be a finite non-negative number, got {v}")));
                }
            }
        }
        let d = SamplerConfig::default();
        Ok(GenerateOptions {
            max_tokens: limits.clamp_tokens(self.max_tokens),
            sampler: SamplerConfig {
                temperature: self.temperature.unwrap_or(0.8),
                top_k: self.top_k.unwrap_or(40),
                top_p: self.top_p.unwrap_or(0.95),
                min_p: self.min_p.unwrap_or(0.05),
                repeat_penalty: self.repeat_penalty.unwrap_or(1.0),
                seed: self.seed.unwrap_or(42),
                ..d
            },
            stop: self.stop.iter().filter(|s| !s.is_empty()).cloned().collect(),
            stop_at_eog: true,
            grammar: self.grammar.as_ref().map(|g| g.compile(model)).transpose()?,
        })
    }
}

impl From<&TextConfig> for SamplingRequest {
    fn from(c: &TextConfig) -> SamplingRequest {
        SamplingRequest {
            max_tokens: c.n_predict,
            temperature: c.temp,
            top_k: c.top_k,
            top_p: c.top_p,
            min_p: c.min_p,
            repeat_penalty: c.repeat_penalty,
            seed: c.seed,
            stop: c.reverse_prompt.clone(),
            grammar: c.grammar.clone().flatten(),
        }
    }
}

/// An inference context owned by a guest: the engine's [`Context`] under the
/// guest's limits. After an engine failure (timeout, runtime error) it is
/// poisoned and every later use fails cleanly.
#[derive(Debug)]
pub struct LlmContext {
    ctx: Context,
    env: Arc<GuestEnv>,
    permit: ContextPermit,
    poisoned: Option<String>,
}

impl LlmContext {
    pub fn new(env: &Arc<GuestEnv>, model: Arc<Model>, n_ctx: Option<usize>) -> NnResult<LlmContext> {
        let n = env.limits.context_size(n_ctx, model.config().n_ctx_train)?;
        let permit = env.slots.acquire(kv_bytes_checked(&model, n, &env.limits)?)?;
        env.limits.check_deadline()?;
        let batcher = env.models.batcher_for(&model);
        let mut ctx = Context::with_kv_types(model, Arc::clone(&env.pool), n, env.limits.kv_types)?;
        ctx.set_deadline(env.limits.deadline);
        ctx.set_batcher(batcher);
        Ok(LlmContext { ctx, env: Arc::clone(env), permit, poisoned: None })
    }

    pub fn model(&self) -> &Arc<Model> {
        self.ctx.model()
    }

    /// Ends this context, leaving its cache to the prefix cache (when the
    /// operator enabled one and nothing went wrong in it); its memory
    /// leaves the guest's count either way.
    pub fn park(self) {
        let LlmContext { ctx, env, permit, poisoned } = self;
        drop(permit);
        // Only preloaded models: a model a guest loaded from its own bytes
        // would outlive the guest's --max-load-size accounting, and no
        // other request could ever match it.
        if let (None, Some(cache)) = (poisoned, env.models.prefix_cache()) {
            if env.models.is_preloaded(ctx.model()) {
                cache.park(ctx);
            }
        }
    }
    pub fn limits(&self) -> &Limits {
        &self.env.limits
    }
    pub fn n_ctx(&self) -> usize {
        self.ctx.n_ctx()
    }
    pub fn n_past(&self) -> usize {
        self.ctx.n_past()
    }
    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Fails if an earlier engine error left this context unusable.
    pub fn check_usable(&self) -> NnResult<()> {
        match &self.poisoned {
            Some(why) => Err(NnError::runtime(format!(
                "execution context unusable after an earlier error ({why}); create a new one"
            ))),
            None => Ok(()),
        }
    }

    /// Records `e` (poisoning the context if the engine state may be
    /// inconsistent) and hands it back.
    fn fail(&mut self, e: NnError) -> NnError {
        if e.poisons() && self.poisoned.is_none() {
            self.poisoned = Some(e.to_string());
            self.ctx.clear();
        }
        e
    }

    /// Recreates the context with another size (dropping its cache).
    pub fn resize(&mut self, n_ctx: usize) -> NnResult<()> {
        if n_ctx == self.ctx.n_ctx() {
            return Ok(());
        }
        let model = Arc::clone(self.ctx.model());
        let n = self.env.limits.context_size(Some(n_ctx), model.config().n_ctx_train)?;
        // Reserve for the old and the new cache while both exist, then keep
        // the new one's size.
        let limits = &self.env.limits;
        let (old, new) = (kv_bytes_checked(&model, self.ctx.n_ctx(), limits)?, kv_bytes_checked(&model, n, limits)?);
        self.permit.resize(old.saturating_add(new))?;
        let batcher = self.env.models.batcher_for(&model);
        let mut ctx = match Context::with_kv_types(model, Arc::clone(&self.env.pool), n, self.env.limits.kv_types) {
            Ok(c) => c,
            Err(e) => {
                self.permit.resize(old)?;
                return Err(self.fail(e.into()));
            }
        };
        ctx.set_deadline(self.env.limits.deadline);
        ctx.set_batcher(batcher);
        self.ctx = ctx;
        self.permit.resize(new)?;
        Ok(())
    }

    pub fn clear(&mut self) {
        self.ctx.clear();
    }

    /// Token mode: optionally truncates the cache to `keep` tokens, appends
    /// `tokens` and returns the logits of the last one.
    pub fn eval_tokens(&mut self, tokens: &[u32], keep: Option<usize>) -> NnResult<&[f32]> {
        self.check_usable()?;
        if tokens.is_empty() {
            return Err(NnError::invalid("`tokens` is empty"));
        }
        let n_vocab = self.ctx.model().config().n_vocab;
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(NnError::invalid(format!("token id {bad} is out of range (vocabulary has {n_vocab} tokens)")));
        }
        let keep = keep.unwrap_or(self.ctx.n_past());
        if keep > self.ctx.n_past() {
            return Err(NnError::invalid(format!("n-past {keep} exceeds the {} cached tokens", self.ctx.n_past())));
        }
        if keep + tokens.len() > self.ctx.n_ctx() {
            return Err(NnError::too_large(format!(
                "{} cached + {} new tokens exceed the context size {}",
                keep,
                tokens.len(),
                self.ctx.n_ctx()
            )));
        }
        if let Err(e) = self.env.limits.check_deadline() {
            return Err(self.fail(e));
        }
        if let Err(e) = self.ctx.rewind(keep) {
            return Err(self.fail(e.into()));
        }
        match self.ctx.eval(tokens, false) {
            Ok(_) => Ok(self.ctx.logits()),
            Err(e) => Err(self.fail(e.into())),
        }
    }

    /// Tokenizes a prompt (BOS added, special tokens parsed), refusing one
    /// over the prompt size limit before any tokenizer work. Tokenizing
    /// watches the deadline, so a huge prompt or a hostile vocabulary ends
    /// in `timeout` instead of holding the host call past it.
    pub fn tokenize_prompt(&self, prompt: &str) -> NnResult<Vec<u32>> {
        let limits = &self.env.limits;
        limits.check_prompt_bytes("the prompt", prompt.len())?;
        limits.check_deadline()?;
        let past_deadline = || limits.check_deadline().is_err();
        self.ctx.model().tokenizer().encode_checked(prompt, true, true, &past_deadline).map_err(|_| NnError::timeout())
    }

    /// Starts a generation over `prompt_ids`, reusing the cached prefix.
    pub fn start(&mut self, prompt_ids: &[u32], opts: GenerateOptions) -> NnResult<Generation> {
        self.check_usable()?;
        if prompt_ids.is_empty() {
            return Err(NnError::invalid("the prompt is empty"));
        }
        if prompt_ids.len() > self.ctx.n_ctx() {
            return Err(NnError::too_large(format!(
                "the prompt has {} tokens, the context holds {}",
                prompt_ids.len(),
                self.ctx.n_ctx()
            )));
        }
        if let Err(e) = self.env.limits.check_deadline() {
            return Err(self.fail(e));
        }
        if let Some(cache) = self.env.models.prefix_cache() {
            let (model, types) = (Arc::clone(self.ctx.model()), self.ctx.kv_types());
            cache.adopt_into(&mut self.ctx, &model, types, prompt_ids);
        }
        Generation::start(&mut self.ctx, prompt_ids, opts).map_err(|e| self.fail(e.into()))
    }

    /// Generates one step (checking the deadline first).
    pub fn step(&mut self, gen: &mut Generation) -> NnResult<Option<String>> {
        self.check_usable()?;
        if let Err(e) = self.env.limits.check_deadline() {
            return Err(self.fail(e));
        }
        gen.next_chunk(&mut self.ctx).map_err(|e| self.fail(e.into()))
    }

    /// Text mode: a whole completion for `prompt` and/or `config.messages`.
    pub fn complete_text(&mut self, prompt: Option<&str>, config: &TextConfig) -> NnResult<TextOutput> {
        self.check_usable()?;
        if let Some(n) = config.ctx_size {
            self.resize(n)?;
        }
        let text_prompt = match &config.messages {
            Some(msgs) => {
                let mut msgs = msgs.clone();
                if let Some(p) = prompt.filter(|p| !p.is_empty()) {
                    msgs.push(Message { role: "user".into(), content: p.to_string() });
                }
                if msgs.is_empty() {
                    return Err(NnError::invalid("`messages` is empty and no prompt was given"));
                }
                render_chat(self.ctx.model(), &msgs)?
            }
            None => match prompt {
                Some(p) if !p.is_empty() => p.to_string(),
                _ => return Err(NnError::invalid("text mode needs a non-empty `prompt` input or `messages` in `config`")),
            },
        };
        let ids = self.tokenize_prompt(&text_prompt)?;
        let opts = SamplingRequest::from(config).options(&self.env.limits, self.ctx.model())?;
        let mut gen = self.start(&ids, opts)?;
        let mut text = String::new();
        while let Some(chunk) = self.step(&mut gen)? {
            text.push_str(&chunk);
        }
        let reason = gen.stop_reason().unwrap_or(StopReason::MaxTokens);
        Ok(TextOutput { metadata: metadata(gen.stats(), reason), text })
    }
}

/// Renders `msgs` with the model's chat template (generation prompt added).
pub fn render_chat(model: &Model, msgs: &[Message]) -> NnResult<String> {
    let tmpl = model.chat_template().map_err(NnError::from)?;
    let msgs: Vec<ChatMessage> =
        msgs.iter().map(|m| ChatMessage { role: m.role.clone(), content: m.content.clone() }).collect();
    tmpl.render(&msgs, true).map_err(|e| NnError::invalid(format!("chat template: {e}")))
}

/// The result of a text-mode compute.
#[derive(Clone, Debug)]
pub struct TextOutput {
    pub text: String,
    pub metadata: serde_json::Value,
}

/// The `metadata` output (WasmEdge-compatible token counts plus ours).
pub fn metadata(s: &GenerationStats, reason: StopReason) -> serde_json::Value {
    let gen_s = s.generate_time.as_secs_f64();
    json!({
        "input_tokens": s.prompt_tokens,
        "output_tokens": s.generated_tokens,
        "reused_tokens": s.reused_tokens,
        "stop_reason": reason.as_str(),
        "prompt_ms": s.prompt_time.as_secs_f64() * 1e3,
        "generate_ms": gen_s * 1e3,
        "tokens_per_second": if gen_s > 0.0 { s.generated_tokens as f64 / gen_s } else { 0.0 },
    })
}

/// A chat session (edgewasm:llm `session`): a context plus a message
/// history. Generations hold it through an `Arc<Mutex<..>>`; starting a new
/// one supersedes the previous.
#[derive(Debug)]
pub struct Session {
    ctx: LlmContext,
    system: Option<String>,
    history: Vec<Message>,
    epoch: u64,
}

pub type SharedSession = Arc<Mutex<Session>>;

fn lock(s: &SharedSession) -> MutexGuard<'_, Session> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session {
    pub fn new(ctx: LlmContext) -> SharedSession {
        Arc::new(Mutex::new(Session { ctx, system: None, history: Vec::new(), epoch: 0 }))
    }

    /// Ends `session` if this was its last holder (the guest dropped the
    /// session and its generations), leaving its cache to the prefix cache
    /// ([`LlmContext::park`]).
    pub fn release(session: SharedSession) {
        if let Ok(m) = Arc::try_unwrap(session) {
            m.into_inner().unwrap_or_else(|e| e.into_inner()).ctx.park();
        }
    }
    pub fn set_system(&mut self, s: Option<String>) {
        self.system = s;
    }
    pub fn history(&self) -> Vec<Message> {
        let mut v = Vec::new();
        if let Some(s) = &self.system {
            v.push(Message { role: "system".into(), content: s.clone() });
        }
        v.extend(self.history.iter().cloned());
        v
    }
    pub fn reset(&mut self) {
        self.history.clear();
        self.ctx.clear();
        self.epoch += 1;
    }
    pub fn n_past(&self) -> usize {
        self.ctx.n_past()
    }
    pub fn n_ctx(&self) -> usize {
        self.ctx.n_ctx()
    }

    /// Starts a raw completion of `prompt`.
    pub fn complete(session: &SharedSession, prompt: &str, req: &SamplingRequest) -> NnResult<Stream> {
        let mut s = lock(session);
        let ids = s.ctx.tokenize_prompt(prompt)?;
        let opts = req.options(s.ctx.limits(), s.ctx.model())?;
        let gen = s.ctx.start(&ids, opts)?;
        s.epoch += 1;
        Ok(Stream { session: Arc::clone(session), epoch: s.epoch, gen, chat: false, reply: String::new(), done: false })
    }

    /// Starts a chat turn: `content` joins the history as a user message.
    pub fn chat(session: &SharedSession, content: &str, req: &SamplingRequest) -> NnResult<Stream> {
        let mut s = lock(session);
        let opts = req.options(s.ctx.limits(), s.ctx.model())?;
        s.ctx.limits().check_prompt_bytes("the chat message", content.len())?;
        let mut msgs = s.history();
        msgs.push(Message { role: "user".into(), content: content.to_string() });
        let prompt = render_chat(s.ctx.model(), &msgs)?;
        let ids = s.ctx.tokenize_prompt(&prompt)?;
        let gen = s.ctx.start(&ids, opts)?;
        s.history.push(Message { role: "user".into(), content: content.to_string() });
        s.epoch += 1;
        Ok(Stream { session: Arc::clone(session), epoch: s.epoch, gen, chat: true, reply: String::new(), done: false })
    }
}

/// A running generation (edgewasm:llm `generation`).
#[derive(Debug)]
pub struct Stream {
    session: SharedSession,
    epoch: u64,
    gen: Generation,
    chat: bool,
    reply: String,
    done: bool,
}

impl Stream {
    /// The session this generation runs on.
    pub fn into_session(self) -> SharedSession {
        self.session
    }

    /// The next non-empty text chunk, or `None` when finished.
    pub fn next_chunk(&mut self) -> NnResult<Option<String>> {
        if self.done {
            return Ok(None);
        }
        let mut s = lock(&self.session);
        if s.epoch != self.epoch {
            return Err(NnError::invalid("this generation was superseded by a newer one on the same session"));
        }
        loop {
            match s.ctx.step(&mut self.gen)? {
                Some(t) if t.is_empty() => continue,
                Some(t) => {
                    self.reply.push_str(&t);
                    return Ok(Some(t));
                }
                None => {
                    self.done = true;
                    if self.chat {
                        s.history.push(Message { role: "assistant".into(), content: std::mem::take(&mut self.reply) });
                    }
                    return Ok(None);
                }
            }
        }
    }

    pub fn collect(&mut self) -> NnResult<String> {
        let mut out = String::new();
        while let Some(t) = self.next_chunk()? {
            out.push_str(&t);
        }
        Ok(out)
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.gen.stop_reason()
    }
    pub fn stats(&self) -> &GenerationStats {
        self.gen.stats()
    }
}

/// Bytes an `n_ctx`-position context of `model` allocates (KV cache,
/// buffers, logits).
fn kv_bytes_checked(model: &Model, n_ctx: usize, limits: &Limits) -> NnResult<usize> {
    crate::limits::context_bytes(model.config(), n_ctx, limits.kv_types)
        .ok_or_else(|| NnError::too_large(format!("the memory of a context of {n_ctx} positions overflows")))
}

/// Elapsed milliseconds since `t` (for logs).
pub fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}
