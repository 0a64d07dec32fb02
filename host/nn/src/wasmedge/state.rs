//! Graphs and execution contexts of one guest, with the semantics of
//! WasmEdge's GGML plugin, over the engine ([`LlmContext`]). No wasmtime
//! types here: the host functions ([`super::linker`]) do the memory side.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use edgewasm_llm::generate::{Generation, GenerationStats, StopReason};
use edgewasm_llm::Model;
use serde_json::json;

use super::abi::{CallError, CallResult, Errno, ENCODING_AUTODETECT, ENCODING_GGML, TARGET_MAX, TENSOR_TYPE_MAX};
use super::settings::Settings;
use crate::engine::{GuestEnv, LlmContext, SamplingRequest};
use crate::handles::{check_live, Slab};
use crate::limits::Limits;

/// One guest's `wasi_ephemeral_nn` state. Handles index slabs whose freed
/// slots are reused under a new generation, so a stale handle is invalid
/// (error 1) and never reaches a newer graph or context.
#[derive(Debug)]
pub struct WasmEdgeNn {
    env: Arc<GuestEnv>,
    graphs: Slab<GraphSlot>,
    by_name: HashMap<String, u32>,
    contexts: Slab<ExecSlot>,
}

#[derive(Debug)]
struct GraphSlot {
    model: Arc<Model>,
    settings: Settings,
    /// Loaded from guest bytes (counted against the live-graph limit).
    from_bytes: bool,
}

#[derive(Debug)]
struct ExecSlot {
    /// The graph it was made from: `unload` frees it with the graph.
    graph: u32,
    ctx: LlmContext,
    settings: Settings,
    prompt: Option<String>,
    /// `prompt` tokenized (by `set_input`), so `compute` does not redo it.
    prompt_ids: Option<Vec<u32>>,
    /// Text of the last `compute`, or of the stream so far.
    output: Vec<u8>,
    /// Text of the latest `compute_single` token.
    piece: Vec<u8>,
    stats: GenerationStats,
    stop: Option<StopReason>,
    stream: Option<Generation>,
}

fn out_of_handles() -> CallError {
    CallError::new(Errno::TooLarge, "out of handles: this guest has used up the 4 billion handle values")
}

impl WasmEdgeNn {
    pub fn new(env: Arc<GuestEnv>) -> WasmEdgeNn {
        WasmEdgeNn { env, graphs: Slab::default(), by_name: HashMap::new(), contexts: Slab::default() }
    }

    /// Fails with `TooLarge` (7) if the guest holds `--max-handles` graphs
    /// and contexts already.
    fn check_handles(&self, what: &str) -> CallResult<()> {
        Ok(check_live(self.graphs.len() + self.contexts.len(), self.env.limits.max_handles, what)?)
    }

    fn add_graph(&mut self, g: GraphSlot) -> CallResult<u32> {
        self.check_handles("load")?;
        self.graphs.insert(g).ok_or_else(out_of_handles)
    }

    fn graph(&self, h: u32) -> CallResult<&GraphSlot> {
        self.graphs.get(h).ok_or_else(|| CallError::invalid(format!("no graph {h}")))
    }

    fn exec(&mut self, h: u32) -> CallResult<&mut ExecSlot> {
        self.contexts.get_mut(h).ok_or_else(|| CallError::invalid(format!("no execution context {h}")))
    }

    /// Live graphs and execution contexts, and the slots their tables have
    /// (which churn does not grow).
    pub fn handle_counts(&self) -> (usize, usize) {
        (self.graphs.len() + self.contexts.len(), self.graphs.capacity() + self.contexts.capacity())
    }

    /// `load`: a GGUF model from guest bytes (`builders[0]`; an optional
    /// `builders[1]` is a JSON config).
    pub fn load(&mut self, builders: &[&[u8]], encoding: u32, target: u32) -> CallResult<u32> {
        if encoding != ENCODING_GGML && encoding != ENCODING_AUTODETECT {
            return Err(CallError::new(Errno::InvalidEncoding, format!("encoding {encoding}: edgewasm serves GGML (6)")));
        }
        if target > TARGET_MAX {
            return Err(CallError::invalid(format!("unknown execution target {target}")));
        }
        let (bytes, config) = match builders {
            [b] => (*b, None),
            [b, c] => (*b, Some(*c)),
            _ => return Err(CallError::invalid(format!("expected 1 or 2 graph builders, got {}", builders.len()))),
        };
        let mut settings = Settings::default();
        if let Some(c) = config {
            settings.apply(c)?;
        }
        // Before the costly parse; add_graph checks again.
        self.check_handles("load")?;
        let live = self.graphs.values().filter(|g| g.from_bytes).count();
        let max_graphs = self.env.limits.max_contexts;
        if live >= max_graphs {
            return Err(CallError::new(Errno::TooLarge, format!("too many graphs loaded from bytes (limit {max_graphs})")));
        }
        let model = self.env.load_guest_bytes(bytes)?;
        check_ctx_size(&self.env.limits, &model, &settings)?;
        self.add_graph(GraphSlot { model, settings, from_bytes: true })
    }

