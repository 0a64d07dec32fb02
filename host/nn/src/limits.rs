//! Operator limits, enforced inside the backend: wasm fuel and epochs do not
//! meter host-side inference, so every long-running or memory-hungry
//! operation checks these itself.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use edgewasm_llm::KvTypes;

use crate::error::{NnError, NnResult};

/// Default `max_load_bytes`: 512 MiB of guest-loaded models alive at once,
/// twice the largest model we test (Gemma 3 270M, 241 MiB); the host keeps
/// its own copy of each, on top of the guest's.
pub const DEFAULT_MAX_LOAD_BYTES: usize = 512 << 20;

/// Default `max_kv_bytes`: 512 MiB, two contexts of SmolLM2-135M at the
/// full 8192 positions (180 MiB of f16 KV cache plus 14.3 MiB of activation
/// buffers and logits each) or eight at the default 2048, which fits next
/// to the weights on a board with 1 GiB of RAM.
pub const DEFAULT_MAX_KV_BYTES: usize = 512 << 20;

/// Default `max_prompt_bytes`: 1 MiB, far more text than the largest
/// context (8192 positions) can hold, so it never refuses a prompt that
/// could run, and small enough to tokenize in well under a second.
pub const DEFAULT_MAX_PROMPT_BYTES: usize = 1 << 20;

/// Default `max_tensor_bytes`: 256 MiB of live wasi:nn tensors, room for
/// a full prompt and hundreds of undropped logits rows, a quarter of a
/// 1 GiB board.
pub const DEFAULT_MAX_TENSOR_BYTES: usize = 256 << 20;

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
    /// Most bytes of context memory (KV cache, activation buffers, logits:
    /// everything a context allocates) summed over a guest's live contexts,
    /// counted in full (every position filled) when a context is created
    /// (`--max-kv-memory`).
    pub max_kv_bytes: usize,
    /// Most bytes of one prompt (or any other wasi:nn input tensor, or text
    /// to tokenize) a guest may hand the host.
    pub max_prompt_bytes: usize,
    /// Most bytes of wasi:nn tensors a guest may hold at once (the host
    /// copies each tensor's data out of the guest).
    pub max_tensor_bytes: usize,
    /// Most wasi:nn / edgewasm:llm resources (components) or
    /// `wasi_ephemeral_nn` handles (core modules) a guest may hold at once.
    pub max_handles: usize,
    /// Wall-clock deadline (`--timeout`), shared with the wasm epoch timer.
    pub deadline: Option<Instant>,
    /// How contexts store keys and values (`--cache-type-k/-v`).
    pub kv_types: KvTypes,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_tokens: 4096,
            max_ctx: 8192,
            default_ctx: 2048,
            max_contexts: 8,
            max_load_bytes: DEFAULT_MAX_LOAD_BYTES,
            max_kv_bytes: DEFAULT_MAX_KV_BYTES,
            max_prompt_bytes: DEFAULT_MAX_PROMPT_BYTES,
            max_tensor_bytes: DEFAULT_MAX_TENSOR_BYTES,
            max_handles: crate::handles::DEFAULT_MAX_HANDLES,
            deadline: None,
            kv_types: KvTypes::default(),
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

    /// Fails with `too-large` if `len` bytes of `what` exceed the prompt
    /// size limit.
    pub fn check_prompt_bytes(&self, what: &str, len: usize) -> NnResult<()> {
        if len > self.max_prompt_bytes {
            return Err(NnError::too_large(format!(
                "{what} of {len} bytes exceeds the prompt size limit of {} bytes (--max-prompt-size)",
                self.max_prompt_bytes
            )));
        }
        Ok(())
    }

    /// Clamps a requested token count to the operator's ceiling.
    pub fn clamp_tokens(&self, requested: Option<usize>) -> usize {
        requested.unwrap_or(256).min(self.max_tokens)
    }
}

/// Bytes a context of `n_ctx` positions with KV types `kv` allocates (KV
/// cache for every position, activation buffers, logits), as
/// `Context::with_kv_types` allocates them; `None` on overflow.
pub fn context_bytes(c: &edgewasm_llm::ModelConfig, n_ctx: usize, kv: KvTypes) -> Option<usize> {
    edgewasm_llm::Context::bytes_for(c, n_ctx, kv)
}

/// Live-context accounting for one guest: how many contexts, and how many
/// bytes of context memory they hold.
#[derive(Debug)]
pub struct ContextSlots {
    state: Mutex<SlotState>,
    max: usize,
    max_kv_bytes: usize,
}

