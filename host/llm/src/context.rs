//! An inference context: one conversation's memory (KV cache, and the
//! recurrent state of hybrid models) and scratch buffers over a shared
//! model.

use std::sync::Arc;
use std::time::Instant;

use crate::batch::Batcher;
use crate::kv_cache::{KvCache, KvTypes};
use crate::model::{BatchEnv, ForwardEnv, Model, ModelConfig, Scratch};
use crate::recurrent::RecurrentState;
use crate::threadpool::ThreadPool;
use crate::ModelError;

/// Largest batch evaluated in one forward pass; longer inputs are split.
pub const MAX_BATCH: usize = 512;

/// The KV cache, recurrent state, scratch and token history of one
/// sequence.
#[derive(Debug)]
pub struct Context {
    model: Arc<Model>,
    pool: Arc<ThreadPool>,
    kv: KvCache,
    /// Recurrent layers' state (empty for attention-only models).
    rs: RecurrentState,
    scratch: Scratch,
    /// Tokens whose keys/values are in the cache, in order.
    tokens: Vec<u32>,
    logits: Vec<f32>,
    /// Wall-clock limit checked between forward passes (host-side
    /// inference is invisible to wasm fuel and epochs).
    deadline: Option<Instant>,
    /// Where one-token decodes go to be batched with other contexts' of
    /// the same model ([`Context::set_batcher`]).
    batcher: Option<Arc<Batcher>>,
}

/// Batch size used while a deadline is set, so a long prompt checks the
/// clock every few hundred milliseconds even on a slow device.
const DEADLINE_BATCH: usize = 64;

impl Context {
    /// A context with room for `n_ctx` positions (clamped to at least 1),
    /// keys and values stored as f16 (the default [`KvTypes`]).
    pub fn new(model: Arc<Model>, pool: Arc<ThreadPool>, n_ctx: usize) -> Result<Context, ModelError> {
        Context::with_kv_types(model, pool, n_ctx, KvTypes::default())
    }

    /// As [`Context::new`], with keys and values stored as `types`.
    pub fn with_kv_types(model: Arc<Model>, pool: Arc<ThreadPool>, n_ctx: usize, types: KvTypes) -> Result<Context, ModelError> {
        let c = model.config();
        // An encoder (BERT) has no output layer: nothing to generate or
        // score with, only `crate::embed`.
        if !model.arch().has_logits() {
            let supported = "those with an output layer; embedding models make embeddings only";
            return Err(ModelError::Unsupported { what: "architecture for text generation", name: c.arch.clone(), supported });
        }
        let n_ctx = n_ctx.max(1);
        // Beyond the trained context the model degrades anyway; the cap keeps
        // a caller from reserving an absurd cache.
        if n_ctx > c.n_ctx_train.max(MAX_BATCH) {
            return Err(ModelError::ContextTooLarge { requested: n_ctx });
        }
        let kv = KvCache::new(&c.kv_layout(), c.n_head_kv, n_ctx, types)?;
        let rs = RecurrentState::new(&c.state_sizes())?;
        let scratch = Scratch::new(c, MAX_BATCH.min(n_ctx))?;
        // One row, which is all generation reads; `eval(.., true)` grows it.
        let logits = crate::alloc::try_zeroed("logits", c.n_vocab)?;
        Ok(Context { model, pool, kv, rs, scratch, tokens: Vec::new(), logits, deadline: None, batcher: None })
    }

    /// Bytes a new context of `n_ctx` positions of a model with config `c`
    /// allocates (KV cache, recurrent state with its checkpoints, scratch,
    /// one row of logits), exactly what
    /// [`Context::memory_bytes`] reports for it with KV types `types`;
    /// `None` on overflow. For checking a memory limit before allocating.
    pub fn bytes_for(c: &ModelConfig, n_ctx: usize, types: KvTypes) -> Option<usize> {
        let n_ctx = n_ctx.max(1);
        KvCache::bytes_for(&c.kv_layout(), c.n_head_kv, n_ctx, types)?
            .checked_add(RecurrentState::bytes_for(&c.state_sizes())?)?
            .checked_add(Scratch::bytes_for(c, MAX_BATCH.min(n_ctx))?)?
            .checked_add(c.n_vocab.checked_mul(size_of::<f32>())?)
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }
    /// How keys and values are stored.
    pub fn kv_types(&self) -> KvTypes {
        self.kv.types()
    }
    pub fn n_ctx(&self) -> usize {
        self.kv.capacity()
    }
    /// Tokens already in the cache.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }
    pub fn n_past(&self) -> usize {
        self.tokens.len()
    }
    /// Bytes of KV cache, recurrent state, scratch and logits this context
    /// holds (what [`Context::bytes_for`] predicts, less the checkpoint
    /// slots of [`Context::drop_checkpoints`]).
    pub fn memory_bytes(&self) -> usize {
        self.kv.bytes() + self.rs.bytes() + self.scratch.bytes() + self.logits.len() * size_of::<f32>()
    }