    /// `load_by_name` / `load_by_name_with_config`: a preloaded model
    /// (`--nn-preload NAME:GGML:AUTO:PATH`, `--model NAME=PATH`). The same
    /// name gives the same graph, as in WasmEdge.
    pub fn load_by_name(&mut self, name: &[u8], config: Option<&[u8]>) -> CallResult<u32> {
        let name = std::str::from_utf8(name).map_err(|_| CallError::invalid("the model name is not UTF-8"))?;
        if let Some(&h) = self.by_name.get(name) {
            if let (Some(c), Some(g)) = (config, self.graphs.get_mut(h)) {
                g.settings = with_config(&self.env.limits, &g.model, &g.settings, c)?;
            }
            return Ok(h);
        }
        let model = match self.env.models.get(name) {
            Ok(m) => Arc::clone(m),
            Err(e) => return Err(CallError::new(Errno::ModelNotFound, e.message)),
        };
        let settings = match config {
            Some(c) => with_config(&self.env.limits, &model, &Settings::default(), c)?,
            None => Settings::default(),
        };
        let h = self.add_graph(GraphSlot { model, settings, from_bytes: false })?;
        self.by_name.insert(name.to_string(), h);
        Ok(h)
    }

    /// `unload`: frees the graph and, as WasmEdge does, every execution
    /// context made from it with its KV cache; their handles are invalid
    /// afterwards.
    pub fn unload(&mut self, graph: u32) -> CallResult<()> {
        self.graphs.remove(graph).ok_or_else(|| CallError::invalid(format!("no graph {graph}")))?;
        self.by_name.retain(|_, h| *h != graph);
        let made: Vec<u32> = self.contexts.handles().filter(|(_, c)| c.graph == graph).map(|(h, _)| h).collect();
        for h in made {
            self.contexts.remove(h);
        }
        Ok(())
    }

    /// `init_execution_context`: a KV cache of the graph's `ctx-size`.
    pub fn init_execution_context(&mut self, graph: u32) -> CallResult<u32> {
        let g = self.graph(graph)?;
        let settings = g.settings.clone();
        let model = Arc::clone(&g.model);
        self.check_handles("init_execution_context")?;
        let ctx = LlmContext::new(&self.env, model, settings.text.ctx_size)?;
        self.contexts
            .insert(ExecSlot {
                graph,
                ctx,
                settings,
                prompt: None,
                prompt_ids: None,
                output: Vec::new(),
                piece: Vec::new(),
                stats: GenerationStats::default(),
                stop: None,
                stream: None,
            })
            .ok_or_else(out_of_handles)
    }

    /// `finalize_execution_context`: frees the context and its slot.
    pub fn finalize_execution_context(&mut self, ctx: u32) -> CallResult<()> {
        self.contexts.remove(ctx).ok_or_else(|| CallError::invalid(format!("no execution context {ctx}")))?;
        Ok(())
    }

