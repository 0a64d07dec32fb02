//! Constrained generation: a grammar (GBNF, or compiled from a JSON
//! Schema) decides which tokens may be sampled.

use std::sync::Arc;

use edgewasm_grammar::schema::{json_schema_to_gbnf, SchemaError};
use edgewasm_grammar::{Grammar, GrammarError, Matcher, TokenTrie};
use edgewasm_tokenizer::Tokenizer;

use crate::context::Context;
use crate::sampling::Sampler;
use crate::{Model, ModelError};

/// Where a grammar comes from.
#[derive(Clone, Copy, Debug)]
pub enum GrammarSource<'a> {
    /// GBNF text (llama.cpp's syntax) with a `root` rule.
    Gbnf(&'a str),
    /// A JSON Schema; `{}` allows any JSON value.
    JsonSchema(&'a serde_json::Value),
}

/// Why a grammar could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum ConstraintError {
    #[error(transparent)]
    Grammar(#[from] GrammarError),
    #[error("JSON schema: {0}")]
    Schema(#[from] SchemaError),
}

impl Model {
    /// Compiles a grammar for this model: `<token>` references in GBNF are
    /// looked up in its vocabulary.
    pub fn compile_grammar(&self, source: GrammarSource<'_>) -> Result<Arc<Grammar>, ConstraintError> {
        let gbnf;
        let text = match source {
            GrammarSource::Gbnf(t) => t,
            GrammarSource::JsonSchema(s) => {
                gbnf = json_schema_to_gbnf(s)?;
                &gbnf
            }
        };
        let tok = self.tokenizer();
        Ok(Arc::new(Grammar::parse_with_vocab(text, "root", &|t| tok.token_id(t))?))
    }
}

/// Grammar-constrained sampling.
///
/// The sampler first draws from the unconstrained logits and the draw is
/// kept if the grammar allows it: one token's bytes are cheap to check,
/// while a full vocabulary mask is a trie walk. Only when the draw is
/// rejected are the logits masked and the draw repeated. For plain
/// temperature sampling this is exact rejection sampling (a kept draw is
/// distributed as the masked distribution); with top-k/top-p/min-p the
/// truncation applies to the unmasked distribution first, as in
/// llama.cpp's sampler.
#[derive(Debug)]
pub(crate) struct Constraint {
    matcher: Matcher,
    trie: Arc<TokenTrie>,
    /// Masked logits, reused.
    masked: Vec<f32>,
}

impl Constraint {
    pub(crate) fn new(grammar: Arc<Grammar>, trie: Arc<TokenTrie>) -> Constraint {
        Constraint { matcher: Matcher::new(grammar), trie, masked: Vec::new() }
    }

    /// Whether the grammar allows more text (else only the end).
    pub(crate) fn can_continue(&self) -> bool {
        self.matcher.can_continue()
    }

    /// Steps the matcher over the sampled `id` if the grammar allows it
    /// (an end-of-generation token is allowed where the text may end and
    /// leaves the matcher as it is).
    fn try_accept(&mut self, tok: &Tokenizer, id: u32) -> bool {
        if tok.is_eog(id) {
            return self.matcher.can_end();
        }
        self.matcher.try_accept_token(id, tok.token_bytes(id).unwrap_or(&[]))
    }

    /// Samples an allowed token and steps the matcher over it.
    pub(crate) fn sample(&mut self, sampler: &mut Sampler, ctx: &Context, generated: &[u32]) -> Result<u32, ModelError> {
        let tok = ctx.model().tokenizer();
        let id = sampler.sample(ctx.logits(), ctx.tokens());
        if self.try_accept(tok, id) {
            return Ok(id);
        }
        let mask = self.matcher.fill_mask(&self.trie, tok.eog_tokens());
        if self.matcher.is_overloaded() {
            return Err(ModelError::GrammarTooComplex);
        }
        if mask.count() == 0 {
            let text = tok.decode(generated, false);
            let tail: String = text.chars().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect();
            return Err(ModelError::GrammarDeadEnd { tail });
        }
        self.masked.clear();
        self.masked.extend_from_slice(ctx.logits());
        mask.apply(&mut self.masked);
        let mut id = sampler.sample(&self.masked, ctx.tokens());
        if !mask.allows(id) {
            // Every allowed logit was -inf or NaN: take the first allowed token.
            id = (0..self.masked.len() as u32).find(|&t| mask.allows(t)).unwrap_or(id);
        }
        if !self.try_accept(tok, id) {
            // Allowed tokens always step; only an overloaded matcher fails.
            return Err(ModelError::GrammarTooComplex);
        }
        Ok(id)
    }
}