    /// Makes `eval` fail with [`ModelError::DeadlineExceeded`] once `deadline`
    /// has passed (checked before each forward pass).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// Stops keeping turn checkpoints of the recurrent state and frees
    /// their slots (each a copy of the state), for a caller that never
    /// rewinds: a benchmark, one pass of scoring. A rewind stays correct: it
    /// replays the cached tokens from the start.
    pub fn drop_checkpoints(&mut self) {
        self.rs.drop_checkpoints();
    }

    /// Drops cached positions from `n` on, so the next `eval` continues at
    /// `n`. Keys and values are simply forgotten; a recurrent state is
    /// restored from the latest checkpoint at or before `n` and the cached
    /// tokens from there to `n` are evaluated again, so this can fail as
    /// [`Context::eval`] does (it then holds fewer than `n` tokens, in a
    /// consistent state).
    pub fn rewind(&mut self, n: usize) -> Result<(), ModelError> {
        if n >= self.tokens.len() {
            return Ok(());
        }
        if self.rs.is_empty() {
            self.tokens.truncate(n);
            self.kv.truncate(n);
            return Ok(());
        }
        let from = self.rs.rewind(n);
        let replay = self.tokens[from..n].to_vec();
        self.tokens.truncate(from);
        self.kv.truncate(from);
        if !replay.is_empty() {
            self.eval(&replay, false)?;
        }
        Ok(())
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.tokens.clear();
        self.kv.truncate(0);
        self.rs.reset();
    }