    /// `set_input`: index 0 is the prompt, index 1 a JSON config.
    pub fn set_input(&mut self, ctx: u32, index: u32, tensor_type: u32, data: &[u8]) -> CallResult<()> {
        let slot = self.exec(ctx)?;
        if tensor_type > TENSOR_TYPE_MAX {
            return Err(CallError::invalid(format!("unknown tensor type {tensor_type}")));
        }
        match index {
            0 => {
                slot.ctx
                    .limits()
                    .check_prompt_bytes("the prompt", data.len())
                    .map_err(|e| CallError::new(Errno::PromptTooLong, e.message))?;
                let prompt = std::str::from_utf8(data).map_err(|_| CallError::invalid("the prompt is not UTF-8"))?;
                slot.stream = None;
                slot.prompt = Some(prompt.to_string());
                slot.prompt_ids = None;
                // Tokenized now, so output 1 reports `input_tokens` before
                // `compute` as WasmEdge does; a prompt too long for the
                // context is `compute`'s error 102, as there.
                let n = slot.tokenize()?.len();
                slot.stats = GenerationStats { prompt_tokens: n, ..GenerationStats::default() };
                slot.stop = None;
                Ok(())
            }
            1 => {
                slot.ctx.limits().check_prompt_bytes("the config", data.len())?;
                let settings = with_config(slot.ctx.limits(), slot.ctx.model(), &slot.settings, data)?;
                slot.settings = settings;
                Ok(())
            }
            i => Err(CallError::invalid(format!("no input {i} (0: prompt, 1: config)"))),
        }
    }

    /// `compute`: the whole completion. A full context still leaves the
    /// text in output 0 but returns `ContextFull`, as WasmEdge does.
    pub fn compute(&mut self, ctx: u32) -> CallResult<()> {
        let env = Arc::clone(&self.env);
        let slot = self.exec(ctx)?;
        slot.stream = None;
        slot.output.clear();
        if slot.settings.embedding {
            return slot.embed(&env);
        }
        let mut gen = slot.start()?;
        while let Some(chunk) = slot.ctx.step(&mut gen)? {
            slot.emit(&chunk);
        }
        slot.finish(&gen);
        match gen.stop_reason() {
            Some(StopReason::ContextFull) => Err(CallError::new(Errno::ContextFull, "the context is full")),
            _ => Ok(()),
        }
    }

    /// `compute_single`: one more token of the stream (started on the
    /// first call). The end is `EndOfSequence` (`ContextFull` if the
    /// context filled up); the next call starts over.
    pub fn compute_single(&mut self, ctx: u32) -> CallResult<()> {
        let slot = self.exec(ctx)?;
        let mut gen = match slot.stream.take() {
            Some(g) => g,
            None => {
                slot.output.clear();
                slot.start()?
            }
        };
        let chunk = slot.ctx.step(&mut gen)?;
        slot.stats = gen.stats().clone();
        match chunk {
            Some(c) if !(c.is_empty() && gen.stop_reason().is_some()) => {
                slot.piece = c.clone().into_bytes();
                slot.emit(&c);
                slot.stream = Some(gen);
                Ok(())
            }
            _ => {
                slot.finish(&gen);
                match gen.stop_reason() {
                    Some(StopReason::ContextFull) => Err(CallError::new(Errno::ContextFull, "the context is full")),
                    _ => Err(CallError::new(Errno::EndOfSequence, "end of sequence")),
                }
            }
        }
    }

    /// `fini_single`: ends the stream (the KV cache stays for reuse).
    pub fn fini_single(&mut self, ctx: u32) -> CallResult<()> {
        let slot = self.exec(ctx)?;
        slot.stream = None;
        slot.output.clear();
        slot.piece.clear();
        Ok(())
    }

    /// `get_output`: 0 is the text, 1 the metadata JSON.
    pub fn get_output(&mut self, ctx: u32, index: u32) -> CallResult<Vec<u8>> {
        let slot = self.exec(ctx)?;
        match index {
            0 => Ok(slot.output.clone()),
            1 => Ok(slot.metadata()),
            i => Err(CallError::invalid(format!("no output {i} (0: text, 1: metadata)"))),
        }
    }

    /// `get_output_single`: 0 is the latest token's text, 1 the metadata.
    pub fn get_output_single(&mut self, ctx: u32, index: u32) -> CallResult<Vec<u8>> {
        let slot = self.exec(ctx)?;
        match index {
            0 => Ok(slot.piece.clone()),
            1 => Ok(slot.metadata()),
            i => Err(CallError::invalid(format!("no output {i} (0: text, 1: metadata)"))),
        }
    }
}

/// `base` with the JSON config `bytes` applied, if all of it is valid and
/// its `ctx-size` fits `model` under the guest's limits (1 for 0, 7 for too
/// many positions); `base` is left as it was otherwise.
fn with_config(limits: &Limits, model: &Model, base: &Settings, bytes: &[u8]) -> CallResult<Settings> {
    let mut s = base.clone();
    s.apply(bytes)?;
    check_ctx_size(limits, model, &s)?;
    Ok(s)
}

