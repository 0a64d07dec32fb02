//! Text generation as a pull-based state machine, so the CLI can stream to
//! stdout and a guest-facing stream resource can hand out one chunk per
//! call with the same code.

use std::sync::Arc;
use std::time::{Duration, Instant};

use edgewasm_grammar::Grammar;
use edgewasm_tokenizer::StreamDecoder;

use crate::constrain::Constraint;
use crate::context::Context;
use crate::sampling::{Sampler, SamplerConfig, StopMatcher};
use crate::ModelError;

/// How to generate.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    /// Most tokens to generate.
    pub max_tokens: usize,
    pub sampler: SamplerConfig,
    /// Stop strings (WasmEdge's `reverse-prompt`); never emitted.
    pub stop: Vec<String>,
    /// Stop at the model's end-of-generation tokens (default true).
    pub stop_at_eog: bool,
    /// Only text of this grammar is generated; an end-of-generation token is
    /// allowed exactly where the grammar's text may end, and generation
    /// stops where it cannot continue.
    pub grammar: Option<Arc<Grammar>>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_tokens: 256,
            sampler: SamplerConfig::default(),
            stop: Vec::new(),
            stop_at_eog: true,
            grammar: None,
        }
    }
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced an end-of-generation token.
    EndOfGeneration,
    /// `max_tokens` were generated.
    MaxTokens,
    /// A stop string appeared.
    StopString,
    /// The context has no room for another token.
    ContextFull,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndOfGeneration => "eog",
            StopReason::MaxTokens => "max_tokens",
            StopReason::StopString => "stop_string",
            StopReason::ContextFull => "context_full",
        }
    }
}

/// Counters and timings of one generation.
#[derive(Clone, Debug, Default)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV entries were reused from the previous request.
    pub reused_tokens: usize,
    pub generated_tokens: usize,
    pub prompt_time: Duration,
    pub generate_time: Duration,
}

/// An in-progress generation over a [`Context`].
#[derive(Debug)]
pub struct Generation {
    sampler: Sampler,
    decoder: StreamDecoder,
    stop: StopMatcher,
    opts: GenerateOptions,
    generated: Vec<u32>,
    finished: Option<StopReason>,
    stats: GenerationStats,
    constraint: Option<Constraint>,
}

/// Feeds `prompt` into `ctx`, reusing the cached prefix it shares with what
/// the context already holds (a multi-turn chat or an extended prompt only
/// pays for its new tokens).
pub fn prefill(ctx: &mut Context, prompt: &[u32]) -> Result<usize, ModelError> {
    if prompt.is_empty() {
        return Err(ModelError::EmptyInput);
    }
    let common = ctx.tokens().iter().zip(prompt).take_while(|(a, b)| a == b).count();
    // At least one token must run to produce fresh logits.
    let keep = common.min(prompt.len() - 1);
    ctx.rewind(keep)?;
    ctx.eval(&prompt[keep..], false)?;
    Ok(keep)
}

impl Generation {
    /// Prefills `prompt` and gets ready to sample.
    pub fn start(ctx: &mut Context, prompt: &[u32], opts: GenerateOptions) -> Result<Generation, ModelError> {
        let t = Instant::now();
        let reused = prefill(ctx, prompt)?;
        let stats = GenerationStats {
            prompt_tokens: prompt.len(),
            reused_tokens: reused,
            prompt_time: t.elapsed(),
            ..Default::default()
        };
        Ok(Generation {
            sampler: Sampler::new(opts.sampler.clone()),
            decoder: StreamDecoder::new(),
            stop: StopMatcher::new(opts.stop.clone()),
            finished: if opts.max_tokens == 0 { Some(StopReason::MaxTokens) } else { None },
            constraint: opts.grammar.as_ref().map(|g| Constraint::new(Arc::clone(g), ctx.model().token_trie())),
            opts,
            generated: Vec::new(),
            stats,
        })
    }

    /// Generates one token. Returns the text it completes (possibly empty,
    /// when a UTF-8 character or a possible stop string is still pending),
    /// or `None` once generation has finished and all text was returned.
    pub fn next_chunk(&mut self, ctx: &mut Context) -> Result<Option<String>, ModelError> {
        if self.finished.is_some() {
            return Ok(None);
        }
        let t = Instant::now();
        let tok = ctx.model().tokenizer();
        let id = match &mut self.constraint {
            None => self.sampler.sample(ctx.logits(), ctx.tokens()),
            Some(c) => c.sample(&mut self.sampler, ctx, &self.generated)?,
        };
        // Under a grammar, an end-of-generation token is only drawn where
        // the text may end, and it ends it.
        if (self.opts.stop_at_eog || self.constraint.is_some()) && tok.is_eog(id) {
            return Ok(Some(self.finish(StopReason::EndOfGeneration)));
        }
        self.generated.push(id);
        self.stats.generated_tokens += 1;
        let text = self.decoder.push(tok, id);
        let (emit, matched) = self.stop.push(&text);
        if matched {
            self.finished = Some(StopReason::StopString);
            self.stats.generate_time += t.elapsed();
            return Ok(Some(emit));
        }
        if self.constraint.as_ref().is_some_and(|c| !c.can_continue()) {
            // The grammar's text is complete: nothing but end-of-generation
            // could follow, so skip the forward pass that would draw it.
            let rest = self.finish(StopReason::EndOfGeneration);
            self.stats.generate_time += t.elapsed();
            return Ok(Some(emit + &rest));
        }
        if self.generated.len() >= self.opts.max_tokens {
            let rest = self.finish(StopReason::MaxTokens);
            self.stats.generate_time += t.elapsed();
            return Ok(Some(emit + &rest));
        }
        if ctx.n_past() + 1 > ctx.n_ctx() {
            let rest = self.finish(StopReason::ContextFull);
            return Ok(Some(emit + &rest));
        }
        ctx.eval(&[id], false)?;
        self.stats.generate_time += t.elapsed();
        Ok(Some(emit))
    }

    fn finish(&mut self, reason: StopReason) -> String {
        self.finished = Some(reason);
        let mut tail = self.decoder.finish();
        if self.constraint.is_some() && reason != StopReason::EndOfGeneration {
            // A cut (token limit, full context) inside a character leaves
            // its first bytes, the only thing the decoder holds: dropped
            // under a grammar rather than handed out as U+FFFD, which the
            // grammar does not allow, so the text stays a valid prefix.
            tail.clear();
        }
        let (mut out, matched) = self.stop.push(&tail);
        if matched {
            self.finished = Some(StopReason::StopString);
            return out;
        }
        out.push_str(&self.stop.flush());
        out
    }

    /// Runs to the end, handing each chunk to `on_text`.
    pub fn run(&mut self, ctx: &mut Context, mut on_text: impl FnMut(&str)) -> Result<StopReason, ModelError> {
        while let Some(chunk) = self.next_chunk(ctx)? {
            if !chunk.is_empty() {
                on_text(&chunk);
            }
        }
        Ok(self.finished.unwrap_or(StopReason::MaxTokens))
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.finished
    }
    /// Tokens generated so far (end-of-generation token excluded).
    pub fn tokens(&self) -> &[u32] {
        &self.generated
    }
    pub fn stats(&self) -> &GenerationStats {
        &self.stats
    }
}