    /// Feeds `tokens` after what is cached. Returns the logits of the last
    /// token (`n_vocab` values), or of every token in `tokens` when
    /// `all_logits` (`tokens.len() * n_vocab` values, row by row).
    pub fn eval(&mut self, tokens: &[u32], all_logits: bool) -> Result<&[f32], ModelError> {
        let n_vocab = self.model.config().n_vocab;
        if tokens.is_empty() {
            return Err(ModelError::EmptyInput);
        }
        if let (Some(b), [token]) = (&self.batcher, tokens) {
            let b = Arc::clone(b);
            b.decode(self, *token)?;
            return Ok(&self.logits);
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= n_vocab) {
            return Err(ModelError::TokenOutOfRange { token: bad, n_vocab });
        }
        if self.tokens.len() + tokens.len() > self.kv.capacity() {
            return Err(ModelError::ContextFull {
                n_ctx: self.kv.capacity(),
                needed: self.tokens.len() + tokens.len(),
            });
        }
        let rows = if all_logits { tokens.len() } else { 1 };
        let len = rows.checked_mul(n_vocab).unwrap_or(usize::MAX);
        if len > self.logits.len() {
            let more = len - self.logits.len();
            self.logits
                .try_reserve_exact(more)
                .map_err(|_| ModelError::OutOfMemory { what: "logits", bytes: len.saturating_mul(size_of::<f32>()) })?;
        }
        self.logits.resize(len, 0.0);
        let model = Arc::clone(&self.model);
        let mut done = 0;
        let batch = if self.deadline.is_some() { DEADLINE_BATCH.min(self.scratch.n_max) } else { self.scratch.n_max };
        for chunk in tokens.chunks(batch) {
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(ModelError::DeadlineExceeded);
            }
            let pos0 = self.tokens.len();
            let last_chunk = done + chunk.len() == tokens.len();
            let (out_from, dst) = if all_logits {
                (0, &mut self.logits[done * n_vocab..(done + chunk.len()) * n_vocab])
            } else if last_chunk {
                (chunk.len() - 1, &mut self.logits[..n_vocab])
            } else {
                (chunk.len(), &mut self.logits[..0])
            };
            let mut env = ForwardEnv {
                file: model.file(),
                config: model.config(),
                pool: &self.pool,
                kv: &mut self.kv,
                rs: &mut self.rs,
                scratch: &mut self.scratch,
            };
            model.arch().forward(&mut env, chunk, pos0, out_from, dst);
            self.kv.advance(chunk.len());
            self.tokens.extend_from_slice(chunk);
            done += chunk.len();
        }
        // A prompt ends a turn: where a later rewind can restart from.
        if tokens.len() > 1 && !self.rs.is_empty() {
            self.rs.checkpoint(self.tokens.len());
        }
        Ok(&self.logits)
    }

    /// Logits left by the last `eval`.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// Sends this context's one-token decodes through `batcher`, to run in
    /// one forward pass with other contexts' decodes of the same model
    /// (continuous batching; the logits have the same bits either way).
    /// Ignored for models whose sequences cannot share a pass (recurrent
    /// layers, Phi-3's longrope): those decode alone.
    pub fn set_batcher(&mut self, batcher: Option<Arc<Batcher>>) {
        self.batcher = batcher.filter(|_| self.model.arch().batches_sequences());
    }

    /// Takes over the first `n` cached positions of `other` (a context of
    /// the same model and KV types that holds at least `n`): this context
    /// then holds exactly those tokens, as if it had evaluated them. For
    /// reusing a finished request's cache; models with recurrent layers
    /// (whose state cannot be cut at `n`) and differing layouts are
    /// refused with `false`, leaving this context as it was.
    pub fn adopt_prefix(&mut self, other: &Context, n: usize) -> bool {
        if !Arc::ptr_eq(&self.model, &other.model) || !self.reusable_prefix() || n > other.tokens.len() {
            return false;
        }
        if !self.kv.copy_prefix_from(&other.kv, n) {
            return false;
        }
        self.tokens.clear();
        self.tokens.extend_from_slice(&other.tokens[..n]);
        true
    }

    /// Whether [`Context::adopt_prefix`] can take from this model's
    /// contexts: their cached keys must not depend on the context they are
    /// in, which excludes recurrent layers (a state, not per-position
    /// keys) and Phi-3's longrope (whose RoPE factors depend on the
    /// context's size) — what also keeps a model out of batched decoding.
    pub fn reusable_prefix(&self) -> bool {
        self.rs.is_empty() && self.model.arch().batches_sequences()
    }

    /// Whether this context's decodes go through a batcher.
    pub fn batches(&self) -> bool {
        self.batcher.is_some()
    }

    /// Whether `token` can be decoded next: in the vocabulary, room in the
    /// cache, deadline not passed.
    pub(crate) fn check_decode(&self, token: u32) -> Result<(), ModelError> {
        let n_vocab = self.model.config().n_vocab;
        if token as usize >= n_vocab {
            return Err(ModelError::TokenOutOfRange { token, n_vocab });
        }
        if self.tokens.len() + 1 > self.kv.capacity() {
            return Err(ModelError::ContextFull { n_ctx: self.kv.capacity(), needed: self.tokens.len() + 1 });
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(ModelError::DeadlineExceeded);
        }
        Ok(())
    }

    /// Decodes `tokens[i]` after what `ctxs[i]` holds, for every `i`, in one
    /// forward pass; each context's logits are left as a lone `eval` of its
    /// token would leave them. `logits` is a buffer for all rows.
    ///
    /// The contexts are of one model that [`batches_sequences`], and each
    /// passed [`Context::check_decode`].
    ///
    /// [`batches_sequences`]: crate::model::Architecture::batches_sequences
    pub(crate) fn decode_together(ctxs: &mut [&mut Context], tokens: &[u32], logits: &mut Vec<f32>) {
        let n = ctxs.len();
        assert!(n > 0 && n == tokens.len());
        let model = Arc::clone(&ctxs[0].model);
        assert!(model.arch().batches_sequences() && ctxs.iter().all(|c| Arc::ptr_eq(&c.model, &model)));
        let n_vocab = model.config().n_vocab;
        let pos: Vec<u32> = ctxs.iter().map(|c| c.tokens.len() as u32).collect();
        // The largest scratch serves the batch, in passes of as many rows
        // as it holds (a context's scratch is as small as its context).
        let si = (0..n).max_by_key(|&i| ctxs[i].scratch.n_max).unwrap_or(0);
        let rows = ctxs[si].scratch.n_max.max(1);
        let mut scratch = std::mem::take(&mut ctxs[si].scratch);
        let pool = Arc::clone(&ctxs[si].pool);
        logits.resize(n * n_vocab, 0.0);
        for start in (0..n).step_by(rows) {
            let end = (start + rows).min(n);
            let mut caches: Vec<&mut KvCache> = ctxs[start..end].iter_mut().map(|c| &mut c.kv).collect();
            let mut env = BatchEnv { file: model.file(), config: model.config(), pool: &pool, caches: &mut caches, scratch: &mut scratch };
            model.arch().forward_rows(&mut env, &tokens[start..end], &pos[start..end], &mut logits[start * n_vocab..end * n_vocab]);
        }
        ctxs[si].scratch = scratch;
        for (i, c) in ctxs.iter_mut().enumerate() {
            c.kv.advance(1);
            c.tokens.push(tokens[i]);
            c.logits.resize(n_vocab, 0.0);
            c.logits.copy_from_slice(&logits[i * n_vocab..(i + 1) * n_vocab]);
        }
    }
}