/// Refuses a `ctx-size` the guest could never get a context of.
fn check_ctx_size(limits: &Limits, model: &Model, s: &Settings) -> CallResult<()> {
    if let Some(n) = s.text.ctx_size {
        limits.context_size(Some(n), model.config().n_ctx_train)?;
    }
    Ok(())
}

impl ExecSlot {
    /// Applies a changed `ctx-size`, then tokenizes the prompt and checks
    /// that it leaves room to generate.
    fn prompt_ids(&mut self) -> CallResult<Vec<u32>> {
        if let Some(n) = self.settings.text.ctx_size {
            self.ctx.resize(n)?;
        }
        let ids = self.tokenize()?;
        if ids.len() >= self.ctx.n_ctx() {
            return Err(CallError::new(
                Errno::PromptTooLong,
                format!("the prompt has {} tokens, the context holds {}", ids.len(), self.ctx.n_ctx()),
            ));
        }
        Ok(ids)
    }

    /// `embedding: true`: the prompt's embedding in output 0, as WasmEdge's
    /// plugin writes it.
    fn embed(&mut self, env: &Arc<GuestEnv>) -> CallResult<()> {
        let ids = self.tokenize()?;
        let n = ids.len();
        let v = crate::embedding::embed_ids(env, self.ctx.model(), &[ids], self.settings.text.ctx_size)?;
        let v = v.into_iter().next().unwrap_or_default();
        self.output = json!({"n_embedding": v.len(), "embedding": v}).to_string().into_bytes();
        self.stats = GenerationStats { prompt_tokens: n, ..GenerationStats::default() };
        self.stop = None;
        Ok(())
    }

    /// The prompt's tokens (tokenized once per `set_input`).
    fn tokenize(&mut self) -> CallResult<Vec<u32>> {
        if let Some(ids) = &self.prompt_ids {
            return Ok(ids.clone());
        }
        let prompt = self.prompt.as_deref().filter(|p| !p.is_empty()).ok_or_else(|| CallError::invalid("no prompt: set input 0 first"))?;
        let ids = self.ctx.tokenize_prompt(prompt)?;
        self.prompt_ids = Some(ids.clone());
        Ok(ids)
    }

    /// Starts a generation, reusing the cached prefix of the last prompt.
    fn start(&mut self) -> CallResult<Generation> {
        let ids = self.prompt_ids()?;
        let mut req = SamplingRequest::from(&self.settings.text);
        // WasmEdge's n-predict default is "until the end": up to --max-tokens.
        req.max_tokens = Some(req.max_tokens.unwrap_or(usize::MAX));
        let opts = req.options(self.ctx.limits(), self.ctx.model())?;
        self.piece.clear();
        self.stop = None;
        let gen = self.ctx.start(&ids, opts)?;
        self.stats = gen.stats().clone();
        Ok(gen)
    }

    fn emit(&mut self, chunk: &str) {
        if self.settings.stream_stdout && !chunk.is_empty() {
            let mut out = std::io::stdout();
            let _ = out.write_all(chunk.as_bytes()).and_then(|_| out.flush());
        }
        self.output.extend_from_slice(chunk.as_bytes());
    }

    fn finish(&mut self, gen: &Generation) {
        self.stats = gen.stats().clone();
        self.stop = gen.stop_reason();
        if self.settings.enable_log {
            let s = &self.stats;
            log::info!(
                target: "edgewasm-nn",
                "prompt: {} tokens ({} reused) in {:.1} ms; generated: {} tokens in {:.1} ms; stop: {}",
                s.prompt_tokens,
                s.reused_tokens,
                s.prompt_time.as_secs_f64() * 1e3,
                s.generated_tokens,
                s.generate_time.as_secs_f64() * 1e3,
                self.stop.map(StopReason::as_str).unwrap_or("-")
            );
        }
    }

    /// Output 1: WasmEdge's fields, with edgewasm in the build fields.
    fn metadata(&self) -> Vec<u8> {
        let s = &self.stats;
        let v = json!({
            "input_tokens": s.prompt_tokens,
            "output_tokens": s.generated_tokens,
            "llama_build_number": 0,
            "llama_commit": concat!("edgewasm-", env!("CARGO_PKG_VERSION")),
            "backend": "edgewasm",
            "reused_tokens": s.reused_tokens,
            "stop_reason": self.stop.map(StopReason::as_str),
        });
        v.to_string().into_bytes()
    }
}