#[derive(Debug, Default)]
struct SlotState {
    live: usize,
    kv_bytes: usize,
}

impl ContextSlots {
    pub fn new(max: usize, max_kv_bytes: usize) -> Arc<ContextSlots> {
        Arc::new(ContextSlots { state: Mutex::new(SlotState::default()), max, max_kv_bytes })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot for a context of `kv_bytes` bytes of context memory,
    /// released when the permit drops.
    pub fn acquire(self: &Arc<Self>, kv_bytes: usize) -> NnResult<ContextPermit> {
        let mut s = self.lock();
        if s.live >= self.max {
            return Err(NnError::too_large(format!("too many live execution contexts (limit {}, --max-contexts)", self.max)));
        }
        self.check_kv(&s, 0, kv_bytes)?;
        s.live += 1;
        s.kv_bytes += kv_bytes;
        Ok(ContextPermit { slots: Arc::clone(self), kv_bytes })
    }

    fn check_kv(&self, s: &SlotState, releasing: usize, kv_bytes: usize) -> NnResult<()> {
        let others = s.kv_bytes - releasing;
        if others.checked_add(kv_bytes).is_none_or(|t| t > self.max_kv_bytes) {
            return Err(NnError::too_large(format!(
                "a context of {} MiB (KV cache and buffers) would bring this guest's live contexts to {} MiB, over the limit of {} MiB (--max-kv-memory)",
                mib(kv_bytes),
                mib(others.saturating_add(kv_bytes)),
                mib(self.max_kv_bytes)
            )));
        }
        Ok(())
    }

    /// Live contexts.
    pub fn live(&self) -> usize {
        self.lock().live
    }

    /// Context-memory bytes reserved by live contexts.
    pub fn kv_bytes(&self) -> usize {
        self.lock().kv_bytes
    }
}

fn mib(b: usize) -> String {
    format!("{:.1}", b as f64 / (1 << 20) as f64)
}

/// One taken context slot and its memory reservation.
#[derive(Debug)]
pub struct ContextPermit {
    slots: Arc<ContextSlots>,
    kv_bytes: usize,
}

impl ContextPermit {
    /// Changes the reservation to `kv_bytes` (a context resized), if the
    /// guest's total stays within the limit.
    pub fn resize(&mut self, kv_bytes: usize) -> NnResult<()> {
        let mut s = self.slots.lock();
        self.slots.check_kv(&s, self.kv_bytes, kv_bytes)?;
        s.kv_bytes = s.kv_bytes - self.kv_bytes + kv_bytes;
        self.kv_bytes = kv_bytes;
        Ok(())
    }
}

impl Drop for ContextPermit {
    fn drop(&mut self) {
        let mut s = self.slots.lock();
        s.live -= 1;
        s.kv_bytes -= self.kv_bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_count_and_kv_bytes_come_back_on_drop() {
        let slots = ContextSlots::new(3, 100);
        let a = slots.acquire(40).unwrap();
        let mut b = slots.acquire(40).unwrap();
        assert_eq!((slots.live(), slots.kv_bytes()), (2, 80));
        let e = slots.acquire(30).unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::TooLarge);
        assert!(e.message.contains("--max-kv-memory"), "{e}");
        // A failed acquire takes nothing.
        assert_eq!((slots.live(), slots.kv_bytes()), (2, 80));
        assert!(b.resize(70).is_err());
        b.resize(20).unwrap();
        let c = slots.acquire(40).unwrap();
        assert_eq!((slots.live(), slots.kv_bytes()), (3, 100));
        let e = slots.acquire(0).unwrap_err();
        assert!(e.message.contains("--max-contexts"), "{e}");
        drop((a, b, c));
        assert_eq!((slots.live(), slots.kv_bytes()), (0, 0));
        for _ in 0..10_000 {
            let _p = slots.acquire(100).unwrap();
        }
        assert_eq!((slots.live(), slots.kv_bytes()), (0, 0));
        assert!(slots.acquire(usize::MAX).is_err());
    }

    #[test]
    fn prompt_bytes() {
        let l = Limits { max_prompt_bytes: 10, ..Limits::default() };
        assert!(l.check_prompt_bytes("prompt", 10).is_ok());
        let e = l.check_prompt_bytes("prompt", 11).unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::TooLarge);
        assert!(e.message.contains("--max-prompt-size"), "{e}");
    }
}
