//! Prefix reuse across requests (`edgewasm serve`): a finished request's
//! context is parked here with its KV cache, and a later request whose
//! prompt starts with the same tokens (the next turn of the conversation,
//! or the same system prompt) copies that prefix instead of computing it
//! again. LlamaEdge clears the cache on every request; llama-server keeps
//! it per slot.
//!
//! The budget counts each parked context's whole memory
//! ([`Context::memory_bytes`]); past it the least recently parked go.
//! Models with recurrent layers are not parked (their state cannot be cut
//! back to a shared prefix without the checkpoints of that conversation).

use std::sync::{Arc, Mutex};

use edgewasm_llm::{Context, KvTypes, Model};

/// Parked contexts of finished requests, within a byte budget.
#[derive(Debug)]
pub struct PrefixCache {
    budget: usize,
    parked: Mutex<Vec<(Context, usize)>>,
}

impl PrefixCache {
    pub fn new(budget: usize) -> PrefixCache {
        PrefixCache { budget, parked: Mutex::new(Vec::new()) }
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Contexts parked now, and their bytes.
    pub fn usage(&self) -> (usize, usize) {
        let p = self.lock();
        (p.len(), p.iter().map(|(_, b)| b).sum())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Context, usize)>> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `ctx` for later requests (newest last), evicting the oldest
    /// past the budget. Empty contexts and recurrent models are dropped.
    pub fn park(&self, mut ctx: Context) {
        let bytes = ctx.memory_bytes();
        if ctx.n_past() == 0 || bytes > self.budget || !ctx.reusable_prefix() {
            return;
        }
        ctx.set_deadline(None);
        ctx.set_batcher(None);
        let mut p = self.lock();
        p.push((ctx, bytes));
        let mut total: usize = p.iter().map(|(_, b)| b).sum();
        while total > self.budget {
            let (_, b) = p.remove(0);
            total -= b;
        }
    }

    /// Copies into `ctx` the longest prefix of `prompt` that a parked
    /// context of the same model and KV types holds, when it is longer
    /// than what `ctx` already shares with `prompt`. A parked context that
    /// the request takes whole is removed (the request's own context will
    /// be parked with more); one it shares only a part of (a common system
    /// prompt) stays for others. Returns the tokens now shared.
    pub fn adopt_into(&self, ctx: &mut Context, model: &Arc<Model>, types: KvTypes, prompt: &[u32]) -> usize {
        let shared = |tokens: &[u32]| tokens.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        let have = shared(ctx.tokens());
        let mut p = self.lock();
        let best = p
            .iter()
            .enumerate()
            .filter(|(_, (c, _))| Arc::ptr_eq(c.model(), model) && c.kv_types() == types)
            .map(|(i, (c, _))| (i, shared(c.tokens()).min(ctx.n_ctx())))
            .max_by_key(|&(_, n)| n);
        let Some((i, n)) = best.filter(|&(_, n)| n > have) else { return have };
        if !ctx.adopt_prefix(&p[i].0, n) {
            return have;
        }
        if n == p[i].0.n_past() {
            p.remove(i);
        } else {
            // Recently useful: last to be evicted.
            let e = p.remove(i);
            p.push(e);
        }
        n
    }
}
