//! Operator limits, enforced inside the backend: wasm fuel and epochs do not
//! meter host-side inference, so every long-running or memory-hungry
//! operation checks these itself.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{NnError, NnResult};

/// Limits for one guest (one store).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Ceiling on tokens generated per request (`--max-tokens`); larger
    /// requests are clamped to it.
    pub max_tokens: usize,
    /// Largest context (KV cache positions) a guest may create.
    pub max_ctx: usize,
    /// Context size when the guest asks for none.
    pub default_ctx: usize,
    /// Most execution contexts/sessions alive at once per guest.
    pub max_contexts: usize,
    /// Most bytes a guest may pass to `wasi:nn/graph.load`.
    pub max_load_bytes: usize,
    /// Wall-clock deadline (`--timeout`), shared with the wasm epoch timer.
    pub deadline: Option<Instant>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_tokens: 4096,
            max_ctx: 8192,
            default_ctx: 2048,
            max_contexts: 8,
            max_load_bytes: 1 << 30,
            deadline: None,
        }
    }
}

impl Limits {
    /// Fails with `timeout` once the deadline has passed.
    pub fn check_deadline(&self) -> NnResult<()> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(NnError::timeout()),
            _ => Ok(()),
        }
    }

    /// The context size for a request of `requested` positions on a model
    /// trained with `n_ctx_train`.
    pub fn context_size(&self, requested: Option<usize>, n_ctx_train: usize) -> NnResult<usize> {
        let cap = self.max_ctx.min(n_ctx_train.max(1));
        match requested {
            None => Ok(self.default_ctx.min(cap)),
            Some(0) => Err(NnError::invalid("ctx-size must be positive")),
            Some(n) if n > cap => Err(NnError::too_large(format!(
                "ctx-size {n} exceeds the limit of {cap} positions (model trained with {n_ctx_train}, operator cap {})",
                self.max_ctx
            ))),
            Some(n) => Ok(n),
        }
    }

    /// Clamps a requested token count to the operator's ceiling.
    pub fn clamp_tokens(&self, requested: Option<usize>) -> usize {
        requested.unwrap_or(256).min(self.max_tokens)
    }
}

/// Live-context accounting for one guest.
#[derive(Debug)]
pub struct ContextSlots {
    live: AtomicUsize,
    max: usize,
}

impl ContextSlots {
    pub fn new(max: usize) -> Arc<ContextSlots> {
        Arc::new(ContextSlots { live: AtomicUsize::new(0), max })
    }

    /// Takes a slot, released when the permit drops.
    pub fn acquire(self: &Arc<Self>) -> NnResult<ContextPermit> {
        let prev = self.live.fetch_add(1, Ordering::SeqCst);
        if prev >= self.max {
            self.live.fetch_sub(1, Ordering::SeqCst);
            return Err(NnError::too_large(format!("too many live execution contexts (limit {})", self.max)));
        }
        Ok(ContextPermit(Arc::clone(self)))
    }

    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
}

/// One taken context slot.
#[derive(Debug)]
pub struct ContextPermit(Arc<ContextSlots>);

impl Drop for ContextPermit {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}
